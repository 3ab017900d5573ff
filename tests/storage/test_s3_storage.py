"""Blobs in an S3-compatible bucket: a moto S3 server on loopback stands in for AWS/MinIO."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqdream_devkit.images import decode, png_bytes
from seqdream_devkit.server_process import free_port
from support.database import job_row
from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint(monkeypatch_module) -> Iterator[str]:
    for name, value in CREDENTIALS.items():
        monkeypatch_module.setenv(name, value)
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="seqdream")
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_store_round_trip(s3_endpoint: str) -> None:
    from seqdream.storage import BlobNotFound, open_blob_store

    store = open_blob_store("s3://seqdream/unit", Path("/nonexistent"), s3_endpoint)
    store.put("a/b.bin", b"payload")
    assert store.exists("a/b.bin") and store.get("a/b.bin") == b"payload"
    store.delete("a/b.bin")
    assert not store.exists("a/b.bin")
    with pytest.raises(BlobNotFound):
        store.get("a/b.bin")


def test_unreachable_bucket_is_a_storage_error() -> None:
    from seqdream.storage import StorageError, open_blob_store

    store = open_blob_store("s3://seqdream/x", Path("/nonexistent"), f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageError):
        store.put("k", b"v")


def test_server_keeps_uploads_and_outputs_in_s3(s3_endpoint: str, tiny_model: Path, tmp_path: Path) -> None:
    server = LocalServer(
        tmp_path / "s3",
        tiny_model,
        SEQDREAM_STORAGE_URL="s3://seqdream/prod",
        SEQDREAM_S3_ENDPOINT_URL=s3_endpoint,
        **CREDENTIALS,
    ).start()
    try:
        with server.client() as api:
            raw = png_bytes((80, 80), "white")
            upload = api.post("/api/v3/media/upload/binary", files={"file": ("w.png", raw, "image/png")}).json()
            data = api.post(
                "/api/v3/bytedance/seedream-v4/edit-sequential",
                json={
                    "prompt": "a series of 2 images of this",
                    "images": [upload["data"]["download_url"]],
                    "max_images": 2,
                    "size": "1024*1024",
                    "enable_sync_mode": True,
                },
            ).json()["data"]
            assert data["status"] == "completed" and len(data["outputs"]) == 2
            assert decode(api.get(data["outputs"][1]).content).size == (1024, 1024)
        keys = {
            item["Key"]
            for item in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket="seqdream")["Contents"]
        }
        stored = {"prod/" + url.split("/api/v3/media/", 1)[1] for url in data["outputs"]}
        assert stored <= keys and [key.rsplit("/", 1)[1].split("-")[0] for key in sorted(stored)] == ["0", "1"]
        assert any(key.startswith("prod/uploads/") for key in keys)
        assert not (tmp_path / "s3" / "blobs" / "outputs").exists()  # nothing went to local disk
    finally:
        server.stop()


def test_an_s3_outage_pauses_the_work_and_every_task_completes_when_it_returns(
    monkeypatch_module, tiny_model: Path, tmp_path: Path
) -> None:
    """While the bucket cannot be reached, tasks are still accepted (the database answers), uploads and
    downloads get a 503 in the envelope and readiness says why; when it returns, every task completes."""
    for name, value in CREDENTIALS.items():
        monkeypatch_module.setenv(name, value)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    bucket.start()
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="outage")
    paced = {"SEQDREAM_NATIVE_RESOLUTION": "128", "SEQDREAM_NUM_INFERENCE_STEPS": "20"}
    server = LocalServer(
        tmp_path / "outage",
        tiny_model,
        SEQDREAM_STORAGE_URL="s3://outage/prod",
        SEQDREAM_S3_ENDPOINT_URL=endpoint,
        SEQDREAM_STORAGE_RETRY_S="0.5",
        **paced,
        **CREDENTIALS,
    ).start()
    t2i = "/api/v3/bytedance/seedream-v4"
    try:
        with server.client() as api:
            before = api.post(t2i, json={"prompt": "a red circle", "size": "1024*1024", "enable_sync_mode": True})
            kept = before.json()["data"]["outputs"][0]
            bucket.stop()  # the bucket goes away
            ids = [
                api.post(t2i, json={"prompt": f"a blue square {n}", "size": "1024*1024", "seed": n}).json()["data"][
                    "id"
                ]
                for n in range(4)
            ]  # accepted: the queue is in the database
            deadline = time.monotonic() + 60
            while (ready := api.get("/health/ready")).status_code != 503:
                assert time.monotonic() < deadline, "readiness never noticed the bucket was gone"
                time.sleep(0.2)
            assert "storage" in ready.text
            raw = png_bytes((64, 64), "white")
            inline = "data:image/png;base64," + base64.b64encode(raw).decode()
            for answer in (
                api.get(kept),
                api.post("/api/v3/media/upload/binary", files={"file": ("w.png", raw, "image/png")}),
                api.post(t2i + "/edit", json={"prompt": "make it blue", "images": [inline]}),
            ):
                assert answer.status_code == 503 and answer.json()["code"] == 503, answer.text
                assert "storage is unavailable (cannot be reached)" in answer.json()["message"]
                assert str(port) not in answer.text and "outage" not in answer.text  # no address, no bucket
                assert answer.headers["Retry-After"].isdigit()
            errors: set[str] = set()
            while not errors:  # a worker met the outage under a task and handed it back, saying why
                assert time.monotonic() < deadline, "no task met the outage"
                errors = {job_row(server.data_dir / "seqdream.db", i)["error"] or "" for i in ids} - {""}
                time.sleep(0.2)
            assert errors == {"storage unavailable (cannot be reached)"}, errors  # its caller may read it
            time.sleep(1.0)  # the outage lasts a while; nothing the workers tried may have failed a task
            states = {api.get(f"/api/v3/predictions/{i}/result").json()["data"]["status"] for i in ids}
            assert states <= {"created", "processing"}, states

            bucket = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            bucket.start()  # the bucket returns, with what it held
            back = time.monotonic()
            done: dict[str, dict] = {}
            while len(done) < len(ids):
                assert time.monotonic() - back < 60, f"{len(ids) - len(done)} task(s) never ended"
                for i in ids:
                    data = api.get(f"/api/v3/predictions/{i}/result").json()["data"]
                    if data["status"] in ("completed", "failed"):
                        done[i] = data
                time.sleep(0.2)
            print(f"every task ended {time.monotonic() - back:.1f} s after the bucket returned")
            assert [data["status"] for data in done.values()] == ["completed"] * len(ids), done
            for data in done.values():
                assert decode(api.get(data["outputs"][0]).content).size == (1024, 1024)
            assert api.get(kept).status_code == 200 and api.get("/health/ready").status_code == 200
        log = server.log_path.read_text(errors="replace")
        assert "Traceback" not in log, log[-4000:]
        assert "storage unavailable" in log and "storage back after" in log
    finally:
        server.stop()
        bucket.stop()
