"""Health that any seqdream process reports the same way, for probes and `seqdream health`.

`serve` and `worker` announce themselves in a small file (SEQDREAM_HEALTH_FILE): the URL that
answers their liveness — the API's port, or a worker's `--metrics-port` — or, for a worker with
no port, a heartbeat its main loop refreshes. `seqdream health` (the image's HEALTHCHECK) reads it,
so the check follows `serve --port` and works for workers alike, without knowing either.
A worker's metrics port answers `/metrics`, `/health/live` and `/health/ready`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HEARTBEAT_STALE_S = 30.0


def health_file() -> Path:
    return Path(os.environ.get("SEQDREAM_HEALTH_FILE") or "/tmp/seqdream-health.json")


def announce(url: str | None) -> None:
    """Record this process and how to ask it whether it is alive (atomically replaced)."""
    path = health_file()
    record = {"pid": os.getpid(), "url": url, "heartbeat": time.time()}
    try:
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(record))
        partial.replace(path)
    except OSError:
        pass  # a read-only /tmp: probes by URL still work


def heartbeat() -> None:
    """Refresh the record's heartbeat (a worker with no port calls this from its main loop)."""
    path = health_file()
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if record.get("pid") == os.getpid():
        announce(record.get("url"))


def check(timeout_s: float = 3.0) -> tuple[bool, str]:
    """(healthy, why) for the process the health file names."""
    path = health_file()
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return False, f"no health record at {path} ({exc.__class__.__name__}): is seqdream running here?"
    try:
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return False, f"process {record.get('pid')} named in {path} is not running"
    if record.get("url"):
        import httpx

        try:
            response = httpx.get(record["url"], timeout=timeout_s)
        except httpx.HTTPError as exc:
            return False, f"{record['url']}: {exc.__class__.__name__}"
        return response.status_code == 200, f"{record['url']}: HTTP {response.status_code}"
    age = time.time() - float(record.get("heartbeat", 0))
    return age <= HEARTBEAT_STALE_S, f"worker heartbeat {age:.0f} s ago (stale after {HEARTBEAT_STALE_S:.0f} s)"


def serve_worker_status(
    host: str,
    port: int,
    metrics: Callable[[], bytes],
    ready: Callable[[], dict[str, Any]],
    idle_timeout_s: float = 10.0,
) -> str:
    """Serve /metrics, /health/live and /health/ready on `host`:`port` in a daemon thread; returns the
    live URL. A connection that sends nothing for `idle_timeout_s` is closed (each holds a thread)."""

    class Handler(BaseHTTPRequestHandler):
        timeout = idle_timeout_s  # on the socket: a silent client no longer holds its thread forever

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/metrics":
                self._send(200, metrics(), "text/plain; version=0.0.4; charset=utf-8")
            elif self.path == "/health/live":
                self._send(200, b'{"status": "ok"}', "application/json")
            elif self.path == "/health/ready":
                state = ready()
                self._send(
                    200 if state.get("status") == "ready" else 503, json.dumps(state).encode(), "application/json"
                )
            else:
                self._send(404, b'{"code": 404, "message": "not found", "data": null}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - probes every few seconds: quiet
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="worker-status", daemon=True).start()
    local = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{local}:{server.server_address[1]}/health/live"
