"""The storage seam: anything that can put, get and delete bytes by key."""

from __future__ import annotations

from typing import Protocol


class BlobNotFound(KeyError):
    pass


class StorageError(OSError):
    """The store could not be reached or refused the write; treated like a full disk."""


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...
