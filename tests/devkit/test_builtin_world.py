"""The built-in model's world: renders, tasks, and the parser the quality benchmark relies on."""

from __future__ import annotations

import io
import random
import re

import pytest
from PIL import Image, ImageDraw

from seqdream.jobs.planner import plan_group, requested_count
from seqdream_devkit.parser import find, parse
from seqdream_devkit.tasks import (
    COLOUR_CYCLE,
    COMPOSITIONS,
    EDITS,
    MARKED_EDITS,
    MAX_OBJECTS,
    MAX_REFERENCES,
    TONE_EDITS,
    compose,
    compose_many,
    edit,
    marked_edit,
    sequence,
    text_to_image,
    tone_edit,
)
from seqdream_devkit.world import (
    CANVAS,
    COLOURS,
    KINDS,
    SIZES,
    Scene,
    draw_shape,
    mark_pixels,
    position_phrase,
    random_scene,
    render,
)


def as_delivered(image: Image.Image, size: int = 1024) -> Image.Image:
    """Upscaled and JPEG-encoded, the way the service delivers the model's native output."""
    buffer = io.BytesIO()
    image.resize((size, size), Image.Resampling.LANCZOS).save(buffer, format="JPEG", quality=95)
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("size", [None, 1024, 2048])
def test_parser_reads_every_rendered_scene(size: int | None) -> None:
    rng = random.Random(size or 64)
    for _ in range({None: 200, 1024: 40, 2048: 15}[size]):  # delivered sizes cost a resize and a JPEG each
        scene = random_scene(rng)
        image = render(scene) if size is None else as_delivered(render(scene), size)
        assert parse(image) == scene, scene.caption()


@pytest.mark.parametrize("kind", KINDS)
def test_parser_reads_each_kind_at_any_size(kind: str) -> None:
    """Groups grow shapes from the small size to half the canvas; no size between may read as another kind."""
    for step in range(0, 31):
        diameter = SIZES["small"] + step * 0.01
        for centre in ((20.3, 32.0), (32.0, 32.0), (32.5, 32.5), (41.7, 25.5), (25.25, 40.75)):
            image = Image.new("RGB", (CANVAS, CANVAS), COLOURS["white"])
            draw_shape(ImageDraw.Draw(image), kind, COLOURS["red"], centre, diameter)
            _, found = find(image)
            assert [item.thing.kind for item in found] == [kind], (diameter, centre)


def test_captions_name_every_attribute_in_every_wording() -> None:
    rng = random.Random(5)
    for held in (False, True):
        for _ in range(50):
            example = text_to_image(rng, held=held)
            text = example.prompt.lower()
            for thing in example.scene.things:
                what, where = f"a {thing.size} {thing.colour} {thing.kind}", position_phrase(thing.column, thing.row)
                assert f"{what} {where}" in text or f"{where} {what}" in text, text
            assert f"a {example.scene.background} background" in text


def test_captions_put_positions_first_in_a_share_of_every_side_of_the_hold_out() -> None:
    rng = random.Random(8)
    for held in (False, True):
        captions = [text_to_image(rng, held=held) for _ in range(300)]
        first = [e for e in captions if all(t.phrase(position_first=True) in e.prompt.lower() for t in e.scene.things)]
        assert 0.15 < len(first) / len(captions) < 0.45, len(first)


@pytest.mark.parametrize("kind", EDITS)
def test_edits_change_only_what_they_say(kind: str) -> None:
    rng = random.Random(hash(kind) % 1000)
    for _ in range(20):
        example = edit(rng, kind)
        source, target = parse(example.references[0]), parse(example.target)
        assert target == example.scene
        assert source != target
        kept = set(source.things) & set(target.things)
        if kind == "background":
            assert source.things == target.things and source.background != target.background
        elif kind == "add":
            assert len(target.things) == len(source.things) + 1 and kept == set(source.things)
        elif kind == "remove":
            assert len(target.things) == len(source.things) - 1 and kept == set(target.things)
        else:
            assert len(kept) == len(source.things) - 1 and source.background == target.background


