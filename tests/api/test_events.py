"""`GET /api/v3/predictions/{id}/events`: progress as server-sent events, through a real server."""

from __future__ import annotations

import base64
import json

import pytest

from seqdream_devkit.images import decode
from support.servers import LocalServer

pytestmark = pytest.mark.slow  # a real server and worker

SEQUENTIAL = "/api/v3/bytedance/seedream-v4/sequential"


def read_events(
    server: LocalServer, job_id: str, last_event_id: str | None = None, previews: bool = False
) -> list[tuple[str, str, dict]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events, fields = [], {}
    url = f"/api/v3/predictions/{job_id}/events" + ("?previews=true" if previews else "")
    with server.client() as client, client.stream("GET", url, headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line:
                if fields:
                    events.append((fields["event"], fields["id"], json.loads(fields["data"])))
                fields = {}
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
    return events


def test_a_group_streams_its_start_each_image_and_its_end(server: LocalServer) -> None:
    with server.client() as client:
        job_id = client.post(SEQUENTIAL, json={"prompt": "a series of 3 images of a kite", "max_images": 3,
                                               "size": "1024*1024"}).json()["data"]["id"]  # fmt: skip
    events = read_events(server, job_id)
    names = [name for name, _, _ in events]
    assert names[-1] == "completed" and "started" in names
    images = [data for name, _, data in events if name == "image"]
    assert [data["index"] for data in images] == [0, 1, 2]
    final = events[-1][2]
    assert [data["url"] for data in images] == final["outputs"] and final["status"] == "completed"
    assert all(name in ("queued", "started", "image", "progress", "completed") for name in names)

    # A client that reconnects after image 1 gets only what it has not seen.
    again = read_events(server, job_id, last_event_id="image-1")
    assert [(name, data.get("index")) for name, _, data in again] == [("image", 2), ("completed", None)]


def test_progress_events_carry_the_step_and_an_estimate_once_the_model_was_measured(server: LocalServer) -> None:
    body = {"prompt": "a series of 4 images of a kite", "max_images": 4, "size": "1024*1024"}
    with server.client() as client:
        first = client.post(SEQUENTIAL, json=body | {"enable_sync_mode": True}).json()["data"]
        assert first["status"] == "completed"  # measured: the next task of this size and count has an estimate
        job_id = client.post(SEQUENTIAL, json=body | {"seed": 5}).json()["data"]["id"]
    events = read_events(server, job_id)
    steps = [data for name, _, data in events if name == "progress" and "step" in data]
    assert steps, events
    assert all(1 <= data["step"] <= data["steps"] and data["images_total"] == 4 for data in steps)
    assert all(data["eta_s"] >= 0 for data in steps)
    stored = [data["images_done"] for data in steps]
    assert stored == sorted(stored)  # never backwards
    assert not any("preview" in data for _, _, data in events)  # pictures only for a client that asks

    with server.client() as client:
        job_id = client.post(SEQUENTIAL, json=body | {"seed": 6}).json()["data"]["id"]
    pictures = [data["preview"] for name, _, data in read_events(server, job_id, previews=True) if "preview" in data]
    assert pictures and all(decode(base64.b64decode(uri.split(",", 1)[1])).size == (64, 64) for uri in pictures)
    assert all(uri.startswith("data:image/png;base64,") for uri in pictures)
    assert "eta_s" not in events[-1][2]  # ended: nothing left to wait for


def test_a_task_waiting_on_a_model_that_cannot_be_loaded_says_so_in_its_stream(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from seqdream.jobs.presence import ENGINE_UNAVAILABLE

    broken = LocalServer(tmp_path / "data", tmp_path / "no-model-here").start(engine=("unavailable",))
    try:
        with broken.client() as client:
            job_id = client.post(SEQUENTIAL, json={"prompt": "a red circle"}).json()["data"]["id"]
            with client.stream("GET", f"/api/v3/predictions/{job_id}/events") as r:
                lines = []
                for line in r.iter_lines():  # the first event; the task never starts
                    if not line:
                        break
                    lines.append(line)
        fields = dict(line.partition(": ")[::2] for line in lines)
        data = json.loads(fields["data"])
        assert (fields["event"], fields["id"]) == ("queued", "queued-0")
        assert data["warnings"] == [ENGINE_UNAVAILABLE] and data["queue_position"] == 0
    finally:
        broken.stop()


def test_someone_elses_task_has_no_stream(server: LocalServer) -> None:
    other = server.cli("keys", "create", "--name", "other").stdout.strip()
    with server.client() as client:
        job_id = client.post(SEQUENTIAL, json={"prompt": "a kite"}).json()["data"]["id"]
    with server.client(other) as client:
        assert client.get(f"/api/v3/predictions/{job_id}/events").status_code == 404
