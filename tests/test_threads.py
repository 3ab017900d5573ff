"""The cores a process may use: its affinity, capped by a cgroup CPU quota (v1 and v2)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from seqdream.cpu import load as cpu_load
from seqdream.cpu.threads import cgroup_quota


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("cpu_max", "cores"), [("100000 100000", 1), ("150000 100000", 2), ("50000 100000", 1), ("400000 100000", 4)]
)
def test_cgroup_v2_quota(tmp_path: Path, cpu_max: str, cores: int) -> None:
    proc = _write(tmp_path / "proc", "0::/kubepods/pod1/ctr\n")
    _write(tmp_path / "cg/kubepods/pod1/ctr/cpu.max", cpu_max + "\n")
    budget = cgroup_quota(tmp_path / "cg", proc)
    assert budget is not None and budget.cores == cores
    assert "cgroup v2 cpu.max" in budget.reason


def test_cgroup_v2_no_limit_and_a_limit_further_up(tmp_path: Path) -> None:
    proc = _write(tmp_path / "proc", "0::/a/b\n")
    _write(tmp_path / "cg/a/b/cpu.max", "max 100000\n")
    assert cgroup_quota(tmp_path / "cg", proc) is None
    _write(tmp_path / "cg/a/cpu.max", "200000 100000\n")  # the parent's limit applies to the child
    budget = cgroup_quota(tmp_path / "cg", proc)
    assert budget is not None and budget.cores == 2


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    proc = _write(tmp_path / "proc", "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n")
    _write(tmp_path / "cg/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "100000\n")
    _write(tmp_path / "cg/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
    budget = cgroup_quota(tmp_path / "cg", proc)
    assert budget is not None and budget.cores == 1 and "cgroup v1" in budget.reason


def test_cgroup_v1_unlimited(tmp_path: Path) -> None:
    proc = _write(tmp_path / "proc", "2:cpu,cpuacct:/\n")
    _write(tmp_path / "cg/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path / "cg/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    assert cgroup_quota(tmp_path / "cg", proc) is None


def test_no_cgroup_file(tmp_path: Path) -> None:
    assert cgroup_quota(tmp_path / "cg", tmp_path / "missing") is None


def test_a_model_folder_may_recommend_its_thread_count(tmp_path: Path) -> None:
    from seqdream.cpu.threads import model_thread_hint

    assert model_thread_hint(tmp_path) is None  # no seqdream.json
    _write(tmp_path / "seqdream.json", '{"num_inference_steps": 20}')
    assert model_thread_hint(tmp_path) is None
    _write(tmp_path / "seqdream.json", '{"cpu_threads": 1}')
    assert model_thread_hint(tmp_path) == 1
    for bad in ('{"cpu_threads": 0}', '{"cpu_threads": "2"}', "[1]", "not json"):
        _write(tmp_path / "seqdream.json", bad)
        assert model_thread_hint(tmp_path) is None


# -- torch's threads follow the load others put on our cores (seqdream.cpu.load) ------------------
STAT = """cpu  {total} 0 0 0 0 0 0 0 0 0
cpu0 {cpu0} 0 0 500 0 0 0 0 0 0
cpu1 {cpu1} 0 0 500 0 0 0 0 0 0
intr 1 2 3
"""


def test_busy_seconds_count_only_our_cores_and_not_idle_time() -> None:
    text = STAT.format(total=300, cpu0=100, cpu1=200)
    ticks = os.sysconf("SC_CLK_TCK")
    assert cpu_load.read_busy_seconds({0}, text) == pytest.approx(100 / ticks)
    assert cpu_load.read_busy_seconds({0, 1}, text) == pytest.approx(300 / ticks)
    assert cpu_load.read_busy_seconds({7}, text) is None


@pytest.mark.parametrize(
    ("most", "cores", "others", "threads"),
    [(2, 2, 0.0, 2), (2, 2, 0.4, 2), (2, 2, 1.0, 1), (2, 2, 2.0, 1), (2, 2, 8.0, 1), (8, 16, 10.0, 6), (4, 16, 1.0, 4)],
)
def test_threads_are_the_cores_others_leave_free(most: int, cores: int, others: float, threads: int) -> None:
    assert cpu_load.threads_for(most, cores, others) == threads


def test_the_average_counts_other_processes_busy_time(tmp_path: Path) -> None:
    """One core's worth of busy ticks per second from /proc/stat, none of it ours: about one core."""
    stat = tmp_path / "stat"
    ticks = os.sysconf("SC_CLK_TCK")
    stat.write_text(STAT.format(total=0, cpu0=0, cpu1=0))
    load = cpu_load.CpuLoad({0, 1}, str(stat))
    assert load.sample() == 0.0
    time.sleep(1.0)
    stat.write_text(STAT.format(total=ticks, cpu0=ticks, cpu1=0))
    others = load.sample()
    assert others is not None and 0.5 < others <= 1.0


@pytest.mark.slow
def test_a_real_cpu_bound_process_on_our_core_is_seen() -> None:
    hog = subprocess.Popen(
        [sys.executable, "-c", "import os\nos.sched_setaffinity(0, {0})\nwhile True: pass"],
    )
    try:
        load = cpu_load.CpuLoad({0})
        load.sample()
        for _ in range(8):
            time.sleep(0.25)
            others = load.sample()
        assert others is not None and others > 0.5
    finally:
        hog.kill()
        hog.wait()


def test_fit_threads_gives_torch_the_free_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    load = cpu_load.CpuLoad({0, 1})
    load._thread = threading.current_thread()  # "running": sampled by hand here
    monkeypatch.setattr(cpu_load, "_load", load)
    monkeypatch.setattr(cpu_load, "_most", 2)
    try:
        load.others = 0.1
        assert cpu_load.fit_threads() == 2 and torch.get_num_threads() == 2
        load.others = 1.8  # two busy processes' worth
        assert cpu_load.fit_threads() == 1 and torch.get_num_threads() == 1
        assert cpu_load.load_report() == {"follows_load": True, "other_processes_cores": 1.8, "torch_now": 1}
    finally:
        torch.set_num_threads(before)
