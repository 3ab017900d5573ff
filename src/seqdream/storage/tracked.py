"""A blob store that records whether storage answers (`seqdream.dependencies.STORAGE`), and whose
every failure is a StorageError, whichever store it wraps."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from seqdream.dependencies import STORAGE
from seqdream.storage.base import BlobNotFound, BlobStore, StorageError

T = TypeVar("T")
PROBE_PREFIX = "probes/"  # where `probe` writes and removes its few bytes


class TrackedBlobStore:
    """Every call of the wrapped store marks storage up or down; `probe` asks it on purpose."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner

    def _tracked(self, call: Callable[[], T]) -> T:
        try:
            result = call()
        except BlobNotFound:
            STORAGE.ok()  # it answered: the blob is not there
            raise
        except OSError as exc:  # a full disk, a bucket that cannot be reached (StorageError)
            STORAGE.failed(exc)
            failure = StorageError.of(exc)
            if failure is exc:
                raise
            raise failure from exc
        STORAGE.ok()
        return result

    def put(self, key: str, data: bytes) -> None:
        self._tracked(lambda: self.inner.put(key, data))

    def get(self, key: str) -> bytes:
        return self._tracked(lambda: self.inner.get(key))

    def delete(self, key: str) -> None:
        self._tracked(lambda: self.inner.delete(key))

    def exists(self, key: str) -> bool:
        return self._tracked(lambda: self.inner.exists(key))


def probe(blobs: BlobStore) -> bool:
    """Whether a small write and its removal succeed now (what a worker waits for after an outage);
    the answer is recorded in STORAGE whichever store it is."""
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        blobs.put(key, b"probe")
        blobs.delete(key)
    except OSError as exc:
        STORAGE.failed(exc)
        return False
    STORAGE.ok()
    return True
