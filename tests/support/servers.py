"""Servers configured for the test-suite: small renders and short leases keep it fast on a CPU."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from seqdream.cli.main import app
from seqdream_devkit.forked import Process, start_seqdream
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
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # Several test processes (pytest-xdist) each start servers: one model thread per server, so that
    # their pools never put several times the threads on the cores.
    TEST_ENV["SEQDREAM_THREADS"] = "1"
# Commands that only read and write the database run in the test process, through typer's runner (a
# process start costs more than the command); the others get a process of their own.
IN_PROCESS = ("keys", "usage")


class LocalServer(ServerProcess):
    """`seqdream serve` on loopback with the test settings; `env` overrides them. Forked from a process
    that has the libraries loaded (seqdream_devkit.forked); `fresh=True`: a fresh interpreter, for
    tests of what happens as one starts."""

    def __init__(self, data_dir: Path, model: Path | None, *serve_args: str, fresh: bool = False, **env: str) -> None:
        super().__init__(data_dir, model, *serve_args, **{**TEST_ENV, **env})
        self.fresh = fresh

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`seqdream ARGS` with the server's settings, answered as a finished process is."""
        if args[0] not in IN_PROCESS:
            return super().cli(*args, check=check)
        return cli_in_process(self.env, *args, check=check)


def cli_in_process(env: dict[str, str], *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """`seqdream ARGS` run here through typer's runner with `env` set, answered as a finished process
    is (exit status, stdout, stderr); a crash is raised, as a process would have shown its traceback."""
    result = CliRunner().invoke(app, list(args), env=env, prog_name="seqdream")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    done = subprocess.CompletedProcess(["seqdream", *args], result.exit_code, result.stdout, result.stderr)
    if check:
        done.check_returncode()
    return done


def start_worker(env: dict[str, str], *args: str, log: Path | None = None) -> Process:
    """`seqdream worker ARGS` with `env`, forked like LocalServer; its output appended to `log`."""
    return start_seqdream(["worker", *args], env, log)
