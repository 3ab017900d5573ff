"""An invisible watermark that survives JPEG re-compression and downscaling.

The scheme is invisible-watermark's `dwtDctSvd` (the library diffusers uses for SDXL): each 4x4
block of the Haar approximation band of the image's U (chroma) channel carries one bit in the
quantisation of its DCT's largest singular value, and a bit is the majority of its blocks. The
library's own decoder reads these marks (tests/provenance checks it does); this module embeds and
reads them vectorised, since the library's per-block Python loop costs ~100 ms an image and its
package pulls in `opencv-python`, which needs libGL on a server. On top of the scheme:

* on a grid: the marks live in the image averaged over k x k pixel cells, k chosen so that grid is
  about 512 pixels on its short side, and the change is spread back over each cell. A copy scaled
  down by 1/2, 1/3 ... lands on a grid the reader tries too, so a resized copy still reads;
* without clipping: where a block is near white or black in the channels the mark moves, the
  quantisation step is taken in the direction that has room, so flat white backgrounds carry it.

The 64-bit payload: 16 bits of the service's tag, 24 bits of the request's inputs, a 24-bit check (so an
unmarked image passes for a marked one about once in 16 million reads).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

BITS = 64
STEP = 64.0  # quantisation step of the singular value: robustness against visibility
BLOCK = 4
CELL = 2 * BLOCK  # grid pixels a block covers each way (the Haar band is half the grid's size)
GRID_SIDE = 512  # the marks' grid, as a short side
# Ways to raise U (OpenCV's YUV: U = 0.492 (B - Y) + 128) by one, as R, G, B changes: OpenCV's own inverse
# (Y kept), blue alone, red and green alone (for blocks at white, black or a saturated colour).
_U_WAYS = np.array([[0.0, -0.395, 2.032], [0.0, 0.0, 2.294], [-2.294, -2.294, 0.0]], dtype=np.float64)
_DCT = cv2.dct(np.eye(BLOCK, dtype=np.float64))  # orthonormal 4-point DCT-II, as a matrix: dct(B) = D B D^T


@dataclass(frozen=True)
class Payload:
    service: int  # 16 bits
    task: int  # 24 bits

    def bits(self) -> np.ndarray:
        body = (self.service << 24) | self.task
        value = (body << 24) | _check(body)
        return np.array([(value >> (BITS - 1 - i)) & 1 for i in range(BITS)], dtype=np.uint8)

    @classmethod
    def of(cls, bits: np.ndarray) -> Payload | None:
        value = 0
        for bit in bits[:BITS]:
            value = (value << 1) | int(bit)
        body, check = value >> 24, value & 0xFFFFFF
        if _check(body) != check:
            return None
        return cls(service=body >> 24, task=body & 0xFFFFFF)


def _check(body: int) -> int:
    return zlib.crc32(body.to_bytes(5, "big") + b"seqdream") & 0xFFFFFF


def service_tag(service_id: str) -> int:
    return int.from_bytes(hashlib.sha256(service_id.encode()).digest()[:2], "big")


def content_tag(inputs: str) -> int:
    """24 bits of what the image was made from (model, prompt, seed, size, references): identical
    requests carry the same mark, so the same seed and inputs give the same pixels."""
    return int(hashlib.sha256(inputs.encode()).hexdigest()[:6], 16)


def grid_factor(width: int, height: int) -> int:
    """A power of two, so a copy scaled by 1/2 or 1/4 lands on a grid with a whole factor."""
    return 2 ** max(0, round(np.log2(max(1, min(width, height)) / GRID_SIDE)))


def _on_grid(image: Image.Image, k: int) -> np.ndarray:
    """The image averaged over k x k cells (PIL's box reduction: no full-size array is made)."""
    width, height = image.width // k * k, image.height // k * k
    if (width, height) != image.size:
        image = image.crop((0, 0, width, height))
    return np.asarray(image.reduce(k) if k > 1 else image)


def _largest_singular(matrices: np.ndarray, rounds: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, s, v) of each matrix's largest singular value, by power iteration: ~10x faster than a full
    batched SVD, and as exact where it matters (the value is ~1000, the quantisation step 64)."""
    gram = np.swapaxes(matrices, 1, 2) @ matrices
    vector = np.full(matrices.shape[:2], 0.5)
    for _ in range(rounds):
        vector = (gram @ vector[..., None])[..., 0]
        vector /= np.linalg.norm(vector, axis=1, keepdims=True) + 1e-12
    image = (matrices @ vector[..., None])[..., 0]
    value = np.linalg.norm(image, axis=1)
    return image / (value[:, None] + 1e-12), value, vector


def _blocks(grid: np.ndarray) -> tuple[int, int]:
    """Blocks down and across a grid: each covers CELL x CELL grid pixels (4 x 4 in the Haar band)."""
    return grid.shape[0] // CELL, grid.shape[1] // CELL


def _coefficients(grid: np.ndarray, down: int, across: int) -> np.ndarray:
    """The DCT of each 4 x 4 block (row by row) of the Haar approximation band of the grid's U channel."""
    u = cv2.cvtColor(np.ascontiguousarray(grid), cv2.COLOR_RGB2YUV)[: down * CELL, : across * CELL, 1]
    u = u.astype(np.float64)
    approx = (u[0::2, 0::2] + u[0::2, 1::2] + u[1::2, 0::2] + u[1::2, 1::2]) / 2
    blocks = approx.reshape(down, BLOCK, across, BLOCK).transpose(0, 2, 1, 3).reshape(-1, BLOCK, BLOCK)
    return _DCT @ blocks @ _DCT.T


def embed(image: Image.Image, payload: Payload) -> Image.Image:
    """The image with the payload marked in (RGB; an image too small to carry it comes back as is)."""
    image = image if image.mode == "RGB" else image.convert("RGB")
    k = grid_factor(image.width, image.height)
    grid = _on_grid(image, k)
    brows, bcols = _blocks(grid)
    if brows * bcols < BITS:
        return image.copy()
    left, s0, right = _largest_singular(_coefficients(grid, brows, bcols))
    bits = np.resize(payload.bits(), len(s0)).astype(np.float64)  # block n carries bit n mod 64
    nearest = (np.floor(s0 / STEP) + 0.25 + 0.5 * bits) * STEP
    up = np.where(nearest >= s0, nearest, nearest + STEP)  # the target above and the one below
    down = up - STEP
    # Each block moves U by the smaller step that has room in its pixels (a flat block's U moves by
    # a singular value's change / 8), along the first way of moving U that keeps R, G and B in 0..255.
    covered = np.ascontiguousarray(grid[: brows * CELL, : bcols * CELL])
    window = np.ones((CELL, CELL), np.uint8)
    high = cv2.dilate(covered, window, anchor=(0, 0))[::CELL, ::CELL].reshape(-1, 1, 3).astype(np.float64)
    low = cv2.erode(covered, window, anchor=(0, 0))[::CELL, ::CELL].reshape(-1, 1, 3).astype(np.float64)
    ways = []  # (step, the U change per unit, has room) for up and down along each way
    for target in (up, down):
        du = ((target - s0) / 8)[:, None, None] * _U_WAYS[None]  # (blocks, ways, RGB)
        room = ((high + np.maximum(du, 0) <= 255) & (low + np.minimum(du, 0) >= 0)).all(axis=2)
        ways.append((target, room))
    (up_target, up_room), (down_target, down_room) = ways
    up_ok, down_ok = up_room.any(axis=1), down_room.any(axis=1)
    nearer_up = (up - s0) <= (s0 - down)
    choose_up = np.where(up_ok & down_ok, nearer_up, np.where(up_ok | down_ok, up_ok, nearer_up))
    delta = np.where(choose_up, up_target, down_target) - s0
    room = np.where(choose_up[:, None], up_room, down_room)
    way = np.where(room.any(axis=1), room.argmax(axis=1), 0)  # the first way with room, else OpenCV's
    per_unit = _U_WAYS[way].reshape(brows, bcols, 3)
    change = delta[:, None, None] * (_DCT.T @ (left[:, :, None] @ right[:, None, :]) @ _DCT)
    approx_change = change.reshape(brows, bcols, BLOCK, BLOCK).transpose(0, 2, 1, 3).reshape(brows * BLOCK, -1)
    # Inverse Haar with the details unchanged: each approximation coefficient's change, halved, on
    # its 2 x 2 pixels; then U's change as R, G and B along each block's way.
    span = (bcols * CELL, brows * CELL)  # (width, height) in grid pixels
    u_change = cv2.resize(approx_change.astype(np.float32) / 2, span, interpolation=cv2.INTER_NEAREST)
    ways_per_pixel = cv2.resize(per_unit.astype(np.float32), span, interpolation=cv2.INTER_NEAREST)
    rounded = np.rint(u_change[..., None] * ways_per_pixel)
    rise = np.clip(rounded, 0, 255).astype(np.uint8)
    fall = np.clip(-rounded, 0, 255).astype(np.uint8)
    # Added at full size in two saturating passes, what rises and then what falls.
    size = (span[0] * k, span[1] * k)
    if k > 1:
        rise = np.asarray(cv2.resize(rise, size, interpolation=cv2.INTER_NEAREST))
        fall = np.asarray(cv2.resize(fall, size, interpolation=cv2.INTER_NEAREST))
    rgb = np.asarray(image)  # read-only (np.array would copy it, ~4x slower)
    if size == image.size:
        marked = cv2.add(rgb, rise)
        cv2.subtract(marked, fall, dst=marked)
    else:  # a border of less than one cell stays as it is
        marked = rgb.copy()
        marked[: size[1], : size[0]] = cv2.subtract(cv2.add(rgb[: size[1], : size[0]], rise), fall)
    return Image.fromarray(marked)


def read_bits(grid: np.ndarray) -> np.ndarray | None:
    """The 64 bits an RGB grid carries, each the majority of its blocks (as imwatermark decodes)."""
    brows, bcols = _blocks(grid)
    if brows * bcols < BITS:
        return None
    _, s0, _ = _largest_singular(_coefficients(grid, brows, bcols))
    votes = (np.mod(s0, STEP) > STEP / 2).astype(np.float64)
    position = np.arange(len(votes)) % BITS
    share = np.bincount(position, weights=votes, minlength=BITS) / np.bincount(position, minlength=BITS)
    return (share * 255 > 127).astype(np.uint8)


def read(image: Image.Image) -> Payload | None:
    """The payload found on any grid a copy of a marked image could be on (None: no watermark)."""
    image = image if image.mode == "RGB" else image.convert("RGB")
    for k in dict.fromkeys((grid_factor(image.width, image.height), 1, 2, 4, 8)):
        side = min(image.width, image.height) // k  # the grid's shorter side
        if side > 4 * GRID_SIDE or side < 64:
            continue  # no copy of a mark lands on so fine a grid (or one so coarse): skip it
        grid = _on_grid(image, k)
        bits = read_bits(grid)
        found = Payload.of(bits) if bits is not None else None
        if found is not None:
            return found
    return None
