"""Factories shared by the server, the worker command and the one-shot CLI."""

from __future__ import annotations

from seqdream.config import Settings
from seqdream.engines.registry import load_engine
from seqdream.jobs.worker import Detector, EngineHolder
from seqdream.safety.nsfw import DisabledDetector, NudeNetDetector


def build_engine_holder(settings: Settings) -> EngineHolder:
    return EngineHolder(lambda: load_engine(settings))


def build_detector(settings: Settings) -> Detector:
    return NudeNetDetector(settings.nsfw_threshold) if settings.nsfw_check else DisabledDetector()
