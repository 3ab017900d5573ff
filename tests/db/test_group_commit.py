"""Concurrent submits on SQLite share transactions and commits, and each keeps its own outcome."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from seqdream.auth.keys import KeyRing
from seqdream.db import ApiKey, Database, migrate
from seqdream.db.group_commit import GroupCommit
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
    flushed to disk) on its own when released. A write alone in its transaction needs none."""
    statements: list[str] = []
    event.listen(db.engine, "connect", lambda connection, _record: connection.set_trace_callback(
        lambda sql: statements.append(sql.split()[0].upper())))  # fmt: skip
    db.engine.dispose()  # connections from here on are traced
    key_id = KeyRing(db).create("many").id
    statements.clear()
    outcomes = submit_from_threads(JobStore(db), key_id, 48)
    assert all(isinstance(outcome, str) for outcome in outcomes)
    groups, inserts, savepoints, open_ = [], 0, 0, False
    for statement in statements:
        if statement == "BEGIN":
            open_, inserts, savepoints = True, 0, 0
        elif statement == "SAVEPOINT":
            assert open_, "a savepoint outside a transaction"
            savepoints += 1
        elif statement == "INSERT" and open_:
            inserts += 1
        elif statement == "COMMIT":
            groups.append((inserts, savepoints))
            open_ = False
    submits = [inserts for inserts, _ in groups if inserts]
    assert sum(submits) == 48 and 1 <= len(submits) < 48  # grouped: fewer commits than submits
    assert all(savepoints == (inserts if inserts > 1 else 0) for inserts, savepoints in groups if inserts)
    reread = JobStore(Database(str(db.engine.url)))  # another connection: only what was committed
    assert all(reread.get(job_id) is not None for job_id in outcomes)  # type: ignore[arg-type]
    ranks = [reread.get(job_id).fair_rank for job_id in outcomes]  # type: ignore[arg-type,union-attr]
    assert len(set(ranks)) == 48  # each saw the ones before it, within its group too


@pytest.mark.filterwarnings("ignore:New instance")  # the clash under test
def test_a_lone_write_that_fails_leaves_nothing_of_itself(db: Database) -> None:
    """A submit alone in its transaction runs without a savepoint: when it fails after reserving the
    key's credits (its task id clashes at the insert), the whole transaction is rolled back."""
    from sqlalchemy.exc import IntegrityError

    keys, store = KeyRing(db), JobStore(db)
    key_id = keys.create("metered", credits=100).id
    store.queue(model="m", request=REQUEST, seed=1, api_key_id=key_id, job_id="taken")
    left = keys.find(key_id).credits  # type: ignore[union-attr]
    assert left is not None and left < 100  # the first submit reserved some
    with pytest.raises(IntegrityError):
        store.queue(model="m", request=REQUEST, seed=2, api_key_id=key_id, job_id="taken")
    assert keys.find(key_id).credits == left  # type: ignore[union-attr]
    assert store.counts() == {"created": 1}
    assert store.queue(model="m", request=REQUEST, seed=3, api_key_id=key_id)[1]  # the next one is accepted


def test_a_lone_write_that_raises_after_writing_keeps_nothing(db: Database) -> None:
    """Whatever a write raises, after it changed rows or not, the caller gets it and none of its
    changes are committed, alone in its transaction or not."""
    commits = GroupCommit(db)
    key_id = KeyRing(db).create("k").id

    def rename_then_fail(session: Session) -> None:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(name="changed"))
        raise ValueError("after the write")

    with pytest.raises(ValueError, match="after the write"):
        commits.run(rename_then_fail)
    assert KeyRing(db).find(key_id).name == "k"  # type: ignore[union-attr]
    assert commits.run(lambda session: session.execute(update(ApiKey).values(name="renamed")).rowcount) == 1


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
