"""How long until a task ends, estimated from measured task times and, once it runs, its own pace.

Task times are kept per model, size and image count in the database (`TaskTime`), a moving average
of claim-to-end seconds that every worker adds to and every API process reads. A running task's
estimate moves from that average to its own pace (seconds per denoising step so far) as its steps
are done; a queued task's adds up the work ahead of it in the fair queue, shared by the tasks
running at once."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from seqdream.db import Job, JobStatus, TaskTime
from seqdream.jobs.planner import image_count
from seqdream.jobs.request import JobRequest

AVERAGE_WEIGHT = 0.3  # how far one new measurement moves a task time's average


def images_planned(job: Job) -> int:
    """How many images a task makes (recorded when queued; counted again for older rows)."""
    if job.images_total:
        return job.images_total
    request = JobRequest.of(job.request)
    return image_count(request.prompt, request.max_images)


def size_of(job: Job) -> str:
    """A task's size, "W*H" (recorded when queued; read from the request for older rows)."""
    return job.size or str(job.request.get("size", ""))


@dataclass(frozen=True)
class Queued:
    """Queued tasks of one kind ahead of a task: `count` of them (size and images None: older rows);
    `batchable`: single images a worker draws together, up to its batch size at a time."""

    model: str
    size: str | None
    images: int | None
    count: int
    batchable: bool = False


def averaged(previous: float | None, seconds: float) -> float:
    return seconds if previous is None else previous + AVERAGE_WEIGHT * (seconds - previous)


@dataclass(frozen=True)
class TaskTimes:
    """The measured task times of one model: (size, images) -> seconds."""

    seconds: dict[tuple[str, int], float]

    @classmethod
    def by_model(cls, rows: Sequence[TaskTime]) -> dict[str, TaskTimes]:
        """The measured rows, one TaskTimes per model."""
        grouped: dict[str, dict[tuple[str, int], float]] = defaultdict(dict)
        for row in rows:
            grouped[row.model][row.size, row.images] = row.seconds
        return {model: cls(seconds) for model, seconds in grouped.items()}

    def expected(self, size: str, images: int) -> float | None:
        """A task's expected seconds: measured for its size and count, else scaled by image count
        from the nearest count measured (its size first), else None."""
        if (size, images) in self.seconds:
            return self.seconds[size, images]
        if not self.seconds:
            return None
        (_, count), seconds = min(self.seconds.items(), key=lambda item: (item[0][0] != size, abs(item[0][1] - images)))
        return seconds * images / count

    def of_job(self, job: Job) -> float | None:
        return self.expected(size_of(job), images_planned(job))


def remaining_s(job: Job, times: TaskTimes, now: datetime) -> float | None:
    """Seconds until a running task ends: the measured average less the time it has run, moving to
    its own pace per step as the share of steps done grows. The pace is timed to when its steps were
    recorded (its heartbeat), not to now: steps are recorded SEQDREAM_PROGRESS_EVERY_S apart at most."""
    expected = times.of_job(job)
    elapsed = max(0.0, (now - job.started_at).total_seconds()) if job.started_at else 0.0
    from_average = None if expected is None else max(0.0, expected - elapsed)
    if not (job.steps_done and job.steps_total and job.started_at and job.heartbeat_at):
        return from_average
    recorded = max(1e-3, (job.heartbeat_at - job.started_at).total_seconds())
    since = max(0.0, (now - job.heartbeat_at).total_seconds())
    from_pace = max(0.0, recorded / job.steps_done * (job.steps_total - job.steps_done) - since)
    if from_average is None:
        return from_pace
    trust = math.sqrt(min(job.steps_done, job.steps_total) / job.steps_total)  # its own pace soon outweighs
    return trust * from_pace + (1 - trust) * from_average


def queued_s(
    job: Job,
    ahead: list[Queued],
    running: list[Job],
    times: dict[str, TaskTimes],
    now: datetime,
    per_batch: int = 1,
) -> float | None:
    """Seconds until a queued task ends: the work ahead of it (the queued tasks claimed first and
    what the running ones have left), shared by as many workers run tasks now, then its own. Single
    images that are drawn together count one run per `per_batch` of them (a batched task's measured
    time is its batch's)."""
    own = times.get(job.model, TaskTimes({})).of_job(job)
    if own is None:
        return None
    work = 0.0
    for kind in ahead:
        size = kind.size or size_of(job)
        each = times.get(kind.model, TaskTimes({})).expected(size, kind.images or 1)
        runs = math.ceil(kind.count / per_batch) if kind.batchable else kind.count
        work += runs * (own if each is None else each)
    left_by_worker: dict[str | None, float] = {}  # a batch's tasks share their worker: its time counts once
    for other in running:
        left = remaining_s(other, times.get(other.model, TaskTimes({})), now)
        left = own if left is None else left
        left_by_worker[other.worker_id] = max(left, left_by_worker.get(other.worker_id, 0.0))
    work += sum(left_by_worker.values())
    return work / max(1, len(left_by_worker)) + own


def eta_s(
    job: Job,
    ahead: list[Queued],
    running: list[Job],
    times: dict[str, TaskTimes],
    now: datetime,
    per_batch: int = 1,
) -> float | None:
    """The estimate for a queued or running task (None when nothing is measured yet, or it ended)."""
    if job.status == JobStatus.PROCESSING.value:
        return remaining_s(job, times.get(job.model, TaskTimes({})), now)
    if job.status == JobStatus.CREATED.value:
        return queued_s(job, ahead, running, times, now, per_batch)
    return None
