"""Shared fixtures: a tiny real FLUX.2 [klein] pipeline on disk and real servers on loopback."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from seqdream_devkit.tiny_pipeline import build_tiny_flux2_klein

# Small renders keep the CPU test-suite fast; everything else is production code and config.
TEST_ENV = {
    "SEQDREAM_NATIVE_RESOLUTION": "64",
    "SEQDREAM_MAX_SEQUENCE_LENGTH": "64",
    "SEQDREAM_POLL_INTERVAL_S": "0.05",
    "SEQDREAM_JOB_LEASE_S": "2",
    "SEQDREAM_LOG_LEVEL": "info",
}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_flux2_klein(tmp_path_factory.mktemp("models") / "tiny-flux2-klein")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_bytes(size: tuple[int, int] = (96, 80), color: str = "red", fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class ServerProcess:
    """`seqdream serve` in a subprocess, with its own data folder and settings."""

    def __init__(self, data_dir: Path, model: Path | None, *serve_args: str, **env: str) -> None:
        """`model` None: leave SEQDREAM_MODEL unset, so the service picks its default (built-in) model."""
        self.data_dir = data_dir
        self.serve_args = serve_args
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{name: value for name, value in os.environ.items() if name != "SEQDREAM_MODEL"},
            **TEST_ENV,
            "SEQDREAM_DATA_DIR": str(data_dir),
            **({"SEQDREAM_MODEL": str(model)} if model else {}),
            "SEQDREAM_PORT": str(self.port),
            **env,
        }
        self.log_path = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
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

    def start(self) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "seqdream.cli.main", "serve", *self.serve_args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                health = httpx.get(f"{self.base_url}/health", timeout=1).json()
                if health.get("engine") in ("ready", None):  # None: no inline workers
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
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
                if data["status"] in ("completed", "failed"):
                    return data
                time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish in {timeout}s")


@pytest.fixture(scope="session")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One shared server for the API tests: auth on, NSFW detector on, one inline worker."""
    process = ServerProcess(
        tmp_path_factory.mktemp("server"), tiny_model, SEQDREAM_MAX_REQUEST_BYTES=str(4 * 1024 * 1024)
    ).start()
    yield process
    process.stop()


@pytest.fixture()
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
