"""Within one task, each reference image is VAE-encoded once, whichever batch of the group uses it.

The pipeline encodes its conditioning images on every call; a group calls it once per batch with
the same references (plus the anchor image after the first batch). Encoding is deterministic (the
VAE's mode, no sampling), so a latent computed once serves every later batch."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


class ReferenceLatents:
    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.cache: dict[tuple[tuple[int, ...], bytes], torch.Tensor] = {}
        self.encoded = 0  # VAE encodes actually run

    @contextmanager
    def installed(self) -> Iterator[ReferenceLatents]:
        """For the duration of one task (the engine runs one pipeline call at a time)."""
        original = self.pipeline._encode_vae_image

        def encode(image: torch.Tensor, generator: Any) -> torch.Tensor:
            digest = hashlib.blake2b(image.detach().float().cpu().numpy().tobytes(), digest_size=16).digest()
            key = (tuple(image.shape), digest)
            if key not in self.cache:
                self.cache[key] = original(image=image, generator=generator)
                self.encoded += 1
            return self.cache[key]

        self.pipeline._encode_vae_image = encode  # shadows the method on this instance only
        try:
            yield self
        finally:
            del self.pipeline._encode_vae_image
