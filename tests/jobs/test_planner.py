"""How many images a prompt asks for, and the per-image prompts and seeds."""

from __future__ import annotations

import re

import pytest

from seqdream.engines.frame_prompt import check_frame_prompt
from seqdream.jobs.planner import (
    derive_seeds,
    plan_group,
    requested_count,
    split_enumeration,
)


@pytest.mark.parametrize(
    "prompt,count",
    [
        ("a series of 4 images of a cat", 4),
        ("A set of twelve stickers of fruit", 12),
        ("Four images of a dog in the snow", 4),
        ("generate 3 photos of a sports car", 3),
        ("a group of images: a lighthouse at dawn", None),
        ("a 3-panel comic about a robot", 3),
        ("a pair of portraits of twins", 2),
        ("Storyboard: 1. a fox wakes 2. the fox eats 3. the fox sleeps", 3),
        ("Image 1: a cat on a sofa\nImage 2: the same cat asleep", 2),
        ("(1) red (2) green (3) blue (4) yellow (5) white", 5),
        ("there are 2 cats in this image", None),
        ("a red fox", None),
        ("version 2.0 logo", None),
        ("1. only one item", None),
    ],
)
def test_requested_count(prompt: str, count: int | None) -> None:
    assert requested_count(prompt) == count


def test_enumerations_split_into_per_image_prompts() -> None:
    preamble, items = split_enumeration("Watercolour style. 1. a fox wakes; 2. the fox eats; 3. the fox sleeps")
    assert preamble == "Watercolour style."
    assert items == ["a fox wakes", "the fox eats", "the fox sleeps"]
    plan = plan_group("Watercolour style. 1. a fox wakes; 2. the fox eats; 3. the fox sleeps", 14, 10)
    assert plan.prompts == [
        "Watercolour style. a fox wakes",
        "Watercolour style. the fox eats",
        "Watercolour style. the fox sleeps",
    ]
    assert plan.seeds == [10, 11, 12]


def test_count_is_capped_by_max_images_and_defaults_to_it() -> None:
    assert len(plan_group("a series of 9 images of a fish", 2, 0).prompts) == 2
    assert len(plan_group("1. a 2. b 3. c 4. d", 3, 0).prompts) == 3
    unnamed = plan_group("a fish", 3, 0)
    assert unnamed.prompts == ["a fish (image 1 of 3)", "a fish (image 2 of 3)", "a fish (image 3 of 3)"]
    assert plan_group("a fish", 1, 0).prompts == ["a fish"]


def test_seeds_derive_from_the_job_seed_and_wrap() -> None:
    assert derive_seeds(2147483646, 3) == [2147483646, 2147483647, 0]


def test_a_model_declared_frame_template_words_every_unlisted_frame() -> None:
    template = "{prompt} (image {index} of {count}, {percent}%)"
    assert check_frame_prompt(template) == template
    plan = plan_group("a fish swimming", 14, 0, template)
    assert plan.prompts[0] == "a fish swimming (image 1 of 14, 0%)"
    assert plan.prompts[-1] == "a fish swimming (image 14 of 14, 100%)"
    percents = [int(prompt.rsplit(", ", 1)[1].rstrip("%)")) for prompt in plan.prompts]
    # In steps of 5, from 0 to 100, and never the same for two frames of the longest group.
    assert all(p % 5 == 0 for p in percents) and percents == sorted(set(percents))
    assert plan_group("a fish", 3, 0, template).prompts == [
        "a fish (image 1 of 3, 0%)",
        "a fish (image 2 of 3, 50%)",
        "a fish (image 3 of 3, 100%)",
    ]
    # Listed frames and single images keep the request's own words.
    assert plan_group("1. a fox 2. a hen", 14, 0, template).prompts == ["a fox", "a hen"]
    assert plan_group("a fish", 1, 0, template).prompts == ["a fish"]


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{prompt} (frame {index} of {total})", "unknown field(s) ['total']"),
        ("{prompt} (image {0})", "unknown field(s) ['0']"),
        ("(image {index} of {count})", "must contain {prompt} and {index}"),
        ("{prompt} (image {index", "frame_prompt"),
    ],
)
def test_a_bad_frame_template_is_refused_with_its_reason(template: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        check_frame_prompt(template)
