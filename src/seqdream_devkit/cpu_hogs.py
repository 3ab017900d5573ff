"""CPU-bound processes, the load the CPU-sharing benches and tests put beside the service."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cpu_bound_processes(count: int, settle_s: float = 0.0) -> Iterator[None]:
    """`count` busy-looping Python processes for the duration of the block; `settle_s` lets them
    get going before it starts."""
    processes = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    time.sleep(settle_s)
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()
