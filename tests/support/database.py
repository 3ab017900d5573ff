"""Reading a server's SQLite file directly, as an operator would."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def job_row(db: Path, job_id: str) -> dict:
    """The job's row as stored, every column."""
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        return dict(connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())


def webhook_rows(db: Path, job_id: str) -> list[dict]:
    """The outbox rows of one job."""
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM webhook_deliveries WHERE job_id = ?", (job_id,)).fetchall()
        return [dict(row) for row in rows]
