"""Cross-process wake-ups on PostgreSQL: LISTEN/NOTIFY.

A new task sends `seqdream_jobs` (idle workers claim at once instead of at their next poll) and an
ended task sends `seqdream_done` with its id (sync-mode and dialect requests answer at once, whichever
process ran it). On SQLite there is nothing to listen to and polling alone does the work."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from seqdream.dependencies import one_line

log = logging.getLogger(__name__)
NEW_JOB = "seqdream_jobs"
JOB_ENDED = "seqdream_done"


def notify(session: Session, channel: str, payload: str = "") -> None:
    """Queue a notification; PostgreSQL delivers it when the session's transaction commits."""
    session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


class Listener:
    """A thread holding one connection that LISTENs and calls `handlers[channel](payload)`."""

    def __init__(self, database_url: str, handlers: dict[str, Callable[[str], None]]) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.handlers = handlers
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pg-listener", daemon=True)

    def start(self) -> Listener:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        lost = False
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as connection:
                    for channel in self.handlers:
                        connection.execute(f'LISTEN "{channel}"')
                    if lost:
                        log.warning("LISTEN connection back")
                        lost = False
                    while not self.stop.is_set():
                        for message in connection.notifies(timeout=1.0):
                            self.handlers[message.channel](message.payload)
            except Exception as exc:  # noqa: BLE001 - polling still works; listen again shortly
                if not lost:  # one line per outage, not one per reconnection attempt
                    log.warning("LISTEN connection lost (%s); polling until it is back", one_line(exc))
                    lost = True
                self.stop.wait(2.0)
