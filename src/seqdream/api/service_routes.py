"""The service's own routes: the home redirect, the favicon, health, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from seqdream import __version__
from seqdream.api.envelope import JSONLine
from seqdream.api.state import running
from seqdream.cpu.threads import thread_report

router = APIRouter()
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2b6cb0"/>'
    b'<circle cx="6" cy="9" r="3.5" fill="#e53e3e"/><rect x="8.5" y="3" width="5" height="5" fill="#f6e05e"/></svg>'
)


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    return RedirectResponse("/playground/")


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:  # browsers ask for it on every page: an icon, not a 404 in the console
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/health/live", tags=["service"], summary="Liveness: the process answers")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    tags=["service"],
    summary="Readiness: database and storage usable, a worker alive with its model (503 if not)",
)
async def ready(request: Request) -> JSONResponse:
    state = running(request.app)
    answer = await run_in_threadpool(state.services.readiness, state.workers, state.workers is not None)
    return JSONLine(answer, status_code=200 if answer["status"] == "ready" else 503)


@router.get("/metrics", tags=["service"], summary="Prometheus metrics: queue by status, latencies, failures")
async def metrics(request: Request) -> Response:
    output = await run_in_threadpool(generate_latest, running(request.app).metrics)
    return Response(output, media_type=CONTENT_TYPE_LATEST)


@router.get("/health", tags=["service"], summary="Liveness, engine state and queue depth")
async def health(request: Request) -> dict[str, Any]:
    state = running(request.app)
    engines = state.services.engines if state.workers is not None else None
    return {
        "status": "ok",
        "version": __version__,
        "jobs": await run_in_threadpool(state.services.jobs.counts),
        "engine": None if engines is None else engines.state,
        "engine_error": engines.last_error if engines else None,
        "workers_seen": await run_in_threadpool(state.services.workers_seen),  # in every process, via the database
        "threads": thread_report(),
    }
