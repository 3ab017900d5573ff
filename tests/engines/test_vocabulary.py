"""A prompt outside the built-in model's vocabulary still runs, and its result names the unknown words."""

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

    settings = Settings(data_dir=tmp_path, inline_workers=0)  # the built-in model: it declares a vocabulary
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {client.app.state.services.keys.create('t').secret}"  # type: ignore[attr-defined]
        outside = client.post("/api/v3/bytedance/seedream-v4", json={"prompt": "a photo of a cat"}).json()["data"]
        inside = client.post("/api/v3/bytedance/seedream-v4", json={"prompt": "a small red circle"}).json()["data"]
        read = client.get(f"/api/v3/predictions/{outside['id']}/result").json()["data"]
    assert '"photo", "cat"' in outside["warnings"][0] and read["warnings"] == outside["warnings"]
    assert "warnings" not in inside  # an extension field, only when there is something to say


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
