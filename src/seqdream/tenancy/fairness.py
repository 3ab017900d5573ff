"""Start-time fair queueing across keys.

Every job gets a rank when it is queued and workers claim the lowest. A key's jobs are
spaced 1/weight apart; a key with nothing queued starts at the queue's virtual time (the
rank of the work being served now). So a key that queues 200 tasks and a key that then
queues one take turns: the newcomer's task is next, not 200th. A lone key's ranks rise in
submission order, which is first-in first-out as before.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seqdream.db import Job, JobStatus

# Statuses a job reaches by being claimed: the highest rank among them is the virtual time.
_SERVED = (JobStatus.PROCESSING.value, JobStatus.COMPLETED.value, JobStatus.FAILED.value)


def virtual_time(session: Session) -> float:
    """The rank of the most recently served work (one index seek per status)."""
    highest = [session.scalar(select(func.max(Job.fair_rank)).where(Job.status == status)) for status in _SERVED]
    return max((rank for rank in highest if rank is not None), default=0.0)


def next_rank(session: Session, api_key_id: str | None, weight: float) -> float:
    """The rank of a job the key queues now (call with the key's row locked)."""
    now = virtual_time(session)
    owner = Job.api_key_id == api_key_id if api_key_id is not None else Job.api_key_id.is_(None)
    queued = session.scalar(select(func.max(Job.fair_rank)).where(owner, Job.status == JobStatus.CREATED.value))
    return now if queued is None else max(now, queued + 1.0 / weight)
