"""Accepted submits per second and claim latency, SQLite and PostgreSQL, measured in one run.

Starts an API-only `seqdream serve` (no workers: nothing competes with intake) and fires async
submits from `--clients` concurrent HTTP clients for `--seconds` with a key whose rate and
active-task limits are lifted (the bench measures intake, not the limits); every 200 is a task
committed to the database. Then times `JobStore.claim` on the queue it filled. PostgreSQL is
measured when SEQDREAM_TEST_POSTGRES_URL (or --postgres URL) is set. Beside them, the floor: a bare
FastAPI + pydantic app committing one SQLite insert per submit (bench/intake_floor.py), same
client, same run. Target (issue 46): SQLite intake >= 0.6x the floor.

Usage: python bench/submit_throughput.py [--seconds 10] [--clients 16] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from seqdream.db import Database
from seqdream.jobs.store import JobStore
from seqdream_devkit.server_process import ServerProcess, free_port

T2I = "/api/v3/bytedance/seedream-v4"


async def fire(base_url: str, key: str, seconds: float, clients: int) -> tuple[int, int]:
    accepted = refused = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, limits=limits) as api:

        async def client(index: int) -> None:
            nonlocal accepted, refused
            n = 0
            while time.monotonic() < deadline:
                response = await api.post(T2I, json={"prompt": f"a kite {index}-{n}", "size": "1024*1024"})
                n += 1
                if response.status_code == 200:
                    accepted += 1
                else:
                    refused += 1

        await asyncio.gather(*(client(i) for i in range(clients)))
    return accepted, refused


def claim_latency_ms(url: str, count: int = 200) -> list[float]:
    store = JobStore(Database(url))
    times = []
    for _ in range(count):
        started = time.perf_counter()
        if store.claim("bench") is None:
            break
        times.append((time.perf_counter() - started) * 1000)
    return times


def measure_floor(work: Path, seconds: float, clients: int) -> float:
    """Submits a second of the bare app, with the same client."""
    port = free_port()
    floor = subprocess.Popen([sys.executable, str(Path(__file__).with_name("intake_floor.py")), str(port),
                              str(work / "floor.db")])  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"{base}/api/v3/bytedance/seedream-v4", json={"prompt": "up?"}, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and floor.poll() is None, "the floor app did not start"
                time.sleep(0.1)
        asyncio.run(fire(base, "none", 1.0, clients))  # warm-up
        accepted, refused = asyncio.run(fire(base, "none", seconds, clients))
    finally:
        floor.terminate()
        floor.wait(10)
    print(f"{'floor':<10} {accepted / seconds:8.0f} submits/s  ({accepted} accepted, {refused} refused; bare FastAPI + "
          "one SQLite insert)")  # fmt: skip
    return accepted / seconds


def measure(name: str, work: Path, seconds: float, clients: int, **env: str) -> float:
    server = ServerProcess(work / name, None, "--workers", "0", SEQDREAM_LOG_LEVEL="warning", **env).start()
    try:
        key = server.cli("keys", "create", "--name", "bench", "--rate", "unlimited", "--max-active", "unlimited")
        secret = key.stdout.strip()
        asyncio.run(fire(server.base_url, secret, 1.0, clients))  # warm-up
        accepted, refused = asyncio.run(fire(server.base_url, secret, seconds, clients))
    finally:
        server.stop()
    url = env.get("SEQDREAM_DATABASE_URL") or f"sqlite:///{work / name / 'seqdream.db'}"
    claims = claim_latency_ms(url)
    print(
        f"{name:<10} {accepted / seconds:8.0f} submits/s  ({accepted} accepted, {refused} refused, {clients} clients)"
        f"   claim: median {statistics.median(claims):.2f} ms, p95 {sorted(claims)[int(len(claims) * 0.95)]:.2f} ms"
    )
    return accepted / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--postgres", default=os.environ.get("SEQDREAM_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqdream-submit-"))
    print(f"submits for {args.seconds:g}s from {args.clients} clients, API-only server, {os.cpu_count()} cores")
    floor = measure_floor(work, args.seconds, args.clients)
    sqlite = measure("sqlite", work, args.seconds, args.clients)
    print(f"SQLite intake / floor: {sqlite / floor:.2f}x (target >= 0.6x)")
    if args.postgres:
        with Database(args.postgres).engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        measure("postgresql", work, args.seconds, args.clients, SEQDREAM_DATABASE_URL=args.postgres)


if __name__ == "__main__":
    main()
