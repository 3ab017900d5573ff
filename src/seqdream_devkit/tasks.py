"""Training and evaluation examples: text-to-image, edits, compositions and sequences.

Every example is a prompt, the reference scenes given with it, and the scene the model
should draw. Sequence prompts are split with the service's own group planner, so training
sees exactly the per-image prompts the engine will send.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

from seqdream.engines.frame_prompt import FRAME_PROMPT
from seqdream.jobs.planner import plan_group
from seqdream_devkit import wording
from seqdream_devkit.world import (
    BACKGROUNDS,
    CANVAS,
    COLOURS,
    KINDS,
    SIZES,
    Scene,
    Thing,
    draw_shape,
    random_scene,
    random_thing,
    render,
)

EDITS = ("add", "remove", "recolour", "resize", "move", "replace", "background")
COLOUR_CYCLE = ("red", "orange", "yellow", "green", "blue", "purple")


@dataclass(frozen=True)
class Example:
    task: str
    prompt: str
    references: tuple[Image.Image, ...]
    target: Image.Image
    scene: Scene | None = None  # the target as a scene, when it is one (not for sequences)
    group_prompt: str = ""  # a group frame's: the prompt the request sent, before the planner's wording


def text_to_image(rng: random.Random, *, held: bool | str | None = False) -> Example:
    """A random scene and its caption (`held`: only held-out wordings; None: any wording)."""
    scene = random_scene(rng)
    return Example("t2i", wording.caption(scene, rng, held=held), (), render(scene), scene)


def object_name(scene: Scene, thing: Thing) -> str:
    """ "the red circle", or with its position when another red circle is in the scene."""
    return wording.object_name(scene, thing)


def edit(rng: random.Random, kind: str | None = None, *, held: bool | str | None = False) -> Example:
    """A source scene, an instruction, and the scene the instruction leads to."""
    kind = kind or rng.choice(EDITS)
    while True:
        source = random_scene(rng, count=rng.randint(1, 2) if kind == "add" else rng.randint(1, 3))
        made = _apply(rng, kind, source, held)
        if made is not None:
            instruction, target = made
            return Example(kind, instruction, (render(source),), render(target), target)


def _apply(rng: random.Random, kind: str, source: Scene, held: bool | str | None) -> tuple[str, Scene] | None:
    things = list(source.things)

    def say(name_of: Thing | None, value: str = "", **extra) -> str:  # type: ignore[no-untyped-def]
        return wording.instruction(kind, source, rng, name_of=name_of, value=value, held=held, **extra)

    if kind == "add":
        new = random_thing(rng, source)
        return say(None, new.phrase()), source.with_things(things + [new])
    if kind == "background":
        used = {thing.colour for thing in things} | {source.background}
        choices = [colour for colour in BACKGROUNDS if colour not in used]
        if not choices:
            return None
        colour = rng.choice(choices)
        return say(None, colour), replace(source, background=colour)
    if len(things) < 1 or (kind == "remove" and len(things) < 2):
        return None
    index = rng.randrange(len(things))
    old = things[index]
    if kind == "remove":
        return say(old), source.with_things(things[:index] + things[index + 1 :])
    if kind == "recolour":
        colour = rng.choice([c for c in COLOURS if c not in (old.colour, source.background)])
        things[index] = replace(old, colour=colour)
        return say(old, colour), source.with_things(things)
    if kind == "resize":
        size = "large" if old.size == "small" else "small"
        things[index] = replace(old, size=size)
        return say(old, size, growth=size), source.with_things(things)
    if kind == "move":
        column, row = rng.choice(source.free_cells())
        things[index] = replace(old, column=column, row=row)
        return say(old, destination=(column, row)), source.with_things(things)
    if kind == "replace":
        new_kind = rng.choice([k for k in KINDS if k != old.kind])
        colour = rng.choice([c for c in COLOURS if c != source.background])
        size = rng.choice(tuple(SIZES))
        things[index] = replace(old, kind=new_kind, colour=colour, size=size)
        return say(old, f"a {size} {colour} {new_kind}"), source.with_things(things)
    raise ValueError(f"unknown edit {kind!r}")


def compose(rng: random.Random, *, held: bool | str | None = False) -> Example:
    """ "Put the objects from image 1 on the background of image 2"."""
    while True:
        first, second = random_scene(rng), random_scene(rng)
        if first.background != second.background and all(t.colour != second.background for t in first.things):
            target = replace(first, background=second.background)
            prompt = wording.compose_prompt(rng, held=held)
            return Example("compose", prompt, (render(first), render(second)), render(target), target)


def _frame(background: str, kind: str, colour: str, centre: tuple[float, float], diameter: float) -> Image.Image:
    image = Image.new("RGB", (CANVAS, CANVAS), COLOURS[background])
    draw_shape(ImageDraw.Draw(image), kind, COLOURS[colour], centre, diameter)
    return image


MOTIONS = ("moving", "growing", "recolouring")
MAX_GROUP = 14
GROWTH = (SIZES["small"], 0.6)  # a growing group's first and last diameter, as a share of the canvas
DEFAULT_BACKGROUND = "white"  # what a group prompt that names no background gets


def _drawn_area(kind: str, diameter: float) -> int:
    image = Image.new("L", (CANVAS, CANVAS))
    draw_shape(ImageDraw.Draw(image), kind, 255, (CANVAS / 2, CANVAS / 2), diameter)  # type: ignore[arg-type]
    return image.histogram()[255]


def growth_diameters(kind: str, count: int) -> list[float]:
    """Diameters from GROWTH's first to its last, each drawn visibly larger than the one before
    (drawing snaps to whole pixels, so a linear step of under 2 px can draw the same shape)."""
    first, last = GROWTH
    diameters = [first]
    for k in range(1, count):
        diameter = max(first + (last - first) * k / (count - 1), diameters[-1])
        while _drawn_area(kind, diameter) <= _drawn_area(kind, diameters[-1]):
            diameter += 0.5 / CANVAS
        diameters.append(diameter)
    return diameters


def recolour_cycle(background: str) -> list[str]:
    """The colours a recolouring group steps through, in order (never the background)."""
    return [colour for colour in COLOUR_CYCLE if colour != background]


def sequence(
    rng: random.Random,
    motion: str | None = None,
    count: int | None = None,
    *,
    held: bool | str | None = False,
    frame_template: str = FRAME_PROMPT,
) -> list[Example]:
    """A group: frame 1 from the prompt alone, frame k from the prompt and frame 1, each frame's
    prompt worded by the planner with `frame_template` (as the model being trained declares it).

    The prompt is worded by `wording.group_prompt`; what it leaves out takes a default that
    is the same for every group (white background, left to right, starting from red), so
    every prompt has one right first frame.
    """
    motion = motion or rng.choice(MOTIONS)
    count = count or rng.randint(2, MAX_GROUP)
    form = wording.group_form(rng, held=held)
    background = rng.choice(BACKGROUNDS) if form.names_background else DEFAULT_BACKGROUND
    kind = rng.choice(KINDS)
    cycle = recolour_cycle(background)
    colour = rng.choice(cycle) if form.names_colour or motion != "recolouring" else cycle[0]
    margin = SIZES["small"] * CANVAS / 2 + 2
    # Every motion is on the canvas's middle line: a target that depends on an unnamed choice
    # teaches an under-trained model to draw all choices at once.
    row_y = CANVAS / 2
    if motion == "moving":
        xs = [margin + (CANVAS - 2 * margin) * k / (count - 1) for k in range(count)]
        frames = [_frame(background, kind, colour, (x, row_y), SIZES["small"]) for x in xs]
    elif motion == "growing":
        # From the world's "small" size: a smaller first frame is too few latent pixels to keep its kind.
        diameters = growth_diameters(kind, count)
        frames = [_frame(background, kind, colour, (CANVAS / 2, CANVAS / 2), d) for d in diameters]
    else:
        start = cycle.index(colour)
        colours = [cycle[(start + k) % len(cycle)] for k in range(count)]
        frames = [_frame(background, kind, c, (CANVAS / 2, CANVAS / 2), SIZES["large"]) for c in colours]
    end_colour = cycle[(cycle.index(colour) + count - 1) % len(cycle)]
    prompt = wording.group_prompt(form, motion, count, kind, colour, end_colour, background)
    plan = plan_group(prompt, MAX_GROUP, seed=0, frame_template=frame_template)
    return [
        Example(f"sequence-{motion}", text, () if index == 0 else (frames[0],), frame, group_prompt=prompt)
        for index, (text, frame) in enumerate(zip(plan.prompts, frames, strict=True))
    ]
