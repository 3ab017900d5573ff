"""One `Database` per process: an SQLAlchemy engine plus a session factory."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from seqdream.dependencies import DATABASE, is_database_outage


def rows_changed(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched (`session.execute` types its result as a plain Result)."""
    return cast(CursorResult[Any], result).rowcount


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers and one writer work at once across processes; the busy timeout
    # makes concurrent writers wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            # A file is never disconnected under us (no ping per checkout), and connections are kept
            # for every thread that may hold one at once (the request pool's 40, workers, housekeeping)
            # rather than opened, tuned and closed for each burst of requests.
            if parsed.database and parsed.database != ":memory:":
                kwargs.update(pool_pre_ping=False, pool_size=48, max_overflow=16)
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _tune_sqlite)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._version_lock = threading.Lock()
        self._version_connection: Any = None  # SQLite: kept for `data_version`, never writes

    def data_version(self) -> int | None:
        """SQLite: a number that changes whenever another connection commits to the database
        (`PRAGMA data_version`, read on a connection kept for it, which never writes); None on
        another database or when it cannot be read (callers then look as they would without it)."""
        if not self.is_sqlite:
            return None
        with self._version_lock:
            try:
                if self._version_connection is None:
                    self._version_connection = self.engine.raw_connection()
                cursor = self._version_connection.cursor()
                try:
                    cursor.execute("PRAGMA data_version")
                    return int(cursor.fetchone()[0])
                finally:
                    cursor.close()
            except (SQLAlchemyError, sqlite3.Error):
                if self._version_connection is not None:  # it failed: discarded, never handed to a session
                    self._version_connection.invalidate()
                    self._version_connection = None
                return None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error. Whether the database answered
        is recorded in `seqdream.dependencies.DATABASE` (one log line per outage, not per call)."""
        with self._answered(), self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                try:
                    session.rollback()
                except SQLAlchemyError:  # the connection is gone: nothing to roll back
                    pass
                raise

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A plain connection, for a hot read that needs no ORM objects (the API key of every
        request); whether the database answered is recorded as for `session`."""
        with self._answered(), self.engine.connect() as connection:
            yield connection

    @contextmanager
    def _answered(self) -> Iterator[None]:
        """Record in `DATABASE` whether the database answered the work done inside."""
        try:
            yield
        except BaseException as exc:
            if is_database_outage(exc):
                DATABASE.failed(exc)
            raise
        DATABASE.ok()

    def dispose(self) -> None:
        with self._version_lock:
            if self._version_connection is not None:  # back to the pool, which closes it now
                self._version_connection.close()
                self._version_connection = None
        self.engine.dispose()
