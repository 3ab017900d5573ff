"""An API-only server and real `seqdream worker` processes: a queued task says that no worker runs
while none does, and again after the only worker is killed with -9 (its beats stop; nothing removes
its row), and its task runs once a worker starts."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from seqdream.jobs.presence import NO_WORKER
from support.servers import LocalServer, start_worker

pytestmark = pytest.mark.slow
T2I = "/api/v3/bytedance/seedream-v4"
BODY = {"prompt": "a small red circle", "size": "1024*1024"}


def _until(client: httpx.Client, task: str, done: object, within_s: float = 90) -> dict:  # type: ignore[type-arg]
    """The task's result once `done(data)` holds."""
    deadline = time.monotonic() + within_s
    while not done(data := client.get(f"/api/v3/predictions/{task}/result").json()["data"]):  # type: ignore[operator]
        assert time.monotonic() < deadline, data
        time.sleep(0.1)
    return data  # type: ignore[no-any-return]


def test_an_api_only_server_says_when_no_worker_runs_even_after_a_kill_9(tiny_model: Path, tmp_path: Path) -> None:
    api = LocalServer(tmp_path / "data", tiny_model, "--workers", "0", SEQDREAM_WORKER_BEAT_S="0.25").start()
    try:
        with api.client() as client:
            first = client.post(T2I, json=BODY).json()["data"]
            assert first["warnings"] == [NO_WORKER]

            worker = start_worker(api.env, log=tmp_path / "worker-1.log")
            try:
                data = _until(client, first["id"], lambda d: d["status"] == "completed")
                assert "warnings" not in data and len(data["outputs"]) == 1
                assert client.get("/health").json()["workers_seen"]["ready"] == 1
            finally:
                worker.kill()  # -9: its row stays, its beats stop
                worker.wait(timeout=10)

            second = client.post(T2I, json=BODY).json()["data"]
            data = _until(client, second["id"], lambda d: d.get("warnings") == [NO_WORKER], within_s=30)
            assert data["status"] == "created" and client.get("/health").json()["workers_seen"]["ready"] == 0

            worker = start_worker(api.env, log=tmp_path / "worker-2.log")
            try:
                data = _until(client, second["id"], lambda d: d["status"] == "completed")
                assert "warnings" not in data
            finally:
                worker.terminate()
                worker.wait(timeout=30)
    finally:
        api.stop()
