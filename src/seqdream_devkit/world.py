"""Scenes of simple shapes: vocabulary, captions and a crisp renderer.

A scene is a background colour and 1-3 objects (up to 6 in compositions), each with a kind, a
colour, a size and a cell of a 3x3 grid. Scenes render on a CANVAS x CANVAS image (the model's
native size). A reference may carry a user's mark: a box in MARK_COLOUR drawn around one object's cell.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 64
KINDS = ("circle", "square", "triangle", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (140, 60, 190),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
MARK_COLOUR = (255, 0, 255)  # the colour a user marks an object with: no object or background has it
MARK_WIDTH = 1  # pixels at CANVAS: thin, on the cell's edge, so a large object's outline stays visible
BACKGROUNDS = ("white", "black", "blue", "green", "yellow", "purple")
SIZES = {"small": 0.2, "large": 0.28}  # diameter as a fraction of the canvas
COLUMNS = ("left", "center", "right")
ROWS = ("top", "middle", "bottom")
CELLS = tuple((column, row) for row in ROWS for column in COLUMNS)  # reading order


@dataclass(frozen=True)
class Thing:
    kind: str
    colour: str
    size: str
    column: str
    row: str

    @property
    def cell(self) -> tuple[str, str]:
        return self.column, self.row

    def phrase(self, *, position_first: bool = False) -> str:
        """ "a small red circle at the top left", or with `position_first` "at the top left a small red circle"."""
        where = position_phrase(self.column, self.row)
        what = f"a {self.size} {self.colour} {self.kind}"
        return f"{where} {what}" if position_first else f"{what} {where}"


@dataclass(frozen=True)
class Scene:
    background: str
    things: tuple[Thing, ...] = ()

    def __post_init__(self) -> None:
        # Canonical order (reading order of cells) so equal scenes compare equal.
        ordered = tuple(sorted(self.things, key=lambda thing: CELLS.index(thing.cell)))
        object.__setattr__(self, "things", ordered)

    def caption(self) -> str:
        objects = " and ".join(thing.phrase() for thing in self.things) or "nothing"
        return f"{objects} on a {self.background} background"

    def with_things(self, things: list[Thing] | tuple[Thing, ...]) -> Scene:
        return replace(self, things=tuple(things))

    def free_cells(self) -> list[tuple[str, str]]:
        taken = {thing.cell for thing in self.things}
        return [cell for cell in CELLS if cell not in taken]


def position_phrase(column: str, row: str, *, destination: bool = False) -> str:
    """ "at the top left", "on the left", "in the center"; as a destination "to the top left"."""
    if (column, row) == ("center", "middle"):
        place, preposition = "center", "in"
    elif row == "middle":
        place, preposition = column, "on"
    elif column == "center":
        place, preposition = row, "at"
    else:
        place, preposition = f"{row} {column}", "at"
    return f"{'to' if destination else preposition} the {place}"


def cell_center(column: str, row: str) -> tuple[float, float]:
    step = CANVAS / 3
    return (COLUMNS.index(column) + 0.5) * step, (ROWS.index(row) + 0.5) * step


def shape_points(kind: str, cx: float, cy: float, radius: float) -> list[tuple[float, float]]:
    if kind == "square":
        r = radius * 0.86
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if kind == "triangle":
        angles = (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
        return [(cx + radius * math.cos(a), cy + radius * math.sin(a)) for a in angles]
    if kind == "cross":
        a, b = radius, radius * 0.36
        return [
            (cx - b, cy - a), (cx + b, cy - a), (cx + b, cy - b), (cx + a, cy - b), (cx + a, cy + b), (cx + b, cy + b),
            (cx + b, cy + a), (cx - b, cy + a), (cx - b, cy + b), (cx - a, cy + b), (cx - a, cy - b), (cx - b, cy - b),
        ]  # fmt: skip
    raise ValueError(f"unknown kind {kind!r}")


def draw_shape(
    draw: ImageDraw.ImageDraw, kind: str, colour: tuple[int, int, int], centre: tuple[float, float], diameter: float
) -> None:
    """One filled shape; `diameter` is a fraction of the canvas."""
    cx, cy = centre
    radius = diameter * CANVAS / 2
    if kind == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    else:
        draw.polygon(shape_points(kind, cx, cy, radius), fill=colour)


def render(scene: Scene, size: int = CANVAS) -> Image.Image:
    """The scene drawn crisp at CANVAS, then resized to `size` (as the service would) if asked."""
    image = Image.new("RGB", (CANVAS, CANVAS), COLOURS[scene.background])
    draw = ImageDraw.Draw(image)
    for thing in scene.things:
        draw_shape(draw, thing.kind, COLOURS[thing.colour], cell_center(*thing.cell), SIZES[thing.size])
    return image if size == CANVAS else image.resize((size, size), Image.Resampling.LANCZOS)


def mark_box(column: str, row: str) -> tuple[float, float, float, float]:
    """The box a user's mark draws around a cell: on the cell's edge, clear of a large object's outline."""
    step = CANVAS / 3
    left, top = COLUMNS.index(column) * step, ROWS.index(row) * step
    return round(left), round(top), round(left + step) - 1, round(top + step) - 1


def render_marked(scene: Scene, marked: Thing, size: int = CANVAS) -> Image.Image:
    """The scene with a user's mark (a MARK_COLOUR box) around `marked`."""
    image = render(scene)
    ImageDraw.Draw(image).rectangle(mark_box(*marked.cell), outline=MARK_COLOUR, width=MARK_WIDTH)
    return image if size == CANVAS else image.resize((size, size), Image.Resampling.LANCZOS)


def mark_pixels(image: Image.Image) -> int:
    """How many pixels (at CANVAS) are the mark's colour: a mark left in an output shows here."""
    small = np.asarray(image.convert("RGB").resize((CANVAS, CANVAS), Image.Resampling.BOX)).astype(int)
    red, green, blue = small[..., 0], small[..., 1], small[..., 2]
    return int(((red > 180) & (blue > 180) & (green < 110)).sum())


def random_thing(rng: random.Random, scene: Scene) -> Thing:
    column, row = rng.choice(scene.free_cells())
    colour = rng.choice([name for name in COLOURS if name != scene.background])
    return Thing(kind=rng.choice(KINDS), colour=colour, size=rng.choice(tuple(SIZES)), column=column, row=row)


def random_scene(rng: random.Random, count: int | None = None, background: str | None = None) -> Scene:
    scene = Scene(background=background or rng.choice(BACKGROUNDS))
    for _ in range(count or rng.randint(1, 3)):
        scene = scene.with_things(scene.things + (random_thing(rng, scene),))
    return scene
