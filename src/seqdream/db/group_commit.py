"""Group commit for SQLite: writes from many threads share one transaction and one commit.

SQLite takes one writer at a time and, with `synchronous=FULL`, pays a disk flush per commit. Under
many concurrent submits most of a submit's time is spent waiting for the write lock and the flush.
Here the first thread to arrive leads: it runs every write queued so far in one transaction, each
in a savepoint of its own when there are several (one write's error rolls back only that write; a
write alone needs none), commits once, and hands each thread its own result or error. Nobody
returns before the commit that holds their write, so a write that returned is as durable as with a
commit of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Table, false, update
from sqlalchemy.orm import Session

from seqdream.db.connection import Database
from seqdream.db.models import Job

T = TypeVar("T")
MOST_PER_GROUP = 64  # writes in one transaction at most: a long one would hold the write lock too long
# A write that changes nothing, on the table (no ORM bookkeeping), built once: it opens the transaction.
_JOBS = cast(Table, Job.__table__)
_TAKE_WRITE_LOCK = update(_JOBS).where(false()).values(status=_JOBS.c.status)


@dataclass
class _Write(Generic[T]):
    work: Callable[[Session], T]
    result: T | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._changed = threading.Condition()
        self._pending: list[_Write[Any]] = []
        self._leading = False

    def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in a transaction shared with other threads' writes, committed before this
        returns; what `work` raises (its savepoint rolled back) or the commit's error is raised here."""
        write: _Write[T] = _Write(work)
        with self._changed:
            self._pending.append(write)
            while not write.done:
                if self._leading:
                    self._changed.wait()
                    continue
                self._leading = True
                group, self._pending = self._pending[:MOST_PER_GROUP], self._pending[MOST_PER_GROUP:]
                self._changed.release()
                try:
                    self._commit(group)
                finally:
                    self._changed.acquire()
                    self._leading = False
                    self._changed.notify_all()
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[return-value]  # set whenever no error is

    def _commit(self, group: list[_Write[Any]]) -> None:
        try:
            with self.db.session() as session:
                # A write first: the driver opens the transaction (BEGIN) before it, and the write lock
                # is taken before any write of the group reads, so the savepoints below nest inside one
                # transaction and see each other's rows in order.
                session.execute(_TAKE_WRITE_LOCK)
                if len(group) == 1:  # alone, a write needs no savepoint: its error rolls back the transaction
                    group[0].result = group[0].work(session)
                    return
                for write in group:
                    try:
                        with session.begin_nested():
                            write.result = write.work(session)
                    except Exception as exc:  # noqa: BLE001 - it belongs to the thread that asked
                        write.error, write.result = exc, None
        except Exception as exc:  # noqa: BLE001 - the commit (or a lone write) failed: no write of the group is kept
            for write in group:
                if write.error is None:
                    write.error, write.result = exc, None
        finally:
            for write in group:
                write.done = True
