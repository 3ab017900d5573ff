"""From a prompt to a group: how many images, which prompt each, which seed each.

N is the number of images the prompt asks for ("a series of 4 ...", "four images", a
numbered list), capped by `max_images`; a prompt that names no number gets `max_images`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from PIL import Image

from seqdream.engines.base import GenerationPlan
from seqdream.engines.frame_prompt import FRAME_PROMPT, frame_prompt
from seqdream.jobs.request import JobRequest

SEED_MAX = 2**31 - 1  # seeds are 0..2147483647; -1 in a request means "pick one"
MAX_IMAGES_OUT = 14  # the most images one task makes (the contract's max_images)
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "a pair of": 2,
    "a couple of": 2,
    "a trio of": 3,
}
_NUMBER = r"(\d{1,2}|" + "|".join(sorted(map(re.escape, NUMBER_WORDS), key=len, reverse=True)) + r")"
_NOUNS = (
    r"(?:images?|pictures?|photos?|photographs?|frames?|panels?|shots?|illustrations?|scenes?|"
    r"views?|variations?|versions?|posters?|stickers?|icons?|slides?|pages?|stages?|renders?|"
    r"drawings?|paintings?|portraits?|designs?|outputs?|pics?)"
)
_STOP = r"(?:in|on|at|of|with|this|that|these|the|a|an|for|from|to|and|or)"
_COLLECTIVE = r"(?:series|set|group|sequence|collection|batch|storyboard|triptych|grid)"
_COUNT_PATTERNS = [
    re.compile(rf"\b{_COLLECTIVE}\s+of\s+{_NUMBER}\b", re.I),
    re.compile(rf"(?<![\w.]){_NUMBER}\s+(?:(?!{_STOP}\b)[\w-]+\s+){{0,3}}?{_NOUNS}\b", re.I),
    re.compile(rf"(?<![\w.]){_NUMBER}[- ](?:panel|frame|part|step|image|shot)\b", re.I),
]
# "1. ...", "2) ...", "(3) ...", "Image 4: ...", "Panel 5 - ..." at a line start or after punctuation.
_ITEM_MARKER = re.compile(
    r"(?:^|(?<=[\s;:,.]))(?:(?:image|picture|panel|frame|scene|shot|step|photo|slide)\s*)?"
    r"\(?(\d{1,2})(?:[.):]|\s+[-:])\s+",
    re.I,
)


def _to_int(token: str) -> int:
    token = token.lower()
    return int(token) if token.isdigit() else NUMBER_WORDS[re.sub(r"\s+", " ", token)]


def split_enumeration(prompt: str) -> tuple[str, list[str]]:
    """Split "preamble 1. a 2. b" into ("preamble", ["a", "b"]); numbering must run 1, 2, 3..."""
    markers: list[re.Match[str]] = []
    expected = 1
    for match in _ITEM_MARKER.finditer(prompt):
        if int(match.group(1)) == expected:
            markers.append(match)
            expected += 1
    if len(markers) < 2:
        return prompt.strip(), []
    preamble = prompt[: markers[0].start()].strip()
    items = []
    for index, marker in enumerate(markers):
        end = markers[index + 1].start() if index + 1 < len(markers) else len(prompt)
        items.append(prompt[marker.end() : end].strip().rstrip(";,").strip())
    return preamble, [item for item in items if item]


def requested_count(prompt: str) -> int | None:
    """The number of images the prompt asks for, or None if it names none."""
    _preamble, items = split_enumeration(prompt)
    if len(items) >= 2:
        return len(items)
    for pattern in _COUNT_PATTERNS:
        match = pattern.search(prompt)
        if match:
            count = _to_int(match.group(1))
            if count >= 1:
                return count
    return None


@dataclass(frozen=True)
class GroupPlan:
    prompts: list[str]
    seeds: list[int]


def image_count(prompt: str, max_images: int) -> int:
    """How many images a request makes: the count its prompt asks for, at most `max_images`."""
    return min(requested_count(prompt) or max_images, max_images)


def plan_group(prompt: str, max_images: int, seed: int, frame_template: str = FRAME_PROMPT) -> GroupPlan:
    """Per-image prompts and seeds for a group request; `frame_template` words an unlisted frame."""
    count = image_count(prompt, max_images)
    preamble, items = split_enumeration(prompt)
    if len(items) >= 2:
        prompts = [f"{preamble} {item}".strip() if preamble else item for item in items[:count]]
        prompts += [prompt.strip()] * (count - len(prompts))
    elif count == 1:
        prompts = [prompt.strip()]
    else:
        prompts = [frame_prompt(frame_template, prompt.strip(), i + 1, count) for i in range(count)]
    return GroupPlan(prompts=prompts, seeds=derive_seeds(seed, count))


def derive_seeds(seed: int, count: int) -> list[int]:
    return [(seed + index) % (SEED_MAX + 1) for index in range(count)]


def resolve_seed(seed: int) -> int:
    """The seed a job runs with: as asked, or a random one for -1."""
    return seed if seed >= 0 else secrets.randbelow(SEED_MAX + 1)


def plan_job(
    request: JobRequest, seed: int, references: list[Image.Image], frame_template: str = FRAME_PROMPT
) -> GenerationPlan:
    """The engine's plan for a job: per-image prompts and seeds, the output size, the references."""
    group = plan_group(request.prompt, request.max_images, seed, frame_template)
    width, height = request.width_height
    return GenerationPlan(prompts=group.prompts, seeds=group.seeds, width=width, height=height, references=references)
