"""Every prompt the README, the docs and the playground show a user draws what it says on the
built-in model.

The prompts are read out of the README's and docs' code blocks (curl, SDK, Ark, OpenAI, webhooks)
and the model's `examples.json` (the playground's examples), so a prompt added there without an
expectation here fails; each one is run through the WaveSpeed
route on a fresh built-in server with the reference it is shown with, and the pictures are read
back: the exact scene for single images, consistency and progression for groups.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from seqdream.builtin import MODEL_DIR
from seqdream.jobs.planner import requested_count
from seqdream_devkit.images import decode
from seqdream_devkit.parser import parse
from seqdream_devkit.world import Scene, Thing
from support.servers import LocalServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "quality"))
from run import score_group  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SCENE_1 = Scene(
    "white", (Thing("circle", "red", "large", "left", "middle"), Thing("square", "blue", "small", "right", "top"))
)
SCENE_2 = Scene("green", (Thing("triangle", "yellow", "large", "center", "middle"),))
RED, BLUE = (next(thing for thing in SCENE_1.things if thing.colour == colour) for colour in ("red", "blue"))
# prompt -> (references, what it should draw: a scene, or a group's motion)
EXPECTED: dict[str, tuple[list[str], Scene | str]] = {
    "a series of 4 images of a small red circle moving from left to right on a blue background": ([], "moving"),
    "a series of 14 images of a small red circle moving from left to right on a blue background": ([], "moving"),
    "a series of 3 images of a green square in the center growing on a white background": ([], "growing"),
    "a series of 3 images of a green square growing": ([], "growing"),
    "a series of 4 images of a large triangle in the center changing colour from red to green on a black background": (
        [], "recolouring"
    ),
    "six images of a green square growing": ([], "growing"),
    "a large red square in the center on a white background": (
        [], Scene("white", (Thing("square", "red", "large", "center", "middle"),))
    ),
    "a large green square in the center on a white background": (
        [], Scene("white", (Thing("square", "green", "large", "center", "middle"),))
    ),
    "a large red circle in the center on a blue background": (
        [], Scene("blue", (Thing("circle", "red", "large", "center", "middle"),))
    ),
    "a small red circle in the center on a blue background": (
        [], Scene("blue", (Thing("circle", "red", "small", "center", "middle"),))
    ),
    "replace the red circle with a large orange triangle": (
        ["scene-1.png"], SCENE_1.with_things([replace(RED, kind="triangle", colour="orange"), BLUE])
    ),
    "move the blue square to the bottom left": (
        ["scene-1.png"], SCENE_1.with_things([RED, replace(BLUE, column="left", row="bottom")])
    ),
    "An image of a white background with a small yellow triangle at the top left and a large purple cross at the "
    "bottom right.": (
        [], Scene("white", (Thing("triangle", "yellow", "small", "left", "top"),
                            Thing("cross", "purple", "large", "right", "bottom")))
    ),
    "draw a small green cross at the bottom": (
        ["scene-1.png"], SCENE_1.with_things([*SCENE_1.things, Thing("cross", "green", "small", "center", "bottom")])
    ),
    "change the background to yellow": (["scene-1.png"], replace(SCENE_1, background="yellow")),
    "make the background black": (["scene-1.png"], replace(SCENE_1, background="black")),
    "put the objects from image 1 on the background of image 2": (
        ["scene-1.png", "scene-2.png"], replace(SCENE_1, background="green")
    ),
}  # fmt: skip
TABLE_ROWS = ("| scenes |", "| composition (2 references) |", "| groups (2–14 images) |")
_PROMPT = re.compile(r"""["']?prompt["']?\s*[:=]\s*"([^"]+)\"""")


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of a Markdown text."""
    blocks, current = [], None
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def playground_examples() -> list[dict]:
    return json.loads((MODEL_DIR / "examples.json").read_text())["examples"]


def documented_prompts() -> list[str]:
    found: list[str] = []
    for path in DOCUMENTS:
        for block in code_blocks(path.read_text()):
            found += [prompt for prompt in _PROMPT.findall(block) if prompt not in found]
    found += [prompt for prompt in vocabulary_table_prompts() if prompt not in found]
    return found + [example["prompt"] for example in playground_examples() if example["prompt"] not in found]


def vocabulary_table_prompts() -> list[str]:
    """The whole prompts the README's vocabulary table shows (scenes, composition, groups); the
    edits row shows verbs side by side, which test_builtin_model.py draws in every wording."""
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(TABLE_ROWS)]
    assert len(rows) == len(TABLE_ROWS)
    quoted = [text for row in rows for text in re.findall(r"`([^`]+)`", row)]
    return [text for text in quoted if len(text.split()) >= 6 and "/" not in text and " N " not in text]  # not parts


def test_every_documented_prompt_has_an_expectation() -> None:
    prompts = documented_prompts()
    assert len(prompts) >= 5
    assert [prompt for prompt in prompts if prompt not in EXPECTED] == []
    # The playground shows each example with its own references: the ones expected here.
    for example in playground_examples():
        assert example.get("images", []) == EXPECTED[example["prompt"]][0], example
        assert example.get("max_images", 1) == (requested_count(example["prompt"]) or 1), example


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server = LocalServer(tmp_path_factory.mktemp("readme"), None).start()  # the built-in model
    try:
        with server.client() as client:
            yield client
    finally:
        server.stop()


@pytest.mark.parametrize("prompt", documented_prompts())
@pytest.mark.slow
def test_a_documented_prompt_draws_what_it_says(api: httpx.Client, prompt: str) -> None:
    references, expected = EXPECTED[prompt]
    images = [f"{api.base_url}/api/v3/examples/files/{name}" for name in references]
    count = requested_count(prompt) or 1
    route = "edit" if images else ("sequential" if count > 1 else "")
    body = {"prompt": prompt, "images": images, "max_images": count, "size": "1024*1024", "seed": 42}
    response = api.post(f"/api/v3/bytedance/seedream-v4/{route}".rstrip("/"), json={**body, "enable_sync_mode": True})
    data = response.json()["data"]
    assert response.status_code == 200 and data["status"] == "completed", response.text
    pictures = [decode(api.get(url).content) for url in data["outputs"]]
    assert len(pictures) == count
    if isinstance(expected, Scene):
        assert parse(pictures[0]) == expected
    else:
        assert score_group(expected, pictures) == (1.0, 1.0)
