"""The composition root: which device each worker gets, and one engine per device."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from seqdream.config import Settings
from seqdream.services import Services, worker_devices


def test_workers_take_one_gpu_each_when_several_are_visible() -> None:
    assert worker_devices("auto", 4, gpus=2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert worker_devices("cuda", 3, gpus=3) == ["cuda:0", "cuda:1", "cuda:2"]
    assert worker_devices("auto", 2, gpus=1) == ["auto", "auto"]  # one GPU or none: one shared model
    assert worker_devices("cuda:1", 2, gpus=4) == ["cuda:1", "cuda:1"]  # a pinned device stays pinned
    assert worker_devices("cpu", 2, gpus=4) == ["cpu", "cpu"]


def test_device_setting_accepts_a_gpu_index_only() -> None:
    assert Settings(device="cuda:3").device == "cuda:3"
    for bad in ("cuda:", "gpu", "cuda:x", "cpu "):
        with pytest.raises(ValidationError):
            Settings(device=bad)


def test_workers_on_one_device_share_one_engine(tiny_model: Path, tmp_path: Path) -> None:
    services = Services.from_settings(Settings(data_dir=tmp_path, model=str(tiny_model), device="cpu"))
    first, second = services.new_worker(), services.new_worker()
    assert first.engines is second.engines is services.engines
    other = services.new_worker(device="cuda:1")  # not loaded until it runs
    assert other.engines is not first.engines and services.engines is first.engines
    services.close()


def test_a_process_that_runs_workers_is_not_ready_before_they_start(tmp_path: Path) -> None:
    """A worker process answers its probe port before its pool exists: not ready until a worker is
    alive with its model. An API-only process is ready on the database and storage alone."""
    services = Services.from_settings(Settings(data_dir=tmp_path, inline_workers=0))
    try:
        before = services.readiness(None, runs_workers=True)
        assert before["status"] == "not ready" and before["workers_alive"] == 0, before
        assert services.readiness(None, runs_workers=False) == {"status": "ready", "database": "ok", "storage": "ok"}
    finally:
        services.close()
