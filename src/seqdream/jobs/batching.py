"""Which tasks may be drawn together in one batch, and how many.

Single images drawn from the prompt alone at the same size share everything but their prompts and
seeds, which the engine takes per image: a batch of them gives each task the very pixels it would
get alone, in less time per image. Groups and edits run alone (a group is a batch of its own)."""

from __future__ import annotations

from seqdream.jobs.request import JobRequest


def batch_key(request: JobRequest, images: int) -> str | None:
    """Tasks with equal keys may share a batch; None: the task runs alone."""
    return f"t2i:{request.size}" if images == 1 and not request.images else None


def batch_size(setting: int | None, engine_max_batch: int) -> int:
    """How many tasks a worker takes together: the setting, else as many images as the engine
    denoises together (its memory bound, `SEQDREAM_MAX_BATCH`)."""
    return max(1, setting if setting is not None else engine_max_batch)
