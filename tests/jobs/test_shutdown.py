"""Stopping the service: Ctrl-C/SIGTERM let a running job finish within the grace period, else hand it
back to the queue at once (no lease to wait out); the process exits cleanly; a busy port fails first."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqdream.db import migrate
from seqdream.engines.flux2_klein import cpu_has_native_bfloat16
from support.database import job_row
from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

SEQUENTIAL = "/api/v3/bytedance/seedream-v4/sequential"
LONG_JOB = {"SEQDREAM_NATIVE_RESOLUTION": "192", "SEQDREAM_NUM_INFERENCE_STEPS": "200"}


def submit_and_wait_processing(server: LocalServer, max_images: int) -> str:
    with server.client() as api:
        body = {"prompt": f"a series of {max_images} images of a kite", "max_images": max_images, "size": "1024*1024"}
        job_id = api.post(SEQUENTIAL, json=body).json()["data"]["id"]
        deadline = time.monotonic() + 30
        while api.get(f"/api/v3/predictions/{job_id}/result").json()["data"]["status"] != "processing":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.02)
    return job_id


def stop_with(server: LocalServer, sig: int) -> tuple[int, float]:
    assert server.process is not None
    started = time.monotonic()
    server.process.send_signal(sig)
    code = server.process.wait(timeout=60)
    return code, time.monotonic() - started


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_job_past_the_grace_period_is_handed_back_and_finishes_after_restart(
    tiny_model: Path, tmp_path: Path, sig: int
) -> None:
    server = LocalServer(
        tmp_path / "data", tiny_model, SEQDREAM_SHUTDOWN_GRACE_S="0.5", SEQDREAM_JOB_LEASE_S="60", **LONG_JOB
    ).start()
    job_id = submit_and_wait_processing(server, 14)
    code, took = stop_with(server, sig)
    log = server.log_path.read_text()
    assert code == 0 and took < 30, log
    assert "terminate called" not in log and "Traceback" not in log, log
    assert "handed back to the queue" in log
    row = job_row(server.data_dir / "seqdream.db", job_id)
    assert (row["status"], row["attempts"], row["worker_id"]) == ("created", 0, None)  # not a crashed attempt
    if sig != signal.SIGINT:
        return  # what follows a hand-back does not depend on the signal that caused it

    server.env["SEQDREAM_NUM_INFERENCE_STEPS"] = "2"
    server.start()
    started = time.monotonic()
    finished = server.wait_for(job_id, timeout=40)
    assert finished["status"] == "completed" and len(finished["outputs"]) == 14
    assert time.monotonic() - started < 40  # no 60 s lease to wait out
    assert job_row(server.data_dir / "seqdream.db", job_id)["attempts"] == 1
    server.stop()


def test_a_job_within_the_grace_period_finishes_before_exit(tiny_model: Path, tmp_path: Path) -> None:
    server = LocalServer(
        tmp_path / "data", tiny_model, SEQDREAM_SHUTDOWN_GRACE_S="60", SEQDREAM_NUM_INFERENCE_STEPS="60",
        SEQDREAM_NATIVE_RESOLUTION="128",
    ).start()  # fmt: skip
    job_id = submit_and_wait_processing(server, 2)
    code, _ = stop_with(server, signal.SIGINT)
    log = server.log_path.read_text()
    assert code == 0 and "terminate called" not in log, log
    row = job_row(server.data_dir / "seqdream.db", job_id)
    assert row["status"] == "completed" and row["attempts"] == 1


def test_a_busy_port_fails_before_any_worker_claims_a_job(tiny_model: Path, tmp_path: Path) -> None:
    api_only = LocalServer(tmp_path / "data", tiny_model, "--workers", "0").start()
    with api_only.client() as api:
        job_id = api.post(SEQUENTIAL, json={"prompt": "a dog", "max_images": 1}).json()["data"]["id"]
    assert api_only.process is not None  # an API-only process serves without loading the model libraries
    assert "libtorch" not in Path(f"/proc/{api_only.process.pid}/maps").read_text()
    second = subprocess.run(
        [sys.executable, "-m", "seqdream.cli.main", "serve", "--workers", "1"],
        env=api_only.env,  # the same port, database and storage
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode != 0
    assert "address already in use" in second.stderr.lower(), second.stderr
    assert "worker" not in second.stderr.split("address already in use")[0].lower().replace("workers", "")
    row = job_row(api_only.data_dir / "seqdream.db", job_id)
    assert (row["status"], row["attempts"]) == ("created", 0)
    api_only.stop()


def test_a_job_in_a_slow_step_is_handed_back_without_waiting_for_the_step(tiny_model: Path, tmp_path: Path) -> None:
    """Grace over, the job goes back to the queue at once, not at the end of the running denoising step
    (a 1024-pixel step of the tiny model takes tens of seconds here), and the process exits: a
    container's stop timeout does not kill it with the job still claimed."""
    server = LocalServer(
        tmp_path / "data", tiny_model, SEQDREAM_SHUTDOWN_GRACE_S="0.5", SEQDREAM_JOB_LEASE_S="120",
        SEQDREAM_NATIVE_RESOLUTION="1024", SEQDREAM_NUM_INFERENCE_STEPS="50",
    ).start()  # fmt: skip
    job_id = submit_and_wait_processing(server, 1)
    time.sleep(1)  # inside the first step
    code, took = stop_with(server, signal.SIGTERM)
    log = server.log_path.read_text()
    assert code == 0 and took < 15, (took, log)
    assert f"job {job_id}: handed back to the queue (shutdown)" in log
    assert "exiting while a handed-back job's step winds down" in log  # it knew, and did not wait for the step
    row = job_row(server.data_dir / "seqdream.db", job_id)
    assert (row["status"], row["attempts"], row["worker_id"]) == ("created", 0, None)