@pytest.mark.parametrize("way", COMPOSITIONS)
def test_compositions_of_three_to_ten_references_take_what_the_prompt_names(way: str) -> None:
    rng = random.Random(way)
    counts = set()
    for _ in range(30):
        example = compose_many(rng, way)
        counts.add(len(example.references))
        assert 3 <= len(example.references) <= MAX_REFERENCES
        refs = [parse(image) for image in example.references]
        target = parse(example.target)
        assert target == example.scene and 1 <= len(target.things) <= MAX_OBJECTS
        named = [int(n) for n in re.findall(r"\b(\d+)\b", example.prompt)]
        assert all(1 <= n <= len(refs) for n in named), example.prompt
        if way == "swap":  # the background of image K with the objects of image J
            k = int(re.search(r"background (?:of|from) image (\d+)", example.prompt).group(1))
            j = int(re.search(r"(?:objects|shapes) (?:of|from) image (\d+)", example.prompt).group(1))
            assert target.background == refs[k - 1].background and target.things == refs[j - 1].things
        elif way == "pick":  # each named object, from its named image, on image K's background
            k = int(re.search(r"background of image (\d+)", example.prompt).group(1))
            assert target.background == refs[k - 1].background
            picks = re.findall(r"the (\w+) from image (\d+)", example.prompt.lower())
            assert len(picks) == len(target.things), example.prompt
            for kind, index in picks:
                chosen = [t for t in refs[int(index) - 1].things if t.kind == kind]
                assert len(chosen) == 1 and chosen[0] in target.things, example.prompt
        else:  # the one object of each named image, together on the named background
            assert f"on a {target.background} background" in example.prompt.lower()
            span = re.search(r"images (\d+) to (\d+)", example.prompt)
            images = range(int(span.group(1)), int(span.group(2)) + 1) if span else named
            assert Scene(target.background, tuple(t for i in images for t in refs[i - 1].things)) == target
    assert len(counts) >= 5  # reference counts spread over 3-10


@pytest.mark.parametrize("left_behind", [(0, 2), (1, 2)])
def test_picked_images_hold_as_many_other_objects_as_asked(left_behind: tuple[int, int]) -> None:
    """Training draws 1-2 (nearly every picked image a choice); the bench's stream keeps 0-2. A draw of
    the named object's own kind is dropped, so the name always picks one object."""
    rng, others = random.Random(7), []
    for _ in range(40):
        example = compose_many(rng, "pick", left_behind=left_behind)
        refs, target = [parse(image) for image in example.references], parse(example.target)
        picks = re.findall(r"the (\w+) from image (\d+)", example.prompt.lower())
        assert len(target.things) == len(picks)  # the others stay behind
        for kind, index in picks:
            things = refs[int(index) - 1].things
            others.append(len(things) - 1)
            assert [t.kind for t in things].count(kind) == 1  # the name picks one object
    assert set(others) == {0, 1, 2}
    with_others = sum(count > 0 for count in others) / len(others)
    assert with_others > 0.8 if left_behind == (1, 2) else with_others < 0.75, with_others


@pytest.mark.parametrize("confusers", [0.0, 1.0])
def test_confusers_leave_behind_the_kinds_other_images_picks_name(confusers: float) -> None:
    """Training's picks can leave behind, in image 5, a circle beside "the circle from image 3": each
    name must go with its image. The name still picks one object; the target holds the picks alone."""
    rng, confusing, left = random.Random(11), 0, 0
    for _ in range(40):
        example = compose_many(rng, "pick", left_behind=(1, 2), confusers=confusers)
        refs, target = [parse(image) for image in example.references], parse(example.target)
        picks = re.findall(r"the (\w+) from image (\d+)", example.prompt.lower())
        assert len(target.things) == len(picks) and len(picks) >= 2
        for kind, index in picks:
            kinds = [t.kind for t in refs[int(index) - 1].things]
            assert kinds.count(kind) == 1  # the name picks one object
            named_elsewhere = {other for other, i in picks if i != index} - {kind}
            if named_elsewhere:  # (picks of one kind alone leave nothing to confuse)
                left += len(kinds) - 1
                confusing += sum(k in named_elsewhere for k in kinds if k != kind)
    assert left > 40 and (confusing / left > 0.9 if confusers else confusing / left < 0.5), (confusing, left)


