"""A worker's status port (/metrics, /health/live, /health/ready) under clients that misbehave."""

from __future__ import annotations

import socket
import time

import httpx

from seqdream.health import serve_worker_status


def test_a_silent_connection_is_closed_and_probes_still_answer() -> None:
    live = serve_worker_status("127.0.0.1", 0, lambda: b"", lambda: {"status": "ready"}, idle_timeout_s=0.5)
    host, port = live.split("//", 1)[1].split("/", 1)[0].split(":")
    silent = [socket.create_connection((host, int(port))) for _ in range(20)]  # connect, then send nothing
    assert httpx.get(live, timeout=5).status_code == 200  # probes answer beside them
    started = time.monotonic()
    for connection in silent:
        connection.settimeout(5)
        assert connection.recv(1) == b""  # closed by the server, not held open with its thread
        connection.close()
    assert time.monotonic() - started < 3
