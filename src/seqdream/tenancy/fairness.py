"""Start-time fair queueing across keys.

Every job gets a rank when it is queued and workers claim the lowest. A key's jobs are
spaced 1/weight apart; a key with nothing queued starts at the queue's virtual time (the
rank of the work being served now). So a key that queues 200 tasks and a key that then
queues one take turns: the newcomer's task is next, not 200th. A lone key's ranks rise in
submission order, which is first-in first-out as before.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.orm import Session

from seqdream.db import Job, JobStatus

# Statuses a job reaches by being claimed: the highest rank among them is the virtual time.
_SERVED = (JobStatus.PROCESSING.value, JobStatus.COMPLETED.value, JobStatus.FAILED.value)


def _ranks(owner: ColumnElement[bool]) -> Select[Any]:
    """The highest rank of each served status, then the highest of the owner's queued work: an index
    seek each, in one statement."""
    highest = [select(func.max(Job.fair_rank)).where(Job.status == status).scalar_subquery() for status in _SERVED]
    queued = select(func.max(Job.fair_rank)).where(owner, Job.status == JobStatus.CREATED.value).scalar_subquery()
    return select(*highest, queued)


# Built once (every submit runs one): the statement's compiled form is then found by a cached key.
_KEYS_RANKS = _ranks(Job.api_key_id == bindparam("api_key_id"))
_KEYLESS_RANKS = _ranks(Job.api_key_id.is_(None))


def next_rank(session: Session, api_key_id: str | None, weight: float) -> float:
    """The rank of a job the key queues now (call with the key's row locked)."""
    if api_key_id is None:
        row = session.execute(_KEYLESS_RANKS).one()
    else:
        row = session.execute(_KEYS_RANKS, {"api_key_id": api_key_id}).one()
    *served, last_queued = cast(tuple[float | None, ...], row)  # a Row unpacks as a tuple
    now: float = max((rank for rank in served if rank is not None), default=0.0)  # the virtual time
    return now if last_queued is None else max(now, last_queued + 1.0 / weight)
