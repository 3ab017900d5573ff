"""An output image as the bytes of its file format."""

from __future__ import annotations

import base64
import io

from PIL import Image


def encode_image(image: Image.Image, fmt: str, quality: int) -> bytes:
    """`fmt`: jpeg, png or webp; `quality` applies to the lossy two."""
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt in ("jpeg", "webp") else {}
    image.convert("RGB").save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()


def data_uri(image: Image.Image | None) -> str | None:
    """A small picture as a `data:image/png;base64,...` URI (previews), or None."""
    if image is None:
        return None
    return "data:image/png;base64," + base64.b64encode(encode_image(image, "png", 0)).decode()
