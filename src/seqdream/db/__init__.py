"""Durable state: SQLAlchemy tables and the database connection."""

from seqdream.db.connection import Database, rows_changed
from seqdream.db.models import (
    ApiKey,
    Base,
    IdempotencyKey,
    Job,
    JobStatus,
    TaskTime,
    Upload,
    UsageRecord,
    WebhookDelivery,
    WebhookSecret,
    WorkerProcess,
)

__all__ = [
    "ApiKey",
    "Base",
    "Database",
    "IdempotencyKey",
    "Job",
    "JobStatus",
    "TaskTime",
    "Upload",
    "UsageRecord",
    "WebhookDelivery",
    "WebhookSecret",
    "WorkerProcess",
    "rows_changed",
]
