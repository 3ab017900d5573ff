"""Training and evaluation examples: text-to-image, edits, compositions and sequences.

Every example is a prompt, the reference scenes given with it, and the scene the model
should draw. Sequence prompts are split with the service's own group planner, so training
sees exactly the per-image prompts the engine will send.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

from seqdream.engines.frame_prompt import FRAME_PROMPT
from seqdream.jobs.planner import plan_group
from seqdream_devkit import wording
from seqdream_devkit.world import (
    BACKGROUNDS,
    CANVAS,
    CELLS,
    COLOURS,
    KINDS,
    SIZES,
    Scene,
    Thing,
    draw_shape,
    random_scene,
    random_thing,
    render,
    render_marked,
)

EDITS = ("add", "remove", "recolour", "resize", "move", "replace", "background")
MARKED_EDITS = ("remove", "recolour", "move")  # edits of the object a user marked with a box
TONE_EDITS = ("swap", "all", "mono")  # colour tone: two colours swapped, all objects one colour, black and white
COMPOSITIONS = ("gather", "pick", "swap")  # the ways of composing 3-10 references
MAX_REFERENCES = 10
GROUP_REFERENCES = (1, 4)  # how many images a group of "the object from image K" is given (trained and scored)
MAX_OBJECTS = 6  # the most objects a composition puts together
COLOUR_CYCLE = ("red", "orange", "yellow", "green", "blue", "purple")


@dataclass(frozen=True)
class Example:
    task: str
    prompt: str
    references: tuple[Image.Image, ...]
    target: Image.Image
    scene: Scene | None = None  # the target as a scene, when it is one (not for sequences)
    group_prompt: str = ""  # a group frame's: the prompt the request sent, before the planner's wording
    source: Scene | None = None  # an edit's reference as a scene, where the reference carries more (a mark)


def text_to_image(
    rng: random.Random, *, held: bool | str | None = False, position_first: bool | None = None
) -> Example:
    """A random scene and its caption (`held`: only held-out wordings; None: any wording;
    `position_first` as `wording.caption` takes it)."""
    scene = random_scene(rng)
    return Example(
        "t2i", wording.caption(scene, rng, held=held, position_first=position_first), (), render(scene), scene
    )


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


def marked_edit(
    rng: random.Random,
    kind: str | None = None,
    *,
    held: bool | str | None = False,
    objects: tuple[int, int] = (2, 3),
) -> Example:
    """An edit of the object the user boxed in the reference, on a scene of `objects` (fewest, most)
    objects; the target carries no mark."""
    kind = kind or rng.choice(MARKED_EDITS)
    source = random_scene(rng, count=rng.randint(*objects))
    things = list(source.things)
    index = rng.randrange(len(things))
    old = things[index]
    if kind == "remove":
        prompt = wording.marked_instruction(kind, rng, held=held)
        target = source.with_things(things[:index] + things[index + 1 :])
    elif kind == "recolour":
        colour = rng.choice([c for c in COLOURS if c not in (old.colour, source.background)])
        things[index] = replace(old, colour=colour)
        prompt, target = wording.marked_instruction(kind, rng, value=colour, held=held), source.with_things(things)
    elif kind == "move":
        column, row = rng.choice(source.free_cells())
        things[index] = replace(old, column=column, row=row)
        prompt = wording.marked_instruction(kind, rng, destination=(column, row), held=held)
        target = source.with_things(things)
    else:
        raise ValueError(f"unknown marked edit {kind!r}")
    return Example(f"marked-{kind}", prompt, (render_marked(source, old),), render(target), target, source=source)


def tone_edit(
    rng: random.Random, kind: str | None = None, *, held: bool | str | None = False, confusers: float = 0.0
) -> Example:
    """A colour-tone edit of the whole picture, one of TONE_EDITS:

    swap: two objects of different colours exchange their colours;
    all:  every object takes one named colour (the background stays);
    mono: black and white: every object black on a white background.

    A share `confusers` of swaps has a third object of one swapped object's colour, which keeps its
    colour (a swap is of two objects, not of two colours). Without it, the same draws as before it.
    """
    kind = kind or rng.choice(TONE_EDITS)
    confused = kind == "swap" and bool(confusers) and rng.random() < confusers
    while True:
        source = random_scene(rng, count=3 if confused else rng.randint(2, 3))
        made = _tone(rng, kind, source, held, confused)
        if made is not None:
            prompt, source, target = made
            return Example(f"tone-{kind}", prompt, (render(source),), render(target), target, source=source)


def _tone(
    rng: random.Random, kind: str, source: Scene, held: bool | str | None, confused: bool = False
) -> tuple[str, Scene, Scene] | None:
    """(prompt, source, target) of a tone edit of `source` (a confused swap recolours its third object first)."""
    things = list(source.things)
    if kind == "swap":
        indices = itertools.combinations(range(len(things)), 2)
        pairs = [(i, j) for i, j in indices if things[i].colour != things[j].colour]
        if not pairs:
            return None
        i, j = rng.choice(pairs)
        if confused:  # the third object takes one swapped object's colour, and keeps it
            (k,) = set(range(len(things))) - {i, j}
            things[k] = replace(things[k], colour=rng.choice((things[i].colour, things[j].colour)))
            source = source.with_things(things)
        first, second = things[i], things[j]
        things[i], things[j] = replace(first, colour=second.colour), replace(second, colour=first.colour)
        prompt = wording.tone_instruction(kind, rng, names=(first, second), scene=source, held=held)
        return prompt, source, source.with_things(things)
    if kind == "all":
        colours = [c for c in COLOURS if c != source.background and any(t.colour != c for t in things)]
        colour = rng.choice(colours)
        target = source.with_things([replace(thing, colour=colour) for thing in things])
        return wording.tone_instruction(kind, rng, value=colour, held=held), source, target
    if kind == "mono":
        target = Scene("white", tuple(replace(thing, colour="black") for thing in things))
        return (wording.tone_instruction(kind, rng, held=held), source, target) if target != source else None
    raise ValueError(f"unknown tone edit {kind!r}")


# A way of composing: (rng, reference count, held) -> (prompt, reference scenes, target), or None to draw again.
Composer = Callable[[random.Random, int, bool | str | None], tuple[str, list[Scene], Scene] | None]


def compose_many(
    rng: random.Random,
    way: str | None = None,
    references: int | None = None,
    *,
    held: bool | str | None = False,
    left_behind: tuple[int, int] = (0, 2),
    confusers: float = 0.0,
) -> Example:
    """A composition of 3-10 references (`references`), in one of COMPOSITIONS:

    gather: the one object of each of images I..J (or a listed few) together on a named background;
    pick:   one named object from each of 2-3 images on the background of another image;
    swap:   the objects of image J on the background of image K (the two-image compose, any indices).
    The images not named are distractors: random scenes the target takes nothing from. A picked
    image draws `left_behind` (fewest, most) other objects, which stay behind; a draw of the named
    object's kind is dropped, so the name always picks one. A share `confusers` of them takes the
    kind another image's pick names (a circle left behind in image 5 beside "the circle from image 3").
    """
    way = way or rng.choice(COMPOSITIONS)
    count = references or rng.randint(3, MAX_REFERENCES)
    pick = functools.partial(_pick, left_behind=left_behind, confusers=confusers)
    composers: dict[str, Composer] = {"gather": _gather, "pick": pick, "swap": _swap}
    while True:
        made = composers[way](rng, count, held)
        if made is not None:
            prompt, scenes, target = made
            return Example(f"compose-{way}", prompt, tuple(render(scene) for scene in scenes), render(target), target)


def _distinct_cells(rng: random.Random, count: int) -> list[tuple[str, str]]:
    return rng.sample(CELLS, count)


def _gather(rng: random.Random, count: int, held: bool | str | None) -> tuple[str, list[Scene], Scene] | None:
    taken = rng.randint(2, min(count, MAX_OBJECTS))
    if rng.random() < 0.5:  # a run of images, most often from image 1
        first = 1 if rng.random() < 0.6 else rng.randint(1, count - taken + 1)
        indices = list(range(first, first + taken))
    else:
        indices = sorted(rng.sample(range(1, count + 1), taken))
    background = rng.choice(BACKGROUNDS)
    scenes = [random_scene(rng) for _ in range(count)]
    chosen = []
    for index, (column, row) in zip(indices, _distinct_cells(rng, taken), strict=True):
        thing = Thing(
            kind=rng.choice(KINDS), colour=rng.choice([c for c in COLOURS if c != background]),
            size=rng.choice(tuple(SIZES)), column=column, row=row,
        )  # fmt: skip
        own_background = rng.choice([b for b in BACKGROUNDS if b != thing.colour])
        scenes[index - 1] = Scene(own_background, (thing,))
        chosen.append(thing)
    return wording.gather_prompt(rng, indices, background, held=held), scenes, Scene(background, tuple(chosen))


def _pick(
    rng: random.Random, count: int, held: bool | str | None, *, left_behind: tuple[int, int], confusers: float = 0.0
) -> tuple[str, list[Scene], Scene] | None:
    taken = rng.randint(2, min(3, count - 1))
    images = rng.sample(range(1, count + 1), taken + 1)
    background_image, picked_images = images[0], images[1:]
    scenes = [random_scene(rng) for _ in range(count)]
    background = scenes[background_image - 1].background
    chosen = []
    for index, (column, row) in zip(picked_images, _distinct_cells(rng, taken), strict=True):
        thing = Thing(
            kind=rng.choice(KINDS), colour=rng.choice([c for c in COLOURS if c != background]),
            size=rng.choice(tuple(SIZES)), column=column, row=row,
        )  # fmt: skip
        scene = Scene(rng.choice([b for b in BACKGROUNDS if b != thing.colour]), (thing,))
        for _ in range(rng.randint(*left_behind)):  # other objects of the same image stay behind
            other = random_thing(rng, scene)
            if other.kind != thing.kind:
                scene = scene.with_things(scene.things + (other,))
        scenes[index - 1] = scene
        chosen.append(thing)
    if confusers:  # left-behind objects of the kinds the other images' picks name
        for index, thing in zip(picked_images, chosen, strict=True):
            kinds = sorted({t.kind for t in chosen} - {thing.kind})
            others = [t for t in scenes[index - 1].things if t != thing]
            others = [replace(t, kind=rng.choice(kinds)) if kinds and rng.random() < confusers else t for t in others]
            scenes[index - 1] = scenes[index - 1].with_things((thing, *others))
    picks = [(wording.object_name(scenes[i - 1], t, short=True), i) for i, t in zip(picked_images, chosen, strict=True)]
    return wording.pick_prompt(rng, picks, background_image, held=held), scenes, Scene(background, tuple(chosen))


def _swap(rng: random.Random, count: int, held: bool | str | None) -> tuple[str, list[Scene], Scene] | None:
    objects_image, background_image = rng.sample(range(1, count + 1), 2)
    scenes = [random_scene(rng) for _ in range(count)]
    first, second = scenes[objects_image - 1], scenes[background_image - 1]
    if first.background == second.background or any(t.colour == second.background for t in first.things):
        return None
    target = replace(first, background=second.background)
    return wording.swap_prompt(rng, objects_image, background_image, held=held), scenes, target


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
    references: int = 0,
    free_start: bool = False,
) -> list[Example]:
    """A group: frame 1 from the prompt alone, frame k from the prompt and frame 1, each frame's
    prompt worded by the planner with `frame_template` (as the model being trained declares it).

    The prompt is worded by `wording.group_prompt`; what it leaves out takes a default that
    is the same for every group (white background, left to right, starting from red), so
    every prompt has one right first frame.

    With `references` (1-MAX_REFERENCES), the group is of "the object from image K": image K holds
    one object, whose kind and colour every frame takes (the others are distractors); every frame
    is drawn from those images, the later ones from frame 1 too, as the engine orders them.

    `free_start`: a recolouring group whose prompt names no colour starts anywhere on the cycle, not
    at its default. Only its later frames have one right answer (frame 1, given, says where the
    cycle starts): for training them to step on from the colour frame 1 has, as a group of image K's
    object must. Without it, the same draws as before it existed.
    """
    motion = motion or rng.choice(MOTIONS)
    count = count or rng.randint(2, MAX_GROUP)
    form = wording.group_form(rng, held=held)
    background = rng.choice(BACKGROUNDS) if form.names_background else DEFAULT_BACKGROUND
    kind = rng.choice(KINDS)
    cycle = recolour_cycle(background)
    named = form.names_colour or motion != "recolouring" or references or free_start
    colour = rng.choice(cycle) if named else cycle[0]
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
    given, source = _group_references(rng, references, kind, colour)
    prompt = wording.group_prompt(form, motion, count, kind, colour, end_colour, background, source=source)
    plan = plan_group(prompt, MAX_GROUP, seed=0, frame_template=frame_template)
    return [
        Example(f"sequence-{motion}", text, given if index == 0 else (*given, frames[0]), frame, group_prompt=prompt)
        for index, (text, frame) in enumerate(zip(plan.prompts, frames, strict=True))
    ]


def _group_references(
    rng: random.Random, count: int, kind: str, colour: str
) -> tuple[tuple[Image.Image, ...], int | None]:
    """`count` reference images, one of which (its number is returned) holds the group's object alone."""
    if not count:
        return (), None
    source = rng.randint(1, count)
    scenes = [random_scene(rng) for _ in range(count)]
    column, row = rng.choice(CELLS)
    thing = Thing(kind=kind, colour=colour, size=rng.choice(tuple(SIZES)), column=column, row=row)
    scenes[source - 1] = Scene(rng.choice([b for b in BACKGROUNDS if b != colour]), (thing,))
    return tuple(render(scene) for scene in scenes), source


