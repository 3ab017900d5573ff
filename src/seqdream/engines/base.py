"""The engine interface and the geometry every engine shares."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image


@dataclass(frozen=True)
class Steps:
    """How far a generation is, in denoising steps, with a picture of it now and then."""

    done: int  # over every batch so far
    total: int  # of the whole call: batches x per_batch
    per_batch: int
    preview: Image.Image | None = field(default=None, compare=False)  # the batch's first image as it stands
    preview_index: int = field(default=0, compare=False)  # which image of the plan that is

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0


# Called after each denoising step; it may raise Interrupted to stop the call.
ProgressCallback = Callable[[Steps], None]
# Called as each batch of a group finishes: (index of its first image, its images at the asked size).
ImagesCallback = Callable[[int, list[Image.Image]], None]


class EngineError(RuntimeError):
    """The model call failed; the message is shown to the caller as the job's error."""


class Interrupted(Exception):  # noqa: N818 - it names what happened, not an error
    """Raised by a progress callback to stop a generation between denoising steps."""


@dataclass(frozen=True)
class GenerationPlan:
    """What to draw: one prompt and one seed per output image, shared references. The images of a
    group are drawn to match its first; `independent` ones (separate tasks run together) are not."""

    prompts: list[str]
    seeds: list[int]
    width: int
    height: int
    references: list[Image.Image] = field(default_factory=list)
    independent: bool = False

    def __post_init__(self) -> None:
        if not self.prompts or len(self.prompts) != len(self.seeds):
            raise ValueError("a plan needs one seed per prompt and at least one prompt")

    @property
    def count(self) -> int:
        return len(self.prompts)


@dataclass(frozen=True)
class GenerationResult:
    images: list[Image.Image]
    inference_ms: int


class Engine(Protocol):
    name: str
    frame_prompt: str  # how frame k of a group is asked for (see `seqdream.engines.frame_prompt`)

    def generate(
        self, plan: GenerationPlan, progress: ProgressCallback | None = None, on_images: ImagesCallback | None = None
    ) -> GenerationResult: ...


def render_size(width: int, height: int, max_side: int, multiple: int) -> tuple[int, int]:
    """The size to render at: the requested size itself when its area is at most `max_side`**2,
    else scaled down to that area; aspect kept, `multiple`-aligned. Only what is above the model's
    (or the operator's) limit is resized afterwards."""
    scale = min(1.0, math.sqrt(max_side * max_side / (width * height)))
    return (
        max(multiple, round(width * scale / multiple) * multiple),
        max(multiple, round(height * scale / multiple) * multiple),
    )


def fit_exactly(image: Image.Image, width: int, height: int) -> Image.Image:
    """Resize to exactly `width` x `height`, cropping the sliver that rounding left over."""
    if image.size == (width, height):
        return image
    src_w, src_h = image.size
    scale = max(width / src_w, height / src_h)
    resized = image.resize(
        (max(width, round(src_w * scale)), max(height, round(src_h * scale))),
        Image.Resampling.LANCZOS,
    )
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))
