"""Training and evaluation examples: text-to-image, edits, compositions and sequences.

Every example is a prompt, the reference scenes given with it, and the scene the model
should draw. Sequence prompts are split with the service's own group planner, so training
sees exactly the per-image prompts the engine will send.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

from seqdream.jobs.planner import plan_group
from seqdream_devkit.world import (
    BACKGROUNDS,
    CANVAS,
    COLOURS,
    KINDS,
    SIZES,
    Scene,
    Thing,
    draw_shape,
    position_phrase,
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


def text_to_image(rng: random.Random) -> Example:
    scene = random_scene(rng)
    return Example("t2i", scene.caption(), (), render(scene), scene)


def object_name(scene: Scene, thing: Thing) -> str:
    """ "the red circle", or with its position when another red circle is in the scene."""
    twins = [other for other in scene.things if (other.colour, other.kind) == (thing.colour, thing.kind)]
    name = f"the {thing.colour} {thing.kind}"
    return name if len(twins) == 1 else f"{name} {thing.phrase().split(thing.kind, 1)[1].strip()}"


def edit(rng: random.Random, kind: str | None = None) -> Example:
    """A source scene, an instruction, and the scene the instruction leads to."""
    kind = kind or rng.choice(EDITS)
    while True:
        source = random_scene(rng, count=rng.randint(1, 2) if kind == "add" else rng.randint(1, 3))
        made = _apply(rng, kind, source)
        if made is not None:
            instruction, target = made
            return Example(kind, instruction, (render(source),), render(target), target)


def _apply(rng: random.Random, kind: str, source: Scene) -> tuple[str, Scene] | None:
    things = list(source.things)
    if kind == "add":
        new = random_thing(rng, source)
        return f"add {new.phrase()}", source.with_things(things + [new])
    if kind == "background":
        used = {thing.colour for thing in things} | {source.background}
        choices = [colour for colour in BACKGROUNDS if colour not in used]
        if not choices:
            return None
        colour = rng.choice(choices)
        return f"change the background to {colour}", replace(source, background=colour)
    if len(things) < 1 or (kind == "remove" and len(things) < 2):
        return None
    index = rng.randrange(len(things))
    old, name = things[index], object_name(source, things[index])
    if kind == "remove":
        return f"remove {name}", source.with_things(things[:index] + things[index + 1 :])
    if kind == "recolour":
        colour = rng.choice([c for c in COLOURS if c not in (old.colour, source.background)])
        things[index] = replace(old, colour=colour)
        return f"make {name} {colour}", source.with_things(things)
    if kind == "resize":
        size = "large" if old.size == "small" else "small"
        things[index] = replace(old, size=size)
        return f"make {name} {size}", source.with_things(things)
    if kind == "move":
        column, row = rng.choice(source.free_cells())
        things[index] = replace(old, column=column, row=row)
        return f"move {name} {position_phrase(column, row, destination=True)}", source.with_things(things)
    if kind == "replace":
        new_kind = rng.choice([k for k in KINDS if k != old.kind])
        colour = rng.choice([c for c in COLOURS if c != source.background])
        size = rng.choice(tuple(SIZES))
        things[index] = replace(old, kind=new_kind, colour=colour, size=size)
        return f"replace {name} with a {size} {colour} {new_kind}", source.with_things(things)
    raise ValueError(f"unknown edit {kind!r}")


def compose(rng: random.Random) -> Example:
    """ "Put the objects from image 1 on the background of image 2"."""
    while True:
        first, second = random_scene(rng), random_scene(rng)
        if first.background != second.background and all(t.colour != second.background for t in first.things):
            target = replace(first, background=second.background)
            prompt = "put the objects from image 1 on the background of image 2"
            return Example("compose", prompt, (render(first), render(second)), render(target), target)


def _frame(background: str, kind: str, colour: str, centre: tuple[float, float], diameter: float) -> Image.Image:
    image = Image.new("RGB", (CANVAS, CANVAS), COLOURS[background])
    draw_shape(ImageDraw.Draw(image), kind, COLOURS[colour], centre, diameter)
    return image


def sequence(rng: random.Random, motion: str | None = None, count: int | None = None) -> list[Example]:
    """A group: frame 1 from the prompt alone, frame k from the prompt and frame 1."""
    motion = motion or rng.choice(("moving", "growing", "recolouring"))
    count = count or rng.randint(2, 4)
    background = rng.choice(BACKGROUNDS)
    kind = rng.choice(KINDS)
    colour = rng.choice([c for c in COLOUR_CYCLE if c != background])
    margin = SIZES["small"] * CANVAS / 2 + 2
    # Every motion is on the canvas's middle line: the prompt names no row, and a target that
    # depends on an unnamed choice teaches an under-trained model to draw all choices at once.
    row_y = CANVAS / 2
    if motion == "moving":
        xs = [margin + (CANVAS - 2 * margin) * k / (count - 1) for k in range(count)]
        frames = [_frame(background, kind, colour, (x, row_y), SIZES["small"]) for x in xs]
        what = f"a small {colour} {kind} moving from left to right"
    elif motion == "growing":
        # From the world's "small" size: a smaller first frame is too few latent pixels to keep its kind.
        diameters = [SIZES["small"] + (0.5 - SIZES["small"]) * k / (count - 1) for k in range(count)]
        frames = [_frame(background, kind, colour, (CANVAS / 2, CANVAS / 2), d) for d in diameters]
        what = f"a {colour} {kind} in the center growing"
    else:
        cycle = [c for c in COLOUR_CYCLE if c != background]
        start = cycle.index(colour)
        colours = [cycle[(start + k) % len(cycle)] for k in range(count)]
        frames = [_frame(background, kind, c, (CANVAS / 2, CANVAS / 2), SIZES["large"]) for c in colours]
        what = f"a large {kind} in the center changing colour from {colours[0]} to {colours[-1]}"
    prompt = f"a series of {count} images of {what} on a {background} background"
    plan = plan_group(prompt, count, seed=0)
    return [
        Example(f"sequence-{motion}", text, () if index == 0 else (frames[0],), frame)
        for index, (text, frame) in enumerate(zip(plan.prompts, frames, strict=True))
    ]
