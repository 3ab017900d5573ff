"""Tasks drawn together: single images of one size share a batch, and each still ends on its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from seqdream.config import Settings
from seqdream.db import Job, JobStatus
from seqdream.engines.base import EngineError, GenerationPlan, GenerationResult
from seqdream.engines.holder import EngineHolder
from seqdream.engines.registry import load_engine
from seqdream.jobs.request import JobRequest, Reference
from seqdream.jobs.worker import Worker
from seqdream.safety.nsfw import NudeNetDetector
from seqdream.services import Services
from seqdream_devkit.images import decode

SINGLE = JobRequest(prompt="a red cube", size="1024*1024", output_format="png")


@pytest.fixture()
def services(tiny_model: Path, tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path, model=str(tiny_model), native_resolution=64, max_sequence_length=64,
                        poll_interval_s=0.02, job_lease_s=2, storage_retry_s=0.2, max_batch=4)  # fmt: skip
    services = Services.from_settings(settings)
    yield services
    services.close()


def queue(services: Services, request: JobRequest = SINGLE, seed: int = 1, key: str | None = None) -> str:
    return services.jobs.create(model="m", request=request, seed=seed, api_key_id=key).id


def run_until_done(services: Services, engine, job_ids: list[str], blobs=None, **settings) -> list[Job]:
    """Run one worker (on `blobs`, else the service's; its settings changed by `settings`) until every
    job has ended."""
    worker = Worker(services.jobs, blobs or services.blobs, EngineHolder(lambda: engine), NudeNetDetector(),
                    services.settings.model_copy(update=settings))  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = [services.jobs.get(job_id) for job_id in job_ids]
            if all(JobStatus(job.status).is_terminal for job in jobs):
                return jobs
            time.sleep(0.02)
        raise AssertionError(f"still running: {[job.status for job in jobs]}")
    finally:
        stop.set()
        thread.join()


def pixels(services: Services, job: Job) -> np.ndarray:
    return np.asarray(decode(services.blobs.get(job.outputs[0]))).astype(int)


def test_a_claim_takes_the_leads_batch_mates_in_queue_order_and_nothing_else(services: Services) -> None:
    jobs = services.jobs
    first = queue(services)
    group = queue(services, SINGLE.model_copy(update={"prompt": "2 images of a red cube", "max_images": 2}))
    edit = queue(services, SINGLE.model_copy(update={"images": [Reference(url="http://example.com/a.png")]}))
    other_size = queue(services, SINGLE.model_copy(update={"size": "512*512"}))
    second, third, fourth = (queue(services, seed=seed) for seed in (2, 3, 4))
    claimed = jobs.claim_batch("w1", 3)
    assert [job.id for job in claimed] == [first, second, third]
    assert {job.status for job in claimed} == {"processing"} and {job.worker_id for job in claimed} == {"w1"}
    assert [job.id for job in jobs.claim_batch("w2", 3)] == [group]  # a group is a batch of its own
    assert [job.id for job in jobs.claim_batch("w2", 3)] == [edit]  # so is an edit
    assert [job.id for job in jobs.claim_batch("w2", 3)] == [other_size]  # its size's only task
    assert [job.id for job in jobs.claim_batch("w2", 1)] == [fourth]
    assert jobs.claim_batch("w2", 3) == []


def test_tasks_drawn_together_each_end_with_their_own_image(services: Services) -> None:
    """Four single images queued before the worker starts are claimed together and drawn in one
    engine call; each task completes with its own image, the one it gets alone give or take the
    rounding of a batch; a group queued among them runs on its own."""
    engine = load_engine(services.settings)
    calls: list[GenerationPlan] = []
    generate = engine.generate

    def recording(plan, progress=None, on_images=None):
        calls.append(plan)
        return generate(plan, progress, on_images)

    engine.generate = recording  # type: ignore[method-assign]
    prompts = ["a red cube", "a blue sphere", "a green cone", "a yellow cube"]
    together = [
        queue(services, SINGLE.model_copy(update={"prompt": prompt}), seed=i) for i, prompt in enumerate(prompts)
    ]
    group = queue(services, SINGLE.model_copy(update={"prompt": "2 images of a red cube", "max_images": 2}))
    done = run_until_done(services, engine, [*together, group])
    assert [job.status for job in done] == ["completed"] * 5
    assert [len(job.outputs) for job in done] == [1, 1, 1, 1, 2]
    assert len({job.started_at for job in done[:4]}) == 1  # one claim
    assert [(plan.count, plan.independent) for plan in calls] == [(4, True), (2, False)]
    batched = [pixels(services, job) for job in done[:4]]

    alone = [queue(services, SINGLE.model_copy(update={"prompt": prompt}), seed=i) for i, prompt in enumerate(prompts)]
    calls.clear()
    again = run_until_done(services, engine, alone, batch_tasks=1)
    assert [plan.count for plan in calls] == [1, 1, 1, 1]
    for mine, own in zip(batched, (pixels(services, job) for job in again), strict=True):
        assert np.abs(mine - own).max() <= 8 and np.abs(mine - own).mean() < 1.0  # the same picture
    assert np.abs(batched[0] - batched[1]).mean() > 5  # and each its own


class DeletesOnStore:
    """A blob store that deletes one task just before that task's image is stored (a client's DELETE
    landing mid-run), and fails another's write (its disk is full)."""

    def __init__(self, services: Services) -> None:
        self.inner, self.services = services.blobs, services
        self.delete_job: str | None = None
        self.full_job: str | None = None

    def put(self, key: str, data: bytes) -> None:
        if self.delete_job and self.delete_job in key:
            self.services.jobs.delete(self.delete_job)
        if self.full_job and self.full_job in key:
            raise OSError(28, "No space left on device")
        self.inner.put(key, data)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_a_deleted_or_failing_member_leaves_its_batch_mates_alone(services: Services) -> None:
    blobs = DeletesOnStore(services)
    ids = [queue(services, seed=seed) for seed in range(4)]
    blobs.delete_job, blobs.full_job = ids[1], ids[2]
    jobs = run_until_done(services, load_engine(services.settings), ids, blobs, job_max_dependency_attempts=1)
    assert [job.status for job in jobs] == ["completed", "deleted", "failed", "completed"]
    assert "storage unavailable" in jobs[2].error
    assert [len(job.outputs) for job in jobs] == [1, 0, 0, 1]
    assert [jobs[0].attempts, jobs[3].attempts] == [1, 1]  # in the batch, not after a lease ran out
    kept = [path for path in services.settings.data_dir.rglob("*") if path.is_file() and ids[1] in str(path)]
    assert kept == []  # nothing of the deleted task


