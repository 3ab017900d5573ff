"""Pictures of a running batch: its latents decoded as they stand (noisy early, nearly final late).

Small renders (the built-in model's 64 px) are decoded by the model's own VAE, which is cheap at
that size. Larger renders need a tiny decoder (a diffusers `AutoencoderTiny` trained for the
model's latent space, such as TAEF2 for FLUX.2, set with `SEQDREAM_PREVIEW_DECODER`); without
one they get no previews. Latents are pooled first so that a preview is at most `PREVIEW_SIDE`
pixels on its longer side, whatever the render size."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from seqdream.engines.base import EngineError

PREVIEW_SIDE = 256  # a tiny decoder's preview is at most this many pixels on its longer side


class TinyDecoder:
    """An `AutoencoderTiny` that decodes the model's latents into small pictures."""

    def __init__(self, source: str, latent_channels: int, device: str, dtype: torch.dtype) -> None:
        from diffusers import AutoencoderTiny

        try:
            model = AutoencoderTiny.from_pretrained(source, torch_dtype=dtype)
        except (OSError, ValueError) as exc:
            raise EngineError(f"could not load the preview decoder {source!r}: {exc}") from exc
        channels = int(model.config.latent_channels)
        if channels != latent_channels:
            raise EngineError(
                f"the preview decoder {source!r} decodes {channels}-channel latents; "
                f"this model's have {latent_channels} (SEQDREAM_PREVIEW_DECODER must match the model)"
            )
        self.model = model.to(device).eval()
        self.upscale = model.config.upsampling_scaling_factor ** (len(model.config.decoder_block_out_channels) - 1)

    def decode(self, latents: torch.Tensor) -> Image.Image:
        """One picture from one NCHW latent, pooled so the picture fits `PREVIEW_SIDE`."""
        longest = max(latents.shape[-2:]) * self.upscale
        if longest > PREVIEW_SIDE:
            latents = F.avg_pool2d(latents, math.ceil(longest / PREVIEW_SIDE), ceil_mode=True)
        pixels = self.model.decode(latents.to(self.model.dtype), return_dict=False)[0]
        return to_image(pixels)


def vae_input(pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The batch's first image's packed latents as the VAE takes them, as the pipeline decodes its
    result: tokens in raster order, de-normalised, unpatchified (NCHW)."""
    side = pipe.vae_scale_factor * 2
    rows, cols = height // side, width // side
    first = latents[:1, : rows * cols].reshape(1, rows, cols, -1).permute(0, 3, 1, 2)
    bn = pipe.vae.bn
    std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps).to(first.dtype)
    first = first * std + bn.running_mean.view(1, -1, 1, 1).to(first.dtype)
    return pipe._unpatchify_latents(first)


def to_image(pixels: torch.Tensor) -> Image.Image:
    """A decoder's first output in [-1, 1] as a picture."""
    array = ((pixels[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)
