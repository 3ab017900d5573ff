"""The FastAPI application, with in-process workers started by its lifespan."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from seqdream import __version__
from seqdream.api import account, ark, events, examples, media, openai_images, predictions, provenance, webhooks
from seqdream.api.body_limit import BodySizeLimit
from seqdream.api.deps import ServicesDep
from seqdream.api.envelope import JSONLine, install_error_handlers
from seqdream.api.notifier import JobEvents
from seqdream.api.openapi import install_openapi
from seqdream.api.schemas import FIELD_RULES, V45_FIELD_RULES
from seqdream.api.security_headers import SecurityHeaders
from seqdream.config import Settings
from seqdream.cpu.threads import thread_report
from seqdream.db.migrate import current_revision
from seqdream.jobs.worker import EngineHolder, WorkerPool
from seqdream.metrics import process_registry
from seqdream.services import Services

log = logging.getLogger(__name__)
PLAYGROUND_DIR = Path(__file__).parent / "static" / "playground"
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2b6cb0"/>'
    b'<circle cx="6" cy="9" r="3.5" fill="#e53e3e"/><rect x="8.5" y="3" width="5" height="5" fill="#f6e05e"/></svg>'
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.from_settings(settings)
        app.state.services = services
        events = JobEvents()
        events.bind(asyncio.get_running_loop())
        app.state.job_events = events
        work_available = threading.Event()  # set on submit so idle workers start at once
        app.state.work_available = work_available
        pool: WorkerPool | None = None
        dispatcher = services.start_webhooks()

        def finished(job_id: str) -> None:
            events.notify(job_id)
            dispatcher.wake.set()

        if settings.inline_workers:
            pool = services.start_workers(settings.inline_workers, wake=work_available, on_finished=finished)
        # Tasks queued or ended by other processes (PostgreSQL): wake workers and waiting requests at once.
        listener = services.listen(on_new_job=work_available.set, on_job_ended=finished)
        app.state.workers = pool
        engine_state = (lambda: services.engines.state) if pool else None
        app.state.metrics = process_registry(
            services.jobs, services.webhooks, engine_state, services.settings.metrics_key_labels
        )
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

    app = FastAPIOffline(
        title="seqdream",
        version=__version__,
        description=(
            "Self-hosted Seedream V4 image service, compatible with WaveSpeedAI's v3 API. "
            "Authenticate with `Authorization: Bearer <key>` (create keys with `seqdream keys create`)."
        ),
        lifespan=lifespan,
        default_response_class=JSONLine,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, errors included
    install_error_handlers(
        app,
        {
            "/": FIELD_RULES,
            "/api/v3/media/": media.FIELD_RULES,
            "/api/v3/bytedance/seedream-v4.5": V45_FIELD_RULES,
            "/api/v3/images/": ark.FIELD_RULES,
            "/v1/": openai_images.FIELD_RULES,
        },
    )
    install_openapi(app)
    app.include_router(predictions.router)
    app.include_router(events.router)
    app.include_router(media.router)
    app.include_router(examples.router)
    app.include_router(webhooks.router)
    app.include_router(account.router)
    app.include_router(provenance.router)
    app.include_router(ark.router)
    app.include_router(openai_images.router)
    app.mount("/playground", StaticFiles(directory=PLAYGROUND_DIR, html=True), name="playground")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/playground/")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:  # browsers ask for it on every page: an icon, not a 404 in the console
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/health/live", tags=["service"], summary="Liveness: the process answers")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/health/ready",
        tags=["service"],
        summary="Readiness: database and storage usable, a worker alive with its model (503 if not)",
    )
    async def ready(services: ServicesDep) -> JSONResponse:
        state = await run_in_threadpool(services.readiness, app.state.workers)
        return JSONLine(state, status_code=200 if state["status"] == "ready" else 503)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics: queue by status, latencies, failures")
    async def metrics(request: Request) -> Response:
        output = await run_in_threadpool(generate_latest, request.app.state.metrics)
        return Response(output, media_type=CONTENT_TYPE_LATEST)

    @app.get("/health", tags=["service"], summary="Liveness, engine state and queue depth")
    async def health(services: ServicesDep) -> dict[str, Any]:
        engines: EngineHolder | None = services.engines if app.state.workers is not None else None
        return {
            "status": "ok",
            "version": __version__,
            "jobs": await run_in_threadpool(services.jobs.counts),
            "engine": None if engines is None else engines.state,
            "engine_error": engines.last_error if engines else None,
            "threads": thread_report(),
        }

    return app