class FailsWithIn:
    """The real engine, whose model call fails on any batch holding a prompt with 'explode'."""

    name = "fails-with"

    def __init__(self, inner) -> None:
        self.inner, self.frame_prompt, self.task_batch = inner, inner.frame_prompt, inner.task_batch

    def generate(self, plan: GenerationPlan, progress=None, on_images=None) -> GenerationResult:
        if any("explode" in prompt for prompt in plan.prompts):
            raise EngineError("the model call failed: the prompt exploded")
        return self.inner.generate(plan, progress, on_images)


def test_a_model_failure_in_a_batch_fails_only_the_task_that_caused_it(services: Services) -> None:
    ids = [queue(services, seed=1), queue(services, SINGLE.model_copy(update={"prompt": "explode"})), queue(services)]
    done = run_until_done(services, FailsWithIn(load_engine(services.settings)), ids)
    assert [job.status for job in done] == ["completed", "failed", "completed"]
    assert "the prompt exploded" in done[1].error


def test_while_tasks_arrive_together_a_batch_waits_briefly_for_more(services: Services) -> None:
    """After a run of several tasks a worker gives a new batch SEQDREAM_BATCH_WAIT_S to fill (the
    clients of the last batch are sending their next tasks); after a lone task it never waits."""
    settings = services.settings.model_copy(update={"batch_wait_s": 0.6})
    engine = load_engine(services.settings)
    worker = Worker(services.jobs, services.blobs, EngineHolder(lambda: engine), NudeNetDetector(), settings)
    queue(services)
    claimed = services.jobs.claim_batch(worker.worker_id, 4)
    started = time.monotonic()
    assert worker._fill(claimed, engine) == [] and time.monotonic() - started < 0.3  # a lone client's task
    worker.last_run = 3
    late = threading.Timer(0.2, queue, args=(services,), kwargs={"seed": 9})
    late.start()
    more = worker._fill(claimed, engine)
    late.join()
    assert [job.seed for job in more] == [9] and more[0].worker_id == worker.worker_id
