"""The quality benchmark's scoring: perfect images score 100 %, wrong ones do not."""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "quality"))

from run import (  # noqa: E402
    edit_parts,
    group_misses,
    misses,
    score_edit,
    score_group,
    score_reference_group,
    score_t2i,
    stream,
)

from seqdream_devkit import tasks  # noqa: E402
from seqdream_devkit.parser import parse  # noqa: E402
from seqdream_devkit.world import render  # noqa: E402


def test_t2i_scores() -> None:
    example = tasks.text_to_image(random.Random(4))
    assert set(score_t2i(example.scene, parse(render(example.scene))).values()) == {1.0}
    wrong = example.scene.with_things(
        [replace(t, colour="black" if t.colour != "black" else "white") for t in example.scene.things]
    )
    scores = score_t2i(example.scene, wrong)
    assert scores["colour"] == 0.0 and scores["kind"] == 1.0 and scores["position"] == 0.0


def test_misses_name_each_way_a_drawing_differs() -> None:
    """The bench's diagnostic under each exact measure: why a composition or tone edit missed."""
    example = tasks.compose_many(random.Random(3), "pick")
    expected = example.scene
    first, *rest = expected.things
    other_colour = next(c for c in ("red", "blue") if c != first.colour and c != expected.background)
    free = next(cell for cell in [(c, r) for c in ("left", "center", "right") for r in ("top", "middle", "bottom")]
                if cell not in {t.cell for t in expected.things})  # fmt: skip
    assert misses(expected, parse(example.target)) == set()
    assert misses(expected, expected.with_things(rest)) == {"missing"}
    assert misses(expected, expected.with_things([*expected.things, replace(first, column=free[0], row=free[1])])) == {
        "extra"
    }
    assert misses(expected, expected.with_things([replace(first, colour=other_colour), *rest])) == {"colour"}
    background = next(b for b in ("white", "black", "blue") if b != expected.background)
    assert "background" in misses(expected, replace(expected, background=background))


@pytest.mark.parametrize("kind", tasks.EDITS)
def test_edit_scores(kind: str) -> None:
    example = tasks.edit(random.Random(8), kind)
    source = parse(example.references[0])
    assert score_edit(source, example.scene, parse(example.target)) == (1.0, 1.0)
    assert score_edit(source, example.scene, source)[0] == 0.0  # doing nothing is no success
    if kind in ("move", "replace", "recolour", "resize"):  # a shape changes: both halves are scored
        assert edit_parts(source, example.scene, parse(example.target)) == (1.0, 1.0)
        assert edit_parts(source, example.scene, source) == (0.0, 0.0)
    else:
        assert edit_parts(source, example.scene, source) is None


@pytest.mark.parametrize("motion", ["moving", "growing", "recolouring"])
def test_group_scores(motion: str) -> None:
    frames = [example.target for example in tasks.sequence(random.Random(2), motion, count=4)]
    assert score_group(motion, frames) == (1.0, 1.0)
    if motion != "recolouring":
        assert score_group(motion, frames[::-1])[1] == 0.0  # backwards is no progression


@pytest.mark.parametrize("motion", ["moving", "growing", "recolouring"])
def test_every_true_group_scores_full_marks(motion: str) -> None:
    """The bench's own reading of perfect groups (as the service upscales them) is never a miss."""
    rng = random.Random(motion)
    for count in (3, 4):
        for _ in range(20):
            frames = tasks.sequence(rng, motion, count=count)
            images = [frame.target.resize((1024, 1024), Image.Resampling.LANCZOS) for frame in frames]
            assert score_group(motion, images) == (1.0, 1.0), frames[0].prompt


@pytest.mark.parametrize("motion", tasks.MOTIONS)
def test_a_true_group_of_a_references_object_scores_full_marks_and_another_object_does_not(motion: str) -> None:
    frames = tasks.sequence(random.Random(motion), motion, count=5, references=3)
    truth = [frame.target for frame in frames]
    assert score_reference_group(motion, frames, truth) == (1.0, 1.0, 1.0)
    kind = parse(frames[0].target).things[0].kind
    others = (tasks.sequence(random.Random(seed), motion, count=5, references=3) for seed in range(100))
    other = next(group for group in others if parse(group[0].target).things[0].kind != kind)
    assert score_reference_group(motion, frames, [frame.target for frame in other])[2] == 0.0


