"""Progress you can watch: a running task's steps recorded by its worker, measured task times, and the
estimates (`eta_s`) made from them, on a real SQLite file with the tiny production engine."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from seqdream.config import Settings
from seqdream.db import Job, JobStatus, TaskTime
from seqdream.db.models import utcnow
from seqdream.jobs.eta import Queued, TaskTimes, averaged, queued_s, remaining_s
from seqdream.jobs.presentation import progress
from seqdream.jobs.request import JobRequest
from seqdream.jobs.worker import Worker
from seqdream.services import Services


def decode_data_uri(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


GROUP = JobRequest(prompt="a series of 6 images of a red circle moving", size="1024*1024", max_images=6)


@pytest.fixture()
def services(tiny_model: Path, tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path, model=str(tiny_model), native_resolution=64, max_sequence_length=64,
                        poll_interval_s=0.02, job_lease_s=3, num_inference_steps=60, preview_every_s=0.1,
                        progress_every_s=0.1)  # fmt: skip
    services = Services.from_settings(settings)
    yield services
    services.close()


def job(status: str = "processing", **fields: object) -> Job:
    values = {"id": "j", "model": "m", "status": status, "request": {"size": "1024*1024"}, "seed": 1,
              "images_total": 4, "created_at": utcnow()} | fields  # fmt: skip
    return Job(**values)


def test_a_measured_time_is_used_as_is_or_scaled_by_the_image_count() -> None:
    times = TaskTimes({("1024*1024", 1): 2.0, ("1024*1024", 4): 5.0, ("2048*2048", 1): 3.0})
    assert times.expected("1024*1024", 4) == 5.0
    assert times.expected("1024*1024", 8) == 10.0  # nearest count, same size, scaled
    assert times.expected("2048*2048", 2) == 6.0  # its own size first
    assert times.expected("512*512", 1) == 2.0  # another size's, when its own was never measured
    assert TaskTimes({}).expected("1024*1024", 1) is None
    assert averaged(None, 4.0) == 4.0 and averaged(4.0, 14.0) == pytest.approx(7.0)


def test_a_running_estimate_moves_from_the_average_to_its_own_pace() -> None:
    now = utcnow()
    times = TaskTimes({("1024*1024", 4): 10.0})
    fresh = job(started_at=now - timedelta(seconds=2))
    assert remaining_s(fresh, times, now) == pytest.approx(8.0)  # no step yet: the average less 2 s
    # A quarter of the steps recorded 1 s after its start, 0.5 s ago: its own pace says 3 - 0.5 s more,
    # the average 10 - 1.5; a quarter done, its pace counts sqrt(1/4) = half.
    quarter = job(started_at=now - timedelta(seconds=1.5), heartbeat_at=now - timedelta(seconds=0.5), steps_done=4,
                  steps_total=16, batch_steps=4)  # fmt: skip
    assert remaining_s(quarter, times, now) == pytest.approx(0.5 * 2.5 + 0.5 * 8.5)
    assert remaining_s(quarter, TaskTimes({}), now) == pytest.approx(2.5)  # nothing measured: its pace alone
    assert remaining_s(job(), TaskTimes({}), now) is None


def test_a_queued_estimate_adds_the_work_ahead_shared_by_the_running_tasks() -> None:
    now = utcnow()
    times = {"m": TaskTimes({("1024*1024", 4): 10.0})}
    running = [job(started_at=now - timedelta(seconds=4), worker_id="w1"),
               job(started_at=now - timedelta(seconds=8), worker_id="w2")]  # fmt: skip
    ahead = [Queued("m", "1024*1024", 4, 2)]  # two of its own kind
    # Ahead: 10 + 10 queued, 6 + 2 left running; shared by 2 running tasks -> 14, then its own 10.
    assert queued_s(job("created"), ahead, running, times, now) == pytest.approx(14 + 10)
    assert queued_s(job("created"), [], [], times, now) == pytest.approx(10)
    assert queued_s(job("created", model="other"), ahead, running, times, now) is None
    # Kinds ahead are counted by model, size and image count; one never measured counts as its own.
    mixed = [Queued("m", "1024*1024", 8, 1), Queued("m", None, None, 1), Queued("new", "1024*1024", 1, 1)]
    assert queued_s(job("created"), mixed, [], times, now) == pytest.approx(20 + 2.5 + 10 + 10)


def test_single_images_drawn_together_count_one_run_per_batch() -> None:
    """Ten single images queued ahead, drawn 4 at a time: 3 runs of a batch's measured time; a batch
    of 3 running on one worker counts its time left once, not three times."""
    now = utcnow()
    times = {"m": TaskTimes({("1024*1024", 1): 0.8})}
    single = job("created", images_total=1)
    ahead = [Queued("m", "1024*1024", 1, 10, batchable=True)]
    assert queued_s(single, ahead, [], times, now, per_batch=4) == pytest.approx(3 * 0.8 + 0.8)
    assert queued_s(single, ahead, [], times, now, per_batch=1) == pytest.approx(10 * 0.8 + 0.8)
    edits = [Queued("m", "1024*1024", 1, 10, batchable=False)]  # references: each runs alone
    assert queued_s(single, edits, [], times, now, per_batch=4) == pytest.approx(10 * 0.8 + 0.8)
    batch = [job(images_total=1, started_at=now - timedelta(seconds=0.3), worker_id="w") for _ in range(3)]
    assert queued_s(single, [], batch, times, now, per_batch=4) == pytest.approx(0.5 + 0.8)
    beside = job(images_total=4, started_at=now - timedelta(seconds=1), worker_id="w2")  # 2 s left there
    times["m"] = TaskTimes({("1024*1024", 1): 0.8, ("1024*1024", 4): 3.0})
    # Two workers: the batch's 0.5 s left and the other's 2 s, shared by 2 (not by 4 running tasks).
    assert queued_s(single, [], [*batch, beside], times, now, per_batch=4) == pytest.approx((0.5 + 2.0) / 2 + 0.8)


def test_progress_fields_say_the_step_of_the_current_batch() -> None:
    running = job(outputs=["a", "b", "c", "d"], steps_done=6, steps_total=8, batch_steps=4)
    assert progress(running, None, 3.04) == {"images_done": 4, "images_total": 4, "step": 2, "steps": 4,
                                             "eta_s": 3.0}  # fmt: skip
    at_batch_end = job(outputs=[], steps_done=4, steps_total=8, batch_steps=4)
    assert progress(at_batch_end, None)["step"] == 4
    assert progress(job("created"), 2, 7.0) == {"queue_position": 2, "eta_s": 7.0}
    assert progress(job("completed"), None, 1.0) == {}


def test_a_worker_records_its_steps_as_they_change_and_the_task_time_at_the_end(services: Services) -> None:
    engine = services.engines.get()
    worker = Worker(services.jobs, services.blobs, services.engines, services.detector, services.settings)
    seen: list[tuple[int | None, int | None, int | None, int]] = []
    previews: set[str] = set()
    first = services.jobs.create(model="m", request=GROUP, seed=3, api_key_id=None)
    assert services.jobs.get(first.id).images_total == 6  # counted when queued: "a series of 6"
    assert services.jobs.estimate(first) is None  # nothing measured yet
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            now = services.jobs.get(first.id)
            if now.status == JobStatus.PROCESSING.value:
                seen.append((now.steps_done, now.steps_total, now.batch_steps, len(now.outputs)))
                previews.update([now.preview] if now.preview else [])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    claimed = services.jobs.claim(worker.worker_id)
    assert claimed is not None
    worker.process(claimed, engine)
    worker.bookkeeping.submit(lambda: None).result()  # its task time is recorded beside the work: wait for it
    stop.set()
    watcher.join()
    done = services.jobs.get(first.id)
    assert done.status == "completed" and len(done.outputs) == 6
    recorded = sorted({row[0] for row in seen if row[0]})
    per_batch = services.settings.num_inference_steps
    assert len(recorded) >= 2 and recorded == sorted(recorded), seen  # it moved while the task ran
    assert {row[1:3] for row in seen if row[0]} == {(done.steps_total, per_batch)}
    assert done.steps_total % per_batch == 0 and done.steps_total >= 2 * per_batch  # 6 images: 2+ batches
    # A 64 px render: previews of the image being drawn came with the steps, and went with the end.
    assert len(previews) >= 2 and all(decode_data_uri(uri).size == (64, 64) for uri in previews)
    assert done.preview is None

    with services.db.session() as session:
        measured = session.get(TaskTime, ("m", "1024*1024", 6))
        assert measured is not None and measured.samples == 1
        assert measured.seconds == pytest.approx((done.finished_at - done.started_at).total_seconds())
    second = services.jobs.create(model="m", request=GROUP, seed=4, api_key_id=None)
    position, eta = services.jobs.standing(second)
    assert position == 0 and eta == pytest.approx(measured.seconds)  # nothing ahead: its own measured time
