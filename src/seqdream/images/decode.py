"""Turn untrusted bytes or strings into validated Pillow images."""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TypedDict

from PIL import Image, UnidentifiedImageError

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP"}
# A reference's longer side at most this many times its shorter one: what FLUX.2's image processor
# takes (a 60000x1 reference was accepted, then failed its task in the model call).
REFERENCE_MAX_ASPECT = 8
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w=.+-]+)*);base64,(?P<data>.*)$", re.S)
_BASE64_CHARS = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


class ReferenceLimits(TypedDict):
    max_bytes: int
    max_pixels: int
    max_aspect: float | None


class _ImageSettings(Protocol):
    max_image_bytes: int
    max_image_pixels: int


def reference_limits(settings: _ImageSettings) -> ReferenceLimits:
    """What a reference image is held to wherever it arrives (inline, uploaded, stored, fetched, on
    the command line), as `open_image` and `check_header` take it."""
    return ReferenceLimits(
        max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels, max_aspect=REFERENCE_MAX_ASPECT
    )


class ImageInputError(ValueError):
    """An image the service cannot use; the message is safe to show to the caller."""


def looks_like_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def decode_base64_image(value: str) -> bytes:
    """Bytes of a `data:` URI or a naked base64 string."""
    match = _DATA_URI.match(value)
    payload = match.group("data") if match else value
    payload = re.sub(r"\s+", "", payload)
    if not payload or not _BASE64_CHARS.match(payload):
        raise ImageInputError("is neither an http(s) URL, a data: URI nor base64-encoded image data")
    payload += "=" * (-len(payload) % 4)
    try:
        if "-" in payload or "_" in payload:
            return base64.urlsafe_b64decode(payload)
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageInputError(f"is not valid base64 ({exc})") from exc


_ACCEPTED = ", ".join(sorted(ACCEPTED_FORMATS))


@contextmanager
def _pillow(max_pixels: int | None = None) -> Iterator[None]:
    """Pillow at work on untrusted bytes: each way it can fail becomes an ImageInputError with a message
    safe to show (a bomb, an unknown format, a damaged file: a bad header, a chunk that inflates past
    Pillow's limits, a truncated stream). Pillow's warning of a possible bomb is not heeded: the
    callers check the pixels against the service's own limit before anything is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except ImageInputError:
        raise
    except Image.DecompressionBombError as exc:
        pixels = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's message names the header's pixels
        claims = f"its header claims {pixels[1]} pixels" if pixels else str(exc)
        limit = f"; the limit is {max_pixels} pixels in all" if max_pixels else ""
        raise ImageInputError(f"was refused as a decompression bomb ({claims}){limit}") from exc
    except UnidentifiedImageError as exc:
        raise ImageInputError(f"could not be decoded as an image (accepted formats: {_ACCEPTED})") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageInputError(f"could not be decoded as an image: the file is damaged ({exc})") from exc


def _check_shape(size: tuple[int, int], max_pixels: int, max_aspect: float | None) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageInputError(f"is {width}x{height} pixels; the limit is {max_pixels} pixels in all")
    if max_aspect is not None and max(width, height) > max_aspect * min(width, height):
        raise ImageInputError(
            f"is {width}x{height} pixels; a reference's longer side may be at most {max_aspect:g} times its shorter one"
        )


def open_image(data: bytes, *, max_bytes: int, max_pixels: int, max_aspect: float | None = None) -> Image.Image:
    """Decode image bytes, refusing other formats, oversize files, decompression bombs and (with
    `max_aspect`, for references) shapes longer than that many times their width."""
    if len(data) > max_bytes:
        raise ImageInputError(f"is {len(data)} bytes; the limit is {max_bytes} bytes")
    with _pillow(max_pixels):
        image = Image.open(io.BytesIO(data))
        fmt = image.format
        if fmt not in ACCEPTED_FORMATS:
            raise ImageInputError(f"has format {fmt}; accepted formats are {_ACCEPTED}")
        _check_shape(image.size, max_pixels, max_aspect)
        image.load()
    if image.mode != "RGB":
        converted = image.convert("RGBA") if image.mode in ("P", "LA", "PA") else image
        converted = converted.convert("RGB")
        converted.format = fmt
        return converted
    return image


MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp"}
# What clients may declare for an upload: the accepted formats' types and their common aliases.
DECLARED_TYPES = {**{mime: fmt for fmt, mime in MIME_TYPES.items()}, "image/jpg": "JPEG", "image/x-ms-bmp": "BMP"}


def check_header(data: bytes, *, max_bytes: int, max_pixels: int, max_aspect: float | None = None) -> None:
    """The size and shape limits of `open_image`, read from the header alone (no pixel is decoded)."""
    if len(data) > max_bytes:
        raise ImageInputError(f"is {len(data)} bytes; the limit is {max_bytes} bytes")
    with _pillow(max_pixels), Image.open(io.BytesIO(data)) as image:
        size = image.size
    _check_shape(size, max_pixels, max_aspect)


def sniff_format(data: bytes) -> str | None:
    """The image format of `data`, or None; reads headers only."""
    try:
        with _pillow(), Image.open(io.BytesIO(data)) as image:
            return image.format if image.format in ACCEPTED_FORMATS else None
    except ImageInputError:
        return None
