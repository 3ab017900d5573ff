"""ByteDance Ark (BytePlus ModelArk) images API: `POST /api/v3/images/generations`.

Code written for Ark's SDK works with its base URL pointed at `<seqdream>/api/v3`. The request
runs as a Seedream task; `stream: true` sends each image as server-sent events as it finishes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator
from starlette.concurrency import run_in_threadpool

from seqdream.api.deps import CallerDep, ServicesDep
from seqdream.api.dialects import Submission, image_item, input_error, model_id, parse_wxh, run_to_end, submit
from seqdream.api.envelope import APIError, JSONLine, error_format
from seqdream.api.events import sse
from seqdream.api.field_rules import field_rules
from seqdream.api.notifier import follow
from seqdream.api.schemas import (
    MAX_IMAGES_OUT,
    MAX_MODEL_NAME_CHARS,
    MAX_REFERENCES,
    MAX_SIDE,
    V45_MIN_PIXELS,
    Prompt,
)
from seqdream.api.state import running
from seqdream.db import Job, JobStatus
from seqdream.jobs.planner import SEED_MAX, requested_count
from seqdream.services import Services

router = APIRouter(prefix="/api/v3")
PRESETS = {"1K": 1024, "2K": 2048, "4K": 4096}
MAX_PIXELS = MAX_SIDE * MAX_SIDE
ARK_TOTAL_IMAGES = 15  # references + generated images

_ERROR_CODES = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    402: ("AccountOverdueError", "Forbidden"),
    404: ("NotFound", "NotFound"),
    409: ("IdempotencyConflict", "Conflict"),
    413: ("InvalidParameter", "BadRequest"),
    415: ("InvalidParameter", "BadRequest"),
    429: ("RateLimitExceeded", "TooManyRequests"),
    503: ("ServiceUnavailable", "ServiceUnavailable"),
    504: ("Timeout", "Timeout"),
}


@error_format("/api/v3/images/")
def ark_error(status: int, message: str) -> JSONResponse:
    code, kind = _ERROR_CODES.get(status, ("InternalServiceError", "InternalServerError"))
    return JSONLine({"error": {"code": code, "message": message, "param": "", "type": kind}}, status_code=status)


class SequentialOptions(BaseModel):
    max_images: StrictInt = Field(ARK_TOTAL_IMAGES, ge=1, le=ARK_TOTAL_IMAGES)


class ArkImageRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr = Field(..., min_length=1, max_length=MAX_MODEL_NAME_CHARS)
    prompt: Prompt
    image: StrictStr | list[StrictStr] | None = None
    size: StrictStr = "2048x2048"
    seed: StrictInt = Field(-1, ge=-1, le=SEED_MAX)
    sequential_image_generation: Literal["auto", "disabled"] = "disabled"
    sequential_image_generation_options: SequentialOptions | None = None
    response_format: Literal["url", "b64_json"] = "url"
    watermark: StrictBool = True  # Ark's default
    stream: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        # Ark's SDK sends every parameter it was not given as null.
        return {key: value for key, value in data.items() if value is not None} if isinstance(data, dict) else data


# What a 400 of the Ark route quotes for each field.
FIELD_RULES = field_rules(
    ArkImageRequest,
    by_validator={
        "size": (
            f'"1K", "2K", "4K" or "WIDTHxHEIGHT" (at most {MAX_SIDE}x{MAX_SIDE} pixels in all, aspect ratio 1/16 to 16)'
        )
    },
    notes={
        "model": 'e.g. "seedream-4-0-250828"',
        "image": f"at most {MAX_REFERENCES}: http(s) URLs or base64 data URIs",
        "sequential_image_generation_options": (
            f"references plus images at most {ARK_TOTAL_IMAGES}, at most {MAX_IMAGES_OUT} images"
        ),
    },
)


def _family(model: str) -> tuple[str, int]:
    """The Seedream family a model name asks for, and its smallest size in pixels."""
    if "4-5" in model or "4.5" in model:
        return "bytedance/seedream-v4.5", V45_MIN_PIXELS
    return "bytedance/seedream-v4", 1280 * 720


def to_submission(body: ArkImageRequest) -> Submission:
    family, min_pixels = _family(body.model)
    images = [body.image] if isinstance(body.image, str) else list(body.image or [])
    if len(images) > MAX_REFERENCES:
        raise APIError(400, f"image: at most {MAX_REFERENCES} reference images, got {len(images)}")
    if body.size.strip().upper() in PRESETS:
        side = PRESETS[body.size.strip().upper()]
        width = height = side
    else:
        width, height = parse_wxh(body.size)
    pixels = width * height
    if not min_pixels <= pixels <= MAX_PIXELS:
        allowed = f"{body.model} allows {min_pixels} to {MAX_PIXELS}"
        raise APIError(400, f"size: {width}x{height} is {pixels} pixels; {allowed}")
    if not 1 / 16 <= width / max(height, 1) <= 16:
        raise APIError(400, f"size: the aspect ratio of {width}x{height} is outside 1/16 to 16")
    count = 1
    if body.sequential_image_generation == "auto":  # as many as the prompt asks for, within the cap
        options = body.sequential_image_generation_options or SequentialOptions()
        cap = min(options.max_images, ARK_TOTAL_IMAGES - len(images), MAX_IMAGES_OUT)
        if cap < 1:
            raise APIError(400, f"image: {len(images)} references leave no room for an output (at most 15 in all)")
        count = min(requested_count(body.prompt) or 1, cap)
    return Submission(
        model=model_id(family, bool(images), count),
        prompt=body.prompt,
        width=width,
        height=height,
        max_images=count,
        images=images,
        seed=body.seed,
        watermark=body.watermark,
    )


def _usage(width: int, height: int, generated: int) -> dict[str, int]:
    tokens = generated * (width * height // 256)  # Ark counts an image as its pixels / 256
    return {"generated_images": generated, "output_tokens": tokens, "total_tokens": tokens}


def _nsfw_error() -> dict[str, str]:
    return {"code": "OutputImageSensitiveContentDetected", "message": "the image was flagged by the safety check"}


@router.post("/images/generations", tags=["ark"], summary="Ark: generate images (Seedream 4.0 / 4.5)")
async def generate(
    body: ArkImageRequest,
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
) -> Any:
    task = to_submission(body)
    job = await run_in_threadpool(submit, services, request, caller, task)
    if body.stream:
        return StreamingResponse(_events(request, services, job, body, task), media_type="text/event-stream")
    job = await run_to_end(request, services, job)
    if job.status == JobStatus.FAILED.value:
        raise APIError(400 if input_error(job) else 500, job.error)
    if job.status == JobStatus.DELETED.value:
        raise APIError(404, f"task {job.id} was deleted")
    data: list[dict[str, Any]] = []
    for key, flagged in zip(job.outputs, job.has_nsfw_contents, strict=False):
        if flagged:
            data.append({"error": _nsfw_error()})
        else:
            item = await run_in_threadpool(image_item, services, request, key, body.response_format)
            data.append(item | {"size": task.size})
    created = int(job.created_at.timestamp())
    generated = sum(1 for item in data if "error" not in item)
    return {
        "model": body.model,
        "created": created,
        "created_at": created,
        "data": data,
        "usage": _usage(task.width, task.height, generated),
    }


async def _events(
    request: Request, services: Services, job: Job, body: ArkImageRequest, task: Submission
) -> AsyncIterator[str]:
    """`image_generation.partial_succeeded`/`partial_failed` per image as it is stored, then `completed`."""
    sent = 0
    generated = 0
    created = int(job.created_at.timestamp())
    common = {"model": body.model, "created": created, "created_at": created}
    events = running(request.app).job_events
    async for state in follow(services, events, job.id, services.settings.sync_timeout_s):
        job = state
        for index in range(sent, len(job.outputs)):
            if job.has_nsfw_contents[index]:
                yield sse("image_generation.partial_failed", {
                    "type": "image_generation.partial_failed", **common, "image_index": index, "error": _nsfw_error(),
                })  # fmt: skip
                continue
            item = await run_in_threadpool(image_item, services, request, job.outputs[index], body.response_format)
            generated += 1
            yield sse("image_generation.partial_succeeded", {
                "type": "image_generation.partial_succeeded", **common, "image_index": index,
                "size": task.size, **item,
            })  # fmt: skip
        sent = len(job.outputs)
    if job.status != JobStatus.COMPLETED.value:
        message = (
            job.error or f"the task is {job.status}; it did not finish within {services.settings.sync_timeout_s:g}s"
        )
        code = "InvalidParameter" if input_error(job) else "InternalServiceError"
        yield sse("image_generation.partial_failed", {
            "type": "image_generation.partial_failed", **common, "image_index": sent,
            "error": {"code": code, "message": message},
        })  # fmt: skip
    yield sse("image_generation.completed", {
        "type": "image_generation.completed", **common, "usage": _usage(task.width, task.height, generated),
    })  # fmt: skip
    yield "data: [DONE]\n\n"
