"""Concurrent submits on SQLite share transactions and commits, and each keeps its own outcome."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import event

from seqdream.auth.keys import KeyRing
from seqdream.db import Database, migrate
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore
from seqdream.tenancy.limits import RateLimited

REQUEST = JobRequest(prompt="a kite", size="1024*1024")


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'seqdream.db'}")
    migrate.upgrade(db)
    return db


def submit_from_threads(store: JobStore, key_id: str, count: int) -> list[object]:
    """`count` threads submit at once; each gets its job id or the error it raised."""
    outcomes: list[object] = [None] * count
    start = threading.Barrier(count)

    def submit(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = store.queue(model="m", request=REQUEST, seed=index, api_key_id=key_id)[0].id
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[index] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_submits_share_commits_and_every_accepted_one_is_stored(db: Database) -> None:
    """Counted as SQLite sees them: a savepoint opened outside a transaction would be committed (and
    flushed to disk) on its own when released."""
    statements: Counter[str] = Counter()
    event.listen(db.engine, "connect", lambda connection, _record: connection.set_trace_callback(
        lambda sql: statements.update([sql.split()[0].upper()])))  # fmt: skip
    db.engine.dispose()  # connections from here on are traced
    key_id = KeyRing(db).create("many").id
    statements.clear()
    outcomes = submit_from_threads(JobStore(db), key_id, 48)
    assert all(isinstance(outcome, str) for outcome in outcomes)
    assert statements["SAVEPOINT"] == 48  # one per submit, each inside a transaction:
    assert 1 <= statements["BEGIN"] == statements["COMMIT"] < 48  # grouped: fewer commits than submits
    reread = JobStore(Database(str(db.engine.url)))  # another connection: only what was committed
    assert all(reread.get(job_id) is not None for job_id in outcomes)  # type: ignore[arg-type]
    ranks = [reread.get(job_id).fair_rank for job_id in outcomes]  # type: ignore[arg-type,union-attr]
    assert len(set(ranks)) == 48  # each saw the ones before it, within its group too


def test_a_refused_submit_in_a_group_leaves_the_others_accepted(db: Database) -> None:
    """A key allowed 10 a minute, 24 submits at once: exactly 10 are queued, 14 refused with the
    key's own error, even though they share transactions."""
    key_id = KeyRing(db).create("ten", rate_per_min=10).id
    outcomes = submit_from_threads(JobStore(db), key_id, 24)
    accepted = [outcome for outcome in outcomes if isinstance(outcome, str)]
    assert len(accepted) == 10
    assert all(isinstance(outcome, RateLimited) for outcome in outcomes if not isinstance(outcome, str))
    assert JobStore(db).counts() == {"created": 10}


@pytest.mark.filterwarnings("ignore:New instance")  # the clash under test
def test_a_write_that_fails_in_the_database_fails_alone(db: Database) -> None:
    """Two of 16 concurrent submits carry the same task id: one of the two fails on the clash (its
    savepoint rolled back), and all the others are stored."""
    from sqlalchemy.exc import IntegrityError

    store, outcomes = JobStore(db), [None] * 16
    start = threading.Barrier(16)

    def submit(index: int) -> None:
        start.wait()
        job_id = "same" if index < 2 else None
        try:
            outcomes[index] = store.queue(model="m", request=REQUEST, seed=index, api_key_id=None, job_id=job_id)[0].id
        except IntegrityError as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(outcome, IntegrityError) for outcome in outcomes) == 1
    assert JobStore(db).counts() == {"created": 15}
