"""Group generation on top of any multi-reference renderer.

The first image of a group is drawn from the references alone; the rest are drawn in batches from
the references plus that first image, which anchors identity, style and palette. A plan of
independent images (separate tasks run together) has no anchor: its images are drawn in batches
from the shared references.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from seqdream.engines.base import GenerationPlan, ImagesCallback

# (prompts, seeds, references) -> one image per prompt
RenderBatch = Callable[[list[str], list[int], list[Image.Image]], list[Image.Image]]


def batch_spans(count: int, max_batch: int, *, independent: bool = False) -> list[tuple[int, int]]:
    """The [start, stop) of each pipeline call: a group's first image alone, then batches of up to
    `max_batch`; independent images in batches of up to `max_batch` from the first."""
    first = 0 if independent else 1
    spans = [] if independent else [(0, 1)]
    return spans + [(start, min(start + max_batch, count)) for start in range(first, count, max_batch)]


def render_group(
    plan: GenerationPlan,
    render: RenderBatch,
    *,
    max_batch: int,
    max_references: int,
    on_batch: ImagesCallback | None = None,
) -> list[Image.Image]:
    """`on_batch(start, images)` hears of each batch as it finishes (a group's first image alone first)."""
    images: list[Image.Image] = []
    references = plan.references[:max_references]
    for start, stop in batch_spans(plan.count, max_batch, independent=plan.independent):
        batch = render(plan.prompts[start:stop], plan.seeds[start:stop], references)
        images.extend(batch)
        if on_batch:
            on_batch(start, batch)
        if start == 0 and not plan.independent:
            # The anchor always goes in; user references fill the remaining slots.
            references = plan.references[: max_references - 1] + [images[0]]
    return images
