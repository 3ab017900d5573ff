"""`seqdream health` (the image's HEALTHCHECK) follows whichever process runs: serve on any port, a
worker on its metrics port or by its heartbeat; and a worker's metrics port answers the probes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from seqdream_devkit.server_process import free_port
from support.servers import TEST_ENV, LocalServer, start_worker

pytestmark = pytest.mark.slow  # starts servers and workers


def health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seqdream.cli.main", "health"], env=env, capture_output=True, text=True, timeout=60
    )


def wait_healthy(env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + timeout
    while True:
        result = health(env)
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_health_follows_serve_on_its_own_port(tiny_model: Path, tmp_path: Path) -> None:
    health_file = str(tmp_path / "health.json")
    server = LocalServer(tmp_path / "data", tiny_model, SEQDREAM_HEALTH_FILE=health_file).start()
    env = {**os.environ, "SEQDREAM_HEALTH_FILE": health_file}
    try:
        result = health(env)
        assert result.returncode == 0, result.stderr
        assert f":{server.port}/health/live: HTTP 200" in result.stdout
    finally:
        server.stop()
    result = health(env)
    assert result.returncode == 1 and "not running" in result.stderr


def test_a_worker_answers_probes_on_its_metrics_port(tiny_model: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **TEST_ENV, "SEQDREAM_DATA_DIR": str(tmp_path), "SEQDREAM_MODEL": str(tiny_model),
           "SEQDREAM_HEALTH_FILE": str(tmp_path / "health.json")}  # fmt: skip
    worker = start_worker(env, "--metrics-port", str(port))
    try:
        result = wait_healthy(env)
        assert result.returncode == 0 and f":{port}/health/live" in result.stdout, result.stderr
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/health/live").json() == {"status": "ok"}
        deadline = time.monotonic() + 60
        while (ready := httpx.get(base + "/health/ready")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.json() == {"status": "ready", "engine": "ready", "database": "ok", "storage": "ok",
                                "workers_alive": 1}  # fmt: skip
        assert b"seqdream_" in httpx.get(base + "/metrics").content
        assert httpx.get(base + "/nope").status_code == 404
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert health(env).returncode == 1


def test_a_worker_without_a_port_is_healthy_by_its_heartbeat(tiny_model: Path, tmp_path: Path) -> None:
    env = {**os.environ, **TEST_ENV, "SEQDREAM_DATA_DIR": str(tmp_path), "SEQDREAM_MODEL": str(tiny_model),
           "SEQDREAM_HEALTH_FILE": str(tmp_path / "health.json")}  # fmt: skip
    worker = start_worker(env)
    try:
        result = wait_healthy(env)
        assert result.returncode == 0 and "heartbeat" in result.stdout, result.stderr
    finally:
        worker.terminate()
        worker.wait(timeout=30)
