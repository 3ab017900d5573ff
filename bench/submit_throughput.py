"""Accepted submits per second and claim latency, SQLite and PostgreSQL, measured in one run.

Starts an API-only `seqdream serve` (no workers: nothing competes with intake) and fires async
submits from `--clients` concurrent HTTP clients for `--seconds`; every 200 is a task committed to
the database. Then times `JobStore.claim` on the queue it filled. PostgreSQL is measured when
SEQDREAM_TEST_POSTGRES_URL (or --postgres URL) is set. Goal on a 2-core machine: >= 300 submits/s
on SQLite.

Usage: python bench/submit_throughput.py [--seconds 10] [--clients 16] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from seqdream.db import Database
from seqdream.jobs.store import JobStore
from seqdream_devkit.server_process import ServerProcess

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


def measure(name: str, work: Path, seconds: float, clients: int, **env: str) -> None:
    server = ServerProcess(work / name, None, "--workers", "0", SEQDREAM_LOG_LEVEL="warning", **env).start()
    try:
        asyncio.run(fire(server.base_url, server.api_key, 1.0, clients))  # warm-up
        accepted, refused = asyncio.run(fire(server.base_url, server.api_key, seconds, clients))
    finally:
        server.stop()
    url = env.get("SEQDREAM_DATABASE_URL") or f"sqlite:///{work / name / 'seqdream.db'}"
    claims = claim_latency_ms(url)
    print(
        f"{name:<10} {accepted / seconds:8.0f} submits/s  ({accepted} accepted, {refused} refused, {clients} clients)"
        f"   claim: median {statistics.median(claims):.2f} ms, p95 {sorted(claims)[int(len(claims) * 0.95)]:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--postgres", default=os.environ.get("SEQDREAM_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqdream-submit-"))
    print(f"submits for {args.seconds:g}s from {args.clients} clients, API-only server, {os.cpu_count()} cores")
    measure("sqlite", work, args.seconds, args.clients)
    if args.postgres:
        with Database(args.postgres).engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        measure("postgresql", work, args.seconds, args.clients, SEQDREAM_DATABASE_URL=args.postgres)


if __name__ == "__main__":
    main()
