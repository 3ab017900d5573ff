"""A CPU server beside busy processes: the model's thread count follows the load (seqdream.cpu.load),
through the real service and a real `seqdream serve` process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from seqdream.cpu.threads import available_cores
from seqdream_devkit.cpu_hogs import cpu_bound_processes
from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

GROUP = {"prompt": "a series of 4 images of a kite", "max_images": 4, "size": "1024*1024", "enable_sync_mode": True}


def threads_report(server: LocalServer) -> dict:
    with server.client() as api:
        return api.get("/health").json()["threads"]


def test_beside_busy_processes_the_model_runs_on_the_cores_they_leave(tiny_model: Path, tmp_path: Path) -> None:
    cores = available_cores()
    server = LocalServer(tmp_path / "data", tiny_model, fresh=True, SEQDREAM_THREADS_FOLLOW_LOAD="true")
    server.env.pop("SEQDREAM_THREADS", None)  # what a parallel test run pins (support.servers.TEST_ENV)
    server.start()
    try:
        with server.client() as api:
            assert (
                api.post("/api/v3/bytedance/seedream-v4/sequential", json=GROUP).json()["data"]["status"] == "completed"
            )
        report = threads_report(server)
        assert report["follows_load"] is True and report["torch"] == cores
        with cpu_bound_processes(cores):
            deadline = time.monotonic() + 60
            while threads_report(server)["other_processes_cores"] < 0.75 * cores:  # the average has seen them
                assert time.monotonic() < deadline, threads_report(server)
                time.sleep(0.2)
            with server.client() as api:
                data = api.post("/api/v3/bytedance/seedream-v4/sequential", json=GROUP).json()["data"]
            assert data["status"] == "completed" and len(data["outputs"]) == 4
            assert threads_report(server)["torch_now"] == 1
    finally:
        server.stop()


def test_a_pinned_thread_count_does_not_follow(tiny_model: Path, tmp_path: Path) -> None:
    server = LocalServer(
        tmp_path / "data", tiny_model, SEQDREAM_THREADS="1", SEQDREAM_THREADS_FOLLOW_LOAD="true"
    ).start()
    try:
        report = threads_report(server)
        assert report["follows_load"] is False and report["reason"] == "SEQDREAM_THREADS"
    finally:
        server.stop()
