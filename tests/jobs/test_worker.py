"""The worker against a real SQLite file and the real tiny engine: failures, full disks, crashes."""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from seqdream.api.dialects import input_error
from seqdream.config import Settings
from seqdream.db import Job, JobStatus
from seqdream.db.models import utcnow
from seqdream.engines.base import EngineError, GenerationPlan, GenerationResult
from seqdream.engines.holder import EngineHolder
from seqdream.engines.registry import load_engine
from seqdream.jobs.pool import WorkerPool
from seqdream.jobs.request import JobRequest, Reference
from seqdream.jobs.worker import Worker
from seqdream.safety.nsfw import NudeNetDetector
from seqdream.services import Services

REQUEST = JobRequest(prompt="a red cube", size="1024*1024")


@pytest.fixture()
def services(tiny_model: Path, tmp_path: Path) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path,
        model=str(tiny_model),
        native_resolution=64,
        max_sequence_length=64,
        poll_interval_s=0.02,
        job_lease_s=1,
        storage_retry_s=0.2,
    )
    services = Services.from_settings(settings)
    yield services
    services.close()


class ExplodingEngine:
    """Wraps the real engine; a prompt containing 'explode' makes the model call fail."""

    name = "exploding"

    def __init__(self, inner) -> None:
        self.inner = inner
        self.frame_prompt = inner.frame_prompt

    def generate(self, plan: GenerationPlan, progress=None, on_images=None) -> GenerationResult:
        if any("explode" in prompt for prompt in plan.prompts):
            raise EngineError("the model call failed: CUDA error: an illegal memory access was encountered")
        return self.inner.generate(plan, progress, on_images)


