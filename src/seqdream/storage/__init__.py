"""Blob storage for uploads, reference images and generated outputs."""

from seqdream.storage.base import BlobNotFound, BlobStore
from seqdream.storage.local import LocalBlobStore

__all__ = ["BlobNotFound", "BlobStore", "LocalBlobStore"]
