"""`seqdream ARGS` as a process forked from one that has already imported the heavy libraries.

A fresh `python -m seqdream.cli.main` spends about 4.5 CPU-seconds importing torch, diffusers and
transformers before seqdream's first line runs, and the test-suite starts a server or a worker in
most of its slow tests. A multiprocessing fork server imports them once; each command is then a
fork of it: a separate process with its own pid, environment, working folder, log, signals and
exit status, running the same entry point as `python -m seqdream.cli.main`.

What a fork cannot show is the start of an interpreter itself (thread pools sized from the
environment as libraries load, what imports print): tests of that start fresh processes.
`SEQDREAM_TEST_FRESH_PROCESSES=1` makes every command a fresh process.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from seqdream.cpu.threads import SPIN_COUNT

_context = None


class Process(Protocol):
    """What the tests use of `subprocess.Popen`."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


def fresh_processes() -> bool:
    return os.environ.get("SEQDREAM_TEST_FRESH_PROCESSES", "").lower() in ("1", "true", "yes")


def loads_a_model(args: list[str], env: Mapping[str, str]) -> bool:
    """Whether `seqdream ARGS` loads a model: a worker, or a server with in-process workers. Only
    those are forked: a fork carries torch, which an API-only server never loads (and is checked not to)."""
    if args[:1] == ["worker"]:
        return True
    if args[:1] != ["serve"]:
        return False
    workers = args[args.index("--workers") + 1] if "--workers" in args[:-1] else env.get("SEQDREAM_INLINE_WORKERS", "1")
    return workers.strip() != "0"


def _fork_server() -> multiprocessing.context.ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        # OpenMP reads its spin count when torch loads it, in the fork server: what seqdream sets.
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
        _context.set_forkserver_preload(["seqdream_devkit.fork_preload"])
    return _context


def _run(args: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked child: become `python -m seqdream.cli.main ARGS` writing to `log`."""
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    # A fresh interpreter's own start method: its locks (tqdm's) are then not the fork server's to track.
    multiprocessing.set_start_method("fork", force=True)
    from seqdream.cli import main

    sys.argv = [main.__file__, *args]  # as `python -m seqdream.cli.main ARGS` has it
    try:
        main.app()  # what the module runs as __main__
    except KeyboardInterrupt:  # as the interpreter does: die by the signal
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    finally:  # multiprocessing leaves with os._exit: wind down as an interpreter would
        threading._shutdown()  # type: ignore[attr-defined]  # wait for the threads that are not daemons
        atexit._run_exitfuncs()


class ForkedProcess:
    """A forked command, answered as `subprocess.Popen` answers."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self._process = process
        assert process.pid is not None
        self.pid: int = process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(["seqdream"], timeout or 0)
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start_seqdream(
    args: list[str],
    env: Mapping[str, str],
    log: Path | None = None,
    *,
    fresh: bool = False,
    prefix: list[str] | None = None,
) -> Process:
    """`seqdream ARGS` with `env`, its output appended to `log` (None: discarded): forked, or a fresh
    interpreter (always under a `prefix` command, such as taskset)."""
    log = log or Path(os.devnull)
    if fresh or prefix or fresh_processes() or not loads_a_model(args, env):
        with open(log, "ab") as sink:
            return subprocess.Popen([*(prefix or []), sys.executable, "-m", "seqdream.cli.main", *args], env=dict(env),
                                    stdout=sink, stderr=subprocess.STDOUT)  # fmt: skip
    process = _fork_server().Process(target=_run, args=(list(args), dict(env), os.getcwd(), str(log)), daemon=True)
    process.start()
    return ForkedProcess(process)
