"""CPU thread pools sized for the cores this process may use, none of them spinning while idle.

Torch's OpenMP pool, ONNX Runtime's and OpenCV's each default to every core and busy-wait between
tasks, so on a shared machine they fight each other and every other process. `configure_threads`
runs first in every command, before torch is imported: OpenMP reads its settings once, at load.
"""

from __future__ import annotations

import os
import sys

_configured: int | None = None


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
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep instead of spinning
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
