"""Shared fixtures: a tiny real FLUX.2 [klein] pipeline on disk and real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from seqdream_devkit.tiny_pipeline import build_tiny_flux2_klein
from support.servers import LocalServer


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_flux2_klein(tmp_path_factory.mktemp("models") / "tiny-flux2-klein")


@pytest.fixture(scope="session")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One shared server for the API tests: auth on, NSFW detector on, one inline worker."""
    process = LocalServer(
        tmp_path_factory.mktemp("server"), tiny_model, SEQDREAM_MAX_REQUEST_BYTES=str(4 * 1024 * 1024)
    ).start()
    yield process
    process.stop()


@pytest.fixture()
def api(server: LocalServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
