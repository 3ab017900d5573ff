"""Forked `seqdream` commands answer as fresh processes do: exit status, signals, environment, log."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from seqdream_devkit.forked import ForkedProcess, loads_a_model, start_seqdream
from support.servers import TEST_ENV

pytestmark = pytest.mark.slow  # starts processes


def _env(tmp_path: Path, model: Path | str) -> dict[str, str]:
    return {**os.environ, **TEST_ENV, "SEQDREAM_DATA_DIR": str(tmp_path / "data"), "SEQDREAM_MODEL": str(model)}


def test_a_forked_worker_has_its_own_exit_status_log_and_settings(tiny_model: Path, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    bad = start_seqdream(["worker", "--device", "cuda:x"], _env(tmp_path, tiny_model), log)
    assert isinstance(bad, ForkedProcess) and bad.pid != os.getpid()
    assert bad.wait(timeout=60) == 2  # typer's exit status for a bad setting
    assert "invalid setting: device" in log.read_text() and "Traceback" not in log.read_text()


def test_a_forked_worker_dies_by_the_signal_it_is_sent(tiny_model: Path, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    worker = start_seqdream(["worker"], _env(tmp_path, tiny_model), log)
    assert isinstance(worker, ForkedProcess)
    with pytest.raises(subprocess.TimeoutExpired):
        worker.wait(timeout=1)  # a worker waits for work
    assert worker.poll() is None
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    assert (tmp_path / "data" / "seqdream.db").exists()  # it ran in its own SEQDREAM_DATA_DIR


def test_only_commands_that_load_a_model_are_forked(tmp_path: Path) -> None:
    assert (
        loads_a_model(["worker"], {})
        and loads_a_model(["serve"], {})
        and loads_a_model(["serve", "--workers", "2"], {})
    )
    assert not loads_a_model(["serve", "--workers", "0"], {}) and not loads_a_model(
        ["serve"], {"SEQDREAM_INLINE_WORKERS": "0"}
    )
    assert not loads_a_model(["keys", "list"], {})
    log = tmp_path / "db.log"
    done = start_seqdream(["db", "current"], _env(tmp_path, "unused"), log)
    assert isinstance(done, subprocess.Popen) and done.wait(timeout=60) == 0
    assert log.read_text().strip() == "none"  # a fresh data folder has no schema yet
