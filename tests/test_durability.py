"""Nothing accepted is lost: kill -9 mid-job, restart, separate worker processes, sync time-outs."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wavespeed import Client

from conftest import ServerProcess, decode

EDIT_SEQ = "/api/v3/bytedance/seedream-v4/edit-sequential"
# Enough denoising work that a job is still running when the test pulls the plug.
SLOW = {"SEQDREAM_NATIVE_RESOLUTION": "128", "SEQDREAM_NUM_INFERENCE_STEPS": "120"}


def job_row(db: Path, job_id: str) -> dict:
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        return dict(connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())


def wait_status(server: ServerProcess, job_id: str, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with server.client() as client:
        while time.monotonic() < deadline:
            if client.get(f"/api/v3/predictions/{job_id}/result").json()["data"]["status"] == status:
                return
            time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {status}")


@pytest.fixture()
def slow_server(tiny_model: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "slow", tiny_model, SEQDREAM_SYNC_TIMEOUT_S="0.5", **SLOW).start()
    yield process
    process.stop()


def test_kill_9_mid_job_then_restart_completes_every_job(slow_server: ServerProcess) -> None:
    with slow_server.client() as api:
        running = api.post(
            EDIT_SEQ,
            json={"prompt": "a series of 3 images of a comet", "max_images": 3, "size": "1024*1024", "seed": 5},
        ).json()["data"]["id"]
        queued = api.post(EDIT_SEQ, json={"prompt": "a moon", "seed": 6, "size": "1024*1024"}).json()["data"]["id"]
    wait_status(slow_server, running, "processing")
    slow_server.kill()

    db = slow_server.data_dir / "seqdream.db"
    assert job_row(db, running)["status"] == "processing"  # the crash left it mid-flight
    assert job_row(db, queued)["status"] == "created"

    slow_server.start()  # same data folder, same database file
    finished = slow_server.wait_for(running, timeout=120)
    assert finished["status"] == "completed" and len(finished["outputs"]) == 3
    assert slow_server.wait_for(queued, timeout=120)["status"] == "completed"
    assert job_row(db, running)["attempts"] == 2
    with slow_server.client() as api:
        assert decode(api.get(finished["outputs"][0]).content).size == (1024, 1024)
    assert "queued again" in slow_server.log_path.read_text()


def test_sync_mode_timeout_returns_the_running_task(slow_server: ServerProcess) -> None:
    with slow_server.client() as api:
        response = api.post(
            EDIT_SEQ, json={"prompt": "a series of 3 images of a dune", "max_images": 3, "enable_sync_mode": True}
        ).json()
    data = response["data"]
    assert response["code"] == 200 and data["code"] == 5004
    assert data["status"] == "processing" and data["error"].startswith("Sync mode timed out")
    assert data["urls"]["get"] in data["error"]
    # The task keeps running and completes.
    assert slow_server.wait_for(data["id"], timeout=120)["status"] == "completed"

    sdk = Client(api_key=slow_server.api_key, base_url=slow_server.base_url)
    outcome = sdk.run_no_throw(
        "bytedance/seedream-v4/edit-sequential",
        {"prompt": "a series of 3 images of a dune", "max_images": 3},
        enable_sync_mode=True,
    )
    assert outcome["status"] == "processing" and outcome["task_id"] != "unknown"
    assert "Sync mode timed out" in outcome["error"]
    slow_server.wait_for(outcome["task_id"], timeout=120)


def test_separate_worker_processes_share_the_queue(tiny_model: Path, tmp_path: Path) -> None:
    api_only = ServerProcess(tmp_path / "shared", tiny_model, SEQDREAM_INLINE_WORKERS="0").start()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "seqdream.cli.main", "worker"],
            env=api_only.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        with api_only.client() as api:
            ids = [
                api.post(EDIT_SEQ, json={"prompt": f"a boat number {i}", "size": "1024*1024"}).json()["data"]["id"]
                for i in range(8)
            ]
        for job_id in ids:
            assert api_only.wait_for(job_id, timeout=120)["status"] == "completed"
        rows = [job_row(api_only.data_dir / "seqdream.db", job_id) for job_id in ids]
        assert all(row["attempts"] == 1 for row in rows)  # no job was run twice
        assert len({row["worker_id"] for row in rows}) == 2  # both workers took jobs
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
        api_only.stop()
    assert all(worker.returncode == 0 for worker in workers)  # SIGTERM stops them cleanly
