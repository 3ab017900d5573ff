"""Submit a task to a model of the family; read its result."""

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from seqdream.api.admission import submit_task
from seqdream.api.deps import Caller, CallerDep, PresentedKey, PresentedKeyDep, ServicesDep, base_url, own_bases
from seqdream.api.envelope import prediction_not_found, success
from seqdream.api.intake import accept_images, accept_webhook
from seqdream.api.notifier import wait_for_end
from seqdream.api.schemas import MAX_URL_CHARS, MODELS, DeleteRequest, ListingQuery, ModelSpec, SeedreamRequest
from seqdream.api.state import running
from seqdream.db import Job, JobStatus
from seqdream.jobs.janitor import remove_job_files
from seqdream.jobs.presentation import present, present_sync_timeout
from seqdream.jobs.request import JobRequest
from seqdream.services import Services

router = APIRouter(prefix="/api/v3")


def shown(
    services: Services, job: Job, base: str, *, as_urls: bool = False, standing: bool = True, preview: bool = False
) -> dict[str, Any]:
    """A task as every WaveSpeed route shows it: with `warnings` when its prompt steps outside the
    model's words or it is queued while no worker can start it, and where it stands (its place in
    the queue, its ETA: not in listings, nor in the answer to a submit, which a client follows by
    polling)."""
    asked = standing and not as_urls and JobStatus(job.status).is_active
    position, eta = services.jobs.standing(job) if asked else (None, None)
    waiting = services.waiting_reason() if job.status == JobStatus.CREATED.value else None
    return present(job, base, services.blobs, as_urls=as_urls, vocabulary=services.vocabulary, queue_position=position,
                   eta_s=eta, preview=preview, waiting=waiting)  # fmt: skip


def _create_job(
    services: Services, spec: ModelSpec, body: SeedreamRequest, key: PresentedKey, request: Request, webhook: str | None
) -> Job:
    caller = key.caller(services)  # in this trip to the thread pool: a 401 before anything is read or stored

    def make_request(job_id: str) -> JobRequest:
        return JobRequest(
            prompt=body.prompt,
            size=body.size,
            max_images=getattr(body, "max_images", 1),  # models that make one image have no such field
            images=accept_images(getattr(body, "images", []), job_id, services, own_bases(request)),
            enable_base64_output=body.enable_base64_output,
            webhook_url=accept_webhook(webhook or body.webhook_url, services),
            public_base=base_url(request),
        )

    fields = body.model_dump() | {"webhook": webhook}
    return submit_task(services, request, caller, spec.id, fields, body.seed, make_request)


def _accepted(
    services: Services,
    spec: ModelSpec,
    body: SeedreamRequest,
    key: PresentedKey,
    request: Request,
    webhook: str | None,
    base: str,
) -> dict[str, Any]:
    """The answer to an asynchronous submit: the queued task as it stands."""
    return shown(services, _create_job(services, spec, body, key, request, webhook), base, standing=False)


def _submit_route(spec: ModelSpec):  # type: ignore[no-untyped-def]
    schema = spec.schema

    async def submit(
        request: Request,
        body: schema,  # type: ignore[valid-type]
        key: PresentedKeyDep,
        services: ServicesDep,
        webhook: Annotated[
            str | None, Query(max_length=MAX_URL_CHARS, description="POSTed the task when it ends")
        ] = None,
    ) -> dict[str, Any]:
        fields: SeedreamRequest = body  # each model's schema extends it
        base = base_url(request)
        if not fields.enable_sync_mode:  # queued and shown in one trip to the thread pool
            return success(await run_in_threadpool(_accepted, services, spec, fields, key, request, webhook, base))
        job = await run_in_threadpool(_create_job, services, spec, fields, key, request, webhook)
        timeout = services.settings.sync_timeout_s
        job = await wait_for_end(services, running(request.app).job_events, job, timeout)
        if not JobStatus(job.status).is_terminal:
            return success(present_sync_timeout(await run_in_threadpool(shown, services, job, base), timeout))
        return success(await run_in_threadpool(shown, services, job, base))

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


def own_job(services: Services, job_id: str, caller: Caller) -> Job | None:
    """The task if it exists and the caller may see it (its own key's, or made without a key)."""
    job = services.jobs.get(job_id) if len(job_id) <= 64 else None
    if job is None or (caller.key_id is not None and job.api_key_id not in (None, caller.key_id)):
        return None
    return job


@router.get("/predictions/{job_id}/result", tags=["predictions"], summary="Get a task's status and outputs")
@router.get("/predictions/{job_id}", tags=["predictions"], summary="Get a task (same as /result)")
async def get_result(
    job_id: str,
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    preview: Annotated[
        bool, Query(description="While it runs, a small picture of the image being drawn (`preview`, a data: URI)")
    ] = False,
) -> dict[str, Any]:
    job = await run_in_threadpool(own_job, services, job_id, caller)
    if job is None:
        raise prediction_not_found(job_id)
    return success(await run_in_threadpool(partial(shown, preview=preview), services, job, base_url(request)))


def delete_job(services: Services, request: Request, job_id: str, caller: Caller) -> Job | None:
    """Delete a task of the caller's: queued, it never runs; running, it stops at its next step;
    its images and inline references are removed. None when there is no such task for the caller."""
    if own_job(services, job_id, caller) is None:
        return None
    job = services.jobs.delete(job_id)
    if job is None:
        return None
    pool = running(request.app).workers
    if pool is not None:
        pool.notice_deleted(job_id)  # in this process: stop now, not at the worker's next look
    remove_job_files(services.blobs, job)
    return job


@router.delete("/predictions/{job_id}", tags=["predictions"], summary="Delete a task (cancels it if queued or running)")
async def delete_prediction(
    job_id: str,
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
) -> dict[str, Any]:
    job = await run_in_threadpool(delete_job, services, request, job_id, caller)
    if job is None:
        raise prediction_not_found(job_id)
    return success(await run_in_threadpool(shown, services, job, base_url(request)))


@router.post("/predictions/delete", tags=["predictions"], summary="Delete several tasks")
async def delete_predictions(
    body: DeleteRequest,
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
) -> dict[str, Any]:
    deleted: list[str] = []
    not_found: list[str] = []
    for job_id in dict.fromkeys(body.ids):
        job = await run_in_threadpool(delete_job, services, request, job_id, caller)
        (deleted if job is not None else not_found).append(job_id)
    return success({"deleted": deleted, "not_found": not_found})


@router.get("/predictions", tags=["predictions"], summary="Recent tasks of the calling key, newest first")
async def list_predictions(
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
    listing: Annotated[ListingQuery, Query()],
) -> dict[str, Any]:
    page, page_size = listing.page, listing.page_size
    jobs = await run_in_threadpool(services.jobs.recent, page_size, (page - 1) * page_size, caller.key_id)
    base = base_url(request)
    items = [shown(services, job, base, as_urls=True) | {"prompt": JobRequest.of(job.request).prompt} for job in jobs]
    return success({"page": page, "page_size": page_size, "items": items})
