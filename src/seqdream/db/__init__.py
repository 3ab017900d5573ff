"""Durable state: SQLAlchemy tables and the database connection."""

from seqdream.db.connection import Database
from seqdream.db.models import ApiKey, Base, Job, JobStatus, Upload

__all__ = ["ApiKey", "Base", "Database", "Job", "JobStatus", "Upload"]
