"""The shipped built-in model, served with no model configured, read back by the scene parser.

Prompts and edits come from a random stream the training script never draws from, so they are
held out; images go through the whole service (1024x1024 JPEG delivery) and are decoded here.
"""

from __future__ import annotations

import base64
import io
import random
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from seqdream.builtin import MODEL_DIR
from seqdream_devkit import tasks
from seqdream_devkit.images import decode
from seqdream_devkit.parser import find, parse
from seqdream_devkit.world import BACKGROUNDS, Scene
from support.servers import LocalServer

T2I = "/api/v3/bytedance/seedream-v4"
EDIT = "/api/v3/bytedance/seedream-v4/edit"
SEQUENTIAL = "/api/v3/bytedance/seedream-v4/sequential"
HELD_OUT_SEED = 2_000_003


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server = LocalServer(tmp_path_factory.mktemp("builtin"), None).start()  # SEQDREAM_MODEL unset
    try:
        with server.client() as client:
            yield client
    finally:
        server.stop()


def png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.resize((1024, 1024), Image.Resampling.LANCZOS).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def generate(api: httpx.Client, path: str, **body: object) -> list[Image.Image]:
    response = api.post(path, json={"enable_sync_mode": True, "size": "1024*1024", "seed": 7, **body})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "completed", data["error"]
    images = [decode(api.get(url).content) for url in data["outputs"]]
    assert all(image.size == (1024, 1024) for image in images)
    return images


def test_the_default_model_is_the_shipped_built_in_one(api: httpx.Client) -> None:
    assert (MODEL_DIR / "model_index.json").is_file() and (MODEL_DIR / "seqdream.json").is_file()
    assert api.get("/health").json()["engine"] == "ready"
    size = sum(path.stat().st_size for path in MODEL_DIR.rglob("*") if path.is_file())
    assert size <= 40 * 1024 * 1024


def test_held_out_prompts_get_their_background_colours_and_count(api: httpx.Client) -> None:
    """What the current checkpoint does reliably (bench/quality has the full picture)."""
    rng = random.Random(HELD_OUT_SEED)
    examples = [tasks.text_to_image(rng) for _ in range(8)]
    seen: list[Scene] = [parse(generate(api, T2I, prompt=example.prompt)[0]) for example in examples]
    pairs = list(zip(seen, examples, strict=True))
    assert all(scene.background == example.scene.background for scene, example in pairs), pairs
    colours = sum(
        sorted(t.colour for t in scene.things) == sorted(t.colour for t in example.scene.things)
        for scene, example in pairs
    )
    assert colours >= 6, pairs


def test_edit_instructions_for_background_and_removal_are_followed(api: httpx.Client) -> None:
    rng = random.Random(HELD_OUT_SEED + 1)
    for kind in ("background", "remove", "background", "remove"):
        example = tasks.edit(rng, kind)
        source = parse(example.references[0])
        seen = parse(generate(api, EDIT, prompt=example.prompt, images=[png_base64(example.references[0])])[0])
        assert seen.background == example.scene.background, (example.prompt, seen)
        if kind == "remove":
            (gone,) = set(source.things) - set(example.scene.things)
            assert gone.cell not in {thing.cell for thing in seen.things}, (example.prompt, seen)


def test_a_sequential_group_keeps_its_background(api: httpx.Client) -> None:
    prompt = "a series of 4 images of a small red circle moving from left to right on a blue background"
    frames = generate(api, SEQUENTIAL, prompt=prompt, max_images=14)
    assert len(frames) == 4
    found = [find(frame) for frame in frames]
    assert all(background == "blue" and objects for background, objects in found), found


def test_examples_speak_the_built_in_world_and_all_run(api: httpx.Client) -> None:
    response = api.get("/api/v3/examples")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["model"] == "builtin" and "circles, squares, triangles" in data["about"]
    examples = data["examples"]
    routes = {example["model"] for example in examples}
    assert routes == {
        "bytedance/seedream-v4",
        "bytedance/seedream-v4/edit",
        "bytedance/seedream-v4/sequential",
        "bytedance/seedream-v4/edit-sequential",
    }
    for example in examples:
        for url in example["images"]:
            assert parse(decode(api.get(url).content)).things  # a scene of the world
        body = {key: example[key] for key in ("prompt", "size", "images", "max_images") if key in example}
        path = "/api/v3/" + example["model"]
        response = api.post(path, json={"enable_sync_mode": True, "seed": 1, **body})
        data = response.json()["data"]
        assert response.status_code == 200 and data["status"] == "completed", (example, response.text)
        assert len(data["outputs"]) == example.get("max_images", 1)
    assert api.get("/api/v3/examples/files/..%2Fseqdream.json").status_code == 404
    assert api.get("/api/v3/examples/files/not-listed.png").status_code == 404


def test_a_prompt_outside_the_vocabulary_still_gives_a_clean_scene(api: httpx.Client) -> None:
    """Words the model never saw still give shapes on a plain background, never noise."""
    for prompt in ("a photo of a cat on a sofa", "東京の夜景", "a futuristic city at night, 8k, trending"):
        background, objects = find(generate(api, T2I, prompt=prompt)[0])
        assert background in BACKGROUNDS and 1 <= len(objects) <= 3, (prompt, background, objects)
