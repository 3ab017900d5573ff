"""The webhook outbox on a real SQLite file: queued with the job's end, claimed once, retried, purged."""

from __future__ import annotations

import time
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from seqdream.config import Settings
from seqdream.db import Database, WebhookDelivery, migrate
from seqdream.db.models import utcnow
from seqdream.images.fetch import FetchPolicy
from seqdream.jobs.janitor import Janitor
from seqdream.jobs.presentation import present
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore
from seqdream.storage.local import LocalBlobStore
from seqdream.storage.uploads import UploadStore
from seqdream.webhooks import signing
from seqdream.webhooks.dispatcher import WebhookDispatcher, retry_delay_s
from seqdream.webhooks.store import WebhookStore
from support.receiver import Receiver


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    migrate.upgrade(database)
    return database


def finished_job(db: Database, webhook: str | None, worker: str = "w1") -> str:
    jobs = JobStore(db)
    job = jobs.create(model="m", request=JobRequest(prompt="p", webhook_url=webhook), seed=1, api_key_id="key1")
    claimed = jobs.claim(worker)
    assert claimed is not None and claimed.id == job.id
    assert jobs.complete(job.id, worker, outputs=["outputs/x/0.jpeg"], has_nsfw_contents=[False], inference_ms=5)
    return job.id


def start_dispatcher(db: Database, tmp_path: Path, **settings: Any) -> WebhookDispatcher:
    """A dispatcher over `db` that may reach loopback receivers, polling every 50 ms."""
    jobs, blobs = JobStore(db), LocalBlobStore(tmp_path / "blobs")

    def view(job_id: str) -> dict[str, Any] | None:
        job = jobs.get(job_id)
        return None if job is None else present(job, "http://127.0.0.1", blobs, as_urls=True)

    policy = FetchPolicy(allowed_networks=(ip_network("127.0.0.0/8"),))
    return WebhookDispatcher(WebhookStore(db), view, policy, Settings(webhook_poll_s=0.05, **settings)).start()


def test_a_delivery_is_queued_only_for_tasks_with_a_webhook(db: Database) -> None:
    webhooks = WebhookStore(db)
    with_hook = finished_job(db, "https://example.com/hook")
    without = finished_job(db, None)
    (delivery,) = webhooks.for_job(with_hook)
    assert (delivery.url, delivery.owner, delivery.status, delivery.attempts) == (
        "https://example.com/hook", "key1", "pending", 0,
    )  # fmt: skip
    assert webhooks.for_job(without) == []


def test_each_due_delivery_is_claimed_once_then_retried_later(db: Database) -> None:
    webhooks = WebhookStore(db)
    job_id = finished_job(db, "https://example.com/hook")
    (first,) = webhooks.claim_due(10, lease_s=60)
    assert first.job_id == job_id and first.attempts == 1
    assert webhooks.claim_due(10, lease_s=60) == []  # leased: nobody else takes it
    webhooks.retry(first.id, "HTTP 500", delay_s=0)
    (again,) = webhooks.claim_due(10, lease_s=60)
    assert again.id == first.id and again.attempts == 2
    webhooks.delivered(again.id)
    assert webhooks.claim_due(10, lease_s=60) == []
    assert [retry_delay_s(n, 15) for n in (1, 2, 3)] == [15, 60, 240] and retry_delay_s(20, 15) == 6 * 3600


def test_retention_purges_finished_deliveries_and_keeps_pending_ones(db: Database, tmp_path: Path) -> None:
    webhooks = WebhookStore(db)
    done = finished_job(db, "https://example.com/a")
    pending = finished_job(db, "https://example.com/b")
    webhooks.delivered(webhooks.for_job(done)[0].id)
    with db.session() as session:
        for delivery in session.query(WebhookDelivery):
            delivery.created_at = utcnow() - timedelta(hours=200)
    blobs = LocalBlobStore(tmp_path / "blobs")
    Janitor(JobStore(db), UploadStore(db, blobs), blobs, retention_hours=168, webhooks=webhooks).sweep(force=True)
    assert webhooks.for_job(done) == [] and len(webhooks.for_job(pending)) == 1


def test_secrets_are_per_key_and_sign_as_wavespeed_documents(db: Database) -> None:
    webhooks = WebhookStore(db)
    mine, again, other = webhooks.secret("key1"), webhooks.secret("key1"), webhooks.secret("key2")
    assert mine == again != other and mine.startswith("whsec_")
    body = b'{"id":"abc","status":"completed"}'
    headers = signing.headers(mine, "evt1", body, timestamp=1_700_000_000)
    assert headers["webhook-signature"].startswith("v3,") and len(headers["webhook-signature"]) == 3 + 64
    assert signing.verify(mine, headers, body, now=1_700_000_100)
    assert not signing.verify(mine, headers, body, now=1_700_000_400)  # older than 5 minutes
    assert not signing.verify(other, headers, body, now=1_700_000_100)
    assert not signing.verify(mine, headers, body + b" ", now=1_700_000_100)


def test_the_dispatcher_claims_only_as_many_deliveries_as_it_has_free_senders(db: Database, tmp_path: Path) -> None:
    """A delivery claimed while every sender is busy would wait in the pool past its lease and be
    claimed, and sent, again: only free senders claim."""
    receiver = Receiver(delay_s=0.25)
    webhooks = WebhookStore(db)
    ids = [finished_job(db, receiver.url) for _ in range(6)]
    dispatcher = start_dispatcher(db, tmp_path, webhook_concurrency=2, webhook_timeout_s=5)
    most_claimed = 0
    try:
        deadline = time.monotonic() + 30
        while len(receiver.received) < 6 and time.monotonic() < deadline:
            deliveries = [d for job_id in ids for d in webhooks.for_job(job_id)]
            most_claimed = max(most_claimed, sum(d.status == "pending" and d.attempts > 0 for d in deliveries))
            time.sleep(0.02)
        receiver.wait_for(6, timeout=5)
    finally:
        dispatcher.shutdown()
        receiver.close()
    assert most_claimed == 2  # both senders busy, never more taken
    deliveries = [d for job_id in ids for d in webhooks.for_job(job_id)]
    assert {(d.status, d.attempts) for d in deliveries} == {("delivered", 1)}
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 6  # each sent once


def test_a_receivers_answer_is_its_status_alone_however_long_its_body(db: Database, tmp_path: Path) -> None:
    """A receiver that answers 200 and then a body without end (or gigabytes, or a compression bomb)
    is delivered to at once: the sender reads the status, never the body."""
    receiver = Receiver(endless_answer=True)
    webhooks = WebhookStore(db)
    job_id = finished_job(db, receiver.url)
    dispatcher = start_dispatcher(db, tmp_path, webhook_timeout_s=2)
    try:
        receiver.wait_for(1, timeout=10)
        deadline = time.monotonic() + 10
        while (delivery := webhooks.for_job(job_id)[0]).status != "delivered":
            assert time.monotonic() < deadline, (delivery.status, delivery.attempts, delivery.last_error)
            time.sleep(0.05)
        assert delivery.attempts == 1
    finally:
        receiver.close()  # first: a sender still reading the answer is let go
        dispatcher.shutdown()
