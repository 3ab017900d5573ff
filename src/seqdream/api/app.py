"""The FastAPI application, with in-process workers started by its lifespan."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from seqdream import __version__
from seqdream.api import (
    account,
    ark,
    events,
    examples,
    media,
    openai_images,
    predictions,
    provenance,
    service_routes,
    webhooks,
)
from seqdream.api.body_limit import BodySizeLimit
from seqdream.api.envelope import JSONLine, install_error_handlers
from seqdream.api.notifier import JobEvents
from seqdream.api.openapi import install_openapi
from seqdream.api.schemas import FIELD_RULES, V45_FIELD_RULES
from seqdream.api.security_headers import SecurityHeaders
from seqdream.api.state import Running
from seqdream.config import Settings
from seqdream.db.migrate import current_revision
from seqdream.metrics import process_registry
from seqdream.services import Services

log = logging.getLogger(__name__)
PLAYGROUND_DIR = Path(__file__).parent / "static" / "playground"
ROUTERS = (
    service_routes.router, predictions.router, events.router, media.router, examples.router, webhooks.router,
    account.router, provenance.router, ark.router, openai_images.router,
)  # fmt: skip
# Which field rules a validation error is explained with, by path prefix (the longest match wins).
FIELD_RULES_BY_PATH = {
    "/": FIELD_RULES,
    "/api/v3/media/": media.FIELD_RULES,
    "/api/v3/bytedance/seedream-v4.5": V45_FIELD_RULES,
    "/api/v3/images/": ark.FIELD_RULES,
    "/v1/": openai_images.FIELD_RULES,
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPIOffline(
        title="seqdream",
        version=__version__,
        description=(
            "Self-hosted Seedream V4 image service, compatible with WaveSpeedAI's v3 API. "
            "Authenticate with `Authorization: Bearer <key>` (create keys with `seqdream keys create`)."
        ),
        lifespan=lifespan(settings),
        default_response_class=JSONLine,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, errors included
    install_error_handlers(app, FIELD_RULES_BY_PATH)
    install_openapi(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/playground", StaticFiles(directory=PLAYGROUND_DIR, html=True), name="playground")
    return app


def lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the services, the webhook dispatcher, the in-process workers and the job listener; on the
    way out, let running tasks finish within the grace period and close everything."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        services = Services.from_settings(settings)
        job_events = JobEvents()
        job_events.bind(asyncio.get_running_loop())
        work_available = threading.Event()
        dispatcher = services.start_webhooks()

        def finished(job_id: str) -> None:
            job_events.notify(job_id)
            dispatcher.wake.set()

        pool = None
        if settings.inline_workers:
            pool = services.start_workers(settings.inline_workers, wake=work_available, on_finished=finished)
        # Tasks queued or ended by other processes (PostgreSQL): wake workers and waiting requests at once.
        listener = services.listen(on_new_job=work_available.set, on_job_ended=finished)
        engine_state = (lambda: services.engines.state) if pool else None
        metrics = process_registry(services.jobs, services.webhooks, engine_state, settings.metrics_key_labels)
        app.state.seqdream = Running(services, job_events, work_available, pool, metrics)
        log.info(
            "seqdream %s serving; database %s at schema %s; %d in-process worker(s)",
            __version__,
            services.db.engine.url.render_as_string(),
            current_revision(services.db),
            settings.inline_workers,
        )
        try:
            yield
        finally:
            if pool is not None:
                await run_in_threadpool(pool.shutdown, settings.shutdown_grace_s)
            await run_in_threadpool(dispatcher.shutdown)
            if listener is not None:
                await run_in_threadpool(listener.close)
            services.close()

    return run