def _wait_until_ready(server: LocalServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with server.client() as api:
        while api.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline, server.log_path.read_text()
            time.sleep(0.05)


def test_the_log_has_one_line_per_start_up_step_and_no_library_chatter(tiny_model: Path, tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "data", tiny_model, fresh=True).start()  # what importing the libraries prints
    _wait_until_ready(server)
    code, _ = stop_with(server, signal.SIGINT)
    log = server.log_path.read_text()
    assert code == 0, log
    steps = [
        f"listening on http://127.0.0.1:{server.port} (playground: /, API docs: /docs)",
        "seqdream 0.1.0 serving; database sqlite:///",
        f"at schema {migrate.head_revision()}; 1 in-process worker(s)",
        f"model {tiny_model} loaded in",  # with its device and thread count
        "stopping: no job running",
        "seqdream: stopped",
    ]
    positions = [log.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), (positions, log)
    assert f" threads ({'bfloat16' if cpu_has_native_bfloat16() else 'float32'})" in log  # SEQDREAM_DTYPE=auto
    for chatter in ("alembic", "Loading pipeline components", "Loading weights", "it/s]", "Started server process",
                    "Waiting for application", "Uvicorn running", "torchao", "Shutting down"):  # fmt: skip
        assert chatter not in log, (chatter, log)
    assert not list((tmp_path / "data").glob("seqdream.db-*"))  # stopped, it closed the database: one file
    (tmp_path / "data" / "seqdream.db").unlink()  # an empty database is migrated, in one line
    server.start()
    _wait_until_ready(server)
    server.stop()
    assert f"migrated from empty to {migrate.head_revision()}" in server.log_path.read_text()


def test_ctrl_c_says_which_job_runs_and_a_second_one_hands_it_back_at_once(tiny_model: Path, tmp_path: Path) -> None:
    server = LocalServer(
        tmp_path / "data", tiny_model, SEQDREAM_SHUTDOWN_GRACE_S="300", SEQDREAM_JOB_LEASE_S="120", **LONG_JOB
    ).start()
    job_id = submit_and_wait_processing(server, 14)
    assert server.process is not None
    server.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while "press Ctrl-C again" not in server.log_path.read_text():
        assert time.monotonic() < deadline, server.log_path.read_text()
        time.sleep(0.05)
    assert f"stopping: job {job_id} may finish within 300s, then goes back to the queue" in server.log_path.read_text()
    code, took = stop_with(server, signal.SIGINT)  # well inside the 300 s grace
    log = server.log_path.read_text()
    assert code == 0 and took < 60, (took, log)
    assert f"stopping now: handing job {job_id} back to the queue" in log
    row = job_row(server.data_dir / "seqdream.db", job_id)
    assert (row["status"], row["attempts"], row["worker_id"]) == ("created", 0, None)
