"""A shared thread pool for per-image CPU work (resizing, encoding, NSFW checks).

Pillow, OpenCV and ONNX Runtime release the GIL, so threads use every core.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="images")


def parallel_map(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`list(map(function, items))`, in parallel, in order; re-raises the first error."""
    return list(_pool.map(function, items))
