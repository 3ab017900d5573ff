"""WaveSpeed webhooks: signed as WaveSpeed signs them, durable across restarts, never blocking workers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from support.database import job_row, webhook_rows
from support.receiver import Receiver
from support.servers import LocalServer

EDIT_SEQ = "/api/v3/bytedance/seedream-v4/edit-sequential"
# The receivers listen on loopback, which the SSRF policy refuses unless allowed.
LOOPBACK_ALLOWED = {
    "SEQDREAM_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
    "SEQDREAM_WEBHOOK_RETRY_BASE_S": "0.3",
    "SEQDREAM_WEBHOOK_POLL_S": "0.05",  # look at the outbox often, so the back-off itself is measured
}


def receiver_verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """WaveSpeed's documented check, written out as a receiver would (not with seqdream's code)."""
    key = secret.removeprefix("whsec_").encode()
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v3," + hmac.new(key, signed, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(headers["webhook-timestamp"])) <= 300
    return fresh and hmac.compare_digest(expected, headers["webhook-signature"])


@pytest.fixture(scope="module")
def hook_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    process = LocalServer(tmp_path_factory.mktemp("webhooks"), tiny_model, **LOOPBACK_ALLOWED).start()
    yield process
    process.stop()


@pytest.mark.slow
def test_completed_and_failed_tasks_are_posted_signed(hook_server: LocalServer) -> None:
    receiver = Receiver()
    try:
        with hook_server.client() as api:
            secret = api.get("/api/v3/webhook/secret").json()["data"]["secret"]
            assert secret.startswith("whsec_") and len(secret) > 30
            assert api.get("/api/v3/webhook/secret").json()["data"]["secret"] == secret  # stable per key
            done = api.post(
                f"{EDIT_SEQ}?webhook={receiver.url}",
                json={"prompt": "a series of 2 images of a kite", "max_images": 2, "size": "1024*1024"},
            ).json()["data"]["id"]
            broken = api.post(
                EDIT_SEQ,
                json={
                    "prompt": "edit this",
                    "images": [f"http://127.0.0.1:{receiver.port}/missing.png"],  # answers 501 to GET
                    "webhook_url": receiver.url,
                    "size": "1024*1024",
                },
            ).json()["data"]["id"]
            hook_server.wait_for(done)
            hook_server.wait_for(broken)
            results = {
                job_id: api.get(f"/api/v3/predictions/{job_id}/result").json()["data"] for job_id in (done, broken)
            }
        received = receiver.wait_for(2)
    finally:
        receiver.close()

    by_task = {json.loads(item.body)["id"]: item for item in received}
    assert set(by_task) == {done, broken}
    for job_id, item in by_task.items():
        assert item.path == "/hook" and item.headers["content-type"] == "application/json"
        assert receiver_verifies(secret, item.headers, item.body)
        assert not receiver_verifies(secret, item.headers, item.body.replace(b"}", b" }", 1))  # tampered
        assert not receiver_verifies("whsec_" + "0" * 48, item.headers, item.body)  # someone else's secret
        payload = json.loads(item.body)
        assert payload == results[job_id]  # the task object, as the result endpoint shows it
    assert by_task[done].headers["webhook-id"] != by_task[broken].headers["webhook-id"]
    assert json.loads(by_task[done].body)["status"] == "completed"
    assert len(json.loads(by_task[done].body)["outputs"]) == 2
    assert json.loads(by_task[broken].body)["status"] == "failed"


@pytest.mark.slow
def test_a_failing_receiver_is_retried_with_back_off(hook_server: LocalServer) -> None:
    receiver = Receiver(statuses=(500, 503, 200))
    try:
        with hook_server.client() as api:
            job_id = api.post(f"{EDIT_SEQ}?webhook={receiver.url}", json={"prompt": "a kite", "size": "1024*1024"})
            job_id = job_id.json()["data"]["id"]
        received = receiver.wait_for(3)
    finally:
        receiver.close()
    assert len({item.headers["webhook-id"] for item in received}) == 1  # one event, three attempts
    gaps = [later.started - earlier.started for earlier, later in zip(received, received[1:], strict=False)]
    assert gaps[1] > gaps[0] * 2  # the wait grows (0.3 s, then 1.2 s)
    time.sleep(0.5)
    rows = webhook_rows(hook_server.data_dir / "seqdream.db", job_id)
    assert [(row["status"], row["attempts"]) for row in rows] == [("delivered", 3)]


@pytest.mark.slow
def test_an_undelivered_webhook_survives_a_restart(tiny_model: Path, tmp_path: Path) -> None:
    receiver = Receiver()
    port = receiver.port
    receiver.close()  # nothing listens there yet
    server = LocalServer(tmp_path / "restart", tiny_model, **LOOPBACK_ALLOWED).start()
    db = server.data_dir / "seqdream.db"
    with server.client() as api:
        job_id = api.post(
            f"{EDIT_SEQ}?webhook=http://127.0.0.1:{port}/hook", json={"prompt": "a kite", "size": "1024*1024"}
        ).json()["data"]["id"]
    server.wait_for(job_id)
    deadline = time.monotonic() + 30
    # Until the failed attempt is recorded (claiming counts the attempt a moment before).
    while not any(row["last_error"] for row in webhook_rows(db, job_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    server.kill()
    (row,) = webhook_rows(db, job_id)
    assert row["status"] == "pending" and "could not reach" in row["last_error"]

    receiver = Receiver(port=port)
    try:
        server.start()
        (item,) = receiver.wait_for(1)
        assert json.loads(item.body)["id"] == job_id and json.loads(item.body)["status"] == "completed"
    finally:
        receiver.close()
        server.stop()


@pytest.mark.slow
def test_a_slow_receiver_does_not_hold_up_the_worker(hook_server: LocalServer) -> None:
    receiver = Receiver(delay_s=4.0)
    try:
        with hook_server.client() as api:
            api.post(f"{EDIT_SEQ}?webhook={receiver.url}", json={"prompt": "a kite", "size": "1024*1024"})
            second = api.post(EDIT_SEQ, json={"prompt": "a boat", "size": "1024*1024"})
        assert hook_server.wait_for(second.json()["data"]["id"])["status"] == "completed"
        (item,) = receiver.wait_for(1)
    finally:
        receiver.close()
    finished = job_row(hook_server.data_dir / "seqdream.db", second.json()["data"]["id"])["finished_at"]
    second_done = datetime.fromisoformat(finished).replace(tzinfo=UTC).timestamp()
    # The one worker finished the next task before the first task's webhook was answered (a worker held
    # by the delivery would finish it only after the receiver's 4 s). Whether the delivery had reached
    # the receiver by then depends on the machine's load, so it is not asserted.
    assert second_done < item.finished


@pytest.mark.parametrize(
    "webhook, message",
    [
        ("ftp://example.com/hook", "is not an http(s) URL"),
        ("http://127.0.0.1:9/hook", "loopback address"),
        ("http://localhost/hook", "loopback address"),
        ("http://[::ffff:10.0.0.1]/hook", "private address"),
    ],
)
def test_webhooks_the_policy_refuses_are_a_400(app_client, webhook: str, message: str) -> None:  # type: ignore[no-untyped-def]
    for response in (
        app_client.post(f"{EDIT_SEQ}?webhook={webhook}", json={"prompt": "a kite"}),
        app_client.post(EDIT_SEQ, json={"prompt": "a kite", "webhook_url": webhook}),
    ):
        assert response.status_code == 400
        assert response.json()["code"] == 400 and "webhook" in response.json()["message"]
        assert message in response.json()["message"]
