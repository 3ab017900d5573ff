"""Throughput against worker processes: 1, 2, ... workers on one database, measured in one run.

An API-only `seqdream serve` and N `seqdream worker` processes (one CPU thread each) share one
database (SQLite by default, PostgreSQL with --postgres URL); `--tasks` tasks with the tiny random
pipeline rendering at 128 px are queued at once and timed until the last completes. Prints tasks/s
per worker count and the ratio to one worker (ideal: N, up to the machine's cores).

Usage: python bench/scale_out.py [--workers 1 2] [--tasks 40] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from seqdream.db import Database
from seqdream_devkit.server_process import ServerProcess
from seqdream_devkit.tiny_pipeline import build_tiny_flux2_klein

T2I = "/api/v3/bytedance/seedream-v4"


def run(workers: int, tasks: int, model: Path, work: Path, database_url: str | None) -> float:
    env = {"SEQDREAM_THREADS": "1", "SEQDREAM_NATIVE_RESOLUTION": "128", "SEQDREAM_NSFW_CHECK": "false",
           "SEQDREAM_LOG_LEVEL": "warning", "SEQDREAM_POLL_INTERVAL_S": "0.05"}  # fmt: skip
    if database_url:
        with Database(database_url).engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        env["SEQDREAM_DATABASE_URL"] = database_url
    api = ServerProcess(work / f"w{workers}", model, "--workers", "0", **env).start()
    processes = [
        subprocess.Popen([sys.executable, "-m", "seqdream.cli.main", "worker"], env=api.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]  # fmt: skip
    try:
        with api.client() as client:
            warm = [client.post(T2I, json={"prompt": f"warm {i}", "size": "1024*1024"}).json()["data"]["id"]
                    for i in range(workers)]  # fmt: skip
            for job_id in warm:
                api.wait_for(job_id, timeout=300)
            started = time.perf_counter()
            ids = [client.post(T2I, json={"prompt": f"a kite {i}", "size": "1024*1024"}).json()["data"]["id"]
                   for i in range(tasks)]  # fmt: skip
            for job_id in ids:
                assert api.wait_for(job_id, timeout=600)["status"] == "completed"
            return tasks / (time.perf_counter() - started)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        api.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqdream-scale-"))
    model = build_tiny_flux2_klein(work / "model")
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{args.tasks} tasks, tiny pipeline at 128 px, {backend}, {os.cpu_count()} cores")
    baseline = None
    for count in args.workers:
        rate = run(count, args.tasks, model, work, args.postgres)
        baseline = baseline or rate
        print(f"{count} worker(s): {rate:6.2f} tasks/s   x{rate / baseline:.2f} of one worker")


if __name__ == "__main__":
    main()
