"""Usage per key, day and model through a real server: the caller's own totals, the operator's view."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

T2I = "/api/v3/bytedance/seedream-v4"
SEQUENTIAL = "/api/v3/bytedance/seedream-v4/sequential"


def finish(client: httpx.Client, path: str, body: dict) -> dict:
    job_id = client.post(path, json=body).json()["data"]["id"]
    deadline = time.monotonic() + 60
    while (data := client.get(f"/api/v3/predictions/{job_id}/result").json()["data"])["status"] != "completed":
        assert data["status"] in ("created", "processing") and time.monotonic() < deadline, data
        time.sleep(0.05)
    return data


def test_usage_counts_tasks_images_and_model_seconds_per_day_and_model(server: LocalServer) -> None:
    key = server.cli("keys", "create", "--name", "usage-team").stdout.strip()
    today = datetime.now(UTC).date().isoformat()
    with server.client(key) as client:
        assert client.get("/api/v3/usage").json()["data"]["totals"] == {
            "tasks": 0, "failed": 0, "images": 0, "model_seconds": 0,
        }  # fmt: skip
        single = finish(client, T2I, {"prompt": "a red circle"})
        group = finish(client, SEQUENTIAL, {"prompt": "a series of 2 images of a blue square", "max_images": 4})
        assert len(single["outputs"]) == 1 and len(group["outputs"]) == 2
        usage = client.get("/api/v3/usage", params={"from": today, "to": today}).json()["data"]
    assert usage["from"] == usage["to"] == today
    by_model = {row["model"]: row for row in usage["days"]}
    assert set(by_model) == {"bytedance/seedream-v4", "bytedance/seedream-v4/sequential"}
    assert by_model["bytedance/seedream-v4"]["images"] == 1 and by_model["bytedance/seedream-v4"]["tasks"] == 1
    assert by_model["bytedance/seedream-v4/sequential"]["images"] == 2
    assert all(row["date"] == today and row["model_seconds"] > 0 for row in usage["days"])
    assert usage["totals"]["tasks"] == 2 and usage["totals"]["images"] == 3
    # Inference time as the tasks report it, summed.
    reported = (single["timings"]["inference"] + group["timings"]["inference"]) / 1000
    assert abs(usage["totals"]["model_seconds"] - reported) < 0.01

    # Another key sees only its own; a window without those days sees nothing.
    other = server.cli("keys", "create", "--name", "usage-other").stdout.strip()
    with server.client(other) as client:
        assert client.get("/api/v3/usage").json()["data"]["days"] == []
        yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    with server.client(key) as client:
        assert client.get("/api/v3/usage", params={"to": yesterday}).json()["data"]["days"] == []
        bad = client.get("/api/v3/usage", params={"from": "last tuesday"})
        assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["message"]
        backwards = client.get("/api/v3/usage", params={"from": today, "to": yesterday})
        assert backwards.status_code == 400
        assert client.get("/api/v3/usage", params={"from": "2020-01-01", "to": today}).status_code == 400

    # The operator's view: every key, named.
    printed = server.cli("usage", "--from", today).stdout
    assert "usage-team" in printed and "2 tasks (0 failed), 3 images" in printed
    assert "bytedance/seedream-v4/sequential" in printed


def test_metrics_label_the_busiest_keys_and_sum_the_rest(tiny_model: Path, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    server = LocalServer(tmp_path / "m", tiny_model, "--workers", "0", SEQDREAM_METRICS_KEY_LABELS="1").start()
    try:
        busy = server.cli("keys", "create", "--name", "busy").stdout.strip()
        quiet = server.cli("keys", "create", "--name", "quiet").stdout.strip()
        for key, count in ((busy, 3), (quiet, 1)):
            with server.client(key) as client:
                for n in range(count):
                    assert client.post(T2I, json={"prompt": f"kite {n}"}).status_code == 200
        with server.client() as client:
            text = client.get("/metrics").text
    finally:
        server.stop()
    series = {
        (sample.labels["name"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "seqdream_key_tasks"
        for sample in family.samples
    }
    assert series == {("busy", "created"): 3, ("busy", "processing"): 0, ("other", "created"): 1,
                      ("other", "processing"): 0}  # fmt: skip
    assert busy[:10] in text and quiet[:10] not in text  # one key named, bounded as configured
