"""`Idempotency-Key` on every submit route, through real servers: a retry returns the first task,
a different request under the same key is refused, and a storm of concurrent retries makes one task."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import text

from seqdream.db import Database
from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

T2I = "/api/v3/bytedance/seedream-v4"
EDIT = "/api/v3/bytedance/seedream-v4/edit"


@pytest.fixture()
def queued_only(database_url: str, tiny_model: Path, tmp_path: Path) -> Iterator[LocalServer]:
    """A server whose tasks stay queued (no workers), on the parametrised database."""
    server = LocalServer(tmp_path / "api", tiny_model, "--workers", "0", SEQDREAM_DATABASE_URL=database_url).start()
    yield server
    server.stop()


def task_count(database_url: str) -> int:
    db = Database(database_url)
    try:
        with db.session() as session:
            return int(session.scalar(text("SELECT count(*) FROM jobs")) or 0)
    finally:
        db.dispose()


def png_b64(colour: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_retried_submit_returns_the_first_task(queued_only: LocalServer, database_url: str) -> None:
    with queued_only.client() as client:
        body = {"prompt": "a kite", "images": [png_b64("red")]}
        first = client.post(EDIT, json=body, headers={"Idempotency-Key": "order-17"})
        again = client.post(EDIT, json=body, headers={"Idempotency-Key": "order-17"})
        assert first.status_code == again.status_code == 200
        assert first.json()["data"]["id"] == again.json()["data"]["id"]
        assert task_count(database_url) == 1

        changed = client.post(EDIT, json=body | {"prompt": "a boat"}, headers={"Idempotency-Key": "order-17"})
        assert changed.status_code == 409
        assert changed.json()["code"] == 409 and "different request" in changed.json()["message"]

        fresh = client.post(EDIT, json=body, headers={"Idempotency-Key": "order-18"})
        assert fresh.json()["data"]["id"] != first.json()["data"]["id"]
        assert client.post(T2I, json={"prompt": "x"}, headers={"Idempotency-Key": ""}).status_code == 400
        assert client.post(T2I, json={"prompt": "x"}, headers={"Idempotency-Key": "k" * 256}).status_code == 400
    # Keys are per API key: another key's identical header is its own request.
    other = queued_only.cli("keys", "create", "--name", "other").stdout.strip()
    with queued_only.client(other) as client:
        mine = client.post(EDIT, json=body, headers={"Idempotency-Key": "order-17"})
        assert mine.status_code == 200 and mine.json()["data"]["id"] != first.json()["data"]["id"]
    assert task_count(database_url) == 3


def test_fifty_concurrent_retries_make_one_task(queued_only: LocalServer, database_url: str) -> None:
    body = {"prompt": "a storm of retries", "images": [png_b64("blue")]}

    def send(_: int) -> str:
        with queued_only.client() as client:
            response = client.post(EDIT, json=body, headers={"Idempotency-Key": "storm"})
            assert response.status_code == 200, response.text
            return response.json()["data"]["id"]

    with ThreadPoolExecutor(16) as pool:
        ids = set(pool.map(send, range(50)))
    assert len(ids) == 1
    assert task_count(database_url) == 1
    # The losers' inline references were not left behind: one task's inputs are stored.
    stored = list((queued_only.data_dir / "blobs").rglob("*"))
    inputs = [path for path in stored if path.is_file() and "inputs" in path.parts]
    assert len(inputs) == 1, inputs


def test_a_client_that_went_away_gets_its_task_on_retry(server: LocalServer) -> None:
    prompt = "a green triangle on a yellow background, sent once and retried"
    body = {"prompt": prompt, "enable_sync_mode": True, "size": "1024*1024"}
    headers = {"Authorization": f"Bearer {server.api_key}", "Idempotency-Key": "gone-1"}
    with pytest.raises(httpx.ReadTimeout):  # the client stops waiting; the task carries on
        httpx.post(server.base_url + T2I, json=body, headers=headers, timeout=0.05)
    retried = httpx.post(server.base_url + T2I, json=body, headers=headers, timeout=60)
    assert retried.status_code == 200 and retried.json()["data"]["status"] == "completed"
    with server.client() as client:
        listed = client.get("/api/v3/predictions", params={"page_size": 100}).json()["data"]["items"]
    assert [item["id"] for item in listed if item["prompt"] == prompt] == [retried.json()["data"]["id"]]
    assert httpx.post(server.base_url + T2I, json=body | {"seed": 5}, headers=headers).status_code == 409


def test_dialects_return_the_same_task_for_a_retry(server: LocalServer) -> None:
    headers = {"Idempotency-Key": "ark-1"}
    body = {"model": "seedream-4-0", "prompt": "a red circle on a white background", "size": "1024x1024", "seed": 3}
    with server.client() as client:
        first = client.post("/api/v3/images/generations", json=body, headers=headers)
        again = client.post("/api/v3/images/generations", json=body, headers=headers)
        assert first.status_code == again.status_code == 200, first.text
        assert first.json()["data"][0]["url"] == again.json()["data"][0]["url"]
        conflict = client.post("/api/v3/images/generations", json=body | {"seed": 4}, headers=headers)
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "IdempotencyConflict"

        openai = {"prompt": "a blue square", "size": "1024x1024", "response_format": "url"}
        one = client.post("/v1/images/generations", json=openai, headers={"Idempotency-Key": "oa-1"})
        two = client.post("/v1/images/generations", json=openai, headers={"Idempotency-Key": "oa-1"})
        assert one.status_code == two.status_code == 200, one.text
        assert one.json()["data"][0]["url"] == two.json()["data"][0]["url"]
        other = client.post("/v1/images/generations", json=openai | {"n": 2}, headers={"Idempotency-Key": "oa-1"})
        assert other.status_code == 409 and other.json()["error"]["type"] == "idempotency_error"


def test_without_authentication_concurrent_retries_also_make_one_task(
    database_url: str, tiny_model: Path, tmp_path: Path
) -> None:
    server = LocalServer(
        tmp_path / "open",
        tiny_model,
        "--workers",
        "0",
        SEQDREAM_DATABASE_URL=database_url,
        SEQDREAM_AUTH_DISABLED="true",
    ).start()
    try:

        def send(_: int) -> str:
            response = httpx.post(
                server.base_url + T2I,
                json={"prompt": "no key at all"},
                headers={"Idempotency-Key": "open-1"},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            return response.json()["data"]["id"]

        with ThreadPoolExecutor(16) as pool:
            ids = set(pool.map(send, range(40)))
        assert len(ids) == 1 and task_count(database_url) == 1
    finally:
        server.stop()
