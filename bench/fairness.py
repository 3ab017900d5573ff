"""Sharing one service between keys: fair claims and idempotent retries, measured on a real server.

Starts `seqdream serve` (the built-in model, N in-process workers) and, in one run:

  * key A queues a backlog of T tasks; once A's first task runs, key B submits one. B's wait (its
    start minus its submit, as the database records them) is compared with the time one of A's
    tasks takes per worker: the target ratio is <= 1 (B is served next). First-in first-out claims
    would have made B wait for the whole backlog, which is printed beside it;
  * a retry storm: 50 concurrent submits with one Idempotency-Key make exactly one task.

Usage: python bench/fairness.py [--tasks 200] [--workers 1]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from seqdream_devkit.server_process import ServerProcess

T2I = "/api/v3/bytedance/seedream-v4"
TARGET = 1.0  # B's wait, in A's task times per worker


def rows(db: Path, query: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(query, args).fetchall()


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200, help="A's backlog")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess(Path(folder), None, "--workers", str(args.workers), SEQDREAM_NSFW_CHECK="false")
        db = Path(folder) / "seqdream.db"
        key_a = server.cli("keys", "create", "--name", "a").stdout.strip()
        key_b = server.cli("keys", "create", "--name", "b").stdout.strip()
        server.start()
        try:
            with server.client(key_a) as a, server.client(key_b) as b:
                submitted = time.perf_counter()
                backlog = [
                    a.post(T2I, json={"prompt": f"a red circle, task {n}", "seed": n}).json()["data"]["id"]
                    for n in range(args.tasks)
                ]
                print(f"A queued {args.tasks} tasks in {time.perf_counter() - submitted:.1f}s", flush=True)
                # B arrives once A's backlog runs warm (its third task has started).
                while not rows(db, "SELECT 1 FROM jobs WHERE status != 'created' AND id = ?", backlog[2]):
                    time.sleep(0.05)
                single = b.post(T2I, json={"prompt": "a blue square"}).json()["data"]["id"]
                while b.get(f"/api/v3/predictions/{single}/result").json()["data"]["status"] != "completed":
                    time.sleep(0.05)
                ((created, started),) = rows(db, "SELECT created_at, started_at FROM jobs WHERE id = ?", single)
                wait = (when(started) - when(created)).total_seconds()
                a_runs = [
                    (when(start), when(end))
                    for start, end in rows(
                        db, "SELECT started_at, finished_at FROM jobs WHERE id != ? AND started_at IS NOT NULL", single
                    )
                    if end is not None
                ]
                task_s = statistics.median((end - start).total_seconds() for start, end in a_runs)
                jumped = sum(when(created) < start < when(started) for start, _ in a_runs)
                ratio = wait / (task_s / args.workers)
                verdict = "ok" if ratio <= TARGET and jumped == 0 else "OVER TARGET"
                print(f"B waited {wait:.2f}s; one of A's tasks takes {task_s:.2f}s (median) on {args.workers} "
                      f"worker(s): {ratio:.2f} task times (target <= {TARGET:g}); A's tasks started in between: "
                      f"{jumped} (target 0) {verdict}")  # fmt: skip
                fifo_s = (args.tasks - 3) * task_s / args.workers
                print(
                    f"  first-in first-out would have put B behind {args.tasks - 3} queued tasks of A's: ~{fifo_s:.0f}s"
                )
                for start in range(0, len(backlog), 100):  # the rest of the backlog is not needed
                    a.post("/api/v3/predictions/delete", json={"ids": backlog[start : start + 100]})

                body = {"prompt": "one task, however often it is sent", "seed": 1}

                def send(_: int) -> str:
                    response = b.post(T2I, json=body, headers={"Idempotency-Key": "storm-1"})
                    assert response.status_code == 200, response.text
                    return response.json()["data"]["id"]

                started_storm = time.perf_counter()
                with ThreadPoolExecutor(16) as pool:
                    ids = set(pool.map(send, range(50)))
                made = rows(db, "SELECT count(*) FROM jobs WHERE request LIKE ?", "%however often%")[0][0]
                print(f"retry storm: 50 submits with one Idempotency-Key in {time.perf_counter() - started_storm:.2f}s "
                      f"-> {len(ids)} task id(s), {made} task(s) in the database (target 1) "
                      f"{'ok' if len(ids) == made == 1 else 'FAILED'}")  # fmt: skip
        finally:
            server.stop()


if __name__ == "__main__":
    main()
