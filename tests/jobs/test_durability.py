"""Nothing accepted is lost: kill -9 mid-job, restart, separate worker processes, sync time-outs."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from wavespeed import Client

from seqdream_devkit.images import decode
from seqdream_devkit.server_process import free_port
from support.database import job_row
from support.disk import fill
from support.servers import LocalServer, start_worker

pytestmark = pytest.mark.slow  # starts servers or processes

EDIT_SEQ = "/api/v3/bytedance/seedream-v4/edit-sequential"
# Enough denoising work that a job is still running when the test pulls the plug.
SLOW = {"SEQDREAM_NATIVE_RESOLUTION": "128", "SEQDREAM_NUM_INFERENCE_STEPS": "120"}
# A killed worker's task is taken back once its lease runs out: long enough that a busy machine's
# late heartbeat is no crash (the task would run a third time), short enough not to wait a minute.
KILLED_LEASE = {"SEQDREAM_JOB_LEASE_S": "8"}
# After the restart nothing needs to be slow: the tasks run again with the usual few steps.
QUICK = {"SEQDREAM_NUM_INFERENCE_STEPS": "4"}


def wait_status(server: LocalServer, job_id: str, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with server.client() as client:
        while time.monotonic() < deadline:
            if client.get(f"/api/v3/predictions/{job_id}/result").json()["data"]["status"] == status:
                return
            time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {status}")


@pytest.fixture()
def slow_server(tiny_model: Path, tmp_path: Path) -> Iterator[LocalServer]:
    process = LocalServer(tmp_path / "slow", tiny_model, SEQDREAM_SYNC_TIMEOUT_S="0.5", **SLOW, **KILLED_LEASE).start()
    yield process
    process.stop()


def test_kill_9_mid_job_then_restart_completes_every_job(slow_server: LocalServer) -> None:
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

    slow_server.env.update(QUICK)  # what survives the crash is the queue, not the step count
    slow_server.start()  # same data folder, same database file
    finished = slow_server.wait_for(running, timeout=120)
    assert finished["status"] == "completed" and len(finished["outputs"]) == 3
    assert slow_server.wait_for(queued, timeout=120)["status"] == "completed"
    assert job_row(db, running)["attempts"] == 2
    with slow_server.client() as api:
        assert decode(api.get(finished["outputs"][0]).content).size == (1024, 1024)
    assert "queued again" in slow_server.log_path.read_text()


def test_sync_mode_timeout_returns_the_running_task(slow_server: LocalServer) -> None:
    with slow_server.client() as api:
        response = api.post(
            EDIT_SEQ, json={"prompt": "a series of 2 images of a dune", "max_images": 2, "enable_sync_mode": True}
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
        {"prompt": "a series of 2 images of a dune", "max_images": 2},
        enable_sync_mode=True,
    )
    assert outcome["status"] == "processing" and outcome["task_id"] != "unknown"
    assert "Sync mode timed out" in outcome["error"]
    slow_server.wait_for(outcome["task_id"], timeout=120)


def test_separate_worker_processes_share_the_queue(tiny_model: Path, tmp_path: Path) -> None:
    """Waits on states, not on time: both workers are ready (their probe ports say so) before any
    task is queued, and the lease is long enough that a busy machine's slow heartbeat is no crash."""
    api_only = LocalServer(
        tmp_path / "shared", tiny_model, SEQDREAM_INLINE_WORKERS="0", SEQDREAM_JOB_LEASE_S="60"
    ).start()
    ports = [free_port() for _ in range(2)]
    workers = [start_worker(api_only.env, "--metrics-port", str(port)) for port in ports]
    try:
        for port in ports:
            wait_ready(f"http://127.0.0.1:{port}/health/ready")
        with api_only.client() as api:
            ids = [
                api.post(EDIT_SEQ, json={"prompt": f"a boat number {i}", "size": "1024*1024"}).json()["data"]["id"]
                for i in range(8)
            ]
        for job_id in ids:
            assert api_only.wait_for(job_id, timeout=300)["status"] == "completed"
        rows = [job_row(api_only.data_dir / "seqdream.db", job_id) for job_id in ids]
        assert all(row["attempts"] == 1 for row in rows)  # no job was run twice
        assert len({row["worker_id"] for row in rows}) == 2  # both workers took jobs
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
        api_only.stop()
    assert all(worker.returncode == 0 for worker in workers)  # SIGTERM stops them cleanly


