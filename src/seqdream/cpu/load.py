"""Torch's thread count follows the load other processes put on this process's cores.

On a quiet machine the model runs on every core it may use. When other processes keep those cores
busy, several intra-op threads mostly wait for each other: each parallel region ends at a barrier,
and a thread the scheduler has parked holds up the rest (measured on 2 cores beside two CPU-bound
processes: a 4-image group took 4.4x its quiet time with 2 threads, 1.4x with 1). So a sampler reads
/proc/stat for the cores in this process's affinity, subtracts this process's own CPU time, and
`fit_threads` gives torch only the cores the others leave free, at least one.

The engine calls it before each batch of a group (`seqdream.engines.flux2_klein`), so a batch
runs at one count. Results then repeat exactly at the same count; between counts they differ only by
rounding (measured on the built-in model, 1 vs 2 threads: at most one intensity level, the same
scene). `SEQDREAM_THREADS` pins the count for bit-identical repeats; compiled engines keep theirs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

SAMPLE_S = 0.25  # how often /proc/stat is read
SMOOTHING_S = 1.0  # time constant of the moving average: a burst shorter than this barely counts
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Reading:
    at: float  # time.monotonic()
    busy_s: float  # CPU seconds the cores in our affinity spent busy, all processes
    own_s: float  # CPU seconds this process used (all its threads)


def read_busy_seconds(cpus: set[int], stat_text: str) -> float | None:
    """Busy CPU seconds of `cpus` from /proc/stat's per-CPU lines (user+nice+system+irq+softirq+steal)."""
    busy, seen = 0, 0
    for line in stat_text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit() or int(name[3:]) not in cpus:
            continue
        fields = [int(value) for value in rest.split()]
        busy += sum(fields[0:3]) + sum(fields[5:8])  # idle (3) and iowait (4) are not busy
        seen += 1
    return busy / _CLOCK_TICKS if seen else None


class CpuLoad:
    """A moving average of how many of our cores other processes keep busy."""

    def __init__(self, cpus: set[int] | None = None, stat_path: str = "/proc/stat") -> None:
        self.cpus = cpus if cpus is not None else _affinity()
        self.stat_path = stat_path
        self.others = 0.0  # cores' worth of other processes' work
        self._last: Reading | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def sample(self) -> float | None:
        """Read once and fold the interval since the last reading into the average."""
        try:
            with open(self.stat_path) as handle:
                busy = read_busy_seconds(self.cpus, handle.read())
        except OSError:
            return None
        if busy is None:
            return None
        now = Reading(time.monotonic(), busy, time.process_time())
        with self._lock:
            last, self._last = self._last, now
            if last is None or now.at <= last.at:
                return self.others
            elapsed = now.at - last.at
            others = max(0.0, (now.busy_s - last.busy_s) - (now.own_s - last.own_s)) / elapsed
            weight = min(1.0, elapsed / SMOOTHING_S)
            self.others += weight * (min(others, len(self.cpus)) - self.others)
            return self.others

    def start(self) -> CpuLoad:
        if self._thread is None and self.sample() is not None:
            self._thread = threading.Thread(target=self._run, name="cpu-load", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            time.sleep(SAMPLE_S)
            self.sample()

    @property
    def running(self) -> bool:
        return self._thread is not None


def _affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def threads_for(most: int, cores: int, others: float) -> int:
    """Intra-op threads for `cores` cores of which others keep `others` busy: the free ones, at most
    `most`, at least 1. Half a core free rounds up, so light background work costs nothing."""
    free = cores - others
    return max(1, min(most, int(free + 0.5)))


_load: CpuLoad | None = None
_most = 0
_now: int | None = None  # the count fit_threads last chose (OpenMP's count is per calling thread)


def follow_load(most: int) -> None:
    """From now on `fit_threads` keeps torch within `most` threads and the cores others leave free."""
    global _load, _most
    _most = most
    if _load is None:
        _load = CpuLoad().start()
        if not _load.running:
            log.info("CPU load is not readable here (/proc/stat): torch keeps %d thread(s)", most)


def fit_threads() -> int | None:
    """Set torch's intra-op threads for the current load; returns the count, None when not following."""
    if _load is None or not _load.running:
        return None
    import torch

    global _now
    wanted = threads_for(_most, len(_load.cpus), _load.others)
    _now = wanted
    if torch.get_num_threads() != wanted:  # in the thread that runs the model: the count is per thread
        log.debug("other processes keep %.1f core(s) busy: torch now uses %d thread(s)", _load.others, wanted)
        torch.set_num_threads(wanted)
    return wanted


def load_report() -> dict[str, object]:
    """For /health: whether torch's threads follow the load, the others' load and the count now."""
    if _load is None or not _load.running:
        return {"follows_load": False}
    return {"follows_load": True, "other_processes_cores": round(_load.others, 2), "torch_now": _now or _most}