class FullDisk:
    """A blob store whose disk is full until `free()` is called."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.full = True

    def put(self, key: str, data: bytes) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.inner.put(key, data)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def run_worker(services: Services, engine) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    worker = Worker(services.jobs, services.blobs, EngineHolder(lambda: engine), NudeNetDetector(), services.settings)
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def wait_terminal(services: Services, job_id: str, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = services.jobs.get(job_id)
        if JobStatus(job.status).is_terminal:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {job.status}")


def test_failed_model_call_fails_the_job_and_the_worker_goes_on(services: Services) -> None:
    stop, thread = run_worker(services, ExplodingEngine(load_engine(services.settings)))
    try:
        bad = services.jobs.create(
            model="m", request=REQUEST.model_copy(update={"prompt": "explode"}), seed=1, api_key_id=None
        )
        missing_ref = services.jobs.create(
            model="m",
            request=REQUEST.model_copy(update={"images": [Reference(blob="inputs/gone/0.png")]}),
            seed=1,
            api_key_id=None,
        )
        good = services.jobs.create(model="m", request=REQUEST, seed=1, api_key_id=None)
        failed = wait_terminal(services, bad.id)
        assert failed.status == "failed" and "illegal memory access" in failed.error
        assert failed.failure == "engine" and not input_error(failed)  # the dialects answer 500
        lost = wait_terminal(services, missing_ref.id)
        assert lost.error == "images[0] is no longer stored (it expired or was deleted)"
        assert lost.failure == "input" and input_error(lost)  # ... and 400 here
        done = wait_terminal(services, good.id)
        assert done.status == "completed" and services.blobs.exists(done.outputs[0]) and done.failure is None
    finally:
        stop.set()
        thread.join()


def test_full_disk_keeps_the_job_until_space_returns(services: Services) -> None:
    disk = FullDisk(services.blobs)
    services.blobs = disk
    stop, thread = run_worker(services, load_engine(services.settings))
    try:
        job = services.jobs.create(model="m", request=REQUEST, seed=3, api_key_id=None)
        deadline = time.monotonic() + 30
        while "storage unavailable" not in services.jobs.get(job.id).error:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert services.jobs.get(job.id).status in ("created", "processing")  # back in the queue, not failed
        disk.full = False
        done = wait_terminal(services, job.id)
        assert done.status == "completed" and done.error == "" and done.attempts >= 2
    finally:
        stop.set()
        thread.join()


def test_engine_that_cannot_load_leaves_jobs_queued(services: Services, tmp_path: Path) -> None:
    broken = Settings(data_dir=tmp_path, model=str(tmp_path / "no-model-here"))
    holder = EngineHolder(lambda: load_engine(broken), retry_s=60)
    stop = threading.Event()
    worker = Worker(services.jobs, services.blobs, holder, NudeNetDetector(), services.settings)
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    job = services.jobs.create(model="m", request=REQUEST, seed=1, api_key_id=None)
    time.sleep(1.0)
    stop.set()
    thread.join()
    assert holder.last_error and "no-model-here" in holder.last_error and holder.state == "unavailable"
    assert services.jobs.get(job.id).status == "created"


class SlowClaims:
    """A job store whose claims commit, then take a while to return (a slow database link)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.committed = threading.Event()
        self.go_on = threading.Event()

    def claim_batch(self, worker_id: str, most: int) -> list[Job]:
        jobs = self.inner.claim_batch(worker_id, most)
        if jobs:
            self.committed.set()
            self.go_on.wait(30)
        return jobs

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_a_stop_signal_names_a_job_whose_claim_is_in_flight(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """The job is 'processing' in the database before the claim returns: a Ctrl-C then must not
    say 'no job running' and let it run unannounced (CI caught that window once)."""
    caplog.set_level("INFO", logger="seqdream.jobs.worker")
    claims = SlowClaims(services.jobs)
    engine = load_engine(services.settings)
    worker = Worker(claims, services.blobs, EngineHolder(lambda: engine), NudeNetDetector(), services.settings)
    pool = WorkerPool([worker], grace_s=30).start()
    job = services.jobs.create(model="m", request=REQUEST, seed=1, api_key_id=None)
    assert claims.committed.wait(30)
    assert services.jobs.get(job.id).status == "processing"
    signal = threading.Thread(target=pool.on_signal)
    signal.start()
    time.sleep(0.3)  # the signal lands while the claim is still in flight
    claims.go_on.set()
    signal.join(30)
    assert f"stopping: job {job.id} may finish within 30s" in caplog.text
    assert "no job running" not in caplog.text
    pool.shutdown(60)
    assert services.jobs.get(job.id).status == "completed"


def test_stale_jobs_are_requeued_then_given_up(services: Services) -> None:
    job = services.jobs.create(model="m", request=REQUEST, seed=1, api_key_id=None)
    for attempt in range(1, 4):
        claimed = services.jobs.claim(f"crashy-{attempt}")
        assert claimed is not None and claimed.attempts == attempt
        time.sleep(0.25)  # the lease (0.2 s) runs out: the worker "died"
        report = services.jobs.recover_stale(lease_s=0.2, max_attempts=3)
        if attempt < 3:
            assert report.requeued == [job.id]
    final = services.jobs.get(job.id)
    assert final.status == "failed" and "3 times" in final.error and final.failure == "interrupted"
    # A worker that lost its lease cannot overwrite the outcome.
    assert not services.jobs.complete(job.id, "crashy-3", outputs=[], has_nsfw_contents=[], inference_ms=1)


def test_concurrent_claims_never_share_a_job(services: Services) -> None:
    ids = {services.jobs.create(model="m", request=REQUEST, seed=i, api_key_id=None).id for i in range(40)}
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while (job := services.jobs.claim(name)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids)  # every job once, none twice


def test_retention_removes_old_files(services: Services) -> None:
    stop, thread = run_worker(services, load_engine(services.settings))
    try:
        job = wait_terminal(services, services.jobs.create(model="m", request=REQUEST, seed=1, api_key_id=None).id)
    finally:
        stop.set()
        thread.join()
    from seqdream.jobs.janitor import Janitor

    janitor = Janitor(services.jobs, services.uploads, services.blobs, services.settings.retention_hours)
    assert janitor.sweep(force=True) == 0  # young files stay
    with services.db.session() as session:
        session.get(Job, job.id).finished_at = utcnow() - timedelta(hours=services.settings.retention_hours + 1)
    assert janitor.sweep(force=True) == 1
    assert not services.blobs.exists(job.outputs[0])
    assert services.jobs.get(job.id).expired_at is not None


class RecordingEngine:
    """Wraps the real engine and keeps every plan it is asked to draw."""

    name = "recording"

    def __init__(self, inner) -> None:
        self.inner = inner
        self.frame_prompt = inner.frame_prompt
        self.plans: list[GenerationPlan] = []

    def generate(self, plan: GenerationPlan, progress=None, on_images=None) -> GenerationResult:
        self.plans.append(plan)
        return self.inner.generate(plan, progress, on_images)


def test_group_frames_are_worded_as_the_model_declares(services: Services, tiny_model: Path, tmp_path: Path) -> None:
    import json
    import shutil

    model = tmp_path / "declared"
    shutil.copytree(tiny_model, model)
    (model / "seqdream.json").write_text(json.dumps({"frame_prompt": "{prompt} ({percent}% through, {index}/{count})"}))
    engine = RecordingEngine(load_engine(services.settings.model_copy(update={"model": str(model)})))
    stop, thread = run_worker(services, engine)
    try:
        request = REQUEST.model_copy(update={"prompt": "a series of 3 images of a red cube", "max_images": 5})
        job = wait_terminal(services, services.jobs.create(model="m", request=request, seed=7, api_key_id=None).id)
    finally:
        stop.set()
        thread.join()
    assert job.status == "completed" and len(job.outputs) == 3
    assert engine.plans[0].prompts == [
        f"a series of 3 images of a red cube ({percent}% through, {k}/3)" for k, percent in ((1, 0), (2, 50), (3, 100))
    ]


class TakenOverWhileWriting:
    """A blob store under which, at the first write, the running job is taken over and completed by
    another worker (this one stalled past its lease), as a resumed worker finds when it writes."""

    def __init__(self, inner, services: Services) -> None:
        self.inner, self.services = inner, services
        self.delivered: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        if not self.delivered:
            job_id = key.split("/")[1]
            jobs = self.services.jobs
            for _ in range(20):  # the lease ran out: recover_stale hands it to another worker
                with jobs.db.session() as session:  # (again if this worker's lease thread beat in between)
                    session.get(Job, job_id).heartbeat_at = utcnow() - timedelta(seconds=60)
                if jobs.recover_stale(lease_s=1, max_attempts=3).requeued == [job_id]:
                    break
            else:
                raise AssertionError("the stalled job was never recovered")
            other = jobs.claim("the-other-worker")
            assert other is not None and other.id == job_id
            theirs = key.rsplit("/", 1)[0] + "/0-theirs.jpeg"
            self.delivered[theirs] = b"the delivered image"
            self.inner.put(theirs, self.delivered[theirs])
            assert jobs.complete(
                job_id, "the-other-worker", outputs=[theirs], has_nsfw_contents=[False], inference_ms=1
            )
        self.inner.put(key, data)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_a_worker_that_lost_its_job_never_changes_the_delivered_files(services: Services) -> None:
    store = TakenOverWhileWriting(services.blobs, services)
    worker = Worker(services.jobs, store, EngineHolder(lambda: load_engine(services.settings)), NudeNetDetector(),
                    services.settings)  # fmt: skip
    job = services.jobs.create(model="m", request=REQUEST, seed=3, api_key_id=None)
    claimed = services.jobs.claim(worker.worker_id)
    assert claimed is not None
    worker.process(claimed, load_engine(services.settings))
    done = services.jobs.get(job.id)
    assert done.status == "completed" and done.outputs == list(store.delivered)
    for key, data in store.delivered.items():
        assert services.blobs.get(key) == data  # unchanged
    left = sorted(p.name for p in (services.settings.resolved_storage_dir / "outputs" / job.id).iterdir())
    assert left == ["0-theirs.jpeg"]  # the stalled attempt removed what it wrote


def test_the_same_seed_and_inputs_give_the_same_pixels(services: Services) -> None:
    """Outputs carry the invisible watermark: it tags what an image was made from, not which task made
    it, so a repeated request is pixel for pixel the same (its C2PA manifest still names its own task)."""
    import numpy as np

    from seqdream_devkit.images import decode

    request = REQUEST.model_copy(update={"seed": 7})
    engine = load_engine(services.settings)
    alone = services.settings.model_copy(update={"batch_tasks": 1})  # a batch rounds differently (docs/api.md)
    worker = Worker(services.jobs, services.blobs, EngineHolder(lambda: engine), NudeNetDetector(), alone,
                    marker=services.marker)  # the service's marks: the C2PA manifest and the watermark  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        ids = [services.jobs.create(model="m", request=request, seed=7, api_key_id=None).id for _ in range(2)]
        other = services.jobs.create(model="m", request=request.model_copy(update={"prompt": "a blue cube"}), seed=7,
                                     api_key_id=None).id  # fmt: skip
        done = [wait_terminal(services, job_id) for job_id in (*ids, other)]
    finally:
        stop.set()
        thread.join()
    pixels = [np.asarray(decode(services.blobs.get(job.outputs[0]))) for job in done]
    assert all(job.status == "completed" for job in done)
    assert services.blobs.get(done[0].outputs[0]) != services.blobs.get(done[1].outputs[0])  # each its manifest
    assert np.array_equal(pixels[0], pixels[1])
    assert not np.array_equal(pixels[0], pixels[2])