VOCABULARY_TASKS = ("t2i", "edit", "compose", "sequence", "compose_many", "marked", "tone", "sequence_ref")


@functools.cache
def vocabulary(samples: int = 1500, trained: tuple[str, ...] = VOCABULARY_TASKS) -> tuple[str, ...]:
    """Every word the grammar uses in the `trained` tasks, in any wording (trained and held-out forms
    alike): what the built-in model declares it knows (its seqdream.json `vocabulary`). Drawn from a
    fixed seed, so the same arguments give the same words: computed once a process."""
    rng = random.Random(0)
    draws = {
        "t2i": lambda: [text_to_image(rng, held=None).prompt for _ in range(samples)],
        "edit": lambda: [edit(rng, held=None).prompt for _ in range(samples)],
        "marked": lambda: [marked_edit(rng, held=None).prompt for _ in range(samples // 3)],
        "tone": lambda: [tone_edit(rng, held=None).prompt for _ in range(samples // 3)],
        "compose": lambda: [compose(rng, held=None).prompt for _ in range(samples // 10)],
        "compose_many": lambda: [compose_many(rng, held=None).prompt for _ in range(samples)],
        "sequence": lambda: [
            frame.prompt
            for count in range(2, MAX_GROUP + 1)
            for _ in range(samples // 20)
            for frame in sequence(rng, count=count, held=None)[:2]
        ],  # fmt: skip
        "sequence_ref": lambda: [
            frames[0].prompt
            for _ in range(samples // 10)
            for frames in [
                sequence(rng, count=rng.randint(2, MAX_GROUP), held=None, references=rng.randint(*GROUP_REFERENCES))
            ]
        ],
    }
    prompts = [prompt for task in trained for prompt in draws[task]()]
    return tuple(sorted({word for prompt in prompts for word in re.findall(r"[a-z]+", prompt.lower())}))
