"""`seqdream serve` in a subprocess on loopback, for tests and benchmarks alike."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from seqdream_devkit.forked import Process, start_seqdream


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`seqdream serve` in a subprocess, with its own data folder, port and settings (`env`)."""

    def __init__(self, data_dir: Path, model: Path | None, *serve_args: str, **env: str) -> None:
        """`model` None: leave SEQDREAM_MODEL unset, so the service picks its default (built-in) model."""
        self.data_dir = data_dir
        self.serve_args = serve_args
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{name: value for name, value in os.environ.items() if name != "SEQDREAM_MODEL"},
            "SEQDREAM_DATA_DIR": str(data_dir),
            **({"SEQDREAM_MODEL": str(model)} if model else {}),
            "SEQDREAM_PORT": str(self.port),
            **env,
        }
        self.log_path = data_dir / "server.log"
        self.process: Process | subprocess.Popen[bytes] | None = None
        self.prefix: list[str] = []  # a command the server runs under (taskset, a cgroup mover), if any
        self.fresh = True  # a fresh interpreter; False: forked from one with the libraries loaded (tests)
        self.api_key = self.cli("keys", "create", "--name", "tests").stdout.strip()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "seqdream.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def start(self, engine: tuple[str | None, ...] = ("ready", None)) -> ServerProcess:
        """Started once /health reports its model in one of the `engine` states (None: no inline workers;
        "unavailable" for a server whose model cannot be loaded)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = start_seqdream(
            ["serve", *self.serve_args], self.env, self.log_path, fresh=self.fresh, prefix=self.prefix
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                health = httpx.get(f"{self.base_url}/health", timeout=1).json()
                if health.get("engine") in engine:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.process.kill()  # never leave a half-started server behind a failed test
        self.process.wait(timeout=10)
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """kill -9: no shutdown handlers, no chance to tidy up."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, key: str | None = "default") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key if key == 'default' else key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def wait_for(self, job_id: str, timeout: float = 60) -> dict:
        with self.client() as client:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data = client.get(f"/api/v3/predictions/{job_id}/result").json()["data"]
                if data["status"] in ("completed", "failed", "deleted"):
                    return data
                time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s")
