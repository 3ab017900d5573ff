"""The usage ledger: one row per finished task, written in the transaction that ends it.

A task that reserved credits gets back what it did not make (all of them when it failed or
was deleted) in that same transaction, so a crash can neither charge twice nor lose a refund.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from seqdream.db import ApiKey, Job, JobStatus, UsageRecord
from seqdream.db.models import utcnow

USAGE_DAYS = 30  # what a usage query without a first day covers, its last day included
MAX_DAYS = 366  # the longest span one usage query may cover


def settle(session: Session, job_id: str) -> None:
    """Record a job that just ended and refund its unused credits (once, whichever path ends it)."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or not JobStatus(job.status).is_terminal or session.get(UsageRecord, job_id) is not None:
        return
    images = len(job.outputs) if job.status == JobStatus.COMPLETED.value else 0
    session.add(
        UsageRecord(
            job_id=job.id,
            api_key_id=job.api_key_id or "",
            model=job.model,
            status=job.status,
            images=images,
            model_ms=job.inference_ms or 0,
            finished_at=job.finished_at or utcnow(),
        )
    )
    refund = job.credits_reserved - images
    if job.api_key_id and job.credits_reserved and refund > 0:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == job.api_key_id, ApiKey.credits.is_not(None))
            .values(credits=ApiKey.credits + refund)
        )
    session.flush()


@dataclass(frozen=True)
class UsageRow:
    day: str  # YYYY-MM-DD, UTC
    model: str
    tasks: int
    failed: int
    images: int
    model_seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "date": self.day,
            "model": self.model,
            "tasks": self.tasks,
            "failed": self.failed,
            "images": self.images,
            "model_seconds": round(self.model_seconds, 3),
        }


def day_range(first: date, last: date) -> tuple[datetime, datetime]:
    return datetime.combine(first, time(), UTC), datetime.combine(last + timedelta(days=1), time(), UTC)


def usage(session: Session, start: datetime, end: datetime, api_key_id: str | None = None) -> dict[str, list[UsageRow]]:
    """Tasks, images and model seconds per day and model, by key ("" for tasks made without a key);
    one key's only when `api_key_id` is given."""
    query = select(
        UsageRecord.api_key_id,
        UsageRecord.model,
        UsageRecord.status,
        UsageRecord.images,
        UsageRecord.model_ms,
        UsageRecord.finished_at,
    ).where(UsageRecord.finished_at >= start, UsageRecord.finished_at < end)
    if api_key_id is not None:
        query = query.where(UsageRecord.api_key_id == api_key_id)
    sums: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for key, model, status, images, model_ms, finished in session.execute(query):
        row = sums[key, finished.astimezone(UTC).date().isoformat(), model]
        row[0] += 1
        row[1] += float(status == JobStatus.FAILED.value)
        row[2] += images
        row[3] += model_ms / 1000
    by_key: dict[str, list[UsageRow]] = defaultdict(list)
    for (key, day, model), (tasks, failed, made, seconds) in sorted(sums.items()):
        by_key[key].append(UsageRow(day, model, int(tasks), int(failed), int(made), seconds))
    return dict(by_key)


def totals(rows: list[UsageRow]) -> dict[str, object]:
    return {
        "tasks": sum(row.tasks for row in rows),
        "failed": sum(row.failed for row in rows),
        "images": sum(row.images for row in rows),
        "model_seconds": round(sum(row.model_seconds for row in rows), 3),
    }


@dataclass(frozen=True)
class KeyActivity:
    prefix: str  # the key's listed prefix ("" for tasks made without a key)
    name: str
    queued: int
    running: int
    images: int  # made, all time


def key_activity(session: Session, top: int) -> tuple[list[KeyActivity], KeyActivity | None]:
    """The `top` keys by tasks queued and running (then images made), and the rest summed as "other"."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for key_id, status, count in session.execute(
        select(Job.api_key_id, Job.status, func.count())
        .where(Job.status.in_(JobStatus.active()))
        .group_by(Job.api_key_id, Job.status)
    ):
        counts[key_id or ""][0 if status == JobStatus.CREATED.value else 1] += count
    for key_id, images in session.execute(
        select(UsageRecord.api_key_id, func.sum(UsageRecord.images)).group_by(UsageRecord.api_key_id)
    ):
        counts[key_id or ""][2] += int(images or 0)
    names = {key.id: (key.prefix, key.name) for key in session.scalars(select(ApiKey))}
    ranked = sorted(counts.items(), key=lambda item: (-(item[1][0] + item[1][1]), -item[1][2], item[0]))
    shown = [KeyActivity(*names.get(key_id, ("", "no key")), *values) for key_id, values in ranked[:top]]
    rest = [values for _, values in ranked[top:]]
    other = KeyActivity("other", "other", *(sum(column) for column in zip(*rest, strict=True))) if rest else None
    return shown, other
