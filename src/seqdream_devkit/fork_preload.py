"""Imported once by the fork server of `seqdream_devkit.forked`: what every seqdream process with a
model loads, so that its forks start with it loaded. Nothing here runs a thread or a model."""

import diffusers  # noqa: F401
import torch  # noqa: F401
import uvicorn  # noqa: F401
from diffusers import Flux2KleinPipeline  # noqa: F401

import seqdream.api.app  # noqa: F401
import seqdream.cli.main  # noqa: F401
import seqdream.engines.flux2_klein  # noqa: F401
import seqdream.jobs.worker  # noqa: F401
