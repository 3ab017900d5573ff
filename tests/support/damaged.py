"""Image files damaged in the ways Pillow can fail on: shared by the decoding and the routes' tests."""

from __future__ import annotations

import struct
import zlib

from seqdream_devkit.images import png_bytes


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_chunk(kind: bytes, data: bytes) -> bytes:
    """A small valid PNG with one more chunk before its pixels."""
    plain = png_bytes((8, 8))
    at = plain.index(b"IDAT") - 4
    return plain[:at] + _chunk(kind, data) + plain[at:]


INFLATING = zlib.compress(b"\0" * 8_000_000, 1)  # 35 KB that inflate to 8 MB (Pillow stops text at 1 MB)
BAD = {
    "zTXt that inflates past Pillow's limit": png_with_chunk(b"zTXt", b"k\0\0" + INFLATING),
    "iCCP that inflates past Pillow's limit": png_with_chunk(b"iCCP", b"icc\0\0" + INFLATING),
    "PNG cut in its header": png_bytes()[:30],
    "PNG cut in its pixels": png_bytes((200, 200))[:-40],
    "GIF header only": b"GIF89a" + b"\xff" * 7,
    "BMP with a negative size": b"BM" + b"\0" * 16 + struct.pack("<ii", -5, -5) + b"\0" * 40,
    "random bytes": bytes(range(256)) * 8,
    "empty": b"",
}
