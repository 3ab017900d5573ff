"""One engine per process (per device), loaded on first use and shared by its worker threads; a load
that fails is retried with back-off, and its error is what readiness reports meanwhile."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from seqdream.engines.base import Engine

log = logging.getLogger(__name__)


class EngineHolder:
    """Loads the engine once per process and shares it; retries a failed load with back-off."""

    def __init__(self, loader: Callable[[], Engine], retry_s: float = 30.0) -> None:
        self._loader = loader
        self._retry_s = retry_s
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._next_try = 0.0
        self.last_error: str | None = None

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def state(self) -> str:
        """ "ready", "loading", or "unavailable" (the last load failed; it is retried)."""
        return "ready" if self.ready else ("unavailable" if self.last_error else "loading")

    def get(self) -> Engine | None:
        with self._lock:
            if self._engine is None and time.monotonic() >= self._next_try:
                try:
                    self._engine = self._loader()
                    self.last_error = None
                except Exception as exc:  # noqa: BLE001 - any load failure keeps jobs queued
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._next_try = time.monotonic() + self._retry_s
                    log.error("engine failed to load (retrying in %gs): %s", self._retry_s, exc)
            return self._engine
