"""Running the app under uvicorn: the port bound before workers start, a graceful stop on signals."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from seqdream.api.protocol import BoundedHttpProtocol
from seqdream.api.state import running_or_none
from seqdream.config import Settings
from seqdream.health import announce

log = logging.getLogger("seqdream")


class GracefulServer(uvicorn.Server):
    """Stops the in-process workers claiming as soon as a signal arrives (the lifespan then lets
    running jobs finish within the grace period); a second signal hands them back at once."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.fastapi_app = app

    def handle_exit(self, sig: int, frame: object) -> None:
        state = running_or_none(self.fastapi_app)
        if state is not None and state.workers is not None:
            state.workers.on_signal()
        super().handle_exit(sig, frame)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # uvicorn re-raises the signal once it has stopped; after a graceful stop that would
            # turn a clean exit (status 0) into death by signal, so it is not re-raised.
            self._captured_signals.clear()


class CannotListen(OSError):
    """The address cannot be bound; the message says which and what to do."""


STARTUP_FAILURE = 3  # uvicorn's exit status when it cannot start


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, bound as uvicorn binds one, or CannotListen saying why."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = _BIND_HINTS.get(exc.errno or 0, "check the host and port")
        where, settings = f"{in_url(host)}:{port}", "--host and --port, or SEQDREAM_HOST and SEQDREAM_PORT"
        raise CannotListen(f"cannot listen on {where}: {exc.strerror or exc}; {hint} ({settings})") from exc
    sock.set_inheritable(True)
    return sock


def in_url(host: str) -> str:
    """The host as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


_BIND_HINTS = {
    errno.EADDRINUSE: "another program (another seqdream?) is listening there: stop it, or choose a free port",
    errno.EACCES: "a port below 1024 needs root: choose one from 1024 up",
    errno.EADDRNOTAVAIL: "that address is not one of this machine's (0.0.0.0 listens on all of them)",
}


def serve(app: FastAPI, settings: Settings) -> None:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # our format (seqdream.logs); uvicorn's start/stop chatter below WARNING
        http=BoundedHttpProtocol,  # limits on the request line and headers (431/414)
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
    )
    logging.getLogger("uvicorn.error").setLevel(max(logging.WARNING, logging.getLogger().level))
    # Bind first: the lifespan starts workers, and a busy port must fail before any job is claimed.
    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    shown = in_url(host)
    wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}
    probe = wildcard.get(host) or shown
    announce(f"http://{probe}:{port}/health/live")  # what `seqdream health` (the HEALTHCHECK) asks
    log.info("listening on http://%s:%d (playground: /, API docs: /docs)", shown, port)
    GracefulServer(config, app).run(sockets=[sock])
    log.info("stopped")
