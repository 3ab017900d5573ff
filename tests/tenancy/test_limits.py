"""Per-key limits through real servers: two API processes share one database (SQLite file or
PostgreSQL), so a limit holds whichever process a submit reaches. Workers are off (`--workers 0`)
so queued tasks stay queued while the limits are probed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

T2I = "/api/v3/bytedance/seedream-v4"
SEQUENTIAL = "/api/v3/bytedance/seedream-v4/sequential"


@pytest.fixture()
def two_apis(database_url: str, tiny_model: Path, tmp_path: Path) -> Iterator[list[LocalServer]]:
    shared = {"SEQDREAM_DATABASE_URL": database_url, "SEQDREAM_STORAGE_DIR": str(tmp_path / "blobs")}
    apis = [LocalServer(tmp_path / f"api{i}", tiny_model, "--workers", "0", **shared).start() for i in range(2)]
    yield apis
    for api in apis:
        api.stop()


def new_key(server: LocalServer, *options: str) -> str:
    return server.cli("keys", "create", "--name", "limited", *options).stdout.strip()


def clients(apis: list[LocalServer], key: str) -> list[httpx.Client]:
    return [api.client(key) for api in apis]


def test_submit_rate_is_limited_across_processes_in_every_dialect(two_apis: list[LocalServer]) -> None:
    key = new_key(two_apis[0], "--rate", "5/min")
    first, second = clients(two_apis, key)
    codes = [(first if n % 2 else second).post(T2I, json={"prompt": f"kite {n}"}).status_code for n in range(5)]
    assert codes == [200] * 5

    refused = first.post(T2I, json={"prompt": "one too many"})
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == 429 and body["data"] is None and "5 tasks a minute" in body["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60

    ark = second.post("/api/v3/images/generations", json={"model": "seedream-4-0", "prompt": "kite"})
    assert ark.status_code == 429 and ark.json()["error"]["code"] == "RateLimitExceeded"
    assert "Retry-After" in ark.headers
    openai = first.post("/v1/images/generations", json={"prompt": "kite"})
    assert openai.status_code == 429 and openai.json()["error"]["type"] == "rate_limit_error"

    # Another key is not affected, and the operator can lift the limit for the next submit.
    assert (
        second.post(
            T2I, json={"prompt": "kite"}, headers={"Authorization": f"Bearer {two_apis[0].api_key}"}
        ).status_code
        == 200
    )  # noqa: E501
    two_apis[1].cli("keys", "update", key[:10], "--rate", "unlimited")
    assert first.post(T2I, json={"prompt": "now allowed"}).status_code == 200


def test_queued_and_running_tasks_are_limited_and_a_delete_frees_a_place(two_apis: list[LocalServer]) -> None:
    key = new_key(two_apis[1], "--max-active", "3")
    first, second = clients(two_apis, key)
    ids = [(first, second)[n % 2].post(T2I, json={"prompt": f"kite {n}"}).json()["data"]["id"] for n in range(3)]
    refused = second.post(T2I, json={"prompt": "a fourth"})
    assert refused.status_code == 429 and "3 tasks queued or running" in refused.json()["message"]
    assert refused.headers["Retry-After"] == "5"
    assert first.delete(f"/api/v3/predictions/{ids[0]}").status_code == 200
    assert second.post(T2I, json={"prompt": "a fourth"}).status_code == 200


def test_credits_are_reserved_at_submit_and_reported_as_the_balance(two_apis: list[LocalServer]) -> None:
    key = new_key(two_apis[0], "--credits", "6")
    first, second = clients(two_apis, key)
    assert first.get("/api/v3/balance").json()["data"] == {"balance": 6, "currency": "credits", "metered": True}
    group = second.post(SEQUENTIAL, json={"prompt": "a series of 4 images of a kite", "max_images": 4})
    assert group.status_code == 200
    assert first.get("/api/v3/account/balance").json()["data"]["balance"] == 2
    too_many = first.post(SEQUENTIAL, json={"prompt": "three kites", "max_images": 3})
    assert too_many.status_code == 402 and "insufficient credits" in too_many.json()["message"]
    assert "Retry-After" not in too_many.headers
    # Deleting the queued group refunds what it never made.
    assert first.delete(f"/api/v3/predictions/{group.json()['data']['id']}").status_code == 200
    assert second.get("/api/v3/balance").json()["data"]["balance"] == 6
    two_apis[1].cli("keys", "update", key[:10], "--add-credits", "4")
    assert first.get("/api/v3/balance").json()["data"]["balance"] == 10
    # Unmetered keys report no balance.
    plain = two_apis[0].client()
    assert plain.get("/api/v3/balance").json()["data"] == {"balance": None, "currency": "credits", "metered": False}


def test_a_running_group_is_charged_for_the_images_it_made(tiny_model: Path, tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "one", tiny_model, SEQDREAM_NSFW_CHECK="false").start()
    try:
        key = new_key(server, "--credits", "10")
        with server.client(key) as client:
            task = client.post(SEQUENTIAL, json={"prompt": "a series of 2 images of a kite", "max_images": 5})
            assert client.get("/api/v3/balance").json()["data"]["balance"] == 5  # 5 reserved
            job_id = task.json()["data"]["id"]
            with server.client() as owner_view:
                assert owner_view.get(f"/api/v3/predictions/{job_id}").status_code == 404  # not another key's
            deadline = time.monotonic() + 60
            while (done := client.get(f"/api/v3/predictions/{job_id}/result")).json()["data"]["status"] != "completed":
                assert time.monotonic() < deadline, done.text
                time.sleep(0.05)
            assert len(done.json()["data"]["outputs"]) == 2
            assert client.get("/api/v3/balance").json()["data"]["balance"] == 8  # 2 made, 3 refunded
    finally:
        server.stop()
