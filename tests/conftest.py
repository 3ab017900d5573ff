"""Shared fixtures: a tiny real FLUX.2 [klein] pipeline on disk and real servers on loopback."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from seqdream.cpu.threads import SPIN_COUNT

# OpenMP threads that wait briefly, as the service's do (seqdream.cpu.threads): set before torch loads,
# so that this process's models and the servers of another test process share the cores without spinning.
os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)

import httpx
import pytest
from fastapi.testclient import TestClient

from seqdream.api.app import create_app
from seqdream.config import Settings
from seqdream_devkit.tiny_pipeline import build_tiny_flux2_klein
from support.servers import LocalServer

# Engines built in this process keep one thread count, so same-seed comparisons do not depend on how
# busy the machine is; following the load is tested where it is asked for (tests/test_threads.py,
# tests/jobs/test_cpu_sharing.py). Servers get the same from support.servers.TEST_ENV.
os.environ.setdefault("SEQDREAM_THREADS_FOLLOW_LOAD", "false")


# Tests that start processes, servers, browsers or training are `slow` (`pytestmark = pytest.mark.slow`
# in such a module, or the mark on the test); `pytest -m "not slow"` is the fast, in-process layer.
# CI runs both. A fast test that starts a process fails, so the fast layer stays fast.
@pytest.fixture(autouse=True)
def fast_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("slow") is not None:
        return
    import subprocess

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it slow (@pytest.mark.slow)")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


# What no error body may show a client: a Python repr, a traceback, a source path.
INTERNALS = re.compile(r"object at 0x[0-9a-f]|Traceback \(most recent|File \"[^\"]+\.py\"|site-packages/|\.py\", line")


@pytest.fixture(autouse=True, scope="session")
def no_internals_in_error_bodies() -> Iterator[None]:
    """Every 4xx/5xx answer the test-suite reads (in-process or from a server) is checked for internals."""
    send = httpx.Client.send

    def checked(self: httpx.Client, request: httpx.Request, **kwargs: object) -> httpx.Response:
        response = send(self, request, **kwargs)  # type: ignore[arg-type]
        kind = response.headers.get("content-type", "")
        if response.status_code >= 400 and not kwargs.get("stream") and kind.startswith(("application/json", "text/")):
            found = INTERNALS.search(response.text)
            assert found is None, f"{request.method} {request.url.path} answered internals: {response.text[:500]}"
        return response

    httpx.Client.send = checked  # type: ignore[method-assign]
    yield
    httpx.Client.send = send  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_flux2_klein(tmp_path_factory.mktemp("models") / "tiny-flux2-klein")


@pytest.fixture(scope="session")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One shared server for the API tests: auth on, NSFW detector on, one inline worker; previews made
    often enough that the tiny model's short tasks have some."""
    process = LocalServer(
        tmp_path_factory.mktemp("server"), tiny_model, SEQDREAM_MAX_REQUEST_BYTES=str(4 * 1024 * 1024),
        SEQDREAM_PREVIEW_EVERY_S="0.02", SEQDREAM_PROGRESS_EVERY_S="0.02",
    ).start()  # fmt: skip
    yield process
    process.stop()


@pytest.fixture()
def api(server: LocalServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="session")
def app_client(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app in this process, no workers: validation, auth and the envelope without a server."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("in-process"), model=str(tiny_model), inline_workers=0,
        max_request_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        secret = client.app.state.seqdream.services.keys.create("tests").secret  # type: ignore[attr-defined]
        client.headers["Authorization"] = f"Bearer {secret}"
        yield client
