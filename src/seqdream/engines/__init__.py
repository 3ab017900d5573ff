"""Image engines: a plan in, images and timings out."""

from seqdream.engines.base import Engine, EngineError, GenerationPlan, GenerationResult, ProgressCallback, Steps

__all__ = ["Engine", "EngineError", "GenerationPlan", "GenerationResult", "ProgressCallback", "Steps"]
