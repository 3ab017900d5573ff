"""Engines by name. Third-party engines plug in through the `seqdream.engines` entry point."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from seqdream.builtin import resolve_model
from seqdream.config import Settings
from seqdream.engines.base import Engine, EngineError


def _flux2_klein(settings: Settings) -> Engine:
    from seqdream.engines.acceleration import Acceleration
    from seqdream.engines.flux2_klein import Flux2KleinEngine, Flux2KleinOptions

    return Flux2KleinEngine(
        Flux2KleinOptions(
            model=resolve_model(settings.model),
            device=settings.device,
            dtype=settings.dtype,
            native_resolution=settings.native_resolution,
            num_inference_steps=settings.num_inference_steps,
            guidance_scale=settings.guidance_scale,
            guidance_until=settings.guidance_until,
            max_sequence_length=settings.max_sequence_length,
            max_batch=settings.max_batch,
            preview_every_s=settings.preview_every_s,
            preview_decoder=settings.preview_decoder,
            follow_cpu_load=settings.threads_follow_load and not settings.threads,
            acceleration=Acceleration(
                compile=settings.compile,
                warmup_sizes=settings.warmup_sizes,
                quantize=settings.quantize,
                cache=settings.cache,
                cache_threshold=settings.cache_threshold,
            ),
        )
    )


BUILTIN_ENGINES: dict[str, Callable[[Settings], Engine]] = {"flux2-klein": _flux2_klein}


def available_engines() -> dict[str, Callable[[Settings], Engine]]:
    engines = dict(BUILTIN_ENGINES)
    for entry in entry_points(group="seqdream.engines"):
        engines.setdefault(entry.name, entry.load())
    return engines


def load_engine(settings: Settings) -> Engine:
    factories = available_engines()
    if settings.engine not in factories:
        raise EngineError(f"unknown engine {settings.engine!r}; available: {', '.join(sorted(factories))}")
    return factories[settings.engine](settings)
