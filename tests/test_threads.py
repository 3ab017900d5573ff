"""The cores a process may use: its affinity, capped by a cgroup CPU quota (v1 and v2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqdream.threads import cgroup_quota


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
    from seqdream.threads import model_thread_hint

    assert model_thread_hint(tmp_path) is None  # no seqdream.json
    _write(tmp_path / "seqdream.json", '{"num_inference_steps": 20}')
    assert model_thread_hint(tmp_path) is None
    _write(tmp_path / "seqdream.json", '{"cpu_threads": 1}')
    assert model_thread_hint(tmp_path) == 1
    for bad in ('{"cpu_threads": 0}', '{"cpu_threads": "2"}', "[1]", "not json"):
        _write(tmp_path / "seqdream.json", bad)
        assert model_thread_hint(tmp_path) is None
