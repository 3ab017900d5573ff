"""Submit a task to a model of the family; read its result."""

import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from seqdream.api.deps import Caller, base_url, get_services, own_bases, require_key
from seqdream.api.envelope import APIError, success
from seqdream.api.intake import accept_images
from seqdream.api.notifier import JobEvents
from seqdream.api.presenter import present, present_sync_timeout
from seqdream.api.schemas import MODELS, ModelSpec, SeedreamRequest
from seqdream.db import Job, JobStatus
from seqdream.jobs.planner import resolve_seed
from seqdream.jobs.request import JobRequest
from seqdream.services import Services

router = APIRouter(prefix="/api/v3")


def _create_job(services: Services, spec: ModelSpec, body: SeedreamRequest, caller: Caller, bases: list[str]) -> Job:
    job_id = uuid.uuid4().hex
    request = JobRequest(
        prompt=body.prompt,
        size=body.size,
        max_images=getattr(body, "max_images", 1),  # models that make one image have no such field
        images=accept_images(getattr(body, "images", []), job_id, services, bases),
        enable_base64_output=body.enable_base64_output,
    )
    try:
        return services.jobs.create(
            job_id=job_id,
            model=spec.id,
            request=request,
            seed=resolve_seed(body.seed),
            api_key_id=caller.key_id,
        )
    except (SQLAlchemyError, OSError) as exc:
        raise APIError(503, f"could not record the task ({type(exc).__name__}); nothing was queued") from exc


async def wait_for_end(services: Services, events: JobEvents, job_id: str, timeout_s: float) -> Job:
    """Wait until the job ends or `timeout_s` passes; returns its latest state."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = await run_in_threadpool(services.jobs.get, job_id)
        assert job is not None
        remaining = deadline - time.monotonic()
        if JobStatus(job.status).is_terminal or remaining <= 0:
            return job
        await events.wait(job_id, min(services.settings.poll_interval_s, remaining))


def _submit_route(spec: ModelSpec):  # type: ignore[no-untyped-def]
    schema = spec.schema

    async def submit(
        request: Request,
        body: schema,  # type: ignore[valid-type]
        caller: Caller = Depends(require_key),
        services: Services = Depends(get_services),
    ) -> dict[str, Any]:
        fields: SeedreamRequest = body  # each model's schema extends it
        base = base_url(request)
        job = await run_in_threadpool(_create_job, services, spec, fields, caller, own_bases(request))
        request.app.state.work_available.set()
        if not fields.enable_sync_mode:
            return success(present(job, base, services.blobs))
        timeout = services.settings.sync_timeout_s
        job = await wait_for_end(services, request.app.state.job_events, job.id, timeout)
        if not JobStatus(job.status).is_terminal:
            return success(present_sync_timeout(job, base, services.blobs, timeout))
        return success(await run_in_threadpool(present, job, base, services.blobs))

    submit.__doc__ = f"{spec.summary}. Returns the task; poll `urls.get` for the result."
    return submit


for _spec in MODELS:
    router.add_api_route(
        f"/{_spec.id}",
        _submit_route(_spec),
        methods=["POST"],
        summary=_spec.summary,
        name=f"submit {_spec.id}",
        tags=["models"],
    )


@router.get("/predictions/{job_id}/result", tags=["predictions"], summary="Get a task's status and outputs")
@router.get("/predictions/{job_id}", tags=["predictions"], summary="Get a task (same as /result)")
async def get_result(
    job_id: str,
    request: Request,
    caller: Caller = Depends(require_key),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    job = await run_in_threadpool(services.jobs.get, job_id) if len(job_id) <= 64 else None
    if job is None or (caller.key_id is not None and job.api_key_id not in (None, caller.key_id)):
        raise APIError(404, f"prediction not found: {job_id}")
    return success(await run_in_threadpool(present, job, base_url(request), services.blobs))


@router.get("/predictions", tags=["predictions"], summary="Recent tasks of the calling key, newest first")
async def list_predictions(
    request: Request,
    page: int = Query(1, ge=1, le=10_000),
    page_size: int = Query(20, ge=1, le=100),
    caller: Caller = Depends(require_key),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    jobs = await run_in_threadpool(services.jobs.recent, page_size, (page - 1) * page_size, caller.key_id)
    base = base_url(request)
    items = [
        present(job, base, services.blobs, as_urls=True) | {"prompt": JobRequest.of(job.request).prompt} for job in jobs
    ]
    return success({"page": page, "page_size": page_size, "items": items})
