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
