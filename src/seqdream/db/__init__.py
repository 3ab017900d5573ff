"""Durable state: SQLAlchemy tables and the database connection."""

from seqdream.db.connection import Database, rows_changed
from seqdream.db.models import ApiKey, Base, Job, JobStatus, Upload, WebhookDelivery, WebhookSecret

__all__ = [
    "ApiKey",
    "Base",
    "Database",
    "Job",
    "JobStatus",
    "Upload",
    "WebhookDelivery",
    "WebhookSecret",
    "rows_changed",
]
