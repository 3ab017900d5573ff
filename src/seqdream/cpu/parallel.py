"""A shared thread pool for per-image CPU work (resizing, encoding, NSFW checks).

Pillow, OpenCV and ONNX Runtime release the GIL, so threads use every core.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from seqdream.cpu.threads import configured_threads

T = TypeVar("T")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _get_pool() -> ThreadPoolExecutor:
    """Created on first use, after `configure_threads` has sized the process."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=min(8, configured_threads()), thread_name_prefix="images")
        return _pool


def parallel_map(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`list(map(function, items))`, in parallel, in order; re-raises the first error."""
    return list(_get_pool().map(function, items))
