"""CPU thread pools sized for the cores this process may use, none of them spinning for long.

Torch's OpenMP pool, ONNX Runtime's and OpenCV's each default to every core and busy-wait between
tasks, so on a shared machine they fight each other and every other process. `configure_threads`
runs first in every command, before torch is imported: OpenMP reads its settings once, at load.
"""

from __future__ import annotations

import os
import sys

_configured: int | None = None
SPIN_COUNT = "30000"  # ~tens of microseconds


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure_threads(count: int | None = None) -> int:
    """Size every pool to `count` threads (default: the available cores); returns the count."""
    global _configured
    count = max(1, count or available_cores())
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(count)
    # OpenMP threads spin briefly between parallel regions, then sleep. Measured with
    # bench/cpu_contention.py (4-image group, 2 cores, alone / beside two CPU-bound processes):
    # GNU's default 300,000 rounds 1.76 s / 4.04 s; 30,000 rounds 1.78 s / 3.66 s; no spin at all
    # (OMP_WAIT_POLICY=PASSIVE) 3.45 s / 6.05 s, since the model's many small ops each wait for a wake-up.
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
    if "torch" in sys.modules or _configured is None:
        import torch

        torch.set_num_threads(count)
        if _configured is None:
            try:
                torch.set_num_interop_threads(1)  # one pipeline call at a time per engine
            except RuntimeError:
                pass  # inter-op work already ran: the pool exists and cannot be resized
    try:
        import cv2

        cv2.setNumThreads(1)  # images are already processed in parallel by seqdream.parallel
    except ImportError:
        pass
    _configured = count
    return count


def configured_threads() -> int:
    """The count `configure_threads` chose, or the available cores if it has not run."""
    return _configured or available_cores()


def onnx_session_options():  # type: ignore[no-untyped-def]
    """ONNX Runtime options for small per-image models run from several threads: one thread, no spinning."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options
