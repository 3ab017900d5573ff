"""Queueing a submitted task, whatever its dialect: the caller's limits and `Idempotency-Key`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from seqdream.api.deps import Caller
from seqdream.api.envelope import RETRY_AFTER_OUTAGE_S, APIError, database_unavailable, storage_unavailable
from seqdream.api.state import running
from seqdream.db import Job
from seqdream.dependencies import is_database_outage
from seqdream.jobs.janitor import remove_inline_inputs
from seqdream.jobs.planner import resolve_seed
from seqdream.jobs.request import JobRequest
from seqdream.services import Services
from seqdream.tenancy.idempotency import MAX_KEY_CHARS, IdempotencyConflict, IdempotentSubmit, fingerprint
from seqdream.tenancy.limits import Defaults, LimitExceeded, OutOfCredits

HEADER = "Idempotency-Key"


def idempotent_submit(request: Request, caller: Caller, fields: dict[str, Any]) -> IdempotentSubmit | None:
    """The request's idempotency key and fingerprint, or None when it sends no key."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_KEY_CHARS or not value.isprintable():
        raise APIError(400, f"{HEADER}: must be 1 to {MAX_KEY_CHARS} printable characters")
    return IdempotentSubmit(owner=caller.key_id or "", key=value, fingerprint=fingerprint(request.url.path, fields))


def earlier_task(services: Services, idempotent: IdempotentSubmit | None) -> Job | None:
    """The task an earlier send of this request made (checked before any reference is read)."""
    if idempotent is None:
        return None
    try:
        return services.jobs.remembered(idempotent)
    except IdempotencyConflict as exc:
        raise APIError(409, str(exc)) from exc


def create_job(
    services: Services,
    model: str,
    request: JobRequest,
    seed: int,
    caller: Caller,
    job_id: str,
    idempotent: IdempotentSubmit | None = None,
) -> Job:
    """Record an accepted task durably, within the caller's limits; the envelope's 429/402 when a
    limit refuses it, 409 for a reused idempotency key, 503 when the database refuses."""
    try:
        job, created = services.jobs.queue(
            job_id=job_id,
            model=model,
            request=request,
            seed=seed,
            api_key_id=caller.key_id,
            limits=Defaults(services.settings.key_rate_per_min, services.settings.key_max_active),
            idempotent=idempotent,
        )
    except (LimitExceeded, IdempotencyConflict, SQLAlchemyError, OSError) as exc:
        remove_inline_inputs(services.blobs, request)  # a task not queued leaves nothing stored
        raise _refusal(exc) from exc
    if not created:  # a concurrent send of the same request made it
        remove_inline_inputs(services.blobs, request)
    return job


def submit_task(
    services: Services,
    request: Request,
    caller: Caller,
    model: str,
    fields: dict[str, Any],
    seed: int,
    make_request: Callable[[str], JobRequest],
) -> Job:
    """The one way a task is accepted, whatever its dialect: the caller's `Idempotency-Key` (over the
    request's `fields`), the job request the dialect makes for the new task's id, the key's limits and
    a durable queue entry, then idle workers of this process are woken."""
    idempotent = idempotent_submit(request, caller, fields)
    if (earlier := earlier_task(services, idempotent)) is not None:
        return earlier
    job_id = uuid.uuid4().hex
    job = create_job(services, model, make_request(job_id), resolve_seed(seed), caller, job_id, idempotent)
    running(request.app).work_available.set()
    return job


def _refusal(exc: Exception) -> APIError:
    if isinstance(exc, LimitExceeded):  # credits: 402 (paying helps, waiting does not); rate and active: 429
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
        return APIError(402 if isinstance(exc, OutOfCredits) else 429, exc.message, headers)
    if isinstance(exc, IdempotencyConflict):
        return APIError(409, str(exc))
    if isinstance(exc, OSError):
        return storage_unavailable(exc, nothing_queued=True)
    if is_database_outage(exc):
        return database_unavailable(nothing_queued=True)
    return APIError(
        503, "the task could not be recorded; nothing was queued, try again shortly",
        {"Retry-After": str(RETRY_AFTER_OUTAGE_S)},
    )  # fmt: skip