@pytest.mark.parametrize("kind", MARKED_EDITS)
def test_marked_edits_change_the_boxed_object_and_leave_no_mark(kind: str) -> None:
    rng = random.Random(kind)
    for _ in range(30):
        example = marked_edit(rng, kind)
        (reference,) = example.references
        assert mark_pixels(reference) > 60 and mark_pixels(example.target) == 0
        assert mark_pixels(as_delivered(example.target)) == 0
        assert "marked" in example.prompt.lower() or "in the box" in example.prompt.lower()
        source, target = parse(render(Scene(example.scene.background, ()))), parse(example.target)
        assert target == example.scene and source.background == target.background


def test_a_marked_move_of_the_only_object_copies_it_whole() -> None:
    """Training's simplest marked moves (one object, boxed): the target is that object, moved."""
    rng, sizes = random.Random(11), set()
    for _ in range(30):
        example = marked_edit(rng, "move", objects=(1, 2))
        source, target = example.source, parse(example.target)
        assert source is not None and target == example.scene and mark_pixels(example.target) == 0
        sizes.add(len(source.things))
        moved = [t for t in target.things if t not in source.things]
        (old,) = [t for t in source.things if t not in target.things]
        assert len(moved) == 1 and (moved[0].kind, moved[0].colour, moved[0].size) == (old.kind, old.colour, old.size)
    assert sizes == {1, 2}


@pytest.mark.parametrize("kind", TONE_EDITS)
def test_tone_edits_change_colours_only_as_the_prompt_says(kind: str) -> None:
    rng = random.Random(kind)
    for held in (False, True):
        for _ in range(30):
            example = tone_edit(rng, kind, held=held)
            source, target = parse(example.references[0]), parse(example.target)
            assert source == example.source and target == example.scene and source != target
            text = example.prompt.lower()
            # Only colours change: every object keeps its kind, size and cell.
            shapes = [[(t.kind, t.size, t.cell) for t in scene.things] for scene in (source, target)]
            assert shapes[0] == shapes[1]
            changed = [(s, t) for s, t in zip(source.things, target.things, strict=True) if s.colour != t.colour]
            if kind == "swap":  # the two named objects, and only they, exchange colours
                assert "colours of" in text and target.background == source.background
                (a, b), (c, d) = changed
                assert (a.colour, c.colour) == (d.colour, b.colour), text
                assert all(f"the {s.kind}" in text or f"{s.colour} {s.kind}" in text for s, _ in changed), text
            elif kind == "all":  # every object in the one colour named last, on the same background
                colour = re.findall(r"[a-z]+", text)[-1]
                assert {t.colour for t in target.things} == {colour} and target.background == source.background
            else:
                assert "black and white" in text
                assert target.background == "white" and {t.colour for t in target.things} == {"black"}


def test_a_confused_swap_has_a_third_object_of_a_swapped_colour_which_keeps_it() -> None:
    """Training's swaps beside an object of the same colour: only the two named objects change."""
    rng = random.Random("confused")
    for _ in range(30):
        example = tone_edit(rng, "swap", confusers=1.0)
        source, target = parse(example.references[0]), parse(example.target)
        assert source == example.source and target == example.scene and len(source.things) == 3
        changed = [s for s, t in zip(source.things, target.things, strict=True) if s.colour != t.colour]
        (kept,) = [s for s in source.things if s not in changed]
        assert kept.colour in {thing.colour for thing in changed}, example.prompt  # it shares one's colour
        assert kept in target.things  # and keeps it
        names = [
            f"the {t.kind}" in example.prompt.lower() or f"{t.colour} {t.kind}" in example.prompt.lower()
            for t in changed
        ]
        assert all(names), example.prompt


def test_composition_takes_objects_and_background_from_different_images() -> None:
    example = compose(random.Random(3))
    first, second = (parse(image) for image in example.references)
    assert parse(example.target).things == first.things
    assert parse(example.target).background == second.background


@pytest.mark.parametrize("motion", ["moving", "growing", "recolouring"])
def test_groups_of_every_length_plan_their_prompts_and_anchor_on_frame_one(motion: str) -> None:
    rng = random.Random(motion)
    for count in range(2, 15):
        frames = sequence(rng, motion, count=count, held=None)
        prompt = frames[0].group_prompt
        assert requested_count(prompt) == count, prompt
        assert [frame.prompt for frame in frames] == plan_group(prompt, 14, seed=0).prompts
        assert all(f"(image {k + 1} of {count})" in frame.prompt for k, frame in enumerate(frames))


