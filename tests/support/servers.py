"""Servers configured for the test-suite: small renders and short leases keep it fast on a CPU."""

from __future__ import annotations

from pathlib import Path

from seqdream_devkit.server_process import ServerProcess

TEST_ENV = {
    "SEQDREAM_NATIVE_RESOLUTION": "64",
    "SEQDREAM_MAX_SEQUENCE_LENGTH": "64",
    "SEQDREAM_POLL_INTERVAL_S": "0.05",
    "SEQDREAM_JOB_LEASE_S": "2",
    "SEQDREAM_LOG_LEVEL": "info",
    # Exact repeats (same seed, same bytes) must not depend on how busy the test machine is;
    # following the load is tested on its own (tests/test_threads.py, tests/jobs/test_cpu_sharing.py).
    "SEQDREAM_THREADS_FOLLOW_LOAD": "false",
}


class LocalServer(ServerProcess):
    """`seqdream serve` on loopback with the test settings; `env` overrides them."""

    def __init__(self, data_dir: Path, model: Path | None, *serve_args: str, **env: str) -> None:
        super().__init__(data_dir, model, *serve_args, **{**TEST_ENV, **env})
