"""The composition root: everything a process needs, built once from settings.

`serve`, `worker` and `generate` all start here, so each setting means the same in every command.
The engine and the NSFW detector are built on first use: API-only processes never load a model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from seqdream.auth.keys import KeyRing
from seqdream.config import Settings
from seqdream.db import Database, migrate
from seqdream.db.notify import JOB_ENDED, NEW_JOB, Listener
from seqdream.dependencies import STORAGE, CannotStart, one_line
from seqdream.engines.base import Engine
from seqdream.engines.holder import EngineHolder
from seqdream.engines.registry import load_engine
from seqdream.engines.vocabulary import declared_vocabulary
from seqdream.images.fetch import FetchPolicy
from seqdream.jobs.batching import batch_size
from seqdream.jobs.janitor import Janitor
from seqdream.jobs.pool import WorkerPool
from seqdream.jobs.presence import Presence, PresenceStore, engine_of, new_process_id, waiting_reason
from seqdream.jobs.presentation import present
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore
from seqdream.jobs.worker import Detector, Worker
from seqdream.provenance.marking import Marker
from seqdream.safety.nsfw import DisabledDetector, NudeNetDetector
from seqdream.storage import TrackedBlobStore, open_blob_store
from seqdream.storage.uploads import UploadStore
from seqdream.webhooks.dispatcher import WebhookDispatcher
from seqdream.webhooks.store import WebhookStore


def build_engine(settings: Settings) -> Engine:
    return load_engine(settings)


def worker_devices(device: str, count: int, gpus: int) -> list[str]:
    """The device of each of `count` workers: with `auto`/`cuda` and several GPUs, one GPU each
    (round robin, one model per GPU); otherwise all on `device`, sharing one model."""
    if device in ("auto", "cuda") and gpus > 1:
        return [f"cuda:{index % gpus}" for index in range(count)]
    return [device] * count


def build_detector(settings: Settings) -> Detector:
    return NudeNetDetector(settings.nsfw_threshold) if settings.nsfw_check else DisabledDetector()


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        connect_timeout_s=settings.fetch_connect_timeout_s,
        read_timeout_s=settings.fetch_read_timeout_s,
        total_timeout_s=settings.fetch_total_timeout_s,
        max_bytes=settings.max_image_bytes,
        max_redirects=settings.fetch_max_redirects,
        allowed_networks=tuple(settings.allowed_networks),
    )


@dataclass
class Services:
    settings: Settings
    db: Database
    jobs: JobStore
    blobs: TrackedBlobStore
    uploads: UploadStore
    keys: KeyRing
    webhooks: WebhookStore

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        db = migrate.open_database(settings)
        try:
            blobs = open_blob_store(settings.storage_url, settings.resolved_storage_dir, settings.s3_endpoint_url)
        except OSError as exc:  # a storage folder that cannot be made
            db.dispose()
            raise CannotStart(f"cannot use the storage folder: {exc}") from exc
        return cls(
            settings=settings,
            db=db,
            jobs=JobStore(db, tasks_per_batch=batch_size(settings.batch_tasks, settings.max_batch)),
            blobs=blobs,
            uploads=UploadStore(db, blobs),
            keys=KeyRing(db),
            webhooks=WebhookStore(db),
        )

    @cached_property
    def fetch_policy(self) -> FetchPolicy:
        return fetch_policy(self.settings)

    @cached_property
    def _engine_holders(self) -> dict[str, EngineHolder]:
        return {}

    def engine_holder(self, device: str) -> EngineHolder:
        """The process's engine on `device`, loaded by the first worker that asks for it."""
        if device not in self._engine_holders:
            settings = self.settings.model_copy(update={"device": device})
            self._engine_holders[device] = EngineHolder(lambda: build_engine(settings), settings.engine_retry_s)
        return self._engine_holders[device]

    @property
    def engines(self) -> EngineHolder:
        """The engine of this process's first worker (the only one unless workers span GPUs)."""
        return next(iter(self._engine_holders.values()), None) or self.engine_holder(self.settings.device)

    @cached_property
    def process_id(self) -> str:
        """This process, as its workers report themselves (`presence`)."""
        return new_process_id()

    @cached_property
    def presence(self) -> PresenceStore:
        """The processes that run workers, as each last reported itself (this one included)."""
        return PresenceStore(self.db, self.settings.worker_beat_s)

    def engine_state(self) -> tuple[str, str]:
        """(state, error) of this process's engines as one: ready if any is, else loading, else unavailable."""
        return engine_of((holder.state, holder.last_error) for holder in self._engine_holders.values())

    def workers_seen(self) -> dict[str, int] | None:
        """Worker threads of every process that runs them, by their model's state, as last reported
        (None when the database cannot be read)."""
        try:
            seen = self.presence.sightings()
        except SQLAlchemyError:
            return None
        states = ("ready", "loading", "unavailable")
        return {state: sum(one.workers for one in seen if one.engine == state) for state in states}

    def waiting_reason(self) -> str | None:
        """Why a queued task cannot start now, in words for its caller, or None: no process runs workers,
        or every one that does (this one included) cannot load its model. This process's own workers
        are read live, the others from what they last reported; when those cannot be read, a process
        without workers says nothing rather than guess."""
        local = [holder.state for holder in self._engine_holders.values()]
        try:
            others = [seen for seen in self.presence.sightings() if seen.process != self.process_id]
        except SQLAlchemyError:
            others = None
        return waiting_reason(local, others)

    @property
    def vocabulary(self) -> frozenset[str] | None:
        """The words the configured model declares it knows (None: it declares none)."""
        return declared_vocabulary(self.settings.model)

    @cached_property
    def marker(self) -> Marker:
        """Provenance marks for outputs (one signing identity per process, made on first use)."""
        return Marker.from_settings(self.settings)

    @cached_property
    def detector(self) -> Detector:
        return build_detector(self.settings)

    def new_worker(
        self,
        *,
        device: str | None = None,
        wake: threading.Event | None = None,
        on_finished: Callable[[str], None] | None = None,
    ) -> Worker:
        return Worker(
            self.jobs,
            self.blobs,
            self.engine_holder(device or self.settings.device),
            self.detector,
            self.settings,
            fetch_policy=self.fetch_policy,
            janitor=Janitor(self.jobs, self.uploads, self.blobs, self.settings.retention_hours, webhooks=self.webhooks),
            wake=wake,
            on_finished=on_finished,
            marker=self.marker,
        )

    def start_workers(
        self, count: int, *, wake: threading.Event | None = None, on_finished: Callable[[str], None] | None = None
    ) -> WorkerPool:
        """`count` worker threads, started; on several visible GPUs they take one each, round robin."""
        import torch

        devices = worker_devices(self.settings.device, count, torch.cuda.device_count())
        workers = [self.new_worker(device=device, wake=wake, on_finished=on_finished) for device in devices]
        presence = Presence(self.presence, self.process_id, len(workers), self.engine_state)
        return WorkerPool(workers, grace_s=self.settings.shutdown_grace_s, presence=presence).start()

    def listen(self, on_new_job: Callable[[], None], on_job_ended: Callable[[str], None]) -> Listener | None:
        """Cross-process wake-ups (PostgreSQL's LISTEN/NOTIFY); None on SQLite, where polling does it."""
        if self.db.is_sqlite:
            return None
        handlers = {NEW_JOB: lambda _payload: on_new_job(), JOB_ENDED: on_job_ended}
        return Listener(self.settings.resolved_database_url, handlers).start()

    def start_webhooks(self) -> WebhookDispatcher:
        """The process's webhook sender, started (every process that runs workers runs one)."""
        return WebhookDispatcher(self.webhooks, self.delivered_view, self.fetch_policy, self.settings).start()

    def delivered_view(self, job_id: str) -> dict[str, Any] | None:
        """A task as a webhook carries it: as its result endpoint shows it, outputs as URLs on the
        address it was submitted to; None once it no longer exists."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        base = JobRequest.of(job.request).public_base or self.settings.own_base_url
        return present(job, base, self.blobs, as_urls=True, vocabulary=self.vocabulary)

    def readiness(self, pool: WorkerPool | None, runs_workers: bool) -> dict[str, Any]:
        """What `/health/ready` answers, in `serve` and on a worker's probe port alike: ready while the
        database answers, storage took its last write, and (in a process that runs workers) one is
        alive with its model; `pool` is None until they start."""
        try:
            with self.db.session() as session:
                session.execute(select(1))
            database = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            database = f"unavailable: {one_line(exc)}"
        checks: dict[str, Any] = {
            "database": database,
            "storage": "ok" if STORAGE.up else f"unavailable: {STORAGE.reason}",
        }
        ready = database == "ok" and STORAGE.up
        if runs_workers:  # an API-only process serves without a model
            state, why = self.engines.state, self.engines.last_error
            checks["engine"] = f"{state}: {why}" if state == "unavailable" and why else state  # as database's
            checks["workers_alive"] = pool.alive_count() if pool is not None else 0
            ready = ready and checks["engine"] == "ready" and checks["workers_alive"] > 0
        return {"status": "ready" if ready else "not ready", **checks}

    def close(self) -> None:
        self.db.dispose()
