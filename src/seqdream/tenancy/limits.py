"""Per-key limits, checked in the transaction that queues a task.

The key's row is written first (its `last_submit_at`), which locks it: on PostgreSQL a row
lock, on SQLite the database's one write lock. Two submits of one key therefore never check
the same counts, whichever API process each arrives at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, bindparam, func, select, update
from sqlalchemy.orm import Session

from seqdream.db import ApiKey, Job, JobStatus
from seqdream.db.models import utcnow

WINDOW = timedelta(minutes=1)  # the submit rate is counted over the last minute


@dataclass(frozen=True)
class Defaults:
    """What a key without its own limits gets (0: unlimited)."""

    rate_per_min: int = 0
    max_active: int = 0


@dataclass(frozen=True)
class LockedKey:
    """A key's terms, read as its submit locked the row."""

    id: str
    rate_per_min: int | None
    max_active: int | None
    credits: int | None
    weight: float | None


@dataclass(frozen=True)
class KeyLimits:
    rate_per_min: int  # 0: unlimited
    max_active: int  # 0: unlimited
    credits: int | None  # images left; None: unmetered
    weight: float

    @classmethod
    def of(cls, key: LockedKey, defaults: Defaults) -> KeyLimits:
        return cls(
            rate_per_min=defaults.rate_per_min if key.rate_per_min is None else key.rate_per_min,
            max_active=defaults.max_active if key.max_active is None else key.max_active,
            credits=key.credits,
            weight=key.weight or 1.0,
        )


class LimitExceeded(Exception):
    """A submit refused by one of the key's limits; `retry_after_s`: when trying again can succeed."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message, self.retry_after_s = message, retry_after_s


class RateLimited(LimitExceeded):
    """More submits in the window than the key's rate allows."""


class TooManyActive(LimitExceeded):
    """The key has as many tasks queued or running as it may."""


class OutOfCredits(LimitExceeded):
    """The key's credits cannot cover the images the task may make."""


# Built once (every submit runs them), on the table: no ORM bookkeeping for a row read only for its terms.
_KEYS = cast(Table, ApiKey.__table__)
_TERMS = (_KEYS.c.id, _KEYS.c.rate_per_min, _KEYS.c.max_active, _KEYS.c.credits, _KEYS.c.weight)
_TOUCH_KEY = (
    update(_KEYS)
    .where(_KEYS.c.id == bindparam("key_id"))
    .values(last_submit_at=bindparam("now", type_=_KEYS.c.last_submit_at.type))
)
_TOUCH_KEY_RETURNING_TERMS = _TOUCH_KEY.returning(*_TERMS)
_KEY_TERMS = select(*_TERMS).where(_KEYS.c.id == bindparam("key_id"))


def lock_key(session: Session, key_id: str) -> LockedKey | None:
    """The key's terms, its row locked until the transaction ends (None for an id with no row): one
    statement where the database returns what an UPDATE wrote (PostgreSQL, SQLite 3.35+)."""
    params = {"key_id": key_id, "now": utcnow()}
    if session.get_bind().dialect.update_returning:
        row = session.execute(_TOUCH_KEY_RETURNING_TERMS, params).first()
    else:
        session.execute(_TOUCH_KEY, params)
        row = session.execute(_KEY_TERMS, params).first()
    return None if row is None else LockedKey(*row)


def admit(session: Session, key: LockedKey, limits: KeyLimits, images: int, now: datetime | None = None) -> None:
    """Raise LimitExceeded unless the key may queue a task of up to `images` images now; with
    credits, reserve them (what the task does not make is refunded when it ends)."""
    now = now or utcnow()
    if limits.rate_per_min:
        in_window = and_(Job.api_key_id == key.id, Job.created_at > now - WINDOW)
        recent = session.execute(select(func.count(), func.min(Job.created_at)).where(in_window)).one()
        if recent[0] >= limits.rate_per_min:
            # The oldest submit in the window leaves it at its time + WINDOW: a slot is free by then.
            oldest = recent[1] or now  # func.min keeps the column's type: an aware datetime
            wait = math.ceil((oldest + WINDOW - now).total_seconds())
            raise RateLimited(
                f"rate limit: this key may submit {limits.rate_per_min} tasks a minute",
                min(max(1, wait), int(WINDOW.total_seconds())),
            )
    if limits.max_active:
        active = session.scalar(
            select(func.count()).select_from(Job).where(Job.api_key_id == key.id, Job.status.in_(JobStatus.active()))
        )
        if (active or 0) >= limits.max_active:
            raise TooManyActive(
                f"this key has {active} tasks queued or running, its limit; submit again when one ends",
                retry_after_s=5,
            )
    if limits.credits is not None:
        if limits.credits < images:
            raise OutOfCredits(
                f"insufficient credits: the task may make {images} image(s), the key has {limits.credits} left"
            )
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(credits=ApiKey.credits - images))
