"""Blobs in an S3-compatible bucket: a moto S3 server on loopback stands in for AWS/MinIO."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from seqdream_devkit.images import decode, png_bytes
from seqdream_devkit.server_process import free_port
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
