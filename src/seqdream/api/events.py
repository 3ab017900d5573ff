"""`GET /api/v3/predictions/{id}/events`: a task's progress as server-sent events, until it ends.

Events: `queued` (its place in the fair queue and `eta_s`, when the place changes; `warnings` while
it waits on a model this process cannot load, again when that changes), `started`,
`progress` (images stored of those it will make, the current batch's denoising `step` of `steps`,
`eta_s`; with `?previews=true` a small picture, `preview`, where the model makes them; as they
change, at most as often as the worker records them), `image` (index and URL of each image as it is
stored) and a final `completed`, `failed` or `deleted` (the task object). Each event has an id
(`queued-3`, `started`, `image-2`, `end`), so a client that reconnects with `Last-Event-ID` gets
only what it has not seen. The stream follows the same notifications as sync mode (LISTEN/NOTIFY
across processes on PostgreSQL, polling on SQLite) and costs nothing while nobody listens.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from seqdream.api.deps import CallerDep, ServicesDep, base_url
from seqdream.api.envelope import prediction_not_found
from seqdream.api.notifier import follow
from seqdream.api.predictions import own_job, shown
from seqdream.api.state import running
from seqdream.db import JobStatus
from seqdream.dependencies import is_database_outage
from seqdream.jobs.presentation import progress, waiting_warnings
from seqdream.locations import output_url
from seqdream.services import Services

router = APIRouter(prefix="/api/v3", tags=["predictions"])
FOLLOW_S = 3600.0  # a stream ends after an hour (a client reconnects with Last-Event-ID)


def sse(name: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """One server-sent event (this stream's and the Ark dialect's): its name, an id to resume from, the data."""
    line = f"id: {event_id}\n" if event_id is not None else ""
    return f"event: {name}\n{line}data: {json.dumps(data, separators=(',', ':'))}\n\n"


def _seen_images(last_event_id: str | None) -> int:
    """How many images a reconnecting client has already been sent."""
    if last_event_id and last_event_id.startswith("image-") and last_event_id[6:].isdigit():
        return int(last_event_id[6:]) + 1
    return 0


@router.get("/predictions/{job_id}/events", summary="A task's progress as server-sent events, until it ends")
async def task_events(
    job_id: str,
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    last_event_id: str | None = Header(None, alias="Last-Event-ID", include_in_schema=False),
    previews: bool = Query(False, description="Progress events carry a small picture of the image being drawn"),
) -> StreamingResponse:
    job = await run_in_threadpool(own_job, services, job_id, caller)
    if job is None:
        raise prediction_not_found(job_id)
    return StreamingResponse(
        _ended_by_outage(_stream(request, services, job_id, last_event_id, previews)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _ended_by_outage(events: AsyncIterator[str]) -> AsyncIterator[str]:
    """The stream, ended quietly if the database goes away under one of its reads (the client
    reconnects with Last-Event-ID and is answered 503 until it returns), not with a traceback."""
    try:
        async for event in events:
            yield event
    except SQLAlchemyError as exc:
        if not is_database_outage(exc):
            raise


async def _stream(
    request: Request, services: Services, job_id: str, last_event_id: str | None, previews: bool
) -> AsyncIterator[str]:
    base = base_url(request)
    sent_images = _seen_images(last_event_id)
    started = last_event_id == "started" or sent_images > 0
    queued_as: tuple[int | None, str | None] | None = None  # its place, and why no worker can start it
    reported: tuple[int, int | None, str | None] | None = None  # images, steps and preview of the last progress
    async for job in follow(services, running(request.app).job_events, job_id, FOLLOW_S):
        if job.status == JobStatus.CREATED.value:
            now, eta = await run_in_threadpool(services.jobs.standing, job)
            waiting = await run_in_threadpool(services.waiting_reason)
            if (now, waiting) != queued_as:
                queued_as = (now, waiting)
                said = {"warnings": warned} if (warned := waiting_warnings(job, waiting)) else {}
                yield sse("queued", {"id": job_id, **progress(job, now, eta), **said}, f"queued-{now}")
            continue
        if not started:
            started = True
            yield sse("started", {"id": job_id}, "started")
        for index in range(sent_images, len(job.outputs)):
            url = output_url(base, job.outputs[index])
            yield sse("image", {"id": job_id, "index": index, "url": url}, f"image-{index}")
        sent_images = max(sent_images, len(job.outputs))
        now_at = (len(job.outputs), job.steps_done, job.preview if previews else None)
        if job.status == JobStatus.PROCESSING.value and now_at != reported:
            reported = now_at
            fields = progress(job, None, await run_in_threadpool(services.jobs.estimate, job), previews)
            seen = f"image-{len(job.outputs) - 1}" if job.outputs else "started"  # resuming skips what was sent
            yield sse("progress", {"id": job_id, **fields}, seen)
        if JobStatus(job.status).is_terminal:
            yield sse(job.status, await run_in_threadpool(shown, services, job, base), "end")
            return
