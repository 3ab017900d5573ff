"""CPU thread pools sized for the cores this process may use, none of them spinning for long.

Torch's OpenMP pool, ONNX Runtime's and OpenCV's each default to every core and busy-wait between
tasks, so on a shared machine they fight each other and every other process. `configure_threads`
runs first in every command, before torch is imported: OpenMP reads its settings once, at load.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

_configured: int | None = None
_torch_sized = False  # torch's pools sized (by `size_torch_pools`)
_reason = "not configured"
SPIN_COUNT = "30000"  # ~tens of microseconds


@dataclass(frozen=True)
class CoreBudget:
    """How many cores this process may keep busy, and what said so."""

    cores: int
    reason: str


def _cgroup_paths(proc_cgroup: str) -> dict[str, str]:
    """Controller name ("" for cgroup v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                paths[controller] = parts[2]
    return paths


def _ancestors(root: Path, relative: str) -> list[Path]:
    """The cgroup's folder and every parent up to the mount point (a limit anywhere above applies)."""
    folder, found = root / relative.lstrip("/"), []
    while True:
        found.append(folder)
        if folder == root or root not in folder.parents:
            return found
        folder = folder.parent


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_quota(
    root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> CoreBudget | None:
    """The CPU quota of this process's cgroup in cores (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), or None.

    The tightest limit of the cgroup and its ancestors wins, rounded up: 1.5 CPUs is 2 threads'
    worth of work that must not all run at once, which is what `--cpus 1.5` means."""
    text = _read(proc_cgroup)
    if text is None:
        return None
    paths, best = _cgroup_paths(text), None
    if "" in paths:  # cgroup v2: "max 100000" or "150000 100000"
        for folder in _ancestors(root, paths[""]):
            fields = (_read(folder / "cpu.max") or "").split()
            if len(fields) == 2 and fields[0] != "max" and fields[0].isascii() and fields[0].isdigit():
                quota = int(fields[0]) / int(fields[1])
                if best is None or quota < best[0]:
                    best = (quota, f"cgroup v2 cpu.max {fields[0]}/{fields[1]} in {folder}")
    v1_path = paths.get("cpu")  # cgroup v1: the cpu controller's cgroup, under whichever mount holds it
    mounts = (root / "cpu,cpuacct", root / "cpu") if v1_path is not None else ()
    for folder in (folder for mount in mounts for folder in _ancestors(mount, v1_path or "")):
        quota_us, period_us = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota_us and period_us and quota_us.lstrip("-").isdigit() and int(quota_us) > 0:
            quota = int(quota_us) / int(period_us)
            if best is None or quota < best[0]:
                best = (quota, f"cgroup v1 cpu.cfs_quota_us {quota_us}/{period_us} in {folder}")
    if best is None:
        return None
    return CoreBudget(max(1, math.ceil(best[0] - 1e-9)), best[1])


def core_budget() -> CoreBudget:
    """The cores this process may use: its CPU affinity (a cpuset), capped by a cgroup CPU quota
    (a container's `--cpus`, a pod's `resources.limits.cpu`), as container-aware runtimes do."""
    try:
        budget = CoreBudget(max(1, len(os.sched_getaffinity(0))), "CPU affinity")
    except (AttributeError, OSError):
        budget = CoreBudget(max(1, os.cpu_count() or 1), "os.cpu_count()")
    quota = cgroup_quota()
    if quota is not None and quota.cores < budget.cores:
        return quota
    return budget


def available_cores() -> int:
    """Cores this process may use (`core_budget`)."""
    return core_budget().cores


def model_thread_hint(model_folder: str | Path) -> int | None:
    """The intra-op thread count a model folder's seqdream.json recommends ("cpu_threads"), if any.

    Read without torch (threads must be sized before it loads). A small model's ops are too short
    to split: its threads mostly wait for each other, and on a busy CPU for the slowest one."""
    try:
        value = json.loads((Path(model_folder) / "seqdream.json").read_text()).get("cpu_threads")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value >= 1 else None


def configure_threads(count: int | None = None, hint: int | None = None) -> int:
    """Size every pool: `count` threads if set (SEQDREAM_THREADS), else the model's `hint` within
    the core budget, else the core budget; returns the count."""
    global _configured, _reason
    budget = core_budget()
    if count:
        _reason = "SEQDREAM_THREADS"
    elif hint:
        count = min(hint, budget.cores)
        _reason = f"the model's seqdream.json (cpu_threads {hint}); {budget.cores} core(s) by {budget.reason}"
    else:
        _reason = budget.reason
    count = max(1, count or budget.cores)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(count)
    # OpenMP threads spin briefly between parallel regions, then sleep: the spin count that shares a
    # busy machine best was chosen with bench/cpu_contention.py (docs/operations.md has the figures).
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
    _configured = count
    if "torch" in sys.modules:  # else torch reads the variables above when the engine imports it
        size_torch_pools()
    try:
        import cv2

        cv2.setNumThreads(1)  # images are already processed in parallel by seqdream.cpu.parallel
    except ImportError:
        pass
    return count


def size_torch_pools(if_not_yet: bool = False) -> None:
    """Give torch the configured intra-op threads and one inter-op thread (one pipeline call at a
    time per engine). Called once torch is loaded: by the engine as it loads (`if_not_yet`), or by
    `configure_threads` when torch is already in. A process that runs no model (API only, `keys`)
    never imports torch."""
    global _torch_sized
    if if_not_yet and _torch_sized:
        return
    import torch

    torch.set_num_threads(configured_threads())
    if not _torch_sized:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # inter-op work already ran: the pool exists and cannot be resized
    _torch_sized = True


def configured_threads() -> int:
    """The count `configure_threads` chose, or the available cores if it has not run."""
    return _configured or available_cores()


def thread_report() -> dict[str, object]:
    """What /health and the start-up log say about the CPU pools: sizes and why, and (once a CPU
    model follows the load) how busy other processes keep our cores and how many threads torch has now."""
    from seqdream.cpu.load import load_report

    report: dict[str, object] = {
        "torch": configured_threads(),
        "images": min(8, configured_threads()),
        "reason": _reason,
    }
    return {**report, **load_report()}


def onnx_session_options():  # type: ignore[no-untyped-def]
    """ONNX Runtime options for small per-image models run from several threads: one thread, no spinning."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options
