"""The storage seam: anything that can put, get and delete bytes by key."""

from __future__ import annotations

from typing import Protocol


class BlobNotFound(KeyError):
    pass


class StorageError(OSError):
    """The store could not be reached or refused the write; treated like a full disk.

    `str()` is for the log (it may name a bucket key or an endpoint's address); `reason` is what a
    client may be told: the disk's own words or the S3 error code, never a path or an address."""

    def __init__(self, message: str, reason: str = "cannot be reached") -> None:
        super().__init__(message)
        self.reason = reason

    @classmethod
    def of(cls, exc: OSError) -> StorageError:
        """`exc` as a StorageError (a full disk, a folder that cannot be written): its errno's words."""
        if isinstance(exc, StorageError):
            return exc
        return cls(str(exc), exc.strerror or type(exc).__name__)


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...
