"""Wake sync-mode requests and streams the moment a job ends, and follow a job until it does.

Jobs ended by workers in other processes arrive through the database's notifications (PostgreSQL)
or are seen by polling it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from seqdream.db import Job, JobStatus
from seqdream.dependencies import Backoff, is_database_outage
from seqdream.services import Services


class JobEvents:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, job_id: str) -> None:
        """Thread-safe: called by worker threads."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake, job_id)

    def _wake(self, job_id: str) -> None:
        for event in self._waiters.pop(job_id, set()):
            event.set()

    async def wait(self, job_id: str, timeout: float) -> None:
        """Return when `job_id` is reported finished, or after `timeout` seconds."""
        event = asyncio.Event()
        self._waiters[job_id].add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[job_id]


async def follow(services: Services, events: JobEvents, job_id: str, timeout_s: float) -> AsyncIterator[Job]:
    """The job's state each time it may have changed (it ended, or a poll interval passed), until
    it ends, no longer exists or `timeout_s` passes. An outage of the database is waited out (the
    task goes on meanwhile): a stream stays open and a sync request keeps waiting, rather than
    losing a task the caller was never told the id of."""
    deadline = time.monotonic() + timeout_s
    backoff = Backoff()
    while True:
        try:
            job = await run_in_threadpool(services.jobs.get, job_id)
        except SQLAlchemyError as exc:
            remaining = deadline - time.monotonic()
            if not is_database_outage(exc) or remaining <= 0:
                raise
            await asyncio.sleep(min(backoff.next(), remaining))  # the session logged the outage once
            continue
        backoff.reset()
        if job is None:
            return
        yield job
        remaining = deadline - time.monotonic()
        if JobStatus(job.status).is_terminal or remaining <= 0:
            return
        await events.wait(job_id, min(services.settings.poll_interval_s, remaining))


async def wait_for_end(services: Services, events: JobEvents, job: Job, timeout_s: float) -> Job:
    """Wait until the job ends or `timeout_s` passes; returns its latest state (`job` itself if it
    could not be read again)."""
    latest = job
    async for seen in follow(services, events, job.id, timeout_s):
        latest = seen
    return latest
