"""The floor under seqdream's intake: a bare FastAPI app whose submit validates a pydantic body and
commits one SQLite insert, served by uvicorn like the service. `bench/submit_throughput.py` measures
it beside the service with the same client, in the same run.

Usage (started by the submit bench): python bench/intake_floor.py PORT DATABASE_FILE
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import uuid

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field


class Submit(BaseModel):
    prompt: str = Field(min_length=1, max_length=10_000)
    size: str = "2048*2048"
    seed: int = Field(-1, ge=-1, le=2147483647)


def make_app(database: str) -> FastAPI:
    app = FastAPI()
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "db"):
            local.db = sqlite3.connect(database, timeout=30)
            local.db.execute("PRAGMA journal_mode=WAL")
        return local.db

    connection().execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, prompt TEXT, size TEXT, seed INT)")

    @app.post("/api/v3/bytedance/seedream-v4")
    def submit(body: Submit) -> dict:
        job_id = uuid.uuid4().hex
        db = connection()
        with db:
            db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?)", (job_id, body.prompt, body.size, body.seed))
        return {"code": 200, "message": "success", "data": {"id": job_id, "status": "created"}}

    return app


if __name__ == "__main__":
    uvicorn.run(make_app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
