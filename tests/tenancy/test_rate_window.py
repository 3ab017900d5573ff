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
