"""The invisible watermark: read back after JPEG at quality 75 and a 50 % downscale, at the sizes the
service makes, on flat white and black backgrounds too; never read from unmarked images."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from imwatermark.dwtDctSvd import EmbedDwtDctSvd
from PIL import Image, ImageDraw

from seqdream.provenance.watermark import BITS, STEP, Payload, embed, grid_factor, read, read_bits


def scene(seed: int, size: tuple[int, int], background: tuple[int, int, int] | None = None) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", size, background or tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        box = [x, y, x + rng.randrange(size[0] // 2) + 5, y + rng.randrange(size[1] // 2) + 5]
        draw.ellipse(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    return image


def jpeg(image: Image.Image, quality: int = 75) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC)


@pytest.mark.parametrize(
    ("size", "background"),
    [((1024, 1024), None), ((2048, 2048), None), ((1536, 1024), None), ((1024, 1024), (255, 255, 255)),
     ((2048, 1152), (0, 0, 0)), ((1024, 1280), (240, 200, 40))],
)  # fmt: skip
def test_the_payload_survives_jpeg_75_and_half_size(size: tuple[int, int], background: tuple | None) -> None:
    payload = Payload(service=0x5EED, task=random.Random(size[0]).randrange(1 << 24))
    original = scene(size[1], size, background)
    marked = embed(original, payload)
    difference = np.abs(np.asarray(marked, np.int16) - np.asarray(original, np.int16))
    assert difference.mean() < 3 and difference.max() <= 40  # invisible: a few levels, chroma mostly
    assert read(marked) == payload
    assert read(jpeg(marked)) == payload
    assert read(half(marked)) == payload
    assert read(half(jpeg(marked))) == payload  # the case: re-compressed, then halved
    assert read(original) is None


def library_bits(grid: np.ndarray) -> list[int]:
    decoder = EmbedDwtDctSvd(watermarks=[], wmLen=BITS, scales=[0, STEP, 0], block=4)
    return list(np.asarray(decoder.decode(grid[..., ::-1].copy()), np.uint8))


def test_the_library_decodes_what_we_embed_and_reads_as_we_do() -> None:
    """The marks are invisible-watermark's dwtDctSvd: its own decoder reads them on the grid, and
    our vectorised reader agrees with it bit for bit."""
    payload = Payload(service=7, task=12345)
    for seed, size in ((3, 1024), (4, 2048)):
        marked = np.asarray(embed(scene(seed, (size, size)), payload))
        k = grid_factor(size, size)
        grid = marked.reshape(size // k, k, size // k, k, 3).mean(axis=(1, 3)).round().astype(np.uint8)
        assert library_bits(grid) == list(payload.bits())
        assert list(read_bits(grid)) == list(payload.bits())
        unmarked = np.asarray(scene(seed, (512, 512)))
        agree = sum(a == b for a, b in zip(library_bits(unmarked), read_bits(unmarked), strict=True))
        assert agree >= BITS - 2  # noise: a tied vote may fall either way


def test_unmarked_pictures_never_read_as_marked() -> None:
    rng = np.random.default_rng(5)
    for seed in range(12):
        assert read(scene(seed, (1024, 768))) is None
        noise = Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
        assert read(noise) is None


def test_the_check_bits_refuse_a_changed_payload() -> None:
    bits = Payload(service=1, task=2).bits()
    assert Payload.of(bits) == Payload(service=1, task=2)
    for index in (0, 20, 63):
        flipped = bits.copy()
        flipped[index] ^= 1
        assert Payload.of(flipped) is None
