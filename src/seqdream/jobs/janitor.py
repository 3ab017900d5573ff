"""Retention: delete outputs, inline inputs and uploads once they are older than allowed."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Protocol

from seqdream.db import Job
from seqdream.db.models import utcnow
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore
from seqdream.storage import BlobStore
from seqdream.storage.uploads import UploadStore

log = logging.getLogger(__name__)


class RowPurger(Protocol):
    """Rows with no files that also expire (finished webhook deliveries)."""

    def purge_before(self, cutoff: datetime) -> int: ...


def remove_inline_inputs(blobs: BlobStore, request: JobRequest) -> int:
    """Delete the references a request carried inline (stored under its task); returns how many."""
    owned = [str(reference.blob) for reference in request.images if reference.is_inline_input]
    for key in owned:
        blobs.delete(key)
    return len(owned)


def remove_job_files(blobs: BlobStore, job: Job) -> int:
    """Delete a job's outputs and the references it carried inline; returns how many."""
    for key in job.outputs:
        blobs.delete(key)
    return len(job.outputs) + remove_inline_inputs(blobs, JobRequest.of(job.request))


class Janitor:
    def __init__(
        self,
        jobs: JobStore,
        uploads: UploadStore,
        blobs: BlobStore,
        retention_hours: float,
        every_s: float = 60.0,
        webhooks: RowPurger | None = None,
    ) -> None:
        self.jobs, self.uploads, self.blobs, self.webhooks = jobs, uploads, blobs, webhooks
        self.retention_hours = retention_hours
        self.every_s = every_s
        self._next = 0.0

    def sweep(self, force: bool = False) -> int:
        """Delete what has outlived the retention period; returns the number of blobs removed."""
        if not force and time.monotonic() < self._next:
            return 0
        self._next = time.monotonic() + self.every_s
        cutoff = utcnow() - timedelta(hours=self.retention_hours)
        removed = 0
        for job in self.jobs.expire_before(cutoff):
            removed += remove_job_files(self.blobs, job)
            self.jobs.mark_expired(job.id)
        removed += len(self.uploads.expire_before(cutoff))
        if self.webhooks is not None:
            self.webhooks.purge_before(cutoff)  # finished deliveries: rows only, no files
        self.jobs.purge_idempotency_keys()  # kept 24 hours whatever the retention
        if removed:
            log.info("retention: removed %d file(s) older than %s", removed, cutoff.isoformat())
        return removed
