"""Write the built-in model's example prompts and reference images into its folder.

The service serves them at `GET /api/v3/examples` (the playground lists them); every prompt
uses the world's vocabulary and is one the model was trained to follow.
Usage: python training/make_examples.py [--out src/seqdream/builtin/model]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seqdream.builtin import MODEL_DIR
from seqdream_devkit import tasks, wording
from seqdream_devkit.world import Scene, Thing, render

T2I, EDIT = "bytedance/seedream-v4", "bytedance/seedream-v4/edit"
SEQUENTIAL, EDIT_SEQUENTIAL = "bytedance/seedream-v4/sequential", "bytedance/seedream-v4/edit-sequential"
SCENES = {
    "scene-1.png": Scene("white", (Thing("circle", "red", "large", "left", "middle"),
                                   Thing("square", "blue", "small", "right", "top"))),
    "scene-2.png": Scene("green", (Thing("triangle", "yellow", "large", "center", "middle"),)),
}  # fmt: skip
ABOUT = (
    "The built-in model draws simple shapes on a plain background: circles, squares, triangles and "
    "crosses, small or large, in red, green, blue, yellow, purple, orange, white or black, on a 3x3 grid "
    "(top left ... bottom right), on a white, black, blue, green, yellow or purple background. "
    "It follows edits of reference images (add, remove, recolour, resize, move, replace, background), "
    "puts the objects of one image on the background of another, and draws groups of 2 to 14 images of a "
    "shape moving, growing or changing colour. Prompts may be worded in the ways the grammar lists "
    "(clause order, 'an image of', commas, capitals, common verbs). Set SEQDREAM_MODEL for real-world images."
)


def _recolouring(count: int, start: str, background: str) -> str:
    cycle = tasks.recolour_cycle(background)
    end = cycle[(cycle.index(start) + count - 1) % len(cycle)]
    return (f"a series of {count} images of a large triangle in the center changing colour from {start} to {end} "
            f"on a {background} background")  # fmt: skip


# The shipped checkpoint was trained on the whole grammar (wording.GRAMMAR), so the examples use
# several of its wordings; tests/builtin/test_readme_prompts.py checks what each one draws.
EXAMPLES = [
    {"model": T2I, "prompt": "a large red circle in the center on a blue background"},
    {"model": T2I, "prompt": "An image of a white background with a small yellow triangle at the top left "
     "and a large purple cross at the bottom right."},
    {"model": SEQUENTIAL, "max_images": 14,
     "prompt": "a series of 14 images of a small red circle moving from left to right on a blue background"},
    {"model": SEQUENTIAL, "max_images": 6, "prompt": "six images of a green square growing"},
    {"model": EDIT_SEQUENTIAL, "max_images": 4, "prompt": _recolouring(4, "red", "black")},
    {"model": EDIT, "images": ["scene-1.png"], "prompt": "replace the red circle with a large orange triangle"},
    {"model": EDIT, "images": ["scene-1.png"], "prompt": "move the blue square to the bottom left"},
    {"model": EDIT, "images": ["scene-1.png"], "prompt": "draw a small green cross at the bottom"},
    {"model": EDIT, "images": ["scene-1.png"], "prompt": "make the background black"},
    {"model": EDIT, "images": ["scene-1.png", "scene-2.png"],
     "prompt": "put the objects from image 1 on the background of image 2"},
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    out = parser.parse_args().out
    (out / "examples").mkdir(parents=True, exist_ok=True)
    for name, scene in SCENES.items():
        render(scene, 512).save(out / "examples" / name, optimize=True)
    examples = [{"size": "1024*1024", **example} for example in EXAMPLES]
    mix = json.loads((out / "training.json").read_text())["runs"][-1]["task_mix"]  # what the model was trained on
    payload = {"about": ABOUT, "grammar": wording.grammar(tuple(mix)), "examples": examples}
    (out / "examples.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {len(EXAMPLES)} examples and {len(SCENES)} reference images to {out}")


if __name__ == "__main__":
    main()
