"""The built-in model, shipped with the package.

`MODEL_DIR` holds a small `Flux2KleinPipeline` trained from scratch by `training/train_builtin.py`
on the world of shapes in `seqdream_devkit` (a development package the service never imports);
the service uses it when no other model is configured, so it works offline on a CPU.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_MODEL = "builtin"  # the name that selects it: SEQDREAM_MODEL=builtin (the default)
MODEL_DIR = Path(__file__).parent / "model"


def resolve_model(name: str) -> str:
    """A model setting as `from_pretrained` takes it: the built-in model's folder, or as given."""
    return str(MODEL_DIR) if name == BUILTIN_MODEL else name
