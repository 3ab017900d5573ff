"""Which processes run workers, and whether their model is loaded.

Each process that runs workers (`seqdream serve` with in-process workers, `seqdream worker`) reports
itself in the database every SEQDREAM_WORKER_BEAT_S and removes its row when it stops. Any process
that reads the queue (an API-only server, `seqdream watch`) can then tell a queued task why it
waits: no worker runs, or none can load the model. A row silent for STALE_BEATS beats is of a
process that was killed or cut off from the database, and counts as gone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from seqdream.db import Database, WorkerProcess
from seqdream.db.models import utcnow
from seqdream.dependencies import is_outage

log = logging.getLogger(__name__)

STALE_BEATS = 4  # a process silent this many beats is gone
FORGET_AFTER = timedelta(days=1)  # rows of processes gone this long are deleted by the next report
READ_TTL_S = 1.0  # how long a process reuses what it read (results are polled several times a second)

# Why a queued task does not start, in words for any caller: the load error itself (a server path)
# is the operator's, on /health/ready and in the log.
ENGINE_UNAVAILABLE = (
    "the model cannot be loaded at present, so this task waits in the queue; it starts once the model "
    "loads (the service's /health/ready and log say why)"
)
NO_WORKER = (
    "no worker is running, so this task waits in the queue; it starts once one does "
    "(`seqdream worker`, or `seqdream serve` with --workers 1 or more)"
)


def new_process_id() -> str:
    """host:pid:random, for a worker (`jobs.worker_id`, 64 characters) and a process alike: the host
    name is cut so the whole fits."""
    return f"{socket.gethostname()[:48]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Sighting:
    """A process that runs workers, as it last reported itself."""

    process: str
    workers: int
    engine: str  # loading, ready, unavailable


def engine_of(states: Iterable[tuple[str, str | None]]) -> tuple[str, str]:
    """One process's engine state from its engines' (state, error): ready if any is, else loading if
    any loads, else unavailable with the first error."""
    listed = list(states)
    for wanted in ("ready", "loading"):
        if any(state == wanted for state, _ in listed):
            return wanted, ""
    return "unavailable", next((error for _, error in listed if error), "")


def waiting_reason(local: list[str], others: list[Sighting] | None) -> str | None:
    """Why a queued task cannot start, from this process's engine states (`local`, empty when it runs
    no workers) and the other processes seen (None: they could not be read, so only `local` counts)."""
    states = local + [sighting.engine for sighting in others or []]
    if not states:
        return None if others is None else NO_WORKER
    return ENGINE_UNAVAILABLE if all(state == "unavailable" for state in states) else None


class PresenceStore:
    """The `worker_processes` table."""

    def __init__(self, db: Database, beat_s: float) -> None:
        self.db, self.beat_s = db, beat_s
        self._read: tuple[float, list[Sighting]] | None = None  # (read at, what was read)
        self._lock = threading.Lock()

    def report(self, process: str, *, workers: int, engine: str, engine_error: str) -> None:
        """Insert or refresh this process's row (and forget processes gone a day)."""
        now = utcnow()
        with self.db.session() as session:
            row = session.get(WorkerProcess, process)
            if row is None:
                session.add(WorkerProcess(id=process, workers=workers, engine=engine, engine_error=engine_error[:2000],
                                          started_at=now, seen_at=now))  # fmt: skip
                session.execute(delete(WorkerProcess).where(WorkerProcess.seen_at < now - FORGET_AFTER))
            else:
                row.workers, row.engine, row.engine_error, row.seen_at = workers, engine, engine_error[:2000], now

    def withdraw(self, process: str) -> None:
        with self.db.session() as session:
            session.execute(delete(WorkerProcess).where(WorkerProcess.id == process))

    def sightings(self) -> list[Sighting]:
        """The processes seen in the last STALE_BEATS beats (read at most every READ_TTL_S)."""
        with self._lock:
            if self._read is not None and time.monotonic() - self._read[0] < READ_TTL_S:
                return self._read[1]
        since = utcnow() - timedelta(seconds=STALE_BEATS * self.beat_s)
        with self.db.session() as session:
            rows = session.scalars(select(WorkerProcess).where(WorkerProcess.seen_at >= since)).all()
            seen = [Sighting(row.id, row.workers, row.engine) for row in rows]
        with self._lock:
            self._read = (time.monotonic(), seen)
        return seen


class Presence:
    """The thread that reports this process every beat while its workers run, and withdraws it when
    they stop. A report that fails (the database is gone) is tried again at the next beat."""

    def __init__(self, store: PresenceStore, process: str, workers: int, engine: Callable[[], tuple[str, str]]) -> None:
        self.store, self.process, self.workers, self.engine = store, process, workers, engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-presence", daemon=True)
        self._failing = False

    def start(self) -> Presence:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            self._report()
            if self._stop.wait(self.store.beat_s):
                return

    def _report(self) -> None:
        engine, error = self.engine()
        try:
            self.store.report(self.process, workers=self.workers, engine=engine, engine_error=error)
            self._failing = False
        except (SQLAlchemyError, OSError) as exc:
            if not self._failing and not is_outage(exc):  # an outage is logged once, by seqdream.dependencies
                log.warning("could not report this process's workers: %s", exc)
            self._failing = True

    def stop(self) -> None:
        """Stop reporting and remove this process's row (best effort: a row left behind goes stale)."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.store.withdraw(self.process)
        except (SQLAlchemyError, OSError) as exc:
            log.debug("could not withdraw this process's workers: %s", exc)
