"""Blob storage for uploads, reference images and generated outputs."""

from __future__ import annotations

from pathlib import Path

from seqdream.config import storage_location
from seqdream.storage.base import BlobNotFound, BlobStore, StorageError
from seqdream.storage.local import LocalBlobStore
from seqdream.storage.tracked import TrackedBlobStore

__all__ = ["BlobNotFound", "BlobStore", "LocalBlobStore", "StorageError", "TrackedBlobStore", "open_blob_store"]


def open_blob_store(url: str | None, local_dir: Path, s3_endpoint_url: str | None = None) -> TrackedBlobStore:
    """`None` or `file:///path` -> local folder; `s3://bucket/prefix` -> S3-compatible bucket; either
    tracked, so the service knows whether storage answers."""
    if not url:
        return TrackedBlobStore(LocalBlobStore(local_dir))
    kind, where, prefix = storage_location(url)
    if kind == "file":
        return TrackedBlobStore(LocalBlobStore(Path(where)))
    from seqdream.storage.s3 import S3BlobStore

    return TrackedBlobStore(S3BlobStore(where, prefix, endpoint_url=s3_endpoint_url))
