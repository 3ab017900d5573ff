"""Durable job queue on top of the database.

Every state change is one conditional UPDATE, so any number of worker processes can
share the table: a job is claimed by exactly one of them, and a worker that lost its
lease (it stalled or was killed) cannot overwrite the result of the one that took over.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from seqdream.db import Database, Job, JobStatus, TaskTime, rows_changed
from seqdream.db.group_commit import GroupCommit
from seqdream.db.models import utcnow
from seqdream.db.notify import JOB_ENDED, NEW_JOB, notify
from seqdream.engines.base import Steps
from seqdream.jobs.batching import batch_key
from seqdream.jobs.eta import Queued, TaskTimes, averaged, eta_s, images_planned, size_of
from seqdream.jobs.planner import image_count
from seqdream.jobs.request import JobRequest
from seqdream.tenancy import idempotency
from seqdream.tenancy.fairness import next_rank
from seqdream.tenancy.idempotency import IdempotentSubmit
from seqdream.tenancy.limits import Defaults, KeyLimits, LockedKey, admit, lock_key
from seqdream.tenancy.usage import settle
from seqdream.webhooks.store import queue_delivery

log = logging.getLogger(__name__)
# Built once (every submit runs it): its compiled form is then found by a cached key.
_INSERT_JOB = insert(cast(Table, Job.__table__))
TASK_TIMES_TTL_S = 5.0  # how long a process reuses the measured task times it read


@dataclass(frozen=True)
class RecoveryReport:
    requeued: list[str]
    failed: list[str]


def _admit(
    session: Session, key: LockedKey, limits: Defaults | None, request: JobRequest, now: datetime
) -> tuple[int, float]:
    """Check the key's limits for this request (LimitExceeded); the credits it reserves and its weight."""
    key_limits = KeyLimits.of(key, limits or Defaults())
    admit(session, key, key_limits, request.max_images, now)
    return (request.max_images if key_limits.credits is not None else 0), key_limits.weight


