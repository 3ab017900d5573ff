"""A job as WaveSpeed's `data` object."""

from __future__ import annotations

import base64
from typing import Any

from seqdream.db import Job, JobStatus
from seqdream.engines.vocabulary import vocabulary_warning
from seqdream.jobs.eta import images_planned
from seqdream.jobs.planner import MAX_IMAGES_OUT, requested_count
from seqdream.jobs.request import JobRequest
from seqdream.locations import output_url, result_url
from seqdream.storage import BlobNotFound, BlobStore

SYNC_TIMEOUT_CODE = 5004


def iso_millis(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# A running group lists the images stored so far; a failed or deleted task lists none.
_SHOWS_OUTPUTS = (JobStatus.PROCESSING.value, JobStatus.COMPLETED.value)


def output_urls(job: Job, base: str, blobs: BlobStore, *, as_urls: bool = False) -> list[str]:
    if job.status not in _SHOWS_OUTPUTS:
        return []
    if as_urls or not JobRequest.of(job.request).enable_base64_output:
        return [output_url(base, key) for key in job.outputs]
    encoded = []
    for key in job.outputs:
        try:
            encoded.append(base64.b64encode(blobs.get(key)).decode("ascii"))
        except BlobNotFound:
            continue  # expired under the retention policy
    return encoded


def request_warnings(request: JobRequest, vocabulary: frozenset[str] | None) -> list[str]:
    """What a task's answer points out about its request: a prompt asking for more images than
    `max_images` allows (the contract's default is 1), and words outside the model's vocabulary."""
    warnings = []
    asked = requested_count(request.prompt)
    if asked is not None and asked > request.max_images:
        warnings.append(
            f"the prompt asks for {asked} images but max_images is {request.max_images}, so at most "
            f"{request.max_images} were made: send max_images {min(asked, MAX_IMAGES_OUT)} to a sequential model"
        )
    return warnings + vocabulary_warning(request.prompt, vocabulary)


def waiting_warnings(job: Job, waiting: str | None) -> list[str]:
    """What a task's answer says of why it has not started: a queued task, while no worker can start
    it (`waiting`: `Services.waiting_reason`, e.g. no worker runs or the model cannot be loaded)."""
    return [waiting] if waiting and job.status == JobStatus.CREATED.value else []


def progress(job: Job, queue_position: int | None, eta_s: float | None = None, preview: bool = False) -> dict[str, Any]:
    """Where a task stands, as extension fields SDKs ignore: a queued one's place in the fair queue,
    a running one's images stored so far out of those it will make and the denoising step of its
    current batch; either's estimated seconds to its end (`eta_s`, once its model was measured)."""
    fields: dict[str, Any] = {}
    if job.status == JobStatus.CREATED.value and queue_position is not None:
        fields["queue_position"] = queue_position
    elif job.status == JobStatus.PROCESSING.value:
        fields |= {"images_done": len(job.outputs), "images_total": images_planned(job)}
        if job.steps_done and job.batch_steps:
            fields |= {"step": (job.steps_done - 1) % job.batch_steps + 1, "steps": job.batch_steps}
        if preview and job.preview:
            fields["preview"] = job.preview
    if eta_s is not None and not JobStatus(job.status).is_terminal:
        fields["eta_s"] = round(eta_s, 1)
    return fields


def present(
    job: Job,
    base: str,
    blobs: BlobStore,
    *,
    as_urls: bool = False,
    vocabulary: frozenset[str] | None = None,
    queue_position: int | None = None,
    eta_s: float | None = None,
    preview: bool = False,
    waiting: str | None = None,
) -> dict[str, Any]:
    """`as_urls` lists URLs even for base64 tasks (history listings stay small). With the model's
    `vocabulary`, a prompt that steps outside it gets `warnings`, as does a queued task that no worker
    can start (`waiting`, the reason); a queued task its `queue_position`, a running one
    `images_done` of `images_total` and its `step` of `steps`, either its `eta_s` (extension fields
    SDKs ignore)."""
    warnings = request_warnings(JobRequest.of(job.request), vocabulary) + waiting_warnings(job, waiting)
    return (
        {
            "id": job.id,
            "model": job.model,
            "outputs": output_urls(job, base, blobs, as_urls=as_urls),
            "urls": {"get": result_url(base, job.id)},
            "has_nsfw_contents": list(job.has_nsfw_contents) if job.status in _SHOWS_OUTPUTS else [],
            "status": job.status,
            "created_at": iso_millis(job.created_at),
            "error": job.error if job.status == JobStatus.FAILED.value else "",
            "timings": {"inference": job.inference_ms or 0},
            "seed": job.seed,
        }
        | ({"warnings": warnings} if warnings else {})
        | progress(job, queue_position, eta_s, preview)
    )


def present_sync_timeout(data: dict[str, Any], waited_s: float) -> dict[str, Any]:
    """A presented task that sync mode stopped waiting for (`present`'s answer, changed in place)."""
    # Queued or running, the task is in progress from the caller's side: WaveSpeed says "processing".
    data["status"] = "processing"
    data["code"] = SYNC_TIMEOUT_CODE
    data["error"] = (
        f"Sync mode timed out after {waited_s:g}s; the task is still running. "
        f"Query the result later at: {data['urls']['get']}"
    )
    return data
