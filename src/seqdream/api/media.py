"""Uploads the way the SDK does them, legacy multipart uploads, and file downloads."""

from __future__ import annotations

import mimetypes
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.concurrency import run_in_threadpool

from seqdream.api.deps import CallerDep, ServicesDep, base_url
from seqdream.api.envelope import APIError, storage_unavailable, success
from seqdream.api.field_rules import field_rules
from seqdream.api.forms import one_file, one_file_form
from seqdream.db import Upload
from seqdream.images.decode import (
    DECLARED_TYPES,
    MIME_TYPES,
    ImageInputError,
    open_image,
    reference_limits,
    sniff_format,
)
from seqdream.locations import output_key_from_url_parts, upload_put_url, upload_url
from seqdream.services import Services
from seqdream.storage import BlobNotFound

router = APIRouter(prefix="/api/v3/media", tags=["media"])

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    cleaned = _UNSAFE.sub("_", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip("._")
    return (cleaned or "upload")[:120]


class UploadTicketRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filename: StrictStr = Field(min_length=1, max_length=255)
    size: StrictInt = Field(ge=1)
    content_type: StrictStr | None = None


FIELD_RULES = field_rules(
    UploadTicketRequest,
    by_validator={"content_type": "one of " + ", ".join(MIME_TYPES.values())},
    notes={"size": "the file's size in bytes"},
)


def _download_url(base: str, upload: Upload) -> str:
    return upload_url(base, upload.id, upload.filename)


def _check_image(services: Services, data: bytes, declared: int | None = None) -> str:
    """The upload's format, once it is known that a task can use it (else a 4xx now, not a failed task later)."""
    settings = services.settings
    limit = settings.max_upload_bytes
    if len(data) > limit:
        raise APIError(413, f"file: {len(data)} bytes is over the upload limit of {limit} bytes")
    if declared is not None and len(data) != declared:
        raise APIError(400, f"file: received {len(data)} bytes but the upload declared size {declared}")
    fmt = sniff_format(data)
    if fmt is None:
        raise APIError(415, "file: is not an image in an accepted format (JPEG, PNG, WebP, GIF, BMP)")
    try:  # decoded in full once: the limits a task applies, and no damaged file
        open_image(data, **reference_limits(settings)).close()
    except ImageInputError as exc:
        raise APIError(400, f"file: {exc}") from exc
    return fmt


def _store(services: Services, upload: Upload, data: bytes) -> None:
    try:
        services.uploads.complete(upload, data)
    except OSError as exc:
        raise storage_unavailable(exc, "the file") from exc


@router.post("/uploads", summary="Start an upload: returns a PUT URL and the final download URL")
async def create_upload(
    body: UploadTicketRequest,
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
) -> dict[str, Any]:
    limit = services.settings.max_upload_bytes
    if body.size > limit:
        raise APIError(413, f"size: {body.size} bytes is over the upload limit of {limit} bytes")
    declared = body.content_type or mimetypes.guess_type(body.filename)[0] or "application/octet-stream"
    fmt = DECLARED_TYPES.get(declared.split(";", 1)[0].strip().lower())
    if fmt is None:
        allowed = ", ".join(MIME_TYPES.values())
        raise APIError(415, f"content_type: {declared[:100]!r} is not an accepted image type ({allowed})")
    content_type = MIME_TYPES[fmt]
    upload, token = await run_in_threadpool(
        services.uploads.open, safe_filename(body.filename), content_type, body.size, caller.key_id
    )
    base = base_url(request)
    return success(
        {
            "download_url": _download_url(base, upload),
            "filename": upload.filename,
            "upload": {
                "method": "PUT",
                "url": upload_put_url(base, upload.id, token),
                "headers": {"Content-Type": content_type},
            },
        }
    )


@router.put("/uploads/{upload_id}", summary="Send the bytes of an upload (URL from POST /uploads)")
async def put_upload(upload_id: str, token: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    upload = await run_in_threadpool(services.uploads.get, upload_id)
    if upload is None or not services.uploads.token_matches(upload, token):
        raise APIError(403, "upload URL is invalid or expired")
    if upload.ready:
        raise APIError(409, "this upload has already been completed")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > upload.size:
            raise APIError(400, f"file: more bytes than the declared size {upload.size}")
    data = bytes(body)
    await run_in_threadpool(_check_image, services, data, upload.size)
    await run_in_threadpool(_store, services, upload, data)
    return success({"download_url": _download_url(base_url(request), upload), "size": len(data)})


_BINARY_FORM = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": one_file_form("the image: " + ", ".join(MIME_TYPES))}},
    }
}


@router.post("/upload/binary", summary="Legacy multipart upload (form field `file`)", openapi_extra=_BINARY_FORM)
async def upload_binary(
    request: Request,
    caller: CallerDep,
    services: ServicesDep,
) -> dict[str, Any]:
    file = await one_file(request)
    data = await file.read(services.settings.max_upload_bytes + 1)
    fmt = await run_in_threadpool(_check_image, services, data)
    content_type = MIME_TYPES[fmt]
    name = safe_filename(file.filename or f"upload.{fmt.lower()}")
    upload, _token = await run_in_threadpool(services.uploads.open, name, content_type, len(data), caller.key_id)
    await run_in_threadpool(_store, services, upload, data)
    return success(
        {
            "type": "image",
            "download_url": _download_url(base_url(request), upload),
            "filename": upload.filename,
            "size": len(data),
        }
    )


@router.get("/files/{upload_id}/{filename}", summary="Download an uploaded file")
async def get_file(upload_id: str, filename: str, services: ServicesDep) -> Response:
    found = await run_in_threadpool(services.uploads.read, upload_id, filename)
    if found is None:
        raise APIError(404, "file not found (it may have expired)")
    _upload, data = found
    # The type comes from the stored bytes (checked at upload), never from what a client declared.
    fmt = sniff_format(data)
    return Response(data, media_type=MIME_TYPES[fmt] if fmt else "application/octet-stream")


@router.get("/outputs/{job_id}/{name}", summary="Download a generated image")
async def get_output(job_id: str, name: str, services: ServicesDep) -> Response:
    key = output_key_from_url_parts(job_id, name)
    if key is None:
        raise APIError(404, "output not found")
    try:
        data = await run_in_threadpool(services.blobs.get, key)
    except BlobNotFound:
        raise APIError(404, "output not found (it may have expired)") from None
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=86400"})