class JobStore:
    def __init__(self, db: Database, tasks_per_batch: int = 1) -> None:
        self.db = db
        self._times: tuple[float, dict[str, TaskTimes]] = (-math.inf, {})  # (read at, by model)
        self._submits = GroupCommit(db)
        self.tasks_per_batch = tasks_per_batch  # how many single images a worker draws together
        # SQLite: after a claim found nothing, the database's data version then and when the earliest
        # task held back by `not_before` becomes runnable; until either changes, claims find nothing.
        self._empty: tuple[int, datetime | None] | None = None

    def _task_times(self, session: Session) -> dict[str, TaskTimes]:
        """The measured task times by model, read at most every TASK_TIMES_TTL_S (they move slowly)."""
        read_at, times = self._times
        if time.monotonic() - read_at < TASK_TIMES_TTL_S:
            return times
        times = TaskTimes.by_model(session.scalars(select(TaskTime)).all())
        if times:  # none measured yet: look again next time
            self._times = (time.monotonic(), times)
        return times

    def create(
        self, *, model: str, request: JobRequest, seed: int, api_key_id: str | None, job_id: str | None = None
    ) -> Job:
        """Queue a job (no limits, no idempotency key) and commit."""
        return self.queue(model=model, request=request, seed=seed, api_key_id=api_key_id, job_id=job_id)[0]

    def queue(
        self,
        *,
        model: str,
        request: JobRequest,
        seed: int,
        api_key_id: str | None,
        job_id: str | None = None,
        limits: Defaults | None = None,
        idempotent: IdempotentSubmit | None = None,
    ) -> tuple[Job, bool]:
        """Queue a job and commit: once this returns, the job survives any crash.

        Returns (job, created). With `idempotent`, a key already used for this request returns
        its job and False. A key's limits (`limits`: the service's defaults) are checked in the
        same transaction: LimitExceeded, IdempotencyConflict."""
        work = partial(self._queue_in, job_id or uuid.uuid4().hex, model, request, seed, api_key_id, limits, idempotent)
        try:
            if self.db.is_sqlite:  # one writer at a time: concurrent submits share a transaction and its commit
                return self._submits.run(work)
            with self.db.session() as session:
                return work(session)
        except IntegrityError:
            if idempotent is None:
                raise
        return self._race_winner(idempotent), False

    def _queue_in(
        self,
        job_id: str,
        model: str,
        request: JobRequest,
        seed: int,
        api_key_id: str | None,
        limits: Defaults | None,
        idempotent: IdempotentSubmit | None,
        session: Session,
    ) -> tuple[Job, bool]:
        key = self._lock_submitter(session, api_key_id)
        now = utcnow()  # after the lock: time spent waiting for it is not counted in a window
        if idempotent is not None and (earlier := idempotency.find(session, idempotent, now)) is not None:
            found = session.get(Job, earlier)
            if found is not None:
                return found, False
        reserved, weight = (0, 1.0) if key is None else _admit(session, key, limits, request, now)
        images = image_count(request.prompt, request.max_images)
        row: dict[str, Any] = {
            "id": job_id, "model": model, "status": JobStatus.CREATED.value,
            "request": request.model_dump(exclude_none=True), "seed": seed, "outputs": [], "has_nsfw_contents": [],
            "error": "", "attempts": 0, "api_key_id": api_key_id, "created_at": now,
            "fair_rank": next_rank(session, api_key_id, weight), "credits_reserved": reserved, "size": request.size,
            "images_total": images, "batch_key": batch_key(request, images),
        }  # fmt: skip
        # A clash of ids or idempotency keys raises here: this submit's error, not its group's.
        session.execute(_INSERT_JOB, row)  # one row: no unit of work needed
        if idempotent is not None:
            idempotency.remember(session, idempotent, job_id, now)
        self._notify(session, NEW_JOB)
        return Job(**row), True

    def _lock_submitter(self, session: Session, api_key_id: str | None) -> LockedKey | None:
        """Lock the submitting key's row (its limits and idempotency keys are decided one submit at a time)."""
        if api_key_id is not None:
            return lock_key(session, api_key_id)
        # No key row to lock. On SQLite the group commit took the write lock before any submit of its
        # group read, so two submits of one idempotency key queue behind each other.
        return None

    def _race_winner(self, idempotent: IdempotentSubmit) -> Job:
        """The task of a concurrent submit with the same idempotency key that won the race (possible
        only without a key row to lock)."""
        with self.db.session() as session:
            winner = idempotency.find(session, idempotent)
            found = session.get(Job, winner) if winner else None
        if found is None:
            raise RuntimeError("an idempotency key was taken by a task that cannot be found")
        return found

    def remembered(self, idempotent: IdempotentSubmit) -> Job | None:
        """The job an idempotency key already made (IdempotencyConflict for another request's key)."""
        with self.db.session() as session:
            job_id = idempotency.find(session, idempotent)
            return session.get(Job, job_id) if job_id is not None else None

    def purge_idempotency_keys(self) -> int:
        """Forget idempotency keys older than their window."""
        with self.db.session() as session:
            return idempotency.purge_expired(session)

    def get(self, job_id: str) -> Job | None:
        with self.db.session() as session:
            return session.get(Job, job_id)

    def recent(self, limit: int = 20, offset: int = 0, api_key_id: str | None = None) -> Sequence[Job]:
        """Newest first; only the given key's jobs when `api_key_id` is set."""
        query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
        if api_key_id is not None:
            query = query.where(Job.api_key_id == api_key_id)
        with self.db.session() as session:
            return session.scalars(query).all()

    def claim(self, worker_id: str) -> Job | None:
        """Take the runnable job first in the fair queue (lowest rank, then oldest), or None.
        Safe against concurrent claimers."""
        claimed = self.claim_batch(worker_id, 1)
        return claimed[0] if claimed else None

    def claim_batch(self, worker_id: str, most: int) -> list[Job]:
        """Take the runnable job first in the fair queue and, when it may share a batch, up to
        `most - 1` more runnable jobs of its batch key in the queue's order, in one transaction;
        [] when none is runnable. Safe against concurrent claimers."""
        now = utcnow()
        version = self.db.data_version()  # read before looking: a commit after this shows as a change
        if version is not None and self._still_empty(version, now):
            return []  # an idle poll: one pragma, not a transaction
        runnable, taken = _runnable(now), _taken(worker_id, now)
        in_queue = select(Job.id, Job.batch_key).where(runnable).order_by(Job.fair_rank, Job.created_at)
        with self.db.session() as session:
            if not self.db.is_sqlite:
                # PostgreSQL: lock the first runnable row, then its batch mates, skipping rows other claimers hold.
                lead = session.execute(in_queue.limit(1).with_for_update(skip_locked=True)).first()
                if lead is None:
                    return []
                session.execute(update(Job).where(Job.id == lead.id).values(**taken))
                ids = [lead.id] + self._take_mates(session, lead.batch_key, most - 1, taken)
                session.commit()
                return self._in_order(session, ids)
            # SQLite has one writer at a time: race on a few candidates with conditional updates; the
            # first won holds the write lock, so its batch mates are taken in the same transaction.
            candidates = session.execute(in_queue.limit(8)).all()
            for candidate in candidates:
                if self._take(session, candidate.id, taken):
                    ids = [candidate.id] + self._take_mates(session, candidate.batch_key, most - 1, taken)
                    session.commit()
                    return self._in_order(session, ids)
                session.commit()
            if not candidates and version is not None:
                held = select(func.min(Job.not_before)).where(Job.status == JobStatus.CREATED.value)
                self._empty = (version, session.scalar(held))
        return []

    def _still_empty(self, version: int, now: datetime) -> bool:
        """Whether the last claim found nothing and nothing changed since (no commit by any
        connection, no held-back task come due)."""
        if self._empty is None:
            return False
        seen, next_due = self._empty
        return version == seen and (next_due is None or now < next_due)

    def claim_mates(self, worker_id: str, key: str, most: int) -> list[Job]:
        """Up to `most` more runnable jobs of batch key `key`, in the fair queue's order, for a
        batch already running (one that waits to fill)."""
        with self.db.session() as session:
            ids = self._take_mates(session, key, most, _taken(worker_id, utcnow()))
            session.commit()
            return self._in_order(session, ids)

    def _take_mates(self, session: Session, key: str | None, most: int, taken: dict[str, Any]) -> list[str]:
        if key is None or most <= 0:
            return []
        mates = select(Job.id).where(_runnable(utcnow()), Job.batch_key == key)
        mates = mates.order_by(Job.fair_rank, Job.created_at).limit(most)
        if not self.db.is_sqlite:
            ids = list(session.scalars(mates.with_for_update(skip_locked=True)).all())
            if ids:
                session.execute(update(Job).where(Job.id.in_(ids)).values(**taken))
            return ids
        return [job_id for job_id in session.scalars(mates).all() if self._take(session, job_id, taken)]

    @staticmethod
    def _take(session: Session, job_id: str, taken: dict[str, Any]) -> bool:
        result = session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.CREATED.value).values(**taken)
        )
        return rows_changed(result) == 1

    @staticmethod
    def _in_order(session: Session, ids: list[str]) -> list[Job]:
        return [job for job_id in ids if (job := session.get(Job, job_id, populate_existing=True)) is not None]

    def _update_owned(self, job_id: str, owner: str, *, ends: bool = False, **values: Any) -> bool:
        """Change a job only while `owner` runs it. `ends`: it leaves processing, so its webhook is
        queued in the same transaction (the outbox) and other processes hear it ended."""
        with self.db.session() as session:
            result = session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.worker_id == owner,
                    Job.status == JobStatus.PROCESSING.value,
                )
                .values(**values)
            )
            if rows_changed(result) != 1:
                return False
            if ends:
                self._ended(session, job_id)
            return True

    def _ended(self, session: Session, job_id: str) -> None:
        """What every path that ends a job does, in the transaction that ends it: settle its credits
        and usage, queue its webhook, and tell waiting requests and streams in every process."""
        settle(session, job_id)
        job = session.get(Job, job_id, populate_existing=True)
        if job is not None:
            queue_delivery(session, job, JobRequest.of(job.request).webhook_url)
        self._notify(session, JOB_ENDED, job_id)

    def _notify(self, session: Session, channel: str, payload: str = "") -> None:
        """LISTEN/NOTIFY wake-ups exist on PostgreSQL only; SQLite's processes poll."""
        if not self.db.is_sqlite:
            notify(session, channel, payload)

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status (statuses with none are absent)."""
        with self.db.session() as session:
            rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
        return {status: count for status, count in rows}

    def queue_position(self, job: Job) -> int:
        """How many queued tasks the fair queue claims before `job` (0: it is next)."""
        with self.db.session() as session:  # counted as `claim` takes them: runnable, in fair-queue order
            count = session.scalar(select(func.count()).select_from(Job).where(_runnable(utcnow()), _ahead_of(job)))
        return int(count or 0)

    def status(self, job_id: str) -> str | None:
        with self.db.session() as session:
            return session.scalar(select(Job.status).where(Job.id == job_id))

    def add_outputs(
        self,
        job_id: str,
        worker_id: str,
        *,
        outputs: list[str],
        has_nsfw_contents: list[bool],
        content_tag: int | None = None,
    ) -> bool:
        """Record the images stored so far while the job runs (a group shows them as they finish), and
        the watermark's content tag they carry."""
        values: dict[str, Any] = {"outputs": outputs, "has_nsfw_contents": has_nsfw_contents}
        if content_tag is not None:
            values["content_tag"] = content_tag
        return self._update_owned(job_id, worker_id, **values)

    def with_content_tag(self, tag: int, api_key_id: str | None = None, limit: int = 20) -> list[str]:
        """The tasks whose images carry watermark content tag `tag`, newest first; only the given
        key's when `api_key_id` is set."""
        query = select(Job.id).where(Job.content_tag == tag).order_by(Job.created_at.desc(), Job.id).limit(limit)
        if api_key_id is not None:
            query = query.where(Job.api_key_id == api_key_id)
        with self.db.session() as session:
            return list(session.scalars(query))

    def delete(self, job_id: str) -> Job | None:
        """Mark a job deleted whatever its state: queued, it never runs; running, its worker stops
        at the next step. Returns the job as it stands then (its outputs are the caller's to remove)."""
        with self.db.session() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status != JobStatus.DELETED.value)
                .values(status=JobStatus.DELETED.value, finished_at=func.coalesce(Job.finished_at, utcnow()), error="")
            )
            settle(session, job_id)  # a no-op for a job that had already ended
            return session.get(Job, job_id, populate_existing=True)

    def heartbeat(self, job_id: str, worker_id: str, steps: Steps | None = None, preview: str | None = None) -> bool:
        """Extend the lease, and record how many denoising steps are done and the latest preview (a
        data: URI); False means the job is no longer this worker's (another took it back, or it was
        deleted)."""
        progress: dict[str, Any] = {} if steps is None else {"steps_done": steps.done, "steps_total": steps.total,
                                             "batch_steps": steps.per_batch}  # fmt: skip
        if preview is not None:
            progress["preview"] = preview
        return self._update_owned(job_id, worker_id, heartbeat_at=utcnow(), **progress)

    def deleted_among(self, job_ids: list[str]) -> list[str]:
        """Which of these jobs were deleted."""
        if not job_ids:
            return []
        with self.db.session() as session:
            found = select(Job.id).where(Job.id.in_(job_ids), Job.status == JobStatus.DELETED.value)
            return list(session.scalars(found).all())

    def standing(self, job: Job) -> tuple[int | None, float | None]:
        """Where a task stands: its place in the fair queue (queued tasks only) and its `estimate`."""
        position = self.queue_position(job) if job.status == JobStatus.CREATED.value else None
        return position, self.estimate(job)

    def estimate(self, job: Job) -> float | None:
        """Seconds until a queued or running task ends (`seqdream.jobs.eta`); None before anything of
        its model was measured."""
        now = utcnow()
        with self.db.session() as session:
            times = self._task_times(session)
            if job.model not in times:
                return None
            ahead: list[Queued] = []
            running: list[Job] = []
            if job.status == JobStatus.CREATED.value:  # the queue ahead counted by kind, in the database
                kind = (Job.model, Job.size, Job.images_total, Job.batch_key.is_not(None))
                counted = select(*kind, func.count()).where(_runnable(now), _ahead_of(job)).group_by(*kind)
                ahead = [Queued(model, size, images, count, bool(batchable))
                         for model, size, images, batchable, count in session.execute(counted)]  # fmt: skip
                running = list(session.scalars(select(Job).where(Job.status == JobStatus.PROCESSING.value)))
        return eta_s(job, ahead, running, times, now, self.tasks_per_batch)

    def record_task_time(self, job_id: str) -> float | None:
        """Add a completed task's claim-to-end time to its model, size and count's average, and return
        it (best effort: None when it was not recorded; a lost sample only makes one estimate older)."""
        try:
            with self.db.session() as session:
                job = session.get(Job, job_id)
                if job is None or job.started_at is None or job.finished_at is None:
                    return None
                key = (job.model, size_of(job), images_planned(job))
                seconds = (job.finished_at - job.started_at).total_seconds()
                row = session.get(TaskTime, key)
                if row is None:
                    session.add(TaskTime(model=key[0], size=key[1], images=key[2], seconds=seconds, samples=1))
                else:
                    row.seconds, row.samples, row.updated_at = averaged(row.seconds, seconds), row.samples + 1, utcnow()
            self._times = (-math.inf, {})  # committed: this process reads the new average at once
            return seconds
        except SQLAlchemyError as exc:
            log.debug("job %s: its task time was not recorded: %s", job_id, exc)
            return None

    def complete(
        self,
        job_id: str,
        worker_id: str,
        *,
        outputs: list[str],
        has_nsfw_contents: list[bool],
        inference_ms: int,
    ) -> bool:
        return self._update_owned(
            job_id,
            worker_id,
            ends=True,
            status=JobStatus.COMPLETED.value,
            outputs=outputs,
            has_nsfw_contents=has_nsfw_contents,
            inference_ms=inference_ms,
            error="",
            finished_at=utcnow(),
            preview=None,  # the images are there now
        )

    def fail(self, job_id: str, worker_id: str, error: str, kind: str = "engine") -> bool:
        """End a job as failed; `kind` (input, engine, internal) is kept with it."""
        return self._update_owned(
            job_id,
            worker_id,
            ends=True,
            status=JobStatus.FAILED.value,
            error=error,
            failure=kind,
            finished_at=utcnow(),
            preview=None,
        )

    def release(self, job_id: str, worker_id: str, *, retry_in_s: float, error: str) -> bool:
        """Hand a job back to the queue after a transient failure (full disk, say)."""
        return self._update_owned(
            job_id,
            worker_id,
            status=JobStatus.CREATED.value,
            worker_id=None,
            error=error,
            not_before=utcnow() + timedelta(seconds=retry_in_s),
        )

    def hand_back(self, job_id: str, worker_id: str) -> bool:
        """Return a job its worker is shutting down on to the queue now, not counted as an attempt."""
        handed = self._update_owned(
            job_id,
            worker_id,
            status=JobStatus.CREATED.value,
            worker_id=None,
            attempts=Job.attempts - 1,
            not_before=None,
        )
        if handed:
            self._announce(NEW_JOB)  # another process's idle worker can take it now
        return handed

    def _announce(self, channel: str) -> None:
        """A notification of its own (the change it announces is already committed)."""
        if not self.db.is_sqlite:
            with self.db.session() as session:
                notify(session, channel)

    def recover_stale(self, lease_s: float, max_attempts: int) -> RecoveryReport:
        """Requeue processing jobs whose worker went silent; fail those that keep crashing it."""
        cutoff: datetime = utcnow() - timedelta(seconds=lease_s)
        requeued: list[str] = []
        failed: list[str] = []
        with self.db.session() as session:
            stale = session.scalars(
                select(Job).where(
                    Job.status == JobStatus.PROCESSING.value,
                    or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff),
                )
            ).all()
            for job in stale:
                gave_up = job.attempts >= max_attempts
                values: dict[str, Any] = {"worker_id": None}
                if gave_up:
                    values.update(
                        status=JobStatus.FAILED.value,
                        finished_at=utcnow(),
                        error=f"the worker stopped while running this job {job.attempts} times; giving up",
                        failure="interrupted",
                    )
                else:
                    values.update(status=JobStatus.CREATED.value)
                result = session.execute(
                    update(Job)
                    .where(
                        Job.id == job.id,
                        Job.status == JobStatus.PROCESSING.value,
                        Job.heartbeat_at == job.heartbeat_at,
                    )
                    .values(**values)
                )
                if rows_changed(result) == 1:
                    (failed if gave_up else requeued).append(job.id)
                    if gave_up:
                        self._ended(session, job.id)
        if requeued:
            self._announce(NEW_JOB)
        return RecoveryReport(requeued=requeued, failed=failed)

    def expire_before(self, cutoff: datetime) -> Sequence[Job]:
        """Finished jobs older than `cutoff` whose files have not been cleaned up yet."""
        with self.db.session() as session:
            return session.scalars(
                select(Job).where(
                    Job.expired_at.is_(None),
                    Job.finished_at.is_not(None),
                    Job.finished_at < cutoff,
                )
            ).all()

    def mark_expired(self, job_id: str) -> None:
        with self.db.session() as session:
            session.execute(update(Job).where(Job.id == job_id).values(expired_at=utcnow()))


def _ahead_of(job: Job) -> ColumnElement[bool]:
    """Jobs the fair queue takes before `job` (lower rank, then older)."""
    return or_(Job.fair_rank < job.fair_rank, and_(Job.fair_rank == job.fair_rank, Job.created_at < job.created_at))


def _taken(worker_id: str, now: datetime) -> dict[str, Any]:
    """What a claim sets: processing, this worker's, a new attempt that stores its images afresh."""
    return dict(
        status=JobStatus.PROCESSING.value,
        worker_id=worker_id,
        attempts=Job.attempts + 1,
        started_at=now,
        heartbeat_at=now,
        outputs=[],
        has_nsfw_contents=[],
        steps_done=None,
        steps_total=None,
        batch_steps=None,
        preview=None,
    )


def _runnable(now: datetime) -> ColumnElement[bool]:
    """Queued jobs a worker may claim now (a job handed back after an outage waits out its `not_before`)."""
    return and_(Job.status == JobStatus.CREATED.value, or_(Job.not_before.is_(None), Job.not_before <= now))