def test_groups_are_worded_with_the_template_the_model_is_trained_on() -> None:
    template = "{prompt} (image {index} of {count}, {percent}%)"
    frames = sequence(random.Random(5), "moving", count=5, frame_template=template)
    prompt = frames[0].group_prompt
    assert [frame.prompt for frame in frames] == plan_group(prompt, 14, 0, template).prompts
    assert [frame.prompt.removeprefix(prompt) for frame in frames] == [
        f" (image {k} of 5, {percent}%)" for k, percent in zip(range(1, 6), (0, 25, 50, 75, 100), strict=True)
    ]


@pytest.mark.parametrize("motion", ["moving", "growing", "recolouring"])
def test_sequences_progress_and_stay_consistent(motion: str) -> None:
    frames = sequence(random.Random(11), motion, count=4)
    prompt = frames[0].group_prompt
    assert [frame.prompt for frame in frames] == plan_group(prompt, 14, seed=0).prompts
    assert frames[0].references == () and all(f.references == (frames[0].target,) for f in frames[1:])
    seen = [find(as_delivered(frame.target)) for frame in frames]
    assert len({background for background, _ in seen}) == 1
    objects = [found[0] for _, found in seen]
    assert all(len(found) == 1 for _, found in seen)
    if motion == "moving":
        xs = [item.centre[0] for item in objects]
        assert xs == sorted(xs) and len(set(xs)) == 4
    elif motion == "growing":
        areas = [item.area for item in objects]
        assert areas == sorted(areas) and len(set(areas)) == 4
    else:
        colours = [item.thing.colour for item in objects]
        cycle = [c for c in COLOUR_CYCLE if c != seen[0][0]]
        start = cycle.index(colours[0])
        assert colours == [cycle[(start + k) % len(cycle)] for k in range(4)]
    if motion != "recolouring":
        assert len({(item.thing.kind, item.thing.colour) for item in objects}) == 1


def test_a_free_start_lets_an_unnamed_recolouring_start_anywhere_and_changes_nothing_else() -> None:
    """Training's later frames of plain recolouring groups may start where the prompt does not say
    (frame 1, their reference, does); without free_start, every draw is as it was."""
    starts: dict[bool, set[str]] = {True: set(), False: set()}
    for free in (True, False):
        rng = random.Random(5)
        for _ in range(80):
            frames = sequence(rng, "recolouring", count=3, free_start=free)
            if not any(colour in frames[0].group_prompt.lower() for colour in COLOUR_CYCLE):
                starts[free].add(parse(frames[0].target).things[0].colour)
                assert all(frame.references == (frames[0].target,) for frame in frames[1:])  # frame 1 says where
    assert starts[False] == {"red"} and len(starts[True]) >= 4, starts
    for motion in ("moving", "growing"):  # a colour is always drawn for these: the same draws
        drawn = [[f.prompt for f in sequence(random.Random(9), motion, free_start=free)] for free in (True, False)]
        assert drawn[0] == drawn[1]


@pytest.mark.parametrize("motion", ["moving", "growing", "recolouring"])
def test_groups_of_the_object_from_a_reference_take_its_kind_and_colour(motion: str) -> None:
    rng = random.Random(f"refs/{motion}")
    for _ in range(20):
        given = rng.randint(1, MAX_REFERENCES)
        frames = sequence(rng, motion, count=rng.randint(2, 14), held=None, references=given)
        prompt = frames[0].group_prompt
        k = int(re.search(r"the object from image (\d+)", prompt).group(1))
        assert 1 <= k <= given and requested_count(prompt) == len(frames), prompt
        references = frames[0].references
        assert len(references) == given
        assert all(frame.references == (*references, frames[0].target) for frame in frames[1:])  # the engine's order
        (source,) = parse(references[k - 1]).things  # image K holds the object alone
        first = parse(frames[0].target).things[0]
        assert (first.kind, first.colour) == (source.kind, source.colour), prompt
        kinds = {parse(frame.target).things[0].kind for frame in frames}
        colours = {parse(frame.target).things[0].colour for frame in frames}
        assert kinds == {source.kind} and (motion == "recolouring" or colours == {source.colour})
