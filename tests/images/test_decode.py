"""One reading of untrusted image bytes: open_image, check_header and sniff_format agree on what is
no image, and every way Pillow can fail is an ImageInputError (a 4xx), never another exception."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from seqdream.config import Settings
from seqdream.images.decode import (
    REFERENCE_MAX_ASPECT,
    ImageInputError,
    check_header,
    open_image,
    reference_limits,
    sniff_format,
)
from seqdream.images.fetch import FetchPolicy
from seqdream.jobs.references import load_references
from seqdream.jobs.request import Reference
from seqdream.storage import LocalBlobStore
from seqdream_devkit.images import png_bytes
from support.damaged import BAD

LIMITS = {"max_bytes": 30 * 1024 * 1024, "max_pixels": 6000 * 6000}


@pytest.mark.parametrize("data", BAD.values(), ids=BAD.keys())
def test_bytes_that_are_no_usable_image_are_an_image_input_error_on_every_reading(data: bytes) -> None:
    with pytest.raises(ImageInputError):
        open_image(data, **LIMITS)
    # The header-only readings may accept what only a full decode finds damaged, but never raise another error.
    try:
        check_header(data, **LIMITS)
    except ImageInputError:
        assert sniff_format(data) is None
    else:
        assert sniff_format(data) is not None


def test_a_text_chunk_that_inflates_too_far_says_the_file_is_damaged() -> None:
    with pytest.raises(ImageInputError, match="damaged"):
        open_image(BAD["zTXt that inflates past Pillow's limit"], **LIMITS)


def test_pixels_past_the_limit_are_named_before_any_decoding() -> None:
    """12000 x 12000 is past Pillow's own bomb warning (89 M pixels): the service's limit speaks first."""
    buffer = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buffer, format="PNG")
    for read in (open_image, check_header):
        with pytest.raises(ImageInputError, match="is 12000x12000 pixels; the limit is 36000000"):
            read(buffer.getvalue(), **LIMITS)


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with no pixels after it (cheap at any size)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_a_header_past_pillows_own_limit_names_the_services_limit() -> None:
    """Past twice Pillow's MAX_IMAGE_PIXELS, Pillow refuses before the service's check: the message still
    names the service's limit, not only Pillow's (178956970 pixels, which the service never takes)."""
    data = _png_header(60000, 60000)
    for read in (open_image, check_header):
        with pytest.raises(ImageInputError, match=r"header claims 3600000000 pixels\); the limit is 36000000 pixels"):
            read(data, **LIMITS)


def test_an_image_in_an_accepted_format_reads_the_same_everywhere() -> None:
    data = png_bytes((64, 48))
    check_header(data, **LIMITS)
    assert sniff_format(data) == "PNG" and open_image(data, **LIMITS).size == (64, 48)


@pytest.mark.parametrize("size", [(8 * 64 + 1, 64), (64, 8 * 64 + 1), (60000, 1), (1, 60000)])
def test_a_reference_longer_than_eight_times_its_width_is_refused_before_decoding(size: tuple[int, int]) -> None:
    """FLUX.2's image processor takes at most 8:1; a longer reference was accepted, then failed its task."""
    data = png_bytes(size)
    for read in (open_image, check_header):
        with pytest.raises(ImageInputError, match=f"is {size[0]}x{size[1]} pixels; .* at most 8 times"):
            read(data, **LIMITS, max_aspect=REFERENCE_MAX_ASPECT)
        read(data, **LIMITS)  # an image that is no reference (verify's) may have any shape


def test_a_reference_of_exactly_eight_to_one_is_taken() -> None:
    for size in ((512, 64), (64, 512), (1, 1)):
        assert open_image(png_bytes(size), **LIMITS, max_aspect=REFERENCE_MAX_ASPECT).size == size


def test_a_stored_reference_past_the_shape_limit_fails_its_task_naming_the_image(tmp_path: Path) -> None:
    """A blob stored before the limit (or by an older version) is held to it when its task runs."""
    blobs = LocalBlobStore(tmp_path)
    blobs.put("inputs/a.png", png_bytes((64, 64)))
    blobs.put("inputs/b.png", png_bytes((1000, 100)))
    sources = [Reference(blob="inputs/a.png"), Reference(blob="inputs/b.png")]
    with pytest.raises(ImageInputError, match=r"^images\[1\] is 1000x100 pixels; .* at most 8 times"):
        load_references(sources, blobs=blobs, policy=FetchPolicy(), limits=reference_limits(Settings()))
