"""Following a task (sync mode, the event stream) across an outage of the database, on a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from seqdream.api.notifier import JobEvents, follow, wait_for_end
from seqdream.config import Settings
from seqdream.db import Job
from seqdream.jobs.request import JobRequest
from seqdream.services import Services


@pytest.fixture()
def services(tmp_path: Path) -> Iterator[Services]:
    services = Services.from_settings(Settings(data_dir=tmp_path, poll_interval_s=0.05))
    yield services
    services.close()


def failing_reads(services: Services, monkeypatch: pytest.MonkeyPatch, errors: list[Exception]) -> None:
    """The next reads of a job raise `errors`, one each, as a database that went away would."""
    read = services.jobs.get

    def get(job_id: str) -> Job | None:
        if errors:
            raise errors.pop(0)
        return read(job_id)

    monkeypatch.setattr(services.jobs, "get", get)


def outage() -> OperationalError:
    return OperationalError("SELECT jobs", {}, Exception("server closed the connection unexpectedly"))


def test_an_outage_while_following_is_waited_out(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    job = services.jobs.create(model="m", request=JobRequest(prompt="p"), seed=1, api_key_id=None)
    failing_reads(services, monkeypatch, [outage(), outage()])

    async def first_state() -> tuple[Job, float]:
        started = time.monotonic()
        async for seen in follow(services, JobEvents(), job.id, timeout_s=30):
            return seen, time.monotonic() - started
        raise AssertionError("nothing was followed")

    seen, waited = asyncio.run(first_state())
    assert seen.id == job.id and seen.status == "created"
    assert waited >= 0.3  # backed off (0.5 s, then 1 s, each with a quarter of jitter), did not raise


def test_wait_for_end_returns_the_task_when_it_outlasts_the_wait(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage past the wait gives it up by raising (a 503); a task that can no longer be read ends
    it with the state it had (the sync answer then names the task, which keeps running)."""
    job = services.jobs.create(model="m", request=JobRequest(prompt="p"), seed=1, api_key_id=None)
    failing_reads(services, monkeypatch, [outage() for _ in range(50)])
    with pytest.raises(OperationalError):
        asyncio.run(wait_for_end(services, JobEvents(), job, timeout_s=0.5))
    monkeypatch.setattr(services.jobs, "get", lambda job_id: None)  # gone (purged)
    assert asyncio.run(wait_for_end(services, JobEvents(), job, timeout_s=0.5)) is job


def test_an_error_that_is_not_an_outage_is_raised_at_once(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    job = services.jobs.create(model="m", request=JobRequest(prompt="p"), seed=1, api_key_id=None)
    failing_reads(services, monkeypatch, [ProgrammingError("SELECT jobs", {}, Exception("no such column"))])
    started = time.monotonic()
    with pytest.raises(ProgrammingError):
        asyncio.run(wait_for_end(services, JobEvents(), job, timeout_s=30))
    assert time.monotonic() - started < 1


def test_an_event_stream_ends_quietly_when_the_database_goes_away_under_it() -> None:
    from seqdream.api.events import _ended_by_outage

    async def stream(error: Exception) -> list[str]:
        async def events():  # type: ignore[no-untyped-def]
            yield "event: started\n\n"
            raise error

        return [event async for event in _ended_by_outage(events())]

    assert asyncio.run(stream(outage())) == ["event: started\n\n"]  # the client reconnects with Last-Event-ID
    with pytest.raises(ProgrammingError):  # a defect is not hidden
        asyncio.run(stream(ProgrammingError("SELECT jobs", {}, Exception("no such column"))))
