"""What this process knows of the things it depends on (the database, blob storage): up or down.

Each is marked down by the call that failed and up by the next that succeeds, logging one line
per change ("database unavailable: …", "database back after 20 s") instead of a traceback per
request or poll. Readiness, metrics and the workers' back-off read the same state.
"""

from __future__ import annotations

import logging
import random
import threading
import time

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

log = logging.getLogger("seqdream.dependencies")


class CannotStart(RuntimeError):
    """A dependency (the database, the storage folder) cannot be used as a process starts: one line
    that says which and why, printed instead of a traceback."""


def one_line(exc: BaseException) -> str:
    """An exception's first line, without SQLAlchemy's statement and link (safe for a log line)."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return (text[0] if text else type(cause).__name__)[:200]


class Dependency:
    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self.reason = ""

    @property
    def up(self) -> bool:
        return self._down_since is None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self.reason = one_line(exc)
                log.warning("%s unavailable: %s", self.name, self.reason)

    def ok(self) -> None:
        if self._down_since is None:  # the common case: no lock
            return
        with self._lock:
            if self._down_since is not None:
                log.warning("%s back after %.0f s", self.name, time.monotonic() - self._down_since)
                self._down_since, self.reason = None, ""


DATABASE = Dependency("database")
STORAGE = Dependency("storage")


def is_database_outage(exc: BaseException) -> bool:
    """An error of the database's availability (connection lost or refused, server shutting down,
    disk full, locked), not of the statement: worth waiting out and retrying."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def is_outage(exc: BaseException) -> bool:
    """A database outage, or storage that cannot be written or reached (OSError: full disk, network)."""
    return is_database_outage(exc) or (isinstance(exc, OSError) and not isinstance(exc, SQLAlchemyError))


class Backoff:
    """Waits that double from `first` to `cap`, each with up to a quarter of jitter; `reset` after a success."""

    def __init__(self, first: float = 0.5, cap: float = 5.0) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def next(self) -> float:
        wait = self._next
        self._next = min(self.cap, self._next * 2)
        return wait * (1 + random.uniform(-0.25, 0.25))

    def reset(self) -> None:
        self._next = self.first
