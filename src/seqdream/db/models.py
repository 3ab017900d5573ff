"""Tables: jobs (the queue and its results), uploads, API keys with their limits, the webhook
outbox, idempotency keys, the usage ledger and the processes that run workers.

A change here needs a migration in `seqdream/db/migrations/versions` (`tests/db` checks that
upgrading from the first schema gives exactly these tables)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class JobStatus(enum.StrEnum):
    CREATED = "created"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    DELETED = "deleted"  # by its owner: it never runs (again), its files are removed

    @classmethod
    def active(cls) -> tuple[str, str]:
        """The statuses of a task that is queued or running."""
        return cls.CREATED.value, cls.PROCESSING.value

    @property
    def is_active(self) -> bool:
        """Queued or running."""
        return self in (JobStatus.CREATED, JobStatus.PROCESSING)

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.DELETED)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.CREATED.value)
    # Normalised request: prompt, size, max_images, references, output flags.
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    outputs: Mapped[list[str]] = mapped_column(JSON, default=list)  # blob keys
    has_nsfw_contents: Mapped[list[bool]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    # Why a failed job failed: input (a reference), engine, internal or interrupted (a worker kept dying).
    failure: Mapped[str | None] = mapped_column(String(16), nullable=True)
    inference_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    api_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Place in the fair queue: claims take the lowest (`seqdream.tenancy.fairness`).
    fair_rank: Mapped[float] = mapped_column(Float, default=0.0)
    credits_reserved: Mapped[int] = mapped_column(Integer, default=0)  # refunded, less what it made, at its end
    # The watermark's tag of what its images were made from (`provenance.watermark.content_tag`).
    content_tag: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Its size and the images it makes (its plan), as columns: estimates add up the queue by them.
    size: Mapped[str | None] = mapped_column(String(32), nullable=True)
    images_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Tasks with the same key may be drawn together in one batch (`seqdream.jobs.batching`); None: alone.
    batch_key: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # While it runs: denoising steps done of all its batches', and per batch (the worker writes them).
    steps_done: Mapped[int | None] = mapped_column(Integer, nullable=True)
    steps_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    batch_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    preview: Mapped[str | None] = mapped_column(Text, nullable=True)  # a data: URI, while it runs (small models)

    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_status_rank", "status", "fair_rank"),
        Index("ix_jobs_key_created", "api_key_id", "created_at"),
        Index("ix_jobs_content_tag", "content_tag"),
        Index("ix_jobs_status_batch_key", "status", "batch_key"),
    )


class TaskTime(Base):
    """How long a task of a model, size and image count takes from claim to end, measured: a moving
    average that every process's ETAs read (`seqdream.jobs.eta`)."""

    __tablename__ = "task_times"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    size: Mapped[str] = mapped_column(String(32), primary_key=True)
    images: Mapped[int] = mapped_column(Integer, primary_key=True)
    seconds: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(512))
    token_hash: Mapped[str] = mapped_column(String(64))  # authorises the PUT of the bytes
    ready: Mapped[bool] = mapped_column(default=False)
    api_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings, never the whole key
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Limits of this key; None takes the service's default (`seqdream.tenancy.limits`).
    rate_per_min: Mapped[int | None] = mapped_column(Integer, nullable=True)  # submits per minute
    max_active: Mapped[int | None] = mapped_column(Integer, nullable=True)  # queued + running tasks
    credits: Mapped[int | None] = mapped_column(Integer, nullable=True)  # images left; None: unmetered
    weight: Mapped[float | None] = mapped_column(Float, nullable=True)  # share of the workers when busy
    last_submit_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` header and the task it created (kept 24 hours)."""

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(32), primary_key=True)  # API key id ("" without auth)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the route and the request
    job_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UsageRecord(Base):
    """What one finished task used: written with its end, kept after the task itself is purged."""

    __tablename__ = "usage_records"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    api_key_id: Mapped[str] = mapped_column(String(32))  # "" without auth
    model: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    images: Mapped[int] = mapped_column(Integer)
    model_ms: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_usage_key_finished", "api_key_id", "finished_at"),)


class WebhookSecret(Base):
    """The secret that signs webhooks of one API key ("" when authentication is disabled)."""

    __tablename__ = "webhook_secrets"

    owner: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One notification to send: written in the same transaction that ends its job (the outbox)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # sent as `webhook-id`
    job_id: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(32))  # whose secret signs it
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)


class WorkerProcess(Base):
    """A process that runs workers, as it last reported itself (`seqdream.jobs.presence`): how many
    worker threads and whether its model is loaded. Removed when the process stops; a row whose
    `seen_at` is old is of a process that was killed or cut off from the database."""

    __tablename__ = "worker_processes"

    id: Mapped[str] = mapped_column(String(96), primary_key=True)  # host:pid:random
    workers: Mapped[int] = mapped_column(Integer)
    engine: Mapped[str] = mapped_column(String(16))  # loading, ready, unavailable
    engine_error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
