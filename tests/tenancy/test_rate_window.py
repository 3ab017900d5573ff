"""A refused submit's Retry-After: measured from when the decision is made (after the key's lock),
never longer than the window, never 0; on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from seqdream.auth.keys import KeyRing
from seqdream.db import ApiKey, Database, Job
from seqdream.db.models import utcnow
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore
from seqdream.tenancy.limits import WINDOW, Defaults, KeyLimits, LimitExceeded, admit, lock_key

REQUEST = JobRequest(prompt="p", size="1024*1024")


def test_retry_after_stays_within_the_window_whatever_the_clock_says(db: Database) -> None:
    key_id = KeyRing(db).create("one-a-minute", rate_per_min=1).id
    first = JobStore(db).create(model="m", request=REQUEST, seed=1, api_key_id=key_id)
    for skew in (-5.0, -0.4, 0.0, 0.4, 30.0, 59.6):  # a clock read before the last submit committed, or after
        with db.session() as session:
            key = lock_key(session, key_id)
            assert key is not None
            with pytest.raises(LimitExceeded) as refused:
                admit(session, key, KeyLimits.of(key, Defaults()), 1, now=first.created_at + timedelta(seconds=skew))
            session.rollback()
        wait = refused.value.retry_after_s
        assert wait is not None and 1 <= wait <= WINDOW.total_seconds(), (skew, wait)


def test_the_clock_of_a_submit_is_read_after_the_lock_it_waited_for(database_url: str, db: Database) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("holds SQLite's write lock from a second connection")
    key_id = KeyRing(db).create("waits", rate_per_min=5).id
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database for a moment
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.8)
        holder.rollback()
        released.set()

    threading.Thread(target=release_later).start()
    before = utcnow()
    job = JobStore(db).create(model="m", request=REQUEST, seed=1, api_key_id=key_id)
    assert released.is_set()
    assert (job.created_at - before).total_seconds() >= 0.7  # the time of the decision, not of the arrival
    with db.session() as session:
        stamp = session.scalar(select(ApiKey.last_submit_at).where(ApiKey.id == key_id))
        assert session.scalar(select(Job.created_at).where(Job.id == job.id)) >= stamp
    holder.close()


@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "update-then-select"])
def test_the_lock_reads_the_keys_current_terms_and_stamps_its_submit(
    db: Database, returning: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement where the database returns what an UPDATE wrote; a second read where it cannot
    (SQLite before 3.35): the same terms either way, as they stand at the lock, not when first read."""
    monkeypatch.setattr(db.engine.dialect, "update_returning", returning)
    ring = KeyRing(db)
    key_id = ring.create("metered", rate_per_min=7, max_active=3, credits=40, weight=2.5).id
    ring.update_limits(key_id, add_credits=-28)  # changed after the key was made: the lock reads the row as it is now
    with db.session() as session:
        before = utcnow()
        key = lock_key(session, key_id)
        assert key is not None and (key.id, key.rate_per_min, key.max_active, key.credits, key.weight) == (
            key_id, 7, 3, 12, 2.5
        )  # fmt: skip
        assert session.scalar(select(ApiKey.last_submit_at).where(ApiKey.id == key_id)) >= before
        assert lock_key(session, "no-such-key") is None
    job = JobStore(db).create(
        model="m", request=REQUEST.model_copy(update={"max_images": 5}), seed=1, api_key_id=key_id
    )
    with db.session() as session:  # the submit reserved its images from the credits it read
        assert session.scalar(select(ApiKey.credits).where(ApiKey.id == key_id)) == 7 and job.credits_reserved == 5
