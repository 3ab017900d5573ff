"""How frame k of a group is worded for the model: the engine's half of the planner's contract.

A model folder may declare its own wording (`frame_prompt` in seqdream.json), with the fields below.
"""

from __future__ import annotations

import math
import string

# How a group's frame k is asked for when the prompt does not list the frames.
FRAME_PROMPT = "{prompt} (image {index} of {count})"
FRAME_FIELDS = {
    "prompt": "the request's prompt",
    "index": "the frame's number, from 1",
    "count": "the number of frames",
    "percent": "how far through the group the frame is, 0 to 100 in steps of 5",
}


def check_frame_prompt(template: str) -> str:
    """The template itself, or ValueError naming what is wrong with it."""
    try:
        fields = {name for _text, name, _spec, _conv in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"frame_prompt {template!r}: {exc}") from exc
    unknown = fields - FRAME_FIELDS.keys()
    if unknown:
        known = ", ".join(f"{{{name}}}" for name in FRAME_FIELDS)
        raise ValueError(f"frame_prompt {template!r}: unknown field(s) {sorted(unknown)}; it may use {known}")
    if "prompt" not in fields or "index" not in fields:
        raise ValueError(f"frame_prompt {template!r} must contain {{prompt}} and {{index}}")
    return template


def frame_prompt(template: str, prompt: str, index: int, count: int) -> str:
    """Frame `index` (from 1) of `count`, as `template` words it."""
    percent = 5 * math.floor(20 * (index - 1) / max(count - 1, 1) + 0.5)
    return template.format(prompt=prompt, index=index, count=count, percent=percent)
