"""`.env.example` and docs/configuration.md list every setting, each with its real default."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from seqdream.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _defaults() -> dict[str, str]:
    """Every setting's environment name and its default, written the way a .env line writes it."""
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("SEQDREAM_")}
    try:
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    finally:
        os.environ.update(saved)
    written: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name == "model":
            text = "builtin"
        elif value is None:
            text = ""
        elif isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, list):
            text = ",".join(value)
        elif isinstance(value, float) and value.is_integer():
            text = str(int(value))
        else:
            text = str(value)
        written[f"SEQDREAM_{name.upper()}"] = text
    return written


def test_env_example_lists_every_setting_at_its_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    listed = dict(re.findall(r"^# (SEQDREAM_\w+)=(.*)$", "\n".join(lines), flags=re.M))
    assert listed == _defaults()
    # Uncommented, the file is a working .env: pydantic-settings reads it to the same settings.
    for name in [name for name in os.environ if name.startswith("SEQDREAM_")]:
        monkeypatch.delenv(name)
    uncommented = [re.sub(r"^# (SEQDREAM_)", r"\1", line) for line in lines if not re.match(r"^# SEQDREAM_\w+=$", line)]
    (tmp_path / ".env").write_text("\n".join(uncommented) + "\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().model_dump() == Settings(_env_file=None).model_dump()  # type: ignore[call-arg]


def test_the_configuration_reference_names_every_setting() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in _defaults() if f"`{name}`" not in reference and f"{name}`" not in reference]
    assert missing == []
