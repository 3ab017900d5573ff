"""Submit-time handling of `images`: validate inline data, resolve our own upload URLs."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from seqdream.api.envelope import APIError
from seqdream.db import Upload
from seqdream.images.decode import ImageInputError, decode_base64_image, looks_like_url, open_image
from seqdream.runtime import Runtime

MAX_URL_CHARS = 4096
_OWN_FILE = re.compile(r"^/api/v3/media/files/(?P<id>[0-9a-f]{32})/[^/]+$")


def own_upload_id(url: str, base: str) -> str | None:
    """The upload id if `url` is a download URL this service handed out, else None."""
    parts, ours = urlsplit(url), urlsplit(base)
    if (parts.scheme, parts.netloc) != (ours.scheme, ours.netloc):
        return None
    path = parts.path
    if ours.path and path.startswith(ours.path.rstrip("/")):
        path = path[len(ours.path.rstrip("/")) :]
    match = _OWN_FILE.match(path)
    return match.group("id") if match else None


def accept_images(images: list[str], job_id: str, runtime: Runtime, base: str) -> list[dict[str, Any]]:
    """Turn the request's strings into stored references: {"blob": key} or {"url": url}."""
    settings = runtime.settings
    sources: list[dict[str, Any]] = []
    for index, value in enumerate(images):
        label = f"images[{index}]"
        value = value.strip()
        if looks_like_url(value):
            if len(value) > MAX_URL_CHARS:
                raise APIError(400, f"{label}: the URL is longer than {MAX_URL_CHARS} characters")
            if not urlsplit(value).hostname:
                raise APIError(400, f"{label}: {value!r} is not a valid URL")
            upload_id = own_upload_id(value, base)
            if upload_id is None:
                sources.append({"url": value})
                continue
            with runtime.db.session() as session:
                upload = session.scalar(select(Upload).where(Upload.id == upload_id))
            if upload is None or not upload.ready:
                raise APIError(400, f"{label}: no completed upload with id {upload_id}")
            sources.append({"blob": upload.blob_key})
            continue
        if value.startswith(("ftp://", "file://", "gopher://")) or "://" in value[:16]:
            raise APIError(400, f"{label}: only http(s) URLs, data: URIs and base64 are accepted")
        try:
            data = decode_base64_image(value)
            image = open_image(data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
        except ImageInputError as exc:
            raise APIError(400, f"{label} {exc}") from exc
        key = f"inputs/{job_id}/{index}.{(image.format or 'bin').lower()}"
        try:
            runtime.blobs.put(key, data)
        except OSError as exc:
            raise APIError(503, f"could not store {label} ({exc.strerror or exc}); nothing was queued") from exc
        sources.append({"blob": key})
    return sources
