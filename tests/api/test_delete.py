"""Deleting tasks: a queued one never runs, a running one stops between steps, files go, keys are isolated."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.database import job_row
from support.servers import LocalServer, start_worker

pytestmark = pytest.mark.slow  # starts servers or processes

EDIT_SEQ = "/api/v3/bytedance/seedream-v4/edit-sequential"
# A 14-image group that takes long enough to be deleted mid-way, and shows images as it goes.
SLOW = {"SEQDREAM_NATIVE_RESOLUTION": "128", "SEQDREAM_NUM_INFERENCE_STEPS": "40", "SEQDREAM_MAX_BATCH": "2"}
GROUP = {"prompt": "a series of 14 images of a comet", "max_images": 14, "size": "1024*1024", "seed": 3}


@pytest.fixture(scope="module")
def slow_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    process = LocalServer(tmp_path_factory.mktemp("delete"), tiny_model, **SLOW).start()
    yield process
    process.stop()


def poll(api: httpx.Client, job_id: str, until, timeout: float = 60) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = api.get(f"/api/v3/predictions/{job_id}/result").json()["data"]
        if until(data):
            return data
        time.sleep(0.05)
    raise AssertionError(f"task {job_id} never got there: {data}")


def test_a_running_group_shows_images_as_they_finish_then_stops_when_deleted(slow_server: LocalServer) -> None:
    db = slow_server.data_dir / "seqdream.db"
    with slow_server.client() as api:
        running = api.post(EDIT_SEQ, json=GROUP).json()["data"]["id"]
        queued = api.post(EDIT_SEQ, json={**GROUP, "seed": 4}).json()["data"]["id"]
        partial = poll(api, running, lambda data: len(data["outputs"]) >= 3)
        assert partial["status"] == "processing" and len(partial["outputs"]) < 14
        assert len(partial["has_nsfw_contents"]) == len(partial["outputs"])
        first_image = api.get(partial["outputs"][0])
        assert first_image.status_code == 200 and first_image.headers["content-type"] == "image/jpeg"

        deleted_queued = api.delete(f"/api/v3/predictions/{queued}")
        deleted_running = api.delete(f"/api/v3/predictions/{running}")
        assert deleted_queued.status_code == 200 and deleted_queued.json()["data"]["status"] == "deleted"
        body = deleted_running.json()
        assert body["code"] == 200 and body["data"]["status"] == "deleted" and body["data"]["outputs"] == []

        log = slow_server.log_path
        deadline = time.monotonic() + 10
        while f"job {running}: deleted while running" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"job {running}: deleted while running" in log.read_text()
        row = job_row(db, running)
        assert row["status"] == "deleted" and row["inference_ms"] is None  # it never completed
        assert api.get(partial["outputs"][0]).status_code == 404  # its images are gone
        assert not list((slow_server.data_dir / "blobs" / "outputs" / running).glob("*"))

        after = api.post(EDIT_SEQ, json={"prompt": "a boat", "size": "1024*1024"}).json()["data"]["id"]
        assert slow_server.wait_for(after, timeout=120)["status"] == "completed"  # the worker is free again
        assert job_row(db, queued)["attempts"] == 0 and job_row(db, queued)["status"] == "deleted"  # never ran
        assert api.get(f"/api/v3/predictions/{queued}/result").json()["data"]["status"] == "deleted"


def test_deleting_a_finished_task_removes_its_files_and_keys_are_isolated(slow_server: LocalServer) -> None:
    other_key = slow_server.cli("keys", "create", "--name", "other").stdout.strip()
    with slow_server.client() as api, slow_server.client(other_key) as other:
        job_id = api.post(EDIT_SEQ, json={"prompt": "a kite", "size": "1024*1024", "enable_sync_mode": True})
        done = job_id.json()["data"]
        assert done["status"] == "completed"
        assert other.delete(f"/api/v3/predictions/{done['id']}").status_code == 404  # not theirs
        batch = other.post("/api/v3/predictions/delete", json={"ids": [done["id"]]}).json()["data"]
        assert batch == {"deleted": [], "not_found": [done["id"]]}
        assert api.get(done["outputs"][0]).status_code == 200  # untouched by the other key

        batch = api.post("/api/v3/predictions/delete", json={"ids": [done["id"], "nope", done["id"]]}).json()
        assert batch["code"] == 200 and batch["data"] == {"deleted": [done["id"]], "not_found": ["nope"]}
        assert api.get(done["outputs"][0]).status_code == 404
        again = api.delete(f"/api/v3/predictions/{done['id']}")
        assert again.status_code == 200 and again.json()["data"]["status"] == "deleted"  # idempotent
        assert api.delete("/api/v3/predictions/unknown").json() == {
            "code": 404, "message": "prediction not found: unknown", "data": None,
        }  # fmt: skip
        for bad in ({}, {"ids": []}, {"ids": "abc"}, {"ids": ["x"] * 101}):
            response = api.post("/api/v3/predictions/delete", json=bad)
            assert response.status_code == 400 and "ids" in response.json()["message"]


def test_a_separate_worker_process_stops_a_deleted_task(tiny_model: Path, tmp_path: Path) -> None:
    api_server = LocalServer(tmp_path / "split", tiny_model, "--workers", "0", **SLOW).start()
    log = tmp_path / "worker.log"
    worker = start_worker(api_server.env, log=log)
    try:
        with api_server.client() as api:
            job_id = api.post(EDIT_SEQ, json=GROUP).json()["data"]["id"]
            poll(api, job_id, lambda data: len(data["outputs"]) >= 1, timeout=120)
            assert api.delete(f"/api/v3/predictions/{job_id}").json()["data"]["status"] == "deleted"
            deadline = time.monotonic() + 15
            text = ""
            while "deleted while running" not in text and time.monotonic() < deadline:
                time.sleep(0.1)
                text = (tmp_path / "worker.log").read_text()
            assert f"job {job_id}: deleted while running" in text
            assert job_row(api_server.data_dir / "seqdream.db", job_id)["status"] == "deleted"
            time.sleep(1)
            assert not list((api_server.data_dir / "blobs" / "outputs" / job_id).glob("*"))
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        api_server.stop()
