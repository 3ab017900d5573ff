"""The extension fields of a task's answer that the SDKs ignore: `warnings` (words outside the model's
vocabulary, more images asked for than max_images allows) and where the task stands (its place in the
queue, the images stored so far)."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient

from seqdream.engines.vocabulary import declared_vocabulary, unknown_words, vocabulary_warning
from seqdream_devkit import tasks


def test_the_built_in_model_declares_the_words_of_what_it_was_trained_on() -> None:
    """Its seqdream.json names exactly the words of the tasks its last training run drew (training.json)."""
    import json

    from seqdream.builtin import MODEL_DIR

    mix = json.loads((MODEL_DIR / "training.json").read_text())["runs"][-1]["task_mix"]
    trained = tuple(task for task in tasks.VOCABULARY_TASKS if task in mix)
    vocabulary = declared_vocabulary("builtin")
    assert vocabulary is not None and vocabulary == set(tasks.vocabulary(trained=trained))
    rng = random.Random(7)
    draws = {"t2i": tasks.text_to_image, "edit": tasks.edit, "compose_many": tasks.compose_many,
             "marked": tasks.marked_edit}  # fmt: skip
    for _ in range(100):  # any wording of any task it was trained on, trained or held out, is inside it
        for task, draw in draws.items():
            if task in trained:
                prompt = draw(rng, held=None).prompt  # type: ignore[operator]
                assert unknown_words(prompt, vocabulary) == [], prompt
    assert declared_vocabulary("/no/such/folder") is None


@pytest.mark.parametrize(
    ("prompt", "unknown"),
    [
        ("a photo of a cat, 4K", ["photo", "cat", "4k"]),
        ("A Cinematic DRAGON over the city.", ["cinematic", "dragon", "over", "city"]),
        ("a series of 4 images of a small red circle moving from left to right", []),
        ("make the circle blue", []),
        ("un chat rouge", ["un", "chat", "rouge"]),
    ],
)
def test_unknown_words_are_named_once_each_in_order(prompt: str, unknown: list[str]) -> None:
    vocabulary = declared_vocabulary("builtin")
    assert unknown_words(prompt, vocabulary) == unknown
    warning = vocabulary_warning(prompt + " " + prompt, vocabulary)
    assert (warning == []) == (unknown == [])
    if unknown:
        assert warning[0].count(f'"{unknown[0]}"') == 1


def test_the_result_of_a_prompt_outside_the_vocabulary_carries_a_warning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from seqdream.api.app import create_app
    from seqdream.config import Settings
    from seqdream.jobs.presence import NO_WORKER

    settings = Settings(data_dir=tmp_path, inline_workers=0)  # the built-in model: it declares a vocabulary
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {client.app.state.seqdream.services.keys.create('t').secret}"  # type: ignore[attr-defined]
        outside = client.post("/api/v3/bytedance/seedream-v4", json={"prompt": "a photo of a cat"}).json()["data"]
        inside = client.post("/api/v3/bytedance/seedream-v4", json={"prompt": "a small red circle"}).json()["data"]
        read = client.get(f"/api/v3/predictions/{outside['id']}/result").json()["data"]
    assert '"photo", "cat"' in outside["warnings"][0] and read["warnings"] == outside["warnings"]
    assert inside["warnings"] == [NO_WORKER]  # nothing of its words; only that no worker runs in this test


@pytest.mark.parametrize(
    ("route", "body", "warned"),
    [
        ("/api/v3/bytedance/seedream-v4/sequential", {"prompt": "a series of 4 images of a red circle"}, True),
        ("/api/v3/bytedance/seedream-v4/sequential", {"prompt": "4 images of a red circle", "max_images": 4}, False),
        ("/api/v3/bytedance/seedream-v4", {"prompt": "a series of 20 images of a red circle"}, True),
        ("/api/v3/bytedance/seedream-v4/sequential", {"prompt": "a red circle", "max_images": 3}, False),
    ],
)
def test_a_prompt_asking_for_more_images_than_max_images_is_told(app_client, route, body, warned) -> None:  # type: ignore[no-untyped-def]
    data = app_client.post(route, json=body).json()["data"]
    said = [w for w in data.get("warnings", []) if "max_images" in w]
    assert bool(said) == warned, data
    if warned:
        asked = 4 if "4" in body["prompt"] else 20
        assert f"asks for {asked} images" in said[0] and f"max_images {min(asked, 14)}" in said[0]


def test_a_queued_task_says_its_place_in_the_queue(app_client) -> None:  # type: ignore[no-untyped-def]
    """No worker runs in this app: tasks stay queued, each one place further back (fair queue order)."""
    route = "/api/v3/bytedance/seedream-v4/sequential"
    first = app_client.post(route, json={"prompt": "a red circle"}).json()["data"]
    assert "queue_position" not in first  # the answer to a submit stays cheap: the result says where it stands
    before = app_client.get(f"/api/v3/predictions/{first['id']}/result").json()["data"]["queue_position"]
    ids = [app_client.post(route, json={"prompt": f"a red circle {n}"}).json()["data"]["id"] for n in range(3)]
    positions = [app_client.get(f"/api/v3/predictions/{i}/result").json()["data"]["queue_position"] for i in ids]
    assert positions == [before + 1, before + 2, before + 3]
    listed = app_client.get("/api/v3/predictions").json()["data"]["items"]
    assert all("queue_position" not in item for item in listed)  # listings stay cheap


def test_a_task_waiting_on_a_model_that_cannot_be_loaded_says_so(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """While the model cannot be loaded a queued task says it waits (without the server's path); once the
    model is there it is loaded on the next try, the task runs and the warning goes."""
    import shutil
    import time

    from seqdream.api.app import create_app
    from seqdream.config import Settings
    from seqdream.jobs.presence import ENGINE_UNAVAILABLE

    model = tmp_path / "model"  # not there yet
    route, body = "/api/v3/bytedance/seedream-v4", {"prompt": "a red circle", "size": "1024*1024"}
    settings = Settings(  # small renders, as the test servers make
        data_dir=tmp_path / "data",
        model=str(model),
        inline_workers=1,
        engine_retry_s=0.2,
        native_resolution=64,
        max_sequence_length=64,
        threads_follow_load=False,
    )
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {client.app.state.seqdream.services.keys.create('t').secret}"  # type: ignore[attr-defined]
        task = client.post(route, json=body).json()["data"]
        result = f"/api/v3/predictions/{task['id']}/result"
        deadline = time.monotonic() + 30
        while ENGINE_UNAVAILABLE not in (data := client.get(result).json()["data"]).get("warnings", []):
            assert time.monotonic() < deadline, f"a task waiting on a model that cannot load never said so: {data}"
            time.sleep(0.05)
        assert data["status"] == "created" and data["queue_position"] == 0 and str(model) not in str(data)
        assert ENGINE_UNAVAILABLE in client.post(route, json=body).json()["data"]["warnings"]  # a submit says it too

        shutil.copytree(tiny_model, model)  # the model arrives: loaded on the next try
        deadline = time.monotonic() + 60
        while (data := client.get(result).json()["data"])["status"] != "completed":
            assert data["status"] in ("created", "processing") and time.monotonic() < deadline, data
            time.sleep(0.05)
        assert "warnings" not in data


def test_an_api_only_server_says_why_no_worker_starts_a_task(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A server that runs no workers reads, from the database, the processes that do: with none, a queued
    task says no worker runs; with one whose model cannot be loaded, it says so; once that worker loads
    the model the task completes; when the worker stops, the next task says no worker runs again."""
    import shutil
    import time

    from seqdream.api.app import create_app
    from seqdream.config import Settings
    from seqdream.jobs.presence import ENGINE_UNAVAILABLE, NO_WORKER
    from seqdream.services import Services

    model = tmp_path / "model"  # not there yet
    route, body = "/api/v3/bytedance/seedream-v4", {"prompt": "a red circle", "size": "1024*1024"}
    shared = {"data_dir": tmp_path / "data", "model": str(model), "worker_beat_s": 2.0}  # gone after 8 s

    def said(client: TestClient, task: str, warning: str | None, within_s: float = 30) -> dict:  # type: ignore[type-arg]
        deadline = time.monotonic() + within_s
        while (data := client.get(f"/api/v3/predictions/{task}/result").json()["data"]).get("warnings") != (
            [warning] if warning else None
        ):
            assert time.monotonic() < deadline, f"never said {warning!r}: {data}"
            time.sleep(0.05)
        return data  # type: ignore[no-any-return]

    with TestClient(create_app(Settings(**shared, inline_workers=0))) as client:
        client.headers["Authorization"] = f"Bearer {client.app.state.seqdream.services.keys.create('t').secret}"  # type: ignore[attr-defined]
        first = client.post(route, json=body).json()["data"]
        assert first["warnings"] == [NO_WORKER] and first["status"] == "created"  # the submit says it at once

        worker_side = Services.from_settings(  # another process's workers, as `seqdream worker` runs them
            Settings(
                **shared, engine_retry_s=0.2, native_resolution=64, max_sequence_length=64, threads_follow_load=False
            )  # fmt: skip
        )
        pool = worker_side.start_workers(1)
        try:
            data = said(client, first["id"], ENGINE_UNAVAILABLE)
            assert data["status"] == "created" and str(model) not in str(data)
            assert client.get("/health").json()["workers_seen"] == {"ready": 0, "loading": 0, "unavailable": 1}

            shutil.copytree(tiny_model, model)  # the model arrives: that worker loads it and runs the task
            deadline = time.monotonic() + 60
            while (data := client.get(f"/api/v3/predictions/{first['id']}/result").json()["data"])["status"] != (
                "completed"
            ):
                assert time.monotonic() < deadline, data
                time.sleep(0.05)
            assert "warnings" not in data and len(data["outputs"]) == 1
            deadline = time.monotonic() + 30
            while client.get("/health").json()["workers_seen"] != {"ready": 1, "loading": 0, "unavailable": 0}:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            pool.shutdown(5)  # a stop withdraws the process at once, not after its beats go stale
            worker_side.close()
        second = client.post(route, json=body).json()["data"]
        said(client, second["id"], NO_WORKER, within_s=4)  # withdrawn at once: no wait for 4 beats
        assert client.get("/health").json()["workers_seen"] == {"ready": 0, "loading": 0, "unavailable": 0}


def test_a_running_group_says_how_many_images_are_stored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from seqdream.db import Database, migrate
    from seqdream.jobs.presence import ENGINE_UNAVAILABLE
    from seqdream.jobs.presentation import present
    from seqdream.jobs.request import JobRequest
    from seqdream.jobs.store import JobStore
    from seqdream.storage import LocalBlobStore

    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate.upgrade(db)
    store, blobs = JobStore(db), LocalBlobStore(tmp_path / "blobs")
    request = JobRequest(prompt="a series of 4 images of a red circle moving", size="1024*1024", max_images=14)
    job = store.create(model="m", request=request, seed=1, api_key_id=None)
    assert present(job, "http://x", blobs, queue_position=0)["queue_position"] == 0
    assert present(job, "http://x", blobs, waiting=ENGINE_UNAVAILABLE)["warnings"] == [ENGINE_UNAVAILABLE]
    claimed = store.claim("w")
    assert claimed is not None
    # Running (another process's worker took it): it waits on no model, whatever this process can load.
    assert "warnings" not in present(store.get(job.id), "http://x", blobs, waiting=ENGINE_UNAVAILABLE)
    assert store.add_outputs(
        job.id, "w", outputs=["outputs/a/0.jpeg", "outputs/a/1.jpeg"], has_nsfw_contents=[False] * 2
    )
    data = present(store.get(job.id), "http://x", blobs)
    assert (data["images_done"], data["images_total"]) == (2, 4) and "queue_position" not in data
    assert store.complete(job.id, "w", outputs=["o"] * 4, has_nsfw_contents=[False] * 4, inference_ms=1)
    assert "images_done" not in present(store.get(job.id), "http://x", blobs)  # ended: nothing to follow


def test_seqdream_watch_follows_a_task_to_its_end(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """In process (typer's runner): a queued task shows its place and why it waits; once it ends, how it ended."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from typer.testing import CliRunner

    from seqdream.cli.main import app as cli
    from seqdream.db import Database, migrate
    from seqdream.jobs.presence import NO_WORKER
    from seqdream.jobs.request import JobRequest
    from seqdream.jobs.store import JobStore

    monkeypatch.setenv("SEQDREAM_DATA_DIR", str(tmp_path))
    db = Database(f"sqlite:///{(tmp_path / 'seqdream.db').resolve()}")
    migrate.upgrade(db)
    store = JobStore(db)
    request = JobRequest(prompt="a series of 2 images of a kite", size="1024*1024", max_images=2)
    first, second = (store.create(model="m", request=request, seed=n, api_key_id=None) for n in (1, 2))
    assert store.claim("w") is not None and store.add_outputs(first.id, "w", outputs=["a"], has_nsfw_contents=[False])
    assert store.complete(first.id, "w", outputs=["a", "b"], has_nsfw_contents=[False] * 2, inference_ms=1)
    done = CliRunner().invoke(cli, ["watch", first.id])
    assert done.exit_code == 0 and done.output.splitlines() == ["completed", "  a", "  b"], done.output
    with ThreadPoolExecutor(1) as pool:  # queued, and no process runs workers: it says so, then ends deleted
        watching = pool.submit(CliRunner().invoke, cli, ["watch", second.id, "--interval", "0.05"])
        time.sleep(1.0)
        store.delete(second.id)
        queued = watching.result(timeout=30)
    assert queued.exit_code == 1 and queued.output.splitlines()[0] == f"queued, 0 ahead: {NO_WORKER}", queued.output
    assert CliRunner().invoke(cli, ["watch", "no-such-task"]).exit_code == 2
    unknown = CliRunner().invoke(cli, ["watch", "x" * 5000])  # quoted cut short, as the API's 404 quotes it
    assert unknown.exit_code == 2 and f"no task '{'x' * 64}…'" in unknown.output and len(unknown.output) < 200
