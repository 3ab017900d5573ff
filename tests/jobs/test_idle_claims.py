"""An idle worker's poll on SQLite: one pragma while nothing changed, and never a task missed.

After a claim finds nothing, the next claims ask SQLite whether any connection committed since
(`PRAGMA data_version`) and whether a held-back task has come due; only then do they look again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from seqdream.db import Database, migrate
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore

REQUEST = JobRequest(prompt="a kite", size="1024*1024")


@pytest.fixture()
def path(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'seqdream.db'}"
    made = Database(url)
    migrate.upgrade(made)
    made.dispose()
    return url


@pytest.fixture()
def worker_db(path: str) -> Iterator[Database]:
    """The worker's process: its own engine, as a separate `seqdream worker` has."""
    db = Database(path)
    yield db
    db.dispose()


@pytest.fixture()
def api_db(path: str) -> Iterator[Database]:
    """Another process on the same file: the API that queues tasks."""
    db = Database(path)
    yield db
    db.dispose()


def statements(db: Database) -> list[str]:
    """The SQL the database's engine runs from now on (appended as it runs)."""
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
    return seen


def test_an_idle_poll_runs_no_statement_until_another_connection_commits(worker_db: Database, api_db: Database) -> None:
    worker, api = JobStore(worker_db), JobStore(api_db)
    assert worker.claim("w") is None  # looks, finds nothing, remembers
    ran = statements(worker_db)
    for _ in range(20):
        assert worker.claim("w") is None
    assert ran == []  # twenty idle polls: no transaction, no query
    job, _ = api.queue(model="m", request=REQUEST, seed=1, api_key_id=None)
    claimed = worker.claim("w")  # the commit changed the data version: it looks again, at once
    assert claimed is not None and claimed.id == job.id and ran != []


def test_a_task_queued_in_the_same_process_is_seen_at_once(worker_db: Database) -> None:
    store = JobStore(worker_db)
    assert store.claim("w") is None
    job, _ = store.queue(model="m", request=REQUEST, seed=1, api_key_id=None)
    claimed = store.claim("w")
    assert claimed is not None and claimed.id == job.id


def test_a_held_back_task_is_claimed_when_due_without_any_commit(worker_db: Database, api_db: Database) -> None:
    worker, api = JobStore(worker_db), JobStore(api_db)
    job, _ = api.queue(model="m", request=REQUEST, seed=1, api_key_id=None)
    assert api.claim("first") is not None
    assert api.release(job.id, "first", retry_in_s=0.5, error="the disk was full")  # held back half a second
    assert worker.claim("w") is None  # not due yet: nothing runnable, and the due time is remembered
    ran = statements(worker_db)
    assert worker.claim("w") is None and ran == []  # still not due, nothing committed: no query
    time.sleep(0.6)
    claimed = worker.claim("w")  # due now, though nobody committed
    assert claimed is not None and claimed.id == job.id


def test_the_kept_connection_is_closed_with_the_database(path: str, tmp_path: Path) -> None:
    db = Database(path)
    assert JobStore(db).claim("w") is None and db.data_version() is not None
    db.dispose()
    assert not list(tmp_path.glob("seqdream.db-*"))  # no connection left open: SQLite folded its log back
