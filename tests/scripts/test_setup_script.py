"""`scripts/setup` (which `scripts/serve` and `scripts/test` run first) installs once and then starts
offline: it runs pip only when pyproject.toml, constraints.txt or the extras changed.

Run on a copy of the script in a scratch project whose `.venv/bin/python` records its calls."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../calls.log"
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup", tmp_path / "scripts" / "setup")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "constraints.txt").write_text("torch==2.13.0\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "seqdream"):
        (bin_dir / name).write_text(FAKE_PYTHON)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def _setup(project: Path, extras: str = "") -> tuple[list[str], str]:
    """Run setup; returns the pip calls it made and what it said."""
    log = project / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "SEQDREAM_EXTRAS": extras}
    done = subprocess.run(["bash", "scripts/setup"], cwd=project, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return (log.read_text().splitlines() if log.exists() else []), done.stderr


@pytest.mark.slow
def test_setup_installs_once_then_starts_without_pip(tmp_path: Path) -> None:
    project = _project(tmp_path)
    calls, said = _setup(project)
    assert any("install" in call and "-e ." in call for call in calls), calls
    assert "installing seqdream" in said and ".venv/bin/seqdream" in said  # says what it does, and where the CLI is
    assert _setup(project) == ([], "")  # current: no pip, no output
    assert _setup(project, "[test]")[0] != []  # other extras: installs them
    assert _setup(project, "[test]")[0] == []
    assert _setup(project)[0] == []  # no extras asked: any install will do
    (project / "constraints.txt").write_text("torch==2.14.0\n")
    assert _setup(project, "[test]")[0] != []  # a changed pin: installs again
    (project / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    assert _setup(project, "[test]")[0] != []
    assert _setup(project, "[test]")[0] == []


def test_serve_and_test_run_setup_first() -> None:
    for script in ("serve", "test"):
        text = (ROOT / "scripts" / script).read_text()
        assert "bash scripts/setup" in text, script
