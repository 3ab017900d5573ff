"""Group generation on top of any multi-reference renderer.

The first image is drawn from the references alone; the rest are drawn in batches from
the references plus that first image, which anchors identity, style and palette.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from seqdream.engines.base import GenerationPlan, ImagesCallback

# (prompts, seeds, references) -> one image per prompt
RenderBatch = Callable[[list[str], list[int], list[Image.Image]], list[Image.Image]]


def render_group(
    plan: GenerationPlan,
    render: RenderBatch,
    *,
    max_batch: int,
    max_references: int,
    on_batch: ImagesCallback | None = None,
) -> list[Image.Image]:
    """`on_batch(start, images)` hears of each batch as it finishes (the first image alone first)."""
    images = list(render(plan.prompts[:1], plan.seeds[:1], plan.references[:max_references]))
    if on_batch:
        on_batch(0, images[:1])
    # The anchor always goes in; user references fill the remaining slots.
    anchored = plan.references[: max_references - 1] + [images[0]]
    for start in range(1, plan.count, max_batch):
        stop = min(start + max_batch, plan.count)
        batch = render(plan.prompts[start:stop], plan.seeds[start:stop], anchored)
        images.extend(batch)
        if on_batch:
            on_batch(start, batch)
    return images