def wait_ready(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} never became ready"
        time.sleep(0.1)


def test_kill_9_of_the_api_and_a_separate_worker_mid_job_loses_nothing(tiny_model: Path, tmp_path: Path) -> None:
    api_server = LocalServer(tmp_path / "shared", tiny_model, "--workers", "0", **SLOW, **KILLED_LEASE).start()

    first = start_worker(api_server.env)
    with api_server.client() as api:
        ids = [
            api.post(EDIT_SEQ, json={"prompt": f"a series of 2 images of kite {i}", "max_images": 2,
                                     "size": "1024*1024"}).json()["data"]["id"]
            for i in range(5)
        ]  # fmt: skip
    wait_status(api_server, ids[0], "processing", timeout=60)
    first.kill()  # kill -9 the worker mid-job ...
    first.wait(timeout=10)
    api_server.kill()  # ... and the API
    db = api_server.data_dir / "seqdream.db"
    assert job_row(db, ids[0])["status"] == "processing"

    api_server.env.update(QUICK)
    api_server.start()
    second = start_worker(api_server.env)
    try:
        finished = [api_server.wait_for(job_id, timeout=180) for job_id in ids]
    finally:
        second.terminate()
        second.wait(timeout=30)
        api_server.stop()
    assert [job["status"] for job in finished] == ["completed"] * 5
    assert all(len(job["outputs"]) == 2 for job in finished)
    assert job_row(db, ids[0])["attempts"] == 2  # the interrupted one ran again, once


def test_a_really_full_disk_loses_nothing(tiny_model: Path, tmp_path: Path, small_disk: Path) -> None:
    import base64
    import os

    from PIL import Image

    server = LocalServer(
        tmp_path / "data", tiny_model, SEQDREAM_STORAGE_DIR=str(small_disk), SEQDREAM_STORAGE_RETRY_S="1",
        SEQDREAM_OUTPUT_FORMAT="png",
    ).start()  # fmt: skip
    filler = fill(small_disk)  # fill the disk, then give back a sliver
    with open(filler, "r+b") as handle:
        handle.truncate(os.path.getsize(filler) - 64 * 1024)
    noise = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")  # ~270 KB: more than the free sliver
    try:
        with server.client() as api:
            refused = api.post(EDIT_SEQ, json={"prompt": "p", "images": [base64.b64encode(buffer.getvalue()).decode()]})
            assert refused.status_code == 503 and "nothing was queued" in refused.json()["message"]
            job_id = api.post(EDIT_SEQ, json={"prompt": "a noisy sky", "size": "2048*2048"}).json()["data"]["id"]
            deadline = time.monotonic() + 60
            while "storage unavailable" not in job_row(server.data_dir / "seqdream.db", job_id)["error"]:
                assert time.monotonic() < deadline, "the full disk was never hit"
                time.sleep(0.1)
            assert api.get(f"/api/v3/predictions/{job_id}/result").json()["data"]["status"] in ("created", "processing")
            filler.unlink()  # space comes back
            done = server.wait_for(job_id, timeout=60)
            assert done["status"] == "completed", done
            assert decode(api.get(done["outputs"][0]).content).size == (2048, 2048)
            listed = api.get("/api/v3/predictions").json()["data"]["items"]
            assert [item["id"] for item in listed] == [job_id]  # the refused request left no task behind
    finally:
        server.stop()
