"""What the Ark and OpenAI routes share: sizes written "WxH", running a task to its end, image items."""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass

from fastapi import Request

from seqdream.api.admission import submit_task
from seqdream.api.deps import Caller, base_url, own_bases
from seqdream.api.envelope import APIError
from seqdream.api.intake import accept_images
from seqdream.api.notifier import wait_for_end
from seqdream.api.state import running
from seqdream.db import Job, JobStatus
from seqdream.jobs.request import JobRequest
from seqdream.locations import output_url
from seqdream.numbers import shown, size_pair
from seqdream.services import Services
from seqdream.storage import BlobNotFound


def parse_wxh(value: str, label: str = "size") -> tuple[int, int]:
    pair = size_pair(value, separators="xX*")
    if pair is None:
        raise APIError(400, f'{label}: {shown(value)} is not of the form "WIDTHxHEIGHT", e.g. "2048x2048"')
    return pair


def model_id(family: str, with_images: bool, count: int) -> str:
    """The WaveSpeed model a request runs as: "bytedance/seedream-v4/edit-sequential" and so on."""
    if with_images:
        return f"{family}/edit" + ("-sequential" if count > 1 else "")
    return family + ("/sequential" if count > 1 else "")


@dataclass(frozen=True)
class Submission:
    """One task in the terms every dialect shares."""

    model: str  # the WaveSpeed model id it runs as
    prompt: str
    width: int
    height: int
    max_images: int
    images: list[str]
    seed: int = -1
    watermark: bool = False
    output_format: str | None = None  # None: the service's setting
    output_quality: int | None = None

    @property
    def size(self) -> str:
        """The output size as these dialects write it, "WIDTHxHEIGHT"."""
        return f"{self.width}x{self.height}"


def submit(services: Services, request: Request, caller: Caller, task: Submission) -> Job:
    def make_request(job_id: str) -> JobRequest:
        return JobRequest(
            prompt=task.prompt,
            size=f"{task.width}*{task.height}",
            max_images=task.max_images,
            images=accept_images(task.images, job_id, services, own_bases(request)),
            watermark=task.watermark,
            public_base=base_url(request),
            output_format=task.output_format,
            output_quality=task.output_quality,
        )

    return submit_task(services, request, caller, task.model, dataclasses.asdict(task), task.seed, make_request)


async def run_to_end(request: Request, services: Services, job: Job) -> Job:
    """Hold the request until the task ends (these dialects have no polling); 504 past the sync timeout."""
    timeout = services.settings.sync_timeout_s
    job = await wait_for_end(services, running(request.app).job_events, job, timeout)
    if not JobStatus(job.status).is_terminal:
        raise APIError(504, f"the task did not finish within {timeout:g}s; it keeps running as task {job.id}")
    return job


def image_item(services: Services, request: Request, key: str, response_format: str) -> dict[str, str]:
    """`{"url": ...}` or `{"b64_json": ...}` for one stored output."""
    if response_format == "b64_json":
        try:
            return {"b64_json": base64.b64encode(services.blobs.get(key)).decode("ascii")}
        except BlobNotFound as exc:
            raise APIError(404, "the image expired before it could be read") from exc
    return {"url": output_url(base_url(request), key)}


def input_error(job: Job) -> bool:
    """Whether a failed task failed on its input (a reference that could not be loaded)."""
    if job.failure is not None:
        return job.failure == "input"
    return job.error.startswith("images[")  # failed before the kind was recorded (migration 0003)
