"""One reading of untrusted image bytes: open_image, check_header and sniff_format agree on what is
no image, and every way Pillow can fail is an ImageInputError (a 4xx), never another exception."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from seqdream.images.decode import ImageInputError, check_header, open_image, sniff_format
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


def test_an_image_in_an_accepted_format_reads_the_same_everywhere() -> None:
    data = png_bytes((64, 48))
    check_header(data, **LIMITS)
    assert sniff_format(data) == "PNG" and open_image(data, **LIMITS).size == (64, 48)
