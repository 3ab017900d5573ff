"""OpenAI's images API: `POST /v1/images/generations` and `/v1/images/edits` (multipart).

The `openai` client works with `base_url="<seqdream>/v1"` and a seqdream key. `n` images are one
Seedream group (mutually consistent), not n independent samples."""

from __future__ import annotations

import base64
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from seqdream.api.deps import Caller, CallerDep, ServicesDep
from seqdream.api.dialects import Submission, image_item, input_error, model_id, parse_wxh, run_to_end, submit
from seqdream.api.envelope import APIError, JSONLine, error_format
from seqdream.api.field_rules import field_rules
from seqdream.api.schemas import MAX_IMAGES_OUT, MAX_MODEL_NAME_CHARS, MAX_REFERENCES, Prompt
from seqdream.db import JobStatus
from seqdream.numbers import ascii_int, side_outside
from seqdream.services import Services

router = APIRouter(prefix="/v1")
MIN_SIDE, MAX_SIDE = 256, 4096
DEFAULT_SIZE = "1024x1024"  # also what "auto" means

_ERROR_TYPES = {
    401: "authentication_error",
    402: "insufficient_quota",
    404: "not_found_error",
    409: "idempotency_error",
    429: "rate_limit_error",
}


@error_format("/v1/")
def openai_error(status: int, message: str) -> JSONResponse:
    kind = _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return JSONLine({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status)


class OpenAIImageRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # quality, style, user ... are accepted and ignored

    prompt: Prompt
    model: StrictStr | None = Field(None, max_length=MAX_MODEL_NAME_CHARS)
    n: StrictInt = Field(1, ge=1, le=MAX_IMAGES_OUT)
    size: StrictStr | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png", "jpeg", "webp"] = "png"  # OpenAI's default; clients assume PNG
    output_compression: StrictInt | None = Field(None, ge=0, le=100)

    def dimensions(self) -> tuple[int, int]:
        if self.size in (None, "auto"):
            return parse_wxh(DEFAULT_SIZE)
        width, height = parse_wxh(self.size)
        if outside := side_outside(width, height, MIN_SIDE, MAX_SIDE):
            raise APIError(400, f"size: {outside}")
        return width, height


# What a 400 of the OpenAI routes quotes for each field (`image` is the edits form's files).
FIELD_RULES = field_rules(
    OpenAIImageRequest,
    by_validator={"size": f'"auto" or "WIDTHxHEIGHT" with each side {MIN_SIDE} to {MAX_SIDE}, e.g. "1024x1024"'},
    notes={
        "n": "one consistent group",
        "output_format": "png by default",
        "output_compression": "JPEG and WebP quality",
        "image": f"1 to {MAX_REFERENCES} image files",
        "model": "any: the service runs its loaded model",
    },
)


async def _respond(
    request: Request, services: Services, caller: Caller, body: OpenAIImageRequest, images: list[str]
) -> dict[str, Any]:
    width, height = body.dimensions()
    task = Submission(
        model=model_id("bytedance/seedream-v4", bool(images), body.n),
        prompt=body.prompt,
        width=width,
        height=height,
        max_images=body.n,
        images=images,
        output_format=body.output_format,
        output_quality=body.output_compression,
    )
    job = await run_in_threadpool(submit, services, request, caller, task)
    job = await run_to_end(request, services, job)
    if job.status == JobStatus.DELETED.value:
        raise APIError(404, f"task {job.id} was deleted")
    if job.status == JobStatus.FAILED.value:
        raise APIError(400 if input_error(job) else 500, job.error)
    response_format = body.response_format or "url"
    data = [
        await run_in_threadpool(image_item, services, request, key, response_format)
        for key, flagged in zip(job.outputs, job.has_nsfw_contents, strict=False)
        if not flagged  # OpenAI returns no image it would not show
    ]
    if not data:
        raise APIError(400, "every generated image was flagged by the safety check")
    return {"created": int(time.time()), "data": data}


@router.post("/images/generations", tags=["openai"], summary="OpenAI: create images from a prompt")
async def generations(
    body: OpenAIImageRequest,
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
) -> dict[str, Any]:
    return await _respond(request, services, caller, body, [])


_EDIT_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image", "prompt"],
                    "properties": {
                        "image": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "prompt": {"type": "string"},
                        "n": {"type": "integer", "minimum": 1, "maximum": MAX_IMAGES_OUT},
                        "size": {"type": "string", "example": "1024x1024"},
                        "response_format": {"type": "string", "enum": ["url", "b64_json"]},
                        "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"]},
                        "output_compression": {"type": "integer", "minimum": 0, "maximum": 100},
                        "model": {"type": "string"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/images/edits",
    tags=["openai"],
    summary="OpenAI: edit images (multipart: image or image[])",
    openapi_extra=_EDIT_FORM,
)
async def edits(
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
) -> dict[str, Any]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise APIError(415, "send the edit as multipart/form-data with image files and a prompt")
    # Text parts as large as a body may be: an over-long prompt is then refused naming its field.
    form = await request.form(
        max_files=MAX_REFERENCES + 2, max_fields=64, max_part_size=services.settings.max_request_bytes
    )
    if form.get("mask") is not None:
        raise APIError(400, "mask: masks are not supported; describe the edit in the prompt")
    files = [item for name in ("image", "image[]") for item in form.getlist(name)]
    if not files:
        raise APIError(400, "image: at least one image file is required")
    if len(files) > MAX_REFERENCES:
        raise APIError(400, f"image: at most {MAX_REFERENCES} images, got {len(files)}")
    images = []
    for item in files:
        if not isinstance(item, UploadFile):
            raise APIError(400, "image: must be sent as files, not text fields")
        images.append(base64.b64encode(await item.read()).decode("ascii"))
    texts = ("prompt", "model", "size", "response_format", "output_format")
    fields: dict[str, Any] = {name: form.get(name) for name in texts}
    fields = {name: value for name, value in fields.items() if value is not None}
    for name in ("n", "output_compression"):  # integers arrive as text in a form
        value = form.get(name)
        if value is not None:
            number = ascii_int(value) if isinstance(value, str) else None
            if number is None:
                raise APIError(400, f"{name}: {FIELD_RULES[name]}")
            fields[name] = number
    try:
        body = OpenAIImageRequest.model_validate(fields)
    except ValidationError as exc:  # described and shaped like any other body's validation error
        raise RequestValidationError(exc.errors()) from exc
    return await _respond(request, services, caller, body, images)
