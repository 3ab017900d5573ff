"""Read a scene back from an image: its background and each object's attributes.

Works on any size: the image is reduced to the world's canvas, every pixel snapped to the
nearest palette colour (a 3x3 majority vote removes one-pixel edge fringes), and each
connected region matched against the shapes the world draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw

from seqdream_devkit.world import CANVAS, COLOURS, COLUMNS, KINDS, ROWS, SIZES, Scene, Thing, draw_shape

NAMES = list(COLOURS)
_PALETTE = np.array([COLOURS[name] for name in NAMES], dtype=np.float32)
MIN_AREA = 30  # pixels at CANVAS size; the smallest object covers about 90
_KERNEL = np.ones((3, 3), np.uint8)


def _votes(mask: np.ndarray) -> np.ndarray:
    """How many of each pixel's 3x3 neighbourhood (itself included) are in the mask."""
    return cv2.boxFilter(mask.astype(np.float32), -1, (3, 3), normalize=False)


def snap_to_palette(image: Image.Image) -> np.ndarray:
    """CANVAS x CANVAS array of palette indices."""
    small = np.asarray(image.convert("RGB").resize((CANVAS, CANVAS), Image.Resampling.BOX), dtype=np.float32)
    indices = ((small[:, :, None, :] - _PALETTE[None, None]) ** 2).sum(-1).argmin(-1)
    return np.stack([_votes(indices == k) for k in range(len(NAMES))]).argmax(0)


def _bbox_centre(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2


# Bounding-box width of each kind, as a multiple of its drawing radius.
_WIDTH_PER_RADIUS = {"circle": 2.0, "square": 1.72, "triangle": 3**0.5, "cross": 2.0}
# Template offsets tried around the aligned position, (dy, dx) in pixels.
_NUDGES = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


@lru_cache(maxsize=512)
def _template(kind: str, diameter_px: float) -> tuple[np.ndarray, tuple[float, float]]:
    """A kind's mask at one diameter, and its bounding-box centre (both cached)."""
    image = Image.new("RGB", (CANVAS, CANVAS))
    draw_shape(ImageDraw.Draw(image), kind, (255, 255, 255), (CANVAS / 2, CANVAS / 2), diameter_px / CANVAS)
    # The same 3x3 majority vote the image's pixels go through (it rounds a square's corners).
    template = _votes(np.asarray(image)[:, :, 0] > 127) >= 5
    return template, _bbox_centre(template)


def _overlap(mask: np.ndarray, kind: str, diameter_px: float, centre: tuple[float, float]) -> float:
    """Best IoU of the template placed on the region's bounding-box centre, give or take a pixel."""
    template, (tx, ty) = _template(kind, diameter_px)
    best = 0.0
    for dy, dx in _NUDGES:
        shifted = np.roll(template, (round(centre[1] - ty) + dy, round(centre[0] - tx) + dx), axis=(0, 1))
        union = np.logical_or(mask, shifted).sum()
        best = max(best, float(np.logical_and(mask, shifted).sum() / union) if union else 0.0)
    return best


def classify(mask: np.ndarray) -> tuple[str, str, float]:
    """(kind, size, IoU) of a region, by overlap with each kind's shape aligned on its bounding box.

    Each kind is tried at the named sizes and at the diameter its width implies, so shapes of
    any scale are read; the size reported is the named size nearest to the best fit. A drawn
    polygon covers up to a pixel more than its outline, so the width is read both ways, and a
    template may sit a pixel off the region's bounding-box centre (a blurred tip moves it).
    """
    ys, xs = np.nonzero(mask)
    width = xs.max() - xs.min() + 1
    cx, cy = _bbox_centre(mask)
    best = ("circle", 0.0, -1.0)
    for kind in KINDS:
        fitted = [round(2 * extent / _WIDTH_PER_RADIUS[kind] * 2) / 2 for extent in (width, width - 1)]  # ½ px
        for diameter in (*fitted, *(fraction * CANVAS for fraction in SIZES.values())):
            iou = _overlap(mask, kind, diameter, (cx, cy))
            if iou > best[2]:
                best = (kind, diameter / CANVAS, iou)
    kind, diameter, iou = best
    size = min(SIZES, key=lambda name: abs(SIZES[name] - diameter))
    return kind, size, iou


def _cell(mask: np.ndarray) -> tuple[str, str]:
    cx, cy = _bbox_centre(mask)
    step = CANVAS / 3
    return COLUMNS[min(2, int((cx + 0.5) // step))], ROWS[min(2, int((cy + 0.5) // step))]


def _regions(indices: np.ndarray, background: int) -> list[tuple[str, np.ndarray]]:
    candidates = []
    for colour in range(len(NAMES)):
        if colour == background:
            continue
        count, labels = cv2.connectedComponents((indices == colour).astype(np.uint8), connectivity=8)
        for label in range(1, count):
            mask = labels == label
            if mask.sum() >= MIN_AREA:
                candidates.append((NAMES[colour], mask))
    # A blurred edge between two colours can leave a ring of a third (red on blue gives
    # purple): a region lying mostly against a larger region is such a ring, not an object.
    kept = []
    for index, (name, mask) in enumerate(candidates):
        larger = np.zeros(mask.shape, np.uint8)
        for other_index, (_, other) in enumerate(candidates):
            if other_index != index and other.sum() > mask.sum():
                larger |= other.astype(np.uint8)
        near = cv2.dilate(larger, _KERNEL, iterations=2).astype(bool)
        if np.logical_and(mask, near).sum() <= 0.6 * mask.sum():
            kept.append((name, mask))
    return kept


@dataclass(frozen=True)
class Found:
    """One object as seen: its attributes, cell, bounding-box centre and area (canvas pixels)."""

    thing: Thing
    centre: tuple[float, float]
    area: int


def find(image: Image.Image) -> tuple[str, list[Found]]:
    """The background colour and every object found, in no particular order."""
    indices = snap_to_palette(image)
    border = np.concatenate([indices[0], indices[-1], indices[:, 0], indices[:, -1]])
    background = int(np.bincount(border, minlength=len(NAMES)).argmax())
    found = []
    for name, mask in _regions(indices, background):
        kind, size, _iou = classify(mask)
        column, row = _cell(mask)
        thing = Thing(kind=kind, colour=name, size=size, column=column, row=row)
        found.append(Found(thing=thing, centre=_bbox_centre(mask), area=int(mask.sum())))
    return NAMES[background], found


def parse(image: Image.Image) -> Scene:
    background, found = find(image)
    return Scene(background=background, things=tuple(item.thing for item in found))
