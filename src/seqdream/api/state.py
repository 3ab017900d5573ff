"""What a running application holds, typed: one `Running` on `app.state.seqdream`, set by the lifespan."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from seqdream.api.notifier import JobEvents
from seqdream.jobs.pool import WorkerPool
from seqdream.services import Services


@dataclass(frozen=True)
class Running:
    services: Services
    job_events: JobEvents  # tasks ending, from this process's workers and (PostgreSQL) others
    work_available: threading.Event  # set on submit so idle in-process workers start at once
    workers: WorkerPool | None  # None when this process only serves the API
    metrics: CollectorRegistry


def running(app: Starlette) -> Running:
    """The application's running state (`request.app` in a route)."""
    state: Running = app.state.seqdream
    return state


def running_or_none(app: Starlette) -> Running | None:
    """The running state, or None before the lifespan has started (a signal during start-up)."""
    return getattr(app.state, "seqdream", None)
