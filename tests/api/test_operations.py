"""What operators scrape and probe: /metrics in Prometheus format, liveness and readiness."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from seqdream_devkit.server_process import free_port
from support.servers import LocalServer, start_seqdream, start_worker

pytestmark = pytest.mark.slow  # starts servers or processes

EDIT_SEQ = "/api/v3/bytedance/seedream-v4/edit-sequential"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_the_queue_latencies_and_failures(server: LocalServer, api: httpx.Client) -> None:
    before = samples(api.get("/metrics").text)
    done = api.post(EDIT_SEQ, json={"prompt": "a series of 2 images of a kite", "max_images": 2, "size": "1024*1024"})
    broken = api.post(EDIT_SEQ, json={"prompt": "edit", "images": ["http://no-such-host.invalid/a.png"]})
    assert server.wait_for(done.json()["data"]["id"])["status"] == "completed"
    assert server.wait_for(broken.json()["data"]["id"])["status"] == "failed"
    response = api.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)

    def grew(name: str, by: float, **labels: str) -> bool:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0) >= by

    assert grew("seqdream_job_duration_seconds_count", 1, outcome="completed")
    assert grew("seqdream_job_duration_seconds_count", 1, outcome="failed")
    assert grew("seqdream_job_failures_total", 1, kind="input")
    assert grew("seqdream_images_generated_total", 2)
    assert grew("seqdream_image_inference_seconds_count", 2)
    assert grew("seqdream_queue_wait_seconds_count", 2)  # both were claimed once
    again = api.post(EDIT_SEQ, json={"prompt": "a series of 2 images of a kite", "max_images": 2, "size": "1024*1024",
                                      "seed": 9})  # fmt: skip
    assert server.wait_for(again.json()["data"]["id"])["status"] == "completed"
    scored = before.get(("seqdream_eta_error_ratio_count", ()), 0) + 1  # measured earlier: its estimate is scored
    deadline = time.monotonic() + 10  # beside the work, a moment after the task's end
    while samples(api.get("/metrics").text).get(("seqdream_eta_error_ratio_count", ()), 0) < scored:
        assert time.monotonic() < deadline, "the ETA of a task whose kind was measured was not scored"
        time.sleep(0.1)
    assert after[("seqdream_jobs", (("status", "completed"),))] >= 1
    assert after[("seqdream_jobs", (("status", "failed"),))] >= 1
    assert ("seqdream_jobs", (("status", "created"),)) in after  # every status is reported, zeros too
    assert after[("seqdream_engine_state", (("state", "ready"),))] == 1
    assert ("seqdream_webhooks_pending", ()) in after


def test_liveness_and_readiness(server: LocalServer, tiny_model: Path, tmp_path: Path) -> None:
    assert httpx.get(f"{server.base_url}/health/live").json() == {"status": "ok"}
    ready = httpx.get(f"{server.base_url}/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "storage": "ok", "engine": "ready", "workers_alive": 1}

    # A worker whose model cannot load is alive but not ready: it keeps jobs queued.
    broken = LocalServer(tmp_path / "broken", tmp_path / "no-model-here")
    process = start_seqdream(["serve"], broken.env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"{broken.base_url}/health/ready", timeout=2)
                if response.json().get("engine", "").startswith("unavailable"):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the broken server never reported its engine"
            time.sleep(0.2)
        assert response.status_code == 503 and response.json()["status"] == "not ready"
        # Why, as the database's and storage's reasons are given: the engine's one line.
        assert (
            response.json()["engine"]
            == f"unavailable: EngineError: could not load model '{tmp_path / 'no-model-here'}': no such folder"
        )
        assert httpx.get(f"{broken.base_url}/health/live").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_worker_process_serves_its_own_metrics(server: LocalServer) -> None:
    port = free_port()
    worker = start_worker(server.env, "--metrics-port", str(port))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                if 'seqdream_engine_state{state="ready"} 1.0' in text:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the worker's metrics never showed a ready engine"
            time.sleep(0.2)
        assert "seqdream_jobs{" in text and "seqdream_job_duration_seconds" in text
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert worker.returncode == 0
