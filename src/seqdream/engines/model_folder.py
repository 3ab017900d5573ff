"""A model folder's own settings file, `seqdream.json` (sampling defaults, MagCache ratios, the
words a small model knows): read without importing torch, so the API and the CLI stay light."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seqdream.engines.base import EngineError

MODEL_DEFAULTS_FILE = "seqdream.json"  # optional, in a model folder


def model_defaults(model: str) -> dict[str, Any]:
    """The model folder's own seqdream.json, or {} (a hub id, or a folder without one)."""
    defaults_file = Path(model) / MODEL_DEFAULTS_FILE
    if not defaults_file.is_file():
        return {}
    try:
        return dict(json.loads(defaults_file.read_text()))
    except ValueError as exc:
        raise EngineError(f"{defaults_file} is not valid JSON: {exc}") from exc


def check_folder(model: str) -> None:
    """A model that can only be a path is a folder, and a local model folder holds every part its
    model_index.json names (diffusers, missing one, reports a config.json absent from the folder
    itself). A hub id ("org/name") is left to the loader."""
    folder = Path(model)
    if not folder.is_dir() and (model.startswith(("/", ".", "~")) or model.count("/") > 1):
        raise EngineError(f"could not load model {model!r}: no such folder")
    index = folder / "model_index.json"
    if not index.is_file():
        return
    try:
        parts = dict(json.loads(index.read_text()))
    except (OSError, ValueError, TypeError):
        return  # unreadable, not JSON, or not an object: the loader says what is wrong with it
    named = [name for name, value in parts.items() if isinstance(value, list) and any(value)]  # [library, class]
    missing = [name for name in named if not (folder / name).is_dir()]
    if missing:
        raise EngineError(
            f"could not load model {model!r}: its model_index.json names {', '.join(missing)}, "
            "which the folder lacks (copy the whole model folder)"
        )
