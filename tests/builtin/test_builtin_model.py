"""The shipped built-in model, served with no model configured, read back by the scene parser.

Prompts and edits come from a random stream the training script never draws from, so they are
held out, each in a random wording of the grammar (`wording.GRAMMAR`, trained forms and held-out
ones alike), and groups run 4, 9 and 14 frames; images go through the whole service (1024x1024
JPEG delivery) and are decoded here.
"""

from __future__ import annotations

import base64
import io
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from seqdream.builtin import MODEL_DIR
from seqdream.config import Settings
from seqdream.engines.base import GenerationPlan
from seqdream.engines.flux2_klein import Flux2KleinEngine
from seqdream.engines.registry import load_engine
from seqdream_devkit import tasks, wording
from seqdream_devkit.images import decode
from seqdream_devkit.parser import Found, find, parse
from seqdream_devkit.world import BACKGROUNDS, COLOURS, Scene, Thing
from support.engines import count_block_calls
from support.servers import LocalServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "quality"))
from run import score_group  # noqa: E402

pytestmark = pytest.mark.slow  # starts servers or processes

T2I = "/api/v3/bytedance/seedream-v4"
EDIT = "/api/v3/bytedance/seedream-v4/edit"
SEQUENTIAL = "/api/v3/bytedance/seedream-v4/sequential"
HELD_OUT_SEED = 2_000_003
# Misses of the shipped checkpoint's own run of each test (8 text-to-image prompts; 4 edits of each
# kind; 4 compositions; groups of 4, 9 and 14 frames of each motion). Each test allows one more, for
# another CPU's rounding, never all of them.
SHIPPED_MISSES = {
    "t2i": 0,
    "add": 0,
    "remove": 0,
    "recolour": 1,
    "resize": 0,
    "move": 1,
    "replace": 2,
    "background": 0,
    "compose": 0,
    "group moving": 0,
    "group growing": 1,
    "group recolouring": 0,
}
EXACT_MISSES = {test: misses + 1 for test, misses in SHIPPED_MISSES.items()}
# What the shipped checkpoint was trained on (its training.json): round 3's forms are drawn only once it has
# learnt them, so these tests draw the streams its miss counts were measured on.
TRAINED = tuple(json.loads((MODEL_DIR / "training.json").read_text())["runs"][-1]["task_mix"])
POSITIONS_FIRST = None if set(wording.ROUND3_TASKS) & set(TRAINED) else False


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


def test_the_shipped_model_skips_predictable_steps_by_default() -> None:
    """Its seqdream.json turns MagCache on (0.57x the time per image, same held-out scores)."""
    engine = load_engine(Settings(cache="auto"))  # the default, whatever SEQDREAM_CACHE says here
    assert isinstance(engine, Flux2KleinEngine) and engine.cached
    calls = count_block_calls(engine)
    wanted = Scene("blue", (Thing("circle", "red", "large", "center", "middle"),))
    plan = GenerationPlan(prompts=[wanted.caption()], seeds=[1], width=64, height=64)
    assert parse(engine.generate(plan).images[0]) == wanted
    assert 2 * 4 <= calls[0] < 2 * engine.sampling.num_inference_steps, calls[0]  # steps 1-4 always run
    calls[0] = 0
    assert parse(engine.generate(plan).images[0]) == wanted  # the cache starts afresh on every call
    assert 2 * 4 <= calls[0] < 2 * engine.sampling.num_inference_steps, calls[0]


def test_held_out_text_to_image_prompts_come_out_exactly(api: httpx.Client) -> None:
    """Every object's kind, colour, size and cell and the background, as the prompt says."""
    rng = random.Random(HELD_OUT_SEED)
    examples = [tasks.text_to_image(rng, held=None, position_first=POSITIONS_FIRST) for _ in range(8)]
    seen = [parse(generate(api, T2I, prompt=example.prompt)[0]) for example in examples]
    misses = [(example.prompt, scene) for example, scene in zip(examples, seen, strict=True) if scene != example.scene]
    assert len(misses) <= EXACT_MISSES["t2i"], misses


def test_capitals_anywhere_draw_what_lower_case_draws() -> None:
    """The tokenizer reads capitals as lower case: a shouted prompt or instruction is the same
    prompt, so it draws the same picture, pixel for pixel, with the same seed."""
    engine = load_engine(Settings())
    wanted = Scene("black", (Thing("triangle", "green", "small", "left", "middle"),))
    prompts = [wanted.caption(), "A Small GREEN Triangle On The Left On A Black Background"]
    plans = [GenerationPlan(prompts=[prompt], seeds=[3], width=64, height=64) for prompt in prompts]
    lower, shouted = (np.asarray(engine.generate(plan).images[0]) for plan in plans)
    assert parse(Image.fromarray(lower)) == wanted and np.array_equal(lower, shouted)
    reference = Image.fromarray(lower)
    edits = [
        GenerationPlan(prompts=[text], seeds=[3], width=64, height=64, references=[reference])
        for text in ("make the triangle red", "Make The Triangle RED")
    ]
    edited, shouted_edit = (np.asarray(engine.generate(plan).images[0]) for plan in edits)
    # The edit is made (its exactness is the held-out edit tests' to count); capitals change nothing.
    (triangle,) = parse(Image.fromarray(edited)).things
    assert (triangle.kind, triangle.colour, triangle.column) == ("triangle", "red", "left")
    assert np.array_equal(edited, shouted_edit)


