"""Blob storage for uploads, reference images and generated outputs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from seqdream.storage.base import BlobNotFound, BlobStore, StorageError
from seqdream.storage.local import LocalBlobStore
from seqdream.storage.tracked import TrackedBlobStore

__all__ = ["BlobNotFound", "BlobStore", "LocalBlobStore", "StorageError", "TrackedBlobStore", "open_blob_store"]


def open_blob_store(url: str | None, local_dir: Path, s3_endpoint_url: str | None = None) -> TrackedBlobStore:
    """`None` or `file:///path` -> local folder; `s3://bucket/prefix` -> S3-compatible bucket; either
    tracked, so the service knows whether storage answers."""
    if not url:
        return TrackedBlobStore(LocalBlobStore(local_dir))
    parts = urlsplit(url)
    if parts.scheme == "file":
        return TrackedBlobStore(LocalBlobStore(Path(parts.path)))
    if parts.scheme == "s3" and parts.netloc:
        from seqdream.storage.s3 import S3BlobStore

        return TrackedBlobStore(S3BlobStore(parts.netloc, parts.path, endpoint_url=s3_endpoint_url))
    raise ValueError(f"unsupported SEQDREAM_STORAGE_URL {url!r}: use file:///path or s3://bucket/prefix")
