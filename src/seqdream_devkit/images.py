"""Small image helpers for tests and benchmarks."""

from __future__ import annotations

import io

from PIL import Image


def png_bytes(size: tuple[int, int] = (96, 80), color: str = "red", fmt: str = "PNG") -> bytes:
    """A plain image, encoded."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    """Decode fully (a truncated file fails here, not later)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
