"""Optional speed-ups of the FLUX.2 transformer, each chosen by a setting and off by default.

- compile: `torch.compile` of the repeated transformer blocks with dynamic shapes. Render sizes
  snap to COMPILE_BUCKET-pixel steps so requests land on few shapes, and a warm-up at load time
  pays the compilation before the first task instead of during it.
- quantize: torchao dynamic FP8 (activations and weights; Ada/Hopper GPUs) or INT8 weight-only
  (anywhere; mainly saves memory).
- cache: MagCache, which skips the transformer on steps whose output is predicted to change little
  (from per-step magnitude ratios calibrated once at load, or shipped in the model folder's
  seqdream.json as `mag_ratios`). `auto` follows the model folder (its `cache` and
  `cache_threshold`: the built-in model turns it on). Only for guided models that sample in many
  steps: at 4 distilled steps every step matters. (diffusers' First Block Cache does not handle
  FLUX.2's fused single blocks.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch

from seqdream.engines.base import EngineError

log = logging.getLogger(__name__)

Quantization = Literal["none", "int8", "fp8"]
Caching = Literal["auto", "none", "magcache"]
COMPILE_BUCKET = 128  # pixels: compiled engines render at multiples of this
FP8_MIN_CAPABILITY = (8, 9)  # Ada Lovelace; Hopper is 9.0
CACHE_THRESHOLD = 0.06  # MagCache's accumulated-error budget when neither setting nor model names one


@dataclass(frozen=True)
class Acceleration:
    compile: bool = False
    warmup_sizes: tuple[tuple[int, int], ...] = ((1024, 1024),)  # compiled at load, batch 1 and 2
    quantize: Quantization = "none"
    cache: Caching = "none"  # "auto": the model folder's choice (see `resolve_cache`)
    cache_threshold: float | None = None  # MagCache's accumulated-error budget; higher skips more

    def describe(self) -> str:
        parts = [f"quantize={self.quantize}"] if self.quantize != "none" else []
        parts += [f"cache={self.cache}@{self.cache_threshold}"] if self.cache != "none" else []
        parts += ["compiled"] if self.compile else []
        return ", ".join(parts) or "none"


def quantize_transformer(transformer: torch.nn.Module, mode: Quantization, device: str) -> None:
    """Replace the transformer's linear weights in place with torchao's quantised tensors."""
    if mode == "none":
        return
    try:
        from torchao.quantization import (
            Float8DynamicActivationFloat8WeightConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError as exc:
        raise EngineError("SEQDREAM_QUANTIZE needs torchao: pip install 'seqdream[gpu]'") from exc
    if mode == "fp8":
        capability = torch.cuda.get_device_capability(device) if device.startswith("cuda") else None
        if capability is None or capability < FP8_MIN_CAPABILITY:
            found = f"compute capability {capability[0]}.{capability[1]}" if capability else device
            raise EngineError(f"SEQDREAM_QUANTIZE=fp8 needs a CUDA GPU of compute capability >= 8.9 (found {found})")
        config: Any = Float8DynamicActivationFloat8WeightConfig()
    else:
        config = Int8WeightOnlyConfig()
    quantize_(transformer, config)


def resolve_cache(accel: Acceleration, declared: dict[str, Any], source: str = "seqdream.json") -> Acceleration:
    """Settings win; `auto` and an unset threshold take the model folder's `cache` and
    `cache_threshold` (its seqdream.json at `source`, passed as `declared`), else no cache at 0.06."""
    cache = declared.get("cache", "none") if accel.cache == "auto" else accel.cache
    if cache not in ("none", "magcache"):
        raise EngineError(f"{source}: cache must be none or magcache, not {cache!r}")
    threshold = accel.cache_threshold if accel.cache_threshold is not None else declared.get("cache_threshold")
    threshold = CACHE_THRESHOLD if threshold is None else threshold
    if not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        raise EngineError(f"{source}: cache_threshold must be a number in (0, 1], not {threshold!r}")
    return replace(accel, cache=cache, cache_threshold=float(threshold))


def enable_cache(transformer: Any, threshold: float, steps: int, mag_ratios: list[float]) -> None:
    from diffusers import MagCacheConfig

    transformer.enable_cache(MagCacheConfig(threshold=threshold, num_inference_steps=steps, mag_ratios=mag_ratios))


def measure_mag_ratios(pipeline: Any, side: int, steps: int, max_sequence_length: int, prompt: str) -> list[float]:
    """MagCache's ratios for a pipeline's checkpoint, from one unguided call (seed 0) at side x side."""
    with MagnitudeRatios(pipeline.transformer) as measured, torch.inference_mode():
        pipeline(
            prompt=[prompt],
            height=side,
            width=side,
            num_inference_steps=steps,
            guidance_scale=1.0,
            generator=torch.Generator(device="cpu").manual_seed(0),
            max_sequence_length=max_sequence_length,
            output_type="latent",
        )
    return measured.ratios


class MagnitudeRatios:
    """Measures MagCache's per-step ratios, mean(|r_t| / |r_t-1|) over tokens, where r is what the
    transformer's blocks add to the image tokens, during one uncached, unguided pipeline call."""

    def __init__(self, transformer: Any) -> None:
        self.head, self.tail = transformer.transformer_blocks[0], transformer.single_transformer_blocks[-1]
        self.ratios: list[float] = []
        self._input: torch.Tensor | None = None
        self._previous: torch.Tensor | None = None

    def __enter__(self) -> MagnitudeRatios:
        self._hooks = [
            self.head.register_forward_pre_hook(self._on_head, with_kwargs=True),
            self.tail.register_forward_hook(self._on_tail),
        ]
        return self

    def __exit__(self, *_: object) -> None:
        for hook in self._hooks:
            hook.remove()

    def _on_head(self, _module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        self._input = kwargs["hidden_states"]

    def _on_tail(self, _module: Any, _args: Any, output: Any) -> None:
        assert self._input is not None
        output = output[-1] if isinstance(output, tuple) else output
        residual = (output[:, -self._input.shape[1] :] - self._input).float()  # the image tokens end the sequence
        if self._previous is None:
            self.ratios.append(1.0)
        else:
            norms = torch.linalg.norm(residual, dim=-1) / (torch.linalg.norm(self._previous, dim=-1) + 1e-8)
            self.ratios.append(round(norms.mean().item(), 4))
        self._previous = residual


def compile_transformer(transformer: Any) -> None:
    """Compile each repeated block once; dynamic shapes let one graph serve every size and batch."""
    transformer.compile_repeated_blocks(dynamic=True)


def compiled_graphs() -> int:
    """Graphs torch.compile has built in this process (grows when a shape needs recompiling)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
