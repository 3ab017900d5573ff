"""The worker loop: claim a job, run the engine, store the images, record the result."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from PIL import Image
from sqlalchemy.exc import SQLAlchemyError

from seqdream.config import Settings
from seqdream.db import Job, JobStatus
from seqdream.db.models import utcnow
from seqdream.dependencies import STORAGE, Backoff, is_database_outage, is_outage, one_line
from seqdream.engines.base import Engine, EngineError, GenerationPlan, Interrupted, Steps
from seqdream.engines.holder import EngineHolder
from seqdream.images.decode import ImageInputError, reference_limits
from seqdream.images.encode import data_uri
from seqdream.images.fetch import FetchPolicy
from seqdream.jobs.attempt import Attempt, Detector, Outlets
from seqdream.jobs.batching import batch_size
from seqdream.jobs.janitor import Janitor
from seqdream.jobs.measures import (
    ETA_ERROR_RATIO,
    FAILURES,
    IMAGE_SECONDS,
    IMAGES,
    JOB_SECONDS,
    QUEUE_WAIT_SECONDS,
)
from seqdream.jobs.planner import plan_job
from seqdream.jobs.presence import new_process_id
from seqdream.jobs.references import load_references
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore
from seqdream.provenance.content_credentials import Ingredient
from seqdream.provenance.marking import Marker
from seqdream.storage import BlobStore, StorageError
from seqdream.storage.tracked import probe

log = logging.getLogger(__name__)
DELETE_CHECK_S = 1.0  # how often a running job's worker looks whether it was deleted


class JobDeleted(Interrupted):
    """The job was deleted by its owner while it ran: stop, keep nothing."""


class LeaseLost(Interrupted):
    """Another worker took the job over (this one stalled): stop without touching its files."""


class Worker:
    def __init__(
        self,
        jobs: JobStore,
        blobs: BlobStore,
        engines: EngineHolder,
        detector: Detector,
        settings: Settings,
        *,
        fetch_policy: FetchPolicy | None = None,
        janitor: Janitor | None = None,
        worker_id: str | None = None,
        wake: threading.Event | None = None,
        on_finished: Callable[[str], None] | None = None,
        marker: Marker | None = None,
    ) -> None:
        self.jobs, self.blobs, self.engines, self.detector = jobs, blobs, engines, detector
        self.marker = marker or Marker(service=None, credentials=None)  # None: outputs unmarked
        self.settings = settings
        self.fetch_policy = fetch_policy or FetchPolicy()
        self.janitor = janitor  # None: this worker leaves retention to others
        self.worker_id = worker_id or new_process_id()
        self.wake = wake or threading.Event()  # set by in-process submitters: skip the poll wait
        self.on_finished = on_finished or (lambda _job_id: None)  # after each job: wakes sync-mode waiters
        self.abort = threading.Event()  # set to stop the running jobs between steps and hand them back
        self.stopping = threading.Event()  # the pool's stop, once `run` has it
        self.current_jobs: list[str] = []  # the jobs running together now (one, or a batch of single images)
        # Running jobs that are no longer this worker's: deleted, taken over, or (None) just ended here.
        # The run goes on while any is still its own.
        self.gone: dict[str, Interrupted | None] = {}
        self.steps: Steps | None = None  # how far the running jobs are, for the lease thread to record
        self.previews: dict[str, Image.Image] = {}  # and the latest preview of each
        self.drawing: list[str] = []  # the jobs of the engine call under way
        self.batched = False  # they are a batch: image i is job i's
        self.last_run = 0  # how many tasks this worker's last run took: tasks arrive together when > 1
        self.stepped = threading.Event()  # set on each step and when the job ends: wakes the lease thread
        # Estimates and task times, beside the work rather than before or after it.
        self.bookkeeping = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bookkeeping")
        # Held while claiming: a stop signal waits for it, so a job claimed as the signal lands is
        # either named by it or never claimed.
        self.claiming = threading.Lock()

    def _on_step(self, steps: Steps) -> None:
        """After each denoising step: note how far the jobs are (the lease thread records it), and stop
        once none is still this worker's (deleted, taken over) or the worker is shutting down."""
        self.steps = steps
        if steps.preview is not None and self.drawing:
            self.previews[self.drawing[steps.preview_index if self.batched else 0]] = steps.preview
        self.stepped.set()  # wakes the lease thread, which records it when its interval allows
        running, gone = self.current_jobs, self.gone
        if running and all(job_id in gone for job_id in running):
            why = next((why for why in gone.values() if why is not None), None)
            if why is not None:
                raise why
        if self.abort.is_set():
            raise Interrupted

    def hand_back_now(self) -> list[str]:
        """Return the running jobs to the queue at once (the thread stops at its next step and finds
        them no longer its own): a slow step cannot keep them from the next worker."""
        self.abort.set()
        handed = [job_id for job_id in list(self.current_jobs) if self.jobs.hand_back(job_id, self.worker_id)]
        for job_id in handed:
            log.warning("job %s: handed back to the queue (shutdown)", job_id)
        return handed

    def notice_deleted(self, job_id: str) -> None:
        """Stop `job_id` at the next denoising step if this worker runs it (its batch mates go on)."""
        if job_id in self.current_jobs:
            self.gone[job_id] = JobDeleted()

    # -- loop -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Claim and run jobs until `stop` is set. Nothing a dependency does ends this loop: while the
        database or storage is unavailable the worker backs off (capped, with jitter) and resumes."""
        settings = self.settings
        self.stopping = stop
        log.info("worker %s started", self.worker_id)
        next_recovery = 0.0
        backoff = Backoff()
        while not stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_recovery:
                    self._housekeeping()
                    next_recovery = now + max(settings.job_lease_s / 2, 0.5)
                if not STORAGE.up and not probe(self.blobs):  # outputs could not be written: wait for room
                    stop.wait(backoff.next())
                    continue
                engine = self.engines.get()
                if engine is None:  # keep jobs queued until the model loads
                    stop.wait(1.0)
                    continue
                with self.claiming:
                    if stop.is_set():
                        break
                    claimed = self.jobs.claim_batch(self.worker_id, self.batch_size(engine))
                    self.current_jobs = [job.id for job in claimed]  # a stop signal names them
                backoff.reset()
                claimed += self._fill(claimed, engine)
            except Exception as exc:  # noqa: BLE001 - a worker never dies of a dependency
                self.current_jobs = []
                if not is_outage(exc):
                    log.exception("worker %s: could not claim a job", self.worker_id)
                stop.wait(backoff.next())
                continue
            if not claimed:
                self.wake.wait(settings.poll_interval_s)
                self.wake.clear()
                continue
            try:
                self.process_batch(claimed, engine)
            except Exception as exc:  # noqa: BLE001 - the lease expires and the jobs are retried
                if not is_outage(exc):
                    log.exception("job %s: worker error; retried after its lease", ", ".join(self.current_jobs))
                stop.wait(backoff.next())
            finally:
                self.current_jobs = []
                for job in claimed:
                    self.on_finished(job.id)
        log.info("worker %s stopped", self.worker_id)

    def batch_size(self, engine: Engine) -> int:
        """How many tasks this worker takes together: the engine's batch of independent images
        (1 for an engine that draws none), at most SEQDREAM_BATCH_TASKS."""
        return batch_size(self.settings.batch_tasks, getattr(engine, "task_batch", 1))

    def _fill(self, claimed: list[Job], engine: Engine) -> list[Job]:
        """Batch mates that arrive within SEQDREAM_BATCH_WAIT_S of the claim, claimed as they come.
        Only while tasks arrive together (this worker's last run was a batch): a lone client's task
        never waits, and clients whose batch just ended are given the moment their next tasks need."""
        most, wait_s = self.batch_size(engine), self.settings.batch_wait_s
        if not claimed or wait_s <= 0 or len(claimed) >= most or claimed[0].batch_key is None or self.last_run < 2:
            return []
        more: list[Job] = []
        deadline = time.monotonic() + wait_s
        while len(claimed) + len(more) < most and time.monotonic() < deadline and not self.stopping.is_set():
            self.wake.wait(min(self.settings.poll_interval_s, max(0.0, deadline - time.monotonic())))
            self.wake.clear()
            with self.claiming:
                found = self.jobs.claim_mates(self.worker_id, claimed[0].batch_key, most - len(claimed) - len(more))
                more += found
                self.current_jobs += [job.id for job in found]
        return more

    def _housekeeping(self) -> None:
        settings = self.settings
        try:
            report = self.jobs.recover_stale(settings.job_lease_s, settings.job_max_attempts)
            for job_id in report.requeued:
                log.warning("job %s: its worker went silent; queued again", job_id)
            for job_id in report.failed:
                log.error("job %s: failed after %d attempts", job_id, settings.job_max_attempts)
                self.on_finished(job_id)  # wakes this process's sync-mode waiters and streams
            if self.janitor is not None:
                self.janitor.sweep()
        except Exception as exc:  # noqa: BLE001 - housekeeping must never stop the worker
            if not is_outage(exc):  # an outage is logged once, by seqdream.dependencies
                log.exception("housekeeping failed")

    # -- one run: a job, or a batch of them -------------------------------------------
    @contextmanager
    def _lease(self, jobs: list[Job]) -> Iterator[None]:
        """Heartbeat while the jobs run so other workers know they are alive, recording their steps
        done and previews as they change (SEQDREAM_PROGRESS_EVERY_S apart at most), and look every
        second whether one was deleted (by any process) so it stops within a step or two."""
        done = threading.Event()
        interval = max(self.settings.job_lease_s / 3, 0.2)
        self.steps, self.previews = None, {}

        def beat() -> None:
            next_look = time.monotonic() + DELETE_CHECK_S
            next_beat = time.monotonic() + interval  # the claim set its heartbeat
            # Steps are recorded SEQDREAM_PROGRESS_EVERY_S apart at most, the first that long after the
            # claim: a task shorter than that writes nothing more than its images (writes would contend).
            every = self.settings.progress_every_s
            next_write = time.monotonic() + every
            recorded: Steps | None = None
            shown: dict[str, Image.Image | None] = {}
            while not all(job.id in self.gone for job in jobs):
                pending = self.steps != recorded  # a step not yet recorded: wake to write it when allowed
                wake_at = min(next_look, next_beat, next_write if pending else math.inf)
                self.stepped.wait(max(0.0, wake_at - time.monotonic()))
                if done.is_set():
                    return
                try:
                    now, steps = time.monotonic(), self.steps
                    self.stepped.clear()
                    if (steps != recorded and now >= next_write) or now >= next_beat:  # also tells whether it is ours
                        next_write = now + every
                        next_beat, next_look, recorded = now + interval, now + DELETE_CHECK_S, steps
                        for job in jobs:
                            preview = self.previews.get(job.id)
                            fresh = None if preview is shown.get(job.id) else data_uri(preview)
                            shown[job.id] = preview
                            if job.id not in self.gone and not self.jobs.heartbeat(
                                job.id, self.worker_id, steps, fresh
                            ):
                                self.gone[job.id] = self._why_gone(job.id)
                    elif now >= next_look:
                        next_look = now + DELETE_CHECK_S
                        for job_id in self.jobs.deleted_among([job.id for job in jobs if job.id not in self.gone]):
                            self.gone[job_id] = JobDeleted()
                except Exception as exc:  # noqa: BLE001 - keep beating: the database may come back in time
                    if not is_outage(exc):
                        log.exception("job %s: heartbeat failed", ", ".join(job.id for job in jobs))

        thread = threading.Thread(target=beat, name=f"lease-{jobs[0].id[:8]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            self.stepped.set()
            thread.join()
            self.stepped.clear()

    def _why_gone(self, job_id: str) -> Interrupted | None:
        """A running job's heartbeat found it no longer this worker's: deleted, taken over by another
        worker, or (None) it just ended here (its end and the beat crossed)."""
        now_job = self.jobs.get(job_id)
        if now_job is not None and now_job.status == JobStatus.DELETED.value:
            return JobDeleted()
        if now_job is not None and now_job.worker_id == self.worker_id:
            return None
        log.warning("job %s: lease lost to another worker; stopping at the next step", job_id)
        return LeaseLost()

    def plan_for(self, job: Job, request: JobRequest, engine: Engine) -> tuple[GenerationPlan, list[Ingredient]]:
        """The engine's plan, and the references as a manifest names them."""
        references = load_references(
            request.images,
            blobs=self.blobs,
            policy=self.fetch_policy,
            limits=reference_limits(self.settings),
        )
        ingredients = [Ingredient.of(loaded.data, loaded.image) for loaded in references]
        images = [loaded.image for loaded in references]
        return plan_job(request, job.seed, images, engine.frame_prompt), ingredients

    def _retry_later(self, job: Job, exc: Exception, stored: list[str]) -> None:
        """The database or storage failed under the job: wait until the database answers, then hand
        the job back (a later attempt runs it again), or fail it once it has had its share of attempts."""
        # The task's error is read by its caller: the disk's words or S3's code, never an address or a
        # path (a database's error names its host); the log has the whole line.
        if isinstance(exc, OSError):
            kind, cause = "storage", f"storage unavailable ({StorageError.of(exc).reason})"
        else:
            kind, cause = "database", "database unavailable"
        FAILURES.labels(kind).inc()
        detail = one_line(exc)
        backoff = Backoff()
        while True:
            try:
                if job.attempts >= self.settings.job_max_dependency_attempts:
                    error = f"{cause} (gave up after {job.attempts} attempts)"
                    if self.jobs.fail(job.id, self.worker_id, error, kind):
                        _observe_end(job, "failed")
                    log.error("job %s: %s: %s", job.id, error, detail)
                    return
                retry = self.settings.storage_retry_s
                if self.jobs.release(job.id, self.worker_id, retry_in_s=retry, error=cause):
                    log.warning("job %s: %s: %s; queued again in %.0f s", job.id, cause, detail, retry)
                    self._remove_unrecorded(job.id, stored)
                return
            except SQLAlchemyError as again:
                if not is_database_outage(again) or self.stopping.is_set():
                    return  # the lease runs out and another attempt takes the job
                self.stopping.wait(backoff.next())

    def _remove_unrecorded(self, job_id: str, stored: list[str]) -> None:
        """Remove this attempt's files unless the job records them (they are then the delivered ones)."""
        try:
            recorded = set(getattr(self.jobs.get(job_id), "outputs", None) or [])
            for key in stored:
                if key not in recorded:
                    self.blobs.delete(key)
        except Exception as exc:  # noqa: BLE001 - leftovers of an attempt are harmless; the janitor ignores them
            if not is_outage(exc):
                log.exception("job %s: could not remove an abandoned attempt's files", job_id)

    def process(self, job: Job, engine: Engine) -> None:
        self.process_batch([job], engine)

    def process_batch(self, jobs: list[Job], engine: Engine) -> None:
        """Run claimed jobs: one, or single images of one batch key drawn together, each ending,
        storing, signing, charging and notifying on its own."""
        for job in jobs:
            log.info("job %s: started (attempt %d, model %s)", job.id, job.attempts, job.model)
            if job.attempts == 1 and job.started_at is not None:
                QUEUE_WAIT_SECONDS.observe(max(0.0, (job.started_at - job.created_at).total_seconds()))
        self.last_run = len(jobs)
        if len(jobs) > 1:
            log.info("jobs %s: drawn together in one batch", ", ".join(job.id for job in jobs))
        self.current_jobs, self.gone = [job.id for job in jobs], {}
        # What a client is told at its start, to measure the ETA's error: found beside the run, not before it.
        members = [_Member(job, self.bookkeeping.submit(self.jobs.estimate, job)) for job in jobs]
        try:
            with self._lease(jobs):
                self._run(members, engine)
        finally:
            self.current_jobs, self.drawing, self.batched = [], [], False

    def _run(self, members: list[_Member], engine: Engine) -> None:
        outlets = Outlets(self.marker, self.detector, self.blobs, self.jobs, self.worker_id)
        planned: list[tuple[_Member, GenerationPlan]] = []
        for member in members:
            job = member.job
            request = JobRequest.of(job.request)
            fmt = request.output_format or self.settings.output_format
            quality = self.settings.output_quality if request.output_quality is None else request.output_quality
            member.attempt = attempt = Attempt(job, request, fmt, quality)
            try:
                plan, ingredients = self.plan_for(job, request, engine)
                attempt.use_references(ingredients)
                member.receive = attempt.receiver(outlets, partial(self._why_not_owned, job.id))
                planned.append((member, plan))
            except Exception as exc:  # noqa: BLE001 - decided with every other way an attempt stops
                self._stopped(attempt, exc)
                self.gone.setdefault(job.id, None)
        if not planned:
            return
        self._draw(planned, engine)

    def _draw(self, planned: list[tuple[_Member, GenerationPlan]], engine: Engine) -> None:
        """One engine call for the planned jobs, then each ends on its own. A batch the model call
        failed on is drawn again job by job: one job's bad input never fails its batch mates."""
        live = [member for member, _ in planned]
        self.drawing, self.batched = [member.job.id for member in live], len(live) > 1
        plan = planned[0][1] if not self.batched else _together([plan for _, plan in planned])
        try:
            result = engine.generate(plan, self._on_step, self._receiver(live))
        except EngineError as exc:
            if not self.batched:
                self._stopped(live[0].attempt, exc)
                return
            log.warning("a batch of %d tasks failed (%s); drawing them one by one", len(live), exc)
            for member, alone in planned:
                if member.error is None and member.job.id not in self.gone and not member.attempt.keys:
                    self._draw([(member, alone)], engine)
                else:
                    self._stopped(member.attempt, member.error or self.gone.get(member.job.id) or exc)
            return
        except Exception as exc:  # noqa: BLE001 - every way an attempt stops is decided in one place
            for member in live:
                self._stopped(member.attempt, member.error or self.gone.get(member.job.id) or exc)
            return
        for member in live:
            if member.error is not None:
                self._stopped(member.attempt, member.error)
            else:
                self._finish(member, result.inference_ms, plan.count)

    def _receiver(self, live: list[_Member]) -> Callable[[int, list[Image.Image]], None]:
        """The engine's callback. One job takes every image (what its callback raises stops the run);
        in a batch, image i is job i's, and what one job's callback raises (it was deleted, its
        storage failed) ends that job alone: the run stops only once no job is left to take images."""
        if not self.batched:
            return live[0].receive

        def on_images(start: int, images: list[Image.Image]) -> None:
            for member, image in zip(live[start : start + len(images)], images, strict=True):
                if member.error is None and member.job.id not in self.gone:
                    try:
                        member.receive(0, [image])
                    except Exception as exc:  # noqa: BLE001 - settled with the member, after the run
                        member.error = exc
                        self.gone.setdefault(member.job.id, None)
            failed = [member.error for member in live if member.error is not None]
            if failed and len(failed) == len(live):
                raise failed[0]

        return on_images

    def _finish(self, member: _Member, inference_ms: int, images_in_run: int) -> None:
        """Record a job whose images are all stored: completed, unless it was deleted or taken over."""
        job, attempt = member.job, member.attempt
        try:
            done = self.jobs.complete(
                job.id, self.worker_id, outputs=attempt.keys, has_nsfw_contents=attempt.flags,
                inference_ms=inference_ms,
            )  # fmt: skip
        except SQLAlchemyError as exc:
            self._stopped(attempt, exc)
            return
        if not done:
            if self.jobs.status(job.id) == JobStatus.DELETED.value:
                self._discard(job, attempt.keys)
            else:
                log.warning("job %s: finished after another worker took it over; that worker's result stands", job.id)
                self._remove_unrecorded(job.id, attempt.keys)
            return
        _observe_end(job, "completed")
        self.bookkeeping.submit(self._measured, job, member.predicted)
        IMAGES.inc(len(attempt.keys))
        for _ in attempt.keys:
            IMAGE_SECONDS.observe(inference_ms / 1000 / max(1, images_in_run))
        log.info("job %s: completed %d image(s) in %d ms", job.id, len(attempt.keys), inference_ms)

    def _stopped(self, attempt: Attempt, exc: Exception) -> None:
        """How an attempt that raised ends: deleted, taken over, interrupted, retried after an outage
        (the database, or storage and disk: OSError), failed (its input, the engine, or a defect)."""
        job = attempt.job
        if isinstance(exc, JobDeleted):
            self._discard(job, attempt.keys)
        elif isinstance(exc, LeaseLost):
            log.warning("job %s: taken over by another worker; stopped", job.id)
            self._remove_unrecorded(job.id, attempt.keys)
        elif isinstance(exc, Interrupted):
            FAILURES.labels("interrupted").inc()
            if self.jobs.hand_back(job.id, self.worker_id):  # else already handed back by hand_back_now
                log.warning("job %s: interrupted by shutdown; handed back to the queue", job.id)
        elif isinstance(exc, OSError) or (isinstance(exc, SQLAlchemyError) and is_database_outage(exc)):
            self._retry_later(job, exc, attempt.keys)
        elif isinstance(exc, SQLAlchemyError):
            raise exc  # a defect in a query, not an outage: the lease runs out and another attempt runs it
        elif isinstance(exc, (ImageInputError, EngineError)):
            log.warning("job %s: failed: %s", job.id, exc)
            self._fail(job, "input" if isinstance(exc, ImageInputError) else "engine", str(exc))
        else:
            log.error("job %s: unexpected error", job.id, exc_info=exc)
            self._fail(job, "internal", f"internal error: {type(exc).__name__}: {exc}")

    def _measured(self, job: Job, predicted: Future[float | None] | None) -> None:
        """After a task completed, off its path: its time joins the estimates, and the estimate made at
        its start is scored against it."""
        try:
            real = self.jobs.record_task_time(job.id)
            estimate = predicted.result() if predicted is not None else None
        except Exception as exc:  # noqa: BLE001 - an estimate is never worth a worker
            log.debug("job %s: not measured: %s", job.id, exc)
            return
        if estimate is not None and real:
            ETA_ERROR_RATIO.observe(abs(estimate - real) / real)

    def _fail(self, job: Job, kind: str, error: str) -> None:
        FAILURES.labels(kind).inc()
        if self.jobs.fail(job.id, self.worker_id, error, kind):
            _observe_end(job, "failed")

    def _why_not_owned(self, job_id: str) -> Interrupted:
        return self._why_gone(job_id) or LeaseLost()

    def _discard(self, job: Job, stored: list[str]) -> None:
        for key in stored:
            self.blobs.delete(key)
        _observe_end(job, "deleted")
        log.info("job %s: deleted while running; stopped and removed %d image(s)", job.id, len(stored))


@dataclass
class _Member:
    """One job of a run, and how its attempt went."""

    job: Job
    predicted: Future[float | None] | None = None  # the ETA it was given at its start
    attempt: Attempt = field(init=False)
    receive: Callable[[int, list[Image.Image]], None] = field(init=False)  # its images' callback
    error: Exception | None = None  # what stopped its images while its batch mates went on


def _together(plans: list[GenerationPlan]) -> GenerationPlan:
    """Single-image plans of one batch key as one plan of independent images, in order."""
    first = plans[0]
    return GenerationPlan(
        prompts=[prompt for plan in plans for prompt in plan.prompts],
        seeds=[seed for plan in plans for seed in plan.seeds],
        width=first.width,
        height=first.height,
        references=first.references,
        independent=True,
    )


def _observe_end(job: Job, outcome: str) -> None:
    JOB_SECONDS.labels(outcome).observe(max(0.0, (utcnow() - job.created_at).total_seconds()))
