"""Uploaded reference images: their records in the database and their bytes in the blob store."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select

from seqdream.auth.keys import hash_secret
from seqdream.db import Database, Upload
from seqdream.db.models import utcnow
from seqdream.locations import upload_key
from seqdream.storage.base import BlobNotFound, BlobStore

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class UploadStore:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    def open(self, filename: str, content_type: str, size: int, api_key_id: str | None) -> tuple[Upload, str]:
        """Record a new, not yet ready upload; returns it and the one-time token that authorises its bytes."""
        token = secrets.token_urlsafe(24)
        upload_id = uuid.uuid4().hex
        upload = Upload(
            id=upload_id,
            filename=filename,
            content_type=content_type,
            size=size,
            blob_key=upload_key(upload_id, filename),
            token_hash=hash_secret(token),
            ready=False,
            api_key_id=api_key_id,
            created_at=utcnow(),
        )
        with self.db.session() as session:
            session.add(upload)
        return upload, token

    def get(self, upload_id: str) -> Upload | None:
        if not _UPLOAD_ID.match(upload_id):
            return None
        with self.db.session() as session:
            return session.get(Upload, upload_id)

    def get_ready(self, upload_id: str) -> Upload | None:
        upload = self.get(upload_id)
        return upload if upload is not None and upload.ready else None

    @staticmethod
    def token_matches(upload: Upload, token: str) -> bool:
        return secrets.compare_digest(upload.token_hash, hash_secret(token))

    def complete(self, upload: Upload, data: bytes) -> None:
        """Store the bytes, then mark the upload ready (an OSError means nothing was marked)."""
        self.blobs.put(upload.blob_key, data)
        upload.ready = True
        with self.db.session() as session:
            session.merge(upload)

    def read(self, upload_id: str, filename: str) -> tuple[Upload, bytes] | None:
        upload = self.get_ready(upload_id)
        if upload is None or upload.filename != filename:
            return None
        try:
            return upload, self.blobs.get(upload.blob_key)
        except BlobNotFound:
            return None

    def expire_before(self, cutoff: datetime) -> Sequence[str]:
        """Delete uploads created before `cutoff`, bytes and records; returns their blob keys."""
        with self.db.session() as session:
            keys = session.scalars(select(Upload.blob_key).where(Upload.created_at < cutoff)).all()
            for key in keys:
                self.blobs.delete(key)
            session.execute(delete(Upload).where(Upload.created_at < cutoff))
        return keys
