"""The same queue on PostgreSQL: claims from many processes, recovery, and a server on it.

Runs when SEQDREAM_TEST_POSTGRES_URL points at a database (CI starts one with .ci/start-postgres).
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from seqdream.db import Database, migrate
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore
from support.postgres import empty_postgres, needs_postgres, own_database
from support.servers import LocalServer, start_worker

pytestmark = [pytest.mark.slow, needs_postgres]
REQUEST = JobRequest(prompt="p", size="1024*1024")
T2I = "/api/v3/bytedance/seedream-v4"


@pytest.fixture()
def fresh_db() -> Database:
    db = Database(empty_postgres())  # an empty database, as a new deployment has
    migrate.upgrade(db)
    return db


def _claim_all(url: str, name: str, most: int, queue) -> None:  # runs in a child process
    store = JobStore(Database(url))
    claimed = []
    while jobs := store.claim_batch(name, most):
        claimed += [job.id for job in jobs]
    queue.put(claimed)


@pytest.mark.parametrize("most", [1, 3])
def test_processes_claim_each_job_once(fresh_db: Database, most: int) -> None:
    """One by one or in batches (a lead and its batch mates), no job is claimed twice."""
    store = JobStore(fresh_db)
    ids = {store.create(model="m", request=REQUEST, seed=i, api_key_id=None).id for i in range(60)}
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_claim_all, args=(own_database(), f"p{i}", most, queue)) for i in range(4)]
    for process in processes:
        process.start()
    claimed = [job_id for _ in processes for job_id in queue.get(timeout=120)]
    for process in processes:
        process.join(timeout=60)
    assert sorted(claimed) == sorted(ids)


def test_stale_recovery_on_postgres(fresh_db: Database) -> None:
    store = JobStore(fresh_db)
    job = store.create(model="m", request=REQUEST, seed=1, api_key_id=None)
    assert store.claim("dead-worker") is not None
    with fresh_db.session() as session:
        session.execute(text("UPDATE jobs SET heartbeat_at = now() - interval '1 hour'"))
    assert store.recover_stale(lease_s=60, max_attempts=3).requeued == [job.id]
    assert store.get(job.id).status == "created"


def test_server_on_postgres(fresh_db: Database, tiny_model: Path, tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "pg", tiny_model, SEQDREAM_DATABASE_URL=own_database()).start()
    try:
        with server.client() as api:
            data = api.post(
                "/api/v3/bytedance/seedream-v4/edit-sequential",
                json={"prompt": "a series of 2 images of a bell", "max_images": 2, "enable_sync_mode": True},
            ).json()["data"]
        assert data["status"] == "completed" and len(data["outputs"]) == 2
    finally:
        server.stop()


def test_listen_notify_wakes_other_processes_at_once(fresh_db: Database, tiny_model: Path, tmp_path: Path) -> None:
    """Polling every 30 s, a worker process still picks a new task up at once and the API process
    answers the sync request at once: both are woken by NOTIFY, not by their poll."""
    slow_poll = {"SEQDREAM_DATABASE_URL": own_database(), "SEQDREAM_POLL_INTERVAL_S": "30"}
    api_server = LocalServer(tmp_path / "notify", tiny_model, "--workers", "0", **slow_poll).start()
    worker = start_worker(api_server.env)
    try:
        with api_server.client() as api:
            body = {"prompt": "a bell", "size": "1024*1024", "enable_sync_mode": True}
            assert api.post(T2I, json=body, timeout=120).json()["data"]["status"] == "completed"  # model loaded
            time.sleep(1)  # the worker is idle now, waiting out its 30 s poll
            started = time.monotonic()
            answer = api.post(T2I, json=body, timeout=120).json()["data"]
            waited = time.monotonic() - started
        assert answer["status"] == "completed"
        assert waited < 15, f"took {waited:.1f}s: the worker or the API waited for its poll"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        api_server.stop()


def test_a_batch_claim_on_postgres_takes_the_leads_mates_in_queue_order(fresh_db: Database) -> None:
    store = JobStore(fresh_db)
    group = REQUEST.model_copy(update={"prompt": "2 images of p", "max_images": 2})
    first, grouped, second, third = (
        store.create(model="m", request=request, seed=1, api_key_id=None).id
        for request in (REQUEST, group, REQUEST, REQUEST)
    )
    assert [job.id for job in store.claim_batch("w", 3)] == [first, second, third]
    assert [job.id for job in store.claim_batch("w", 3)] == [grouped]
