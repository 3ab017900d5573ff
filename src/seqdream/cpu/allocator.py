"""Keep large freed buffers for reuse (glibc): every output allocates image-sized buffers (12 MB at
2048 x 2048) several times over; mapped fresh each time, their page faults cost more than the work
on them (the watermark at 2048 x 2048: ~80 ms instead of ~30 ms)."""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: buffers up to 32 MB come from the heap, and are reused
TRIM_THRESHOLD = 512 << 20  # free heap memory beyond this goes back to the system


def keep_large_buffers() -> bool:
    """True when the C library took the setting (glibc); elsewhere nothing changes."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: the C library it runs on (no ldconfig call)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
