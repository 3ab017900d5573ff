"""Watching a loaded engine's transformer from a test."""

from __future__ import annotations

from seqdream.engines.flux2_klein import Flux2KleinEngine


def count_block_calls(engine: Flux2KleinEngine) -> list[int]:
    """A counter, in a one-item list, of the transformer's runs (its last block's attention)."""
    calls = [0]
    # Inside the block: a cache skips the block's own forward, not the call into it.
    last_block = engine.pipeline.transformer.single_transformer_blocks[-1].attn
    last_block.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls
