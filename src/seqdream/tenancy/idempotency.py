"""`Idempotency-Key`: a retried submit returns the task the first one made.

The fingerprint covers the route and the request as parsed (not its bytes: a multipart
boundary differs between two sends of one request); the same header with a different
fingerprint is refused with 409. Keys are kept for `WINDOW`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from seqdream.db import IdempotencyKey
from seqdream.db.models import utcnow

WINDOW = timedelta(hours=24)
MAX_KEY_CHARS = 255


@dataclass(frozen=True)
class IdempotentSubmit:
    owner: str  # the API key id, "" without authentication
    key: str
    fingerprint: str


class IdempotencyConflict(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key[:80]!r} was used for a different request in the last 24 hours; "
            "use a new key for a new request"
        )


def fingerprint(route: str, fields: dict[str, Any]) -> str:
    text = json.dumps({"route": route, "fields": fields}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def find(session: Session, submit: IdempotentSubmit, now: datetime | None = None) -> str | None:
    """The job id the key made within the window; IdempotencyConflict for another request's key."""
    row = session.get(IdempotencyKey, (submit.owner, submit.key), populate_existing=True)
    if row is None or row.created_at <= (now or utcnow()) - WINDOW:
        return None
    if row.fingerprint != submit.fingerprint:
        raise IdempotencyConflict(submit.key)
    return row.job_id


def remember(session: Session, submit: IdempotentSubmit, job_id: str, now: datetime | None = None) -> None:
    """Record the key for a new job (an expired row of the same key is replaced)."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.owner == submit.owner,
            IdempotencyKey.key == submit.key,
            IdempotencyKey.created_at <= (now or utcnow()) - WINDOW,
        )
    )
    session.add(
        IdempotencyKey(
            owner=submit.owner,
            key=submit.key,
            fingerprint=submit.fingerprint,
            job_id=job_id,
            created_at=now or utcnow(),
        )
    )
    session.flush()


def purge_expired(session: Session, now: datetime | None = None) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at <= (now or utcnow()) - WINDOW))
    return int(getattr(result, "rowcount", 0) or 0)