def test_group_misses_name_each_way_a_group_fails() -> None:
    """The diagnostic under the groups of image K's object: why a group is not consistent or in order."""
    frames = tasks.sequence(random.Random(11), "moving", count=4, references=2)
    truth = [frame.target for frame in frames]
    wanted = parse(truth[0]).things[0]
    assert group_misses("moving", truth, (wanted.kind, wanted.colour)) == set()
    assert group_misses("moving", truth[::-1]) == {"step"}
    other_kind = next(kind for kind in tasks.KINDS if kind != wanted.kind)
    assert group_misses("moving", truth, (other_kind, wanted.colour)) == {"first kind"}
    background = next(name for name in ("white", "black") if name != parse(truth[0]).background)
    centre = (tasks.CANVAS / 2, tasks.CANVAS / 2)
    changed = tasks._frame(parse(truth[0]).background, other_kind, wanted.colour, centre, tasks.SIZES["small"])
    assert group_misses("moving", [*truth[:3], changed]) == {"kind"}
    other_colour = next(
        colour for colour in tasks.COLOUR_CYCLE if colour not in (wanted.colour, parse(truth[0]).background)
    )
    recoloured_frame = tasks._frame(parse(truth[0]).background, wanted.kind, other_colour, centre, tasks.SIZES["small"])
    assert group_misses("moving", [*truth[:3], recoloured_frame]) == {"colour"}
    two = truth[1].copy()
    two.paste(changed.crop((16, 16, 48, 48)).resize((16, 16)), (0, 0))  # a second, smaller object
    assert "count" in group_misses("moving", [truth[0], two, *truth[2:]])
    recoloured = tasks.sequence(random.Random(11), "recolouring", count=3)
    assert group_misses("recolouring", [frame.target for frame in recoloured]) == set()  # colours may change
    assert group_misses("recolouring", [recoloured[0].target] * 3) == {"step"}
    other_background = tasks._frame(background, wanted.kind, wanted.colour, centre, tasks.SIZES["small"])
    assert "background" in group_misses("moving", [*truth[:3], other_background])


def test_sampling_sweep_draws_one_sample_and_measures_each_setting() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from sampling_sweep import measure, sample

    from seqdream.config import Settings
    from seqdream.engines.registry import load_engine

    captions, edits, groups = sample(3, 11, longest=3)
    again = sample(3, 11, longest=3)
    assert [c.prompt for c in captions] == [c.prompt for c in again[0]]  # every setting sees the same examples
    assert [e.prompt for e in edits] == [e.prompt for e in again[1]] and groups == again[2]
    assert [motion for motion, _ in groups] == list(tasks.MOTIONS)
    assert [e.task for e in edits] == list(tasks.EDITS[:3])  # edit kinds in turn
    engine = load_engine(Settings(num_inference_steps=4, guidance_until=0.5))
    scores = measure(engine, captions[:1], edits[:1], groups[:1])
    assert set(scores) == {"t2i exact", "edit success", "group consistency", "group progression", "s / image"}
    assert all(0.0 <= scores[name] <= 1.0 for name in scores if name != "s / image") and scores["s / image"] > 0


def test_each_part_draws_its_own_held_out_stream() -> None:
    """Split over processes or run at a larger n, a part scores the same examples first."""
    first = [tasks.edit(stream(1_000_003, "edits"), kind).prompt for kind in tasks.EDITS]
    again = [tasks.edit(stream(1_000_003, "edits"), kind).prompt for kind in tasks.EDITS]
    assert first == again
    assert (
        tasks.text_to_image(stream(1_000_003, "t2i")).prompt
        != tasks.text_to_image(stream(1_000_003, "phrasing")).prompt
    )
    assert tasks.text_to_image(stream(7, "t2i")).prompt != tasks.text_to_image(stream(1_000_003, "t2i")).prompt


@pytest.mark.slow
def test_an_unknown_part_or_motion_is_refused_before_any_model_loads() -> None:
    script = Path(__file__).resolve().parents[2] / "bench" / "quality" / "run.py"
    for flag in (["--parts", "groups,edit"], ["--motions", "spinning"]):
        result = subprocess.run([sys.executable, str(script), *flag], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and "unknown parts or motions" in result.stderr, result.stderr[-500:]
