"""`POST /api/v3/provenance/verify`: whether an image carries this service's marks."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from seqdream.api.deps import CallerDep, ServicesDep, own_bases
from seqdream.api.envelope import APIError, success, unreadable_body
from seqdream.api.forms import is_multipart, one_file, one_file_form
from seqdream.api.intake import check_remote_url, not_an_image, own_image, own_path, refuse_other_schemes
from seqdream.api.schemas import MAX_URL_CHARS
from seqdream.images.decode import ImageInputError, decode_base64_image, looks_like_url
from seqdream.images.fetch import fetch_image_bytes
from seqdream.provenance.verify import TrustAnchorsError, UnreadableImage, trust_anchors, verify
from seqdream.services import Services
from seqdream.storage import BlobNotFound

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v3/provenance", tags=["provenance"])

_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {"image": {"type": "string", "description": "an http(s) URL, a data URI or base64"}},
                }
            },
            "multipart/form-data": {"schema": one_file_form("the image to check")},
        },
    }
}


def _stored(services: Services, request: Request, url: str) -> bytes | None:
    """One of this service's own images (an output, an upload, an example file), read as a submit reads
    it: from storage, not fetched."""
    path = own_path(url, own_bases(request)) if len(url) <= MAX_URL_CHARS else None
    own = own_image(path, "image", services) if path is not None else None
    if own is None or own.key is None:  # not ours, or an example file (its bytes are in hand)
        return None if own is None else own.data
    try:
        return services.blobs.get(own.key)
    except BlobNotFound:
        raise APIError(400, "image: no longer stored (it may have expired)") from None


def _image_bytes(services: Services, request: Request, value: str) -> bytes:
    value = value.strip()
    if looks_like_url(value):
        own = _stored(services, request, value)
        if own is not None:
            return own
        try:
            return fetch_image_bytes(check_remote_url(value, "image", services), services.fetch_policy)
        except ImageInputError as exc:
            raise APIError(400, f"image: {exc}") from exc
    refuse_other_schemes(value, "image")
    try:
        return decode_base64_image(value)
    except ImageInputError as exc:
        raise not_an_image(value, "image", exc) from exc


@router.post("/verify", summary="Check an image for this service's C2PA manifest and watermark", openapi_extra=_FORM)
async def verify_image(request: Request, caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    settings = services.settings
    if is_multipart(request):
        upload = await one_file(request, "file", "image")
        data = await upload.read(settings.max_image_bytes + 1)
    else:
        try:
            body = await request.json()
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            hint = "; send JSON {\"image\": URL or base64} or a multipart file named 'file'"
            raise APIError(400, unreadable_body(exc) + hint) from None
        if not isinstance(body, dict) or not isinstance(body.get("image"), str):
            raise APIError(400, 'image: required, a URL, a data URI or base64 (JSON {"image": ...})')
        data = await run_in_threadpool(_image_bytes, services, request, body["image"])
    if len(data) > settings.max_image_bytes:
        raise APIError(413, f"image: larger than {settings.max_image_bytes} bytes")
    try:  # read per request, so anchors can be replaced without a restart (serve checks them at start)
        anchors = await run_in_threadpool(trust_anchors, settings.c2pa_trust_anchors, settings.data_dir)
    except TrustAnchorsError as exc:
        log.error("%s", exc)
        raise APIError(503, "verification is unavailable: this server's trust anchors cannot be used") from exc
    try:
        report = await run_in_threadpool(
            lambda: verify(
                data,
                trust_anchors=anchors,
                service_id=settings.provenance_service_id,
                max_bytes=settings.max_image_bytes,
                max_pixels=settings.max_image_pixels,
            )
        )
    except UnreadableImage as exc:
        raise APIError(400, f"image: {exc}") from exc
    answer = report.as_dict()
    tag = report.watermark.tag if report.watermark.ours else None
    answer["watermark"]["tasks"] = (
        [] if tag is None else await run_in_threadpool(services.jobs.with_content_tag, tag, caller.key_id)
    )  # the caller's own tasks that made such an image: found even when the manifest was stripped
    return success(answer)
