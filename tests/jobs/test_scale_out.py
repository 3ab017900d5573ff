"""Scale-out on real PostgreSQL: 2 API processes and 4 worker processes share one database and one
storage folder; workers are killed with -9 at random while 200 tasks run. Every task completes,
none is completed twice, and the only repeated model calls are the ones the kills interrupted."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from seqdream.config import Settings
from seqdream.db import Database, Job
from support.postgres import empty_postgres, needs_postgres
from support.servers import LocalServer, Process, start_worker

pytestmark = [pytest.mark.slow, needs_postgres]
T2I = "/api/v3/bytedance/seedream-v4"
TASKS, WORKERS, KILLS = 200, 4, 4


def test_four_workers_two_apis_and_kill_9_lose_nothing_and_repeat_nothing(tiny_model: Path, tmp_path: Path) -> None:
    url = empty_postgres()
    db = Database(url)
    shared = {
        "SEQDREAM_DATABASE_URL": url,
        "SEQDREAM_STORAGE_DIR": str(tmp_path / "blobs"),
        "SEQDREAM_THREADS": "1",
        "SEQDREAM_NSFW_CHECK": "false",
        "SEQDREAM_JOB_MAX_ATTEMPTS": "10",
    }
    apis = [LocalServer(tmp_path / f"api{i}", tiny_model, "--workers", "0", **shared).start() for i in range(2)]
    logs = tmp_path / "logs"
    logs.mkdir()
    starts = Counter[int]()

    def start(index: int) -> Process:
        starts[index] += 1
        return start_worker(apis[0].env, log=logs / f"worker{index}-{starts[index]}.log")

    workers = [start(i) for i in range(WORKERS)]
    try:
        clients = [api.client() for api in apis]

        def submit(n: int) -> str:
            response = clients[n % 2].post(T2I, json={"prompt": f"a kite number {n}", "size": "1024*1024"})
            assert response.status_code == 200, response.text
            return response.json()["data"]["id"]

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(submit, range(TASKS)))
        assert len(set(ids)) == TASKS

        chaos = random.Random(7)
        kills = 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with db.session() as session:
                done = session.scalar(text("SELECT count(*) FROM jobs WHERE status = 'completed'"))
            if done == TASKS:
                break
            if kills < KILLS and done and done >= (kills + 1) * TASKS // (KILLS + 2):
                victim = chaos.randrange(WORKERS)
                workers[victim].kill()  # kill -9: no handlers, the job it held is mid-flight
                workers[victim].wait(timeout=10)
                workers[victim] = start(victim)
                kills += 1
            time.sleep(0.2)
        for client in clients:
            client.close()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
        for api in apis:
            api.stop()

    with db.session() as session:
        jobs = {job.id: job for job in session.query(Job)}
    assert kills == KILLS
    assert sorted(jobs) == sorted(ids)
    assert Counter(job.status for job in jobs.values()) == {"completed": TASKS}
    assert all(len(job.outputs) == 1 and (tmp_path / "blobs" / job.outputs[0]).is_file() for job in jobs.values())
    # Model calls: one per task, plus at most one per task a killed worker held: its batch of single
    # images (SEQDREAM_BATCH_TASKS, by default SEQDREAM_MAX_BATCH).
    extra_attempts = sum(job.attempts for job in jobs.values()) - TASKS
    assert 0 <= extra_attempts <= KILLS * Settings().max_batch
    completions = Counter(
        match for path in logs.iterdir() for match in re.findall(r"job ([0-9a-f]{32}): completed", path.read_text())
    )
    assert max(completions.values()) == 1  # no task was completed by two workers
    assert len({job.worker_id for job in jobs.values()}) >= WORKERS  # every worker took part