@pytest.mark.parametrize("kind", tasks.EDITS)
def test_held_out_edits_of_every_kind_come_out_exactly(api: httpx.Client, kind: str) -> None:
    """The instructed change is made and nothing else moves: the parsed scene is the target."""
    rng = random.Random(HELD_OUT_SEED + 1 + tasks.EDITS.index(kind))
    misses = []
    for _ in range(4):
        example = tasks.edit(rng, kind, held=None)
        seen = parse(generate(api, EDIT, prompt=example.prompt, images=[png_base64(example.references[0])])[0])
        if seen != example.scene:
            misses.append((example.prompt, parse(example.references[0]), seen))
    assert len(misses) <= EXACT_MISSES[kind], misses


def test_held_out_compositions_come_out_exactly(api: httpx.Client) -> None:
    """Image 1's objects, unchanged, on image 2's background."""
    rng = random.Random(HELD_OUT_SEED + 10)
    misses = []
    for _ in range(4):
        example = tasks.compose(rng, held=None)
        images = [png_base64(image) for image in example.references]
        seen = parse(generate(api, EDIT, prompt=example.prompt, images=images)[0])
        if seen != example.scene:
            misses.append((example.scene, seen))
    assert len(misses) <= EXACT_MISSES["compose"], misses


def shapes_on_background(found: tuple[str, list[Found]]) -> tuple[str, list[tuple[str, str]]]:
    background, objects = found
    return background, [(item.thing.kind, item.thing.colour) for item in objects]


@pytest.mark.parametrize("motion", ["moving", "growing", "recolouring"])
def test_held_out_groups_keep_one_shape_and_progress(api: httpx.Client, motion: str) -> None:
    """Every frame: the target frame's background and one shape of its kind and colour; the shape
    moves right or grows frame by frame (the positions in between are not grid cells)."""
    rng = random.Random(HELD_OUT_SEED + 20 + len(motion))
    misses = []
    for count in (4, 9, 14):
        frames = tasks.sequence(rng, motion, count=count, held=None)
        prompt = frames[0].group_prompt
        expected = [shapes_on_background(find(frame.target)) for frame in frames]
        images = generate(api, SEQUENTIAL, prompt=prompt, max_images=14)
        seen = [shapes_on_background(find(image)) for image in images]
        _, progression = score_group(motion, images)  # the quality bench's own progression rule
        if seen != expected or progression != 1.0:
            misses.append((prompt, seen))
    assert len(misses) <= EXACT_MISSES[f"group {motion}"], misses


def test_a_sequential_group_keeps_its_background_and_moves(api: httpx.Client) -> None:
    prompt = "a series of 4 images of a small red circle moving from left to right on a blue background"
    frames = generate(api, SEQUENTIAL, prompt=prompt, max_images=14)
    assert len(frames) == 4
    found = [find(frame) for frame in frames]
    assert all(background == "blue" and objects for background, objects in found), found
    assert all(item.thing.colour == "red" for _, objects in found for item in objects), found
    # The README's own example progresses: the red shape's centre moves right frame by frame.
    centres = [sum(item.centre[0] for item in objects) / len(objects) for _, objects in found]
    assert all(b > a for a, b in zip(centres, centres[1:], strict=False)), centres


def test_examples_speak_the_built_in_world_and_all_run(api: httpx.Client) -> None:
    response = api.get("/api/v3/examples")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["model"] == "builtin" and "circles, squares, triangles" in data["about"]
    assert data["grammar"] == wording.grammar(TRAINED)  # the wordings it was trained on, written once
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
    """Words the model never saw still give a plain background with at most 3 shapes, never noise."""
    palette = np.array(list(COLOURS.values()), dtype=np.float32)
    for prompt in ("a photo of a cat on a sofa", "東京の夜景", "a futuristic city at night, 8k, trending"):
        image = generate(api, T2I, prompt=prompt)[0]
        background, objects = find(image)
        assert background in BACKGROUNDS and len(objects) <= 3, (prompt, background, objects)
        pixels = np.asarray(image.resize((64, 64)), dtype=np.float32).reshape(-1, 1, 3)
        distance = np.abs(pixels - palette[None]).max(axis=2).min(axis=1)
        assert (distance < 48).mean() > 0.9, prompt  # flat palette colours, not noise
    answer = api.post(T2I, json={"prompt": "a photo of a cat on a sofa", "enable_sync_mode": True}).json()["data"]
    assert '"photo", "cat"' in answer["warnings"][0] and '"sofa"' in answer["warnings"][0]  # and it says why
