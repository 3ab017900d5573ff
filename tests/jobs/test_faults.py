"""Faults of the database, storage and disk, through real processes: an API and two separate workers.

Each scenario accepts 12 tasks or more around the fault and asserts that every accepted task
completes exactly once (its files unchanged after it completed), that no worker process exits,
that the service recovers by itself soon after the dependency returns, that /health/ready tells
the truth meanwhile, that refused submits get a 503 in the envelope, and that the logs stay short.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from seqdream_devkit.server_process import free_port
from support.database import job_row
from support.disk import fill
from support.servers import LocalServer, start_worker

pytestmark = pytest.mark.slow  # starts servers or processes

T2I = "/api/v3/bytedance/seedream-v4"
# Enough work per task that tasks are running when the fault lands (a second or two each on a CPU).
PACED = {"SEQDREAM_NATIVE_RESOLUTION": "128", "SEQDREAM_NUM_INFERENCE_STEPS": "40", "SEQDREAM_NSFW_CHECK": "false"}
RECOVERY_S = 10  # every accepted task done within this (plus its own work) of the dependency returning


def submit(api: LocalServer, count: int, tag: str) -> list[str]:
    with api.client() as client:
        return [
            client.post(T2I, json={"prompt": f"a lantern {tag} {n}", "size": "1024*1024", "seed": n}).json()["data"][
                "id"
            ]
            for n in range(count)
        ]


def results(api: LocalServer, ids: list[str], timeout: float) -> dict[str, dict]:
    """Each task once it has ended; requests refused while a dependency is down are asked again."""
    done: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    with api.client() as client:
        while len(done) < len(ids):
            assert time.monotonic() < deadline, f"{len(ids) - len(done)} task(s) never ended"
            for job_id in ids:
                if job_id in done:
                    continue
                answer = client.get(f"/api/v3/predictions/{job_id}/result")
                if answer.status_code == 200 and answer.json()["data"]["status"] in ("completed", "failed"):
                    done[job_id] = answer.json()["data"]
            time.sleep(0.1)
    return done


def downloads(api: LocalServer, finished: dict[str, dict]) -> dict[str, bytes]:
    with api.client() as client:
        return {url: client.get(url).content for data in finished.values() for url in data["outputs"]}


def ready_status(url: str) -> int:
    try:
        return httpx.get(url, timeout=3).status_code
    except httpx.HTTPError:
        return 0


def wait_all_ready(urls: list[str]) -> float:
    """Seconds until every URL answers ready, which must be within RECOVERY_S."""
    back = time.monotonic()
    while any(ready_status(url) != 200 for url in urls):
        assert time.monotonic() - back < RECOVERY_S, [ready_status(url) for url in urls]
        time.sleep(0.2)
    return time.monotonic() - back


def log_lines(*paths: Path) -> list[str]:
    return [line for path in paths for line in path.read_text(errors="replace").splitlines()]


# -- a private PostgreSQL cluster that a test may stop, restart and cut off ------------------------------
class Postgres:
    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not found or os.geteuid() != 0 or shutil.which("su") is None:
            pytest.skip("needs PostgreSQL's server binaries and root (to run them as the postgres user)")
        self.bin = found[-1]
        self.dir = Path(tempfile.mkdtemp(prefix="seqdream-faults-pg-"))
        shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self._as_postgres(f"{self.bin}/initdb -D {self.dir}/data --auth=trust -U postgres")
        self.start()
        self.databases = 0
        self.name = ""
        self.url = ""

    def new_database(self) -> str:
        """A fresh database for the next test (the cluster is the module's): its URL."""
        self.databases += 1
        self.name = f"seqdream{self.databases}"
        self._as_postgres(f"{self.bin}/createdb -h 127.0.0.1 -p {self.port} {self.name}")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.name}"
        return self.url

    def _as_postgres(self, command: str) -> None:
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.stopped = False
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._as_postgres(f"{self.bin}/pg_ctl -D {self.dir}/data -o '{options}' -l {self.dir}/log -w start")

    def stop(self) -> None:
        self.stopped = True
        self._as_postgres(f"{self.bin}/pg_ctl -D {self.dir}/data -m fast -w stop")

    def terminate_connections(self) -> int:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname={self.name}") as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            ).fetchall()
        return len(rows)

    def remove(self) -> None:
        subprocess.run(["su", "postgres", "-c", f"{self.bin}/pg_ctl -D {self.dir}/data -m immediate stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)


class Deployment:
    """An API (no workers of its own) and two `seqdream worker` processes sharing a database and storage."""

    def __init__(self, root: Path, model: Path, **env: str) -> None:
        self.api = LocalServer(root / "api", model, "--workers", "0", **{**PACED, **env}).start()
        self.ports = [free_port(), free_port()]
        self.worker_logs = [root / f"worker-{n}.log" for n in range(2)]
        pairs = zip(self.worker_logs, self.ports, strict=True)
        self.workers = [start_worker(self.api.env, "--metrics-port", str(port), log=log) for log, port in pairs]
        for port in self.ports:
            deadline = time.monotonic() + 120
            while ready_status(f"http://127.0.0.1:{port}/health/ready") != 200:
                assert time.monotonic() < deadline, "a worker never became ready"
                time.sleep(0.2)

    def ready_urls(self) -> list[str]:
        return [f"{self.api.base_url}/health/ready"] + [f"http://127.0.0.1:{p}/health/ready" for p in self.ports]

    def all_alive(self) -> bool:
        return all(worker.poll() is None for worker in self.workers)

    def logs(self) -> list[str]:
        return log_lines(self.api.log_path, *self.worker_logs)

    def close(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.api.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Postgres]:
    """One private cluster for the module (an initdb costs seconds); each test gets a database of its own."""
    made = Postgres()
    yield made
    made.remove()


@pytest.fixture()
def postgres(cluster: Postgres) -> Iterator[Postgres]:
    """The cluster, running, with a fresh database (a test that stops it leaves it stopped)."""
    if cluster.stopped:
        cluster.start()
    cluster.new_database()
    yield cluster


def assert_quiet(deployment: Deployment) -> None:
    lines = deployment.logs()
    assert not [line for line in lines if "Traceback" in line], "\n".join(lines[-80:])
    assert not [line for line in lines if "ended unexpectedly" in line]  # no thread needed its supervisor
    changes = [line for line in lines if "unavailable:" in line or " back after " in line]
    assert len(changes) <= 24, "\n".join(changes)  # a line or two per process and outage (two here), not one per call


@pytest.fixture()
def on_postgres(postgres: Postgres, tiny_model: Path, tmp_path: Path) -> Iterator[Deployment]:
    """An API and two workers on the private cluster, blobs in a shared folder."""
    deployment = Deployment(tmp_path, tiny_model, SEQDREAM_DATABASE_URL=postgres.url,
                            SEQDREAM_STORAGE_DIR=str(tmp_path / "blobs"))  # fmt: skip
    yield deployment
    deployment.close()


def test_a_postgres_outage_neither_kills_workers_nor_loses_a_task(postgres: Postgres, on_postgres: Deployment) -> None:
    deployment = on_postgres
    try:
        postgres.stop()  # first while the workers are idle, claiming (the claim is what used to end them)
        time.sleep(3.0)
        assert deployment.all_alive()
        postgres.start()
        wait_all_ready(deployment.ready_urls())
        ids = submit(deployment.api, 8, "before")
        time.sleep(1.0)  # then with some running, some queued
        postgres.stop()
        with deployment.api.client() as client:
            refused = client.post(T2I, json={"prompt": "during the outage"})
        assert refused.status_code == 503 and refused.json()["code"] == 503, refused.text
        assert "database" in refused.json()["message"] and refused.headers["Retry-After"]
        time.sleep(3.0)
        assert [ready_status(url) for url in deployment.ready_urls()] == [503, 503, 503]
        assert deployment.all_alive()
        postgres.start()
        recovered = wait_all_ready(deployment.ready_urls())
        ids += submit(deployment.api, 4, "after")
        finished = results(deployment.api, ids, timeout=RECOVERY_S + 60)
        assert [data["status"] for data in finished.values()] == ["completed"] * 12, finished
        files = downloads(deployment.api, finished)
        assert [ready_status(url) for url in deployment.ready_urls()] == [200, 200, 200]
        assert deployment.all_alive()
        time.sleep(3.0)  # nothing rewrites a completed task's files later
        assert downloads(deployment.api, results(deployment.api, ids, timeout=10)) == files
        print(f"API and both workers ready {recovered:.1f} s after PostgreSQL came back")
        assert_quiet(deployment)
    finally:
        deployment.close()  # (the fixture's close after this does nothing more)
    assert [worker.returncode for worker in deployment.workers] == [0, 0]  # they stopped when told to


def test_terminated_connections_are_reopened_and_every_task_completes(
    postgres: Postgres, on_postgres: Deployment
) -> None:
    deployment = on_postgres
    try:
        ids = submit(deployment.api, 12, "cut")
        time.sleep(1.0)
        for _ in range(3):  # cut every connection, a few times, while tasks run
            assert postgres.terminate_connections() > 0
            time.sleep(0.7)
        finished = results(deployment.api, ids, timeout=RECOVERY_S + 60)
        assert [data["status"] for data in finished.values()] == ["completed"] * 12, finished
        assert all(len(data["outputs"]) == 1 for data in finished.values())
        assert deployment.all_alive()
        assert_quiet(deployment)
    finally:
        deployment.close()


def test_a_stalled_worker_never_rewrites_a_completed_tasks_files(tiny_model: Path, tmp_path: Path) -> None:
    slow = {"SEQDREAM_NUM_INFERENCE_STEPS": "60", "SEQDREAM_JOB_LEASE_S": "2"}  # each task runs for seconds
    deployment = Deployment(tmp_path, tiny_model, **slow)
    db = deployment.api.data_dir / "seqdream.db"
    try:
        ids = submit(deployment.api, 12, "stalled")
        deadline = time.monotonic() + 60
        while not (running := [job_id for job_id in ids if job_row(db, job_id)["status"] == "processing"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        job_id = running[0]
        pid = int(job_row(db, job_id)["worker_id"].split(":")[1])
        stalled = next(worker for worker in deployment.workers if worker.pid == pid)
        os.kill(pid, signal.SIGSTOP)  # past its lease: the other worker takes its task over, and the rest
        try:
            finished = results(deployment.api, ids, timeout=240)
            assert [data["status"] for data in finished.values()] == ["completed"] * 12
            files = downloads(deployment.api, finished)
        finally:
            os.kill(pid, signal.SIGCONT)
        time.sleep(4.0)  # the stalled worker resumes, finds its lease gone, and stops that task
        again = results(deployment.api, ids, timeout=10)
        assert [again[i]["outputs"] for i in ids] == [finished[i]["outputs"] for i in ids]
        assert downloads(deployment.api, again) == files
        assert stalled.poll() is None and deployment.all_alive()
        assert all(job_row(db, i)["status"] == "completed" for i in ids)
        worker_log = deployment.worker_logs[deployment.workers.index(stalled)].read_text()
        assert "taken over by another worker" in worker_log or "lease lost" in worker_log
        for i in ids:  # only the delivered files are left: the stalled attempt removed its own
            left = sorted(p.name for p in (deployment.api.data_dir / "blobs" / "outputs" / i).iterdir())
            assert left == sorted(url.rsplit("/", 1)[1] for url in finished[i]["outputs"])
    finally:
        deployment.close()


def test_a_full_disk_under_sqlite_and_blobs_pauses_and_resumes_by_itself(
    tiny_model: Path, tmp_path: Path, small_disk: Path
) -> None:
    server = LocalServer(small_disk / "data", tiny_model, **PACED, SEQDREAM_OUTPUT_FORMAT="png").start()
    ready = f"{server.base_url}/health/ready"
    try:
        ids = submit(server, 12, "disk")
        time.sleep(0.5)
        filler = fill(small_disk)
        with server.client() as client:
            refused = client.post(T2I, json={"prompt": "while the disk is full", "size": "1024*1024"})
        assert refused.status_code == 503 and refused.json()["code"] == 503, refused.text
        deadline = time.monotonic() + 30
        while ready_status(ready) != 503:  # a worker meets the full disk: ready says so
            assert time.monotonic() < deadline, "ready never noticed the full disk"
            time.sleep(0.2)
        time.sleep(3.0)
        filler.unlink()  # space comes back
        back = time.monotonic()
        with server.client() as client:  # a write shows storage usable again; readiness follows
            while client.post(T2I, json={"prompt": "after", "size": "1024*1024"}).status_code != 200:
                assert time.monotonic() - back < RECOVERY_S
                time.sleep(0.2)
        accepting = time.monotonic() - back
        wait_all_ready([ready])
        is_ready = time.monotonic() - back
        finished = results(server, ids, timeout=RECOVERY_S + 90)
        print(
            f"after space came back: submits accepted in {accepting:.1f} s, ready in {is_ready:.1f} s, "
            f"all 12 tasks completed in {time.monotonic() - back:.1f} s"
        )
        assert [data["status"] for data in finished.values()] == ["completed"] * 12, finished
        assert ready_status(ready) == 200 and server.process is not None and server.process.poll() is None
        lines = log_lines(server.log_path)
        assert not [line for line in lines if "Traceback" in line], "\n".join(lines[-60:])
    finally:
        server.stop()
