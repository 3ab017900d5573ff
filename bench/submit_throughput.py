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


class Floor:
    """The bare app (bench/intake_floor.py) in a process of its own, on loopback."""

    def __init__(self, work: Path) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("intake_floor.py")), str(port),
                                         str(work / "floor.db")])  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"{self.base_url}{T2I}", json={"prompt": "up?"}, timeout=1)
                return
            except httpx.HTTPError:
                assert time.monotonic() < deadline and self.process.poll() is None, "the floor app did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def api_only_server(work: Path, name: str, **env: str) -> tuple[ServerProcess, str]:
    """An API-only `seqdream serve` and the secret of a key without limits."""
    server = ServerProcess(work / name, None, "--workers", "0", SEQDREAM_LOG_LEVEL="warning", **env).start()
    key = server.cli("keys", "create", "--name", "bench", "--rate", "unlimited", "--max-active", "unlimited")
    return server, key.stdout.strip()


def interleaved(targets: dict[str, tuple[str, str]], seconds: float, clients: int, rounds: int) -> dict[str, float]:
    """Submits per second of each target (name: base URL, key), fired in turn for `seconds` / `rounds`
    at a time, `rounds` times: a machine whose speed drifts within minutes drifts for all of them."""
    for base, key in targets.values():  # warm-up
        asyncio.run(fire(base, key, 1.0, clients))
    totals = dict.fromkeys(targets, 0)
    for _ in range(rounds):
        for name, (base, key) in targets.items():
            accepted, refused = asyncio.run(fire(base, key, seconds / rounds, clients))
            assert refused == 0, f"{name} refused {refused} submits"
            totals[name] += accepted
    return {name: total / seconds for name, total in totals.items()}


def claims(url: str) -> str:
    times = claim_latency_ms(url)
    return f"claim: median {statistics.median(times):.2f} ms, p95 {sorted(times)[int(len(times) * 0.95)]:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10, help="firing time per target, in all")
    parser.add_argument("--rounds", type=int, default=5, help="turns the floor and the service take")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--postgres", default=os.environ.get("SEQDREAM_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqdream-submit-"))
    print(f"submits for {args.seconds:g}s each from {args.clients} clients, floor and API-only server in "
          f"{args.rounds} alternating turns, {os.cpu_count()} cores")  # fmt: skip
    floor = Floor(work)
    server, secret = api_only_server(work, "sqlite")
    try:
        rates = interleaved({"floor": (floor.base_url, "none"), "sqlite": (server.base_url, secret)},
                            args.seconds, args.clients, args.rounds)  # fmt: skip
    finally:
        server.stop()
        floor.stop()
    print(f"{'floor':<10} {rates['floor']:8.0f} submits/s  (bare FastAPI + one SQLite insert)")
    sqlite_url = f"sqlite:///{work / 'sqlite' / 'seqdream.db'}"
    print(f"{'sqlite':<10} {rates['sqlite']:8.0f} submits/s  {claims(sqlite_url)}")
    print(f"SQLite intake / floor: {rates['sqlite'] / rates['floor']:.2f}x (target >= 0.6x)")
    if args.postgres:
        with Database(args.postgres).engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        server, secret = api_only_server(work, "postgresql", SEQDREAM_DATABASE_URL=args.postgres)
        try:
            rate = interleaved({"postgresql": (server.base_url, secret)}, args.seconds, args.clients, 1)["postgresql"]
        finally:
            server.stop()
        print(f"{'postgresql':<10} {rate:8.0f} submits/s  {claims(args.postgres)}")


if __name__ == "__main__":
    main()
