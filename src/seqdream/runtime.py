"""Everything a process needs, built once from settings: database, queue, blobs, keys."""

from __future__ import annotations

from dataclasses import dataclass

from seqdream.auth.keys import KeyRing
from seqdream.config import Settings
from seqdream.db import Database
from seqdream.images.fetch import FetchPolicy
from seqdream.jobs.store import JobStore
from seqdream.storage import BlobStore, open_blob_store
from seqdream.storage.uploads import UploadStore


@dataclass
class Runtime:
    settings: Settings
    db: Database
    jobs: JobStore
    blobs: BlobStore
    uploads: UploadStore
    keys: KeyRing

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        db.create_tables()
        blobs = open_blob_store(settings.storage_url, settings.resolved_storage_dir, settings.s3_endpoint_url)
        return cls(
            settings=settings,
            db=db,
            jobs=JobStore(db),
            blobs=blobs,
            uploads=UploadStore(db, blobs),
            keys=KeyRing(db),
        )

    @property
    def fetch_policy(self) -> FetchPolicy:
        s = self.settings
        return FetchPolicy(
            connect_timeout_s=s.fetch_connect_timeout_s,
            read_timeout_s=s.fetch_read_timeout_s,
            max_bytes=s.max_image_bytes,
            max_redirects=s.fetch_max_redirects,
            allowed_networks=tuple(s.allowed_networks),
        )

    def close(self) -> None:
        self.db.dispose()
