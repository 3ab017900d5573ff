"""Sampling settings against quality and time, on one held-out sample, in one run.

Every setting draws the same examples with the same seeds through the production engine:
captions (exact scene), edits of every kind (success), and groups of every motion (consistency
and progression), and the model time per image. It is how the built-in model's `seqdream.json`
(steps, guidance, guidance_until) was chosen; run it again for a new checkpoint.
Usage: python bench/sampling_sweep.py [--model DIR] [--n 12] [--settings 20:1.0,20:0.5,16:0.5]
  (each setting is steps:guidance_until[:magT]; the guidance scale is the model's; a third field
  magT turns MagCache on at threshold T, e.g. 20:1.0:mag0.1; without it the cache is off)
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from seqdream.config import Settings
from seqdream.engines.base import GenerationPlan
from seqdream.engines.registry import load_engine
from seqdream.jobs.planner import plan_group
from seqdream_devkit import tasks
from seqdream_devkit.parser import parse

sys.path.insert(0, str(Path(__file__).resolve().parent / "quality"))
from run import HELD_OUT_SEED, SIZE, generate, score_edit, score_group  # noqa: E402


def sample(n: int, seed: int, longest: int):  # type: ignore[no-untyped-def]
    """n captions, n edits (kinds in turn) and n groups (motions in turn, 2..longest frames)."""
    rng = random.Random(seed)
    captions = [tasks.text_to_image(rng, held=None) for _ in range(n)]
    edits = [tasks.edit(rng, tasks.EDITS[k % len(tasks.EDITS)], held=None) for k in range(n)]
    groups = []
    for k in range(n):
        motion = tasks.MOTIONS[k % len(tasks.MOTIONS)]
        frames = tasks.sequence(rng, motion, count=rng.randint(2, longest), held=None)
        groups.append((motion, frames[0].group_prompt))
    return captions, edits, groups


def measure(engine, captions, edits, groups) -> dict[str, float]:  # type: ignore[no-untyped-def]
    images, started = 0, time.perf_counter()
    t2i = [float(parse(generate(engine, c.prompt, (), i)) == c.scene) for i, c in enumerate(captions)]
    edit = []
    for index, example in enumerate(edits):
        seen = parse(generate(engine, example.prompt, example.references, index))
        edit.append(score_edit(parse(example.references[0]), example.scene, seen)[0])
    images += len(captions) + len(edits)
    consistency, progression = [], []
    for index, (motion, prompt) in enumerate(groups):
        group = plan_group(prompt, 14, index, engine.frame_prompt)
        plan = GenerationPlan(prompts=group.prompts, seeds=group.seeds, width=SIZE, height=SIZE)
        c, p = score_group(motion, engine.generate(plan).images)
        consistency.append(c)
        progression.append(p)
        images += plan.count
    return {
        "t2i exact": statistics.mean(t2i),
        "edit success": statistics.mean(edit),
        "group consistency": statistics.mean(consistency),
        "group progression": statistics.mean(progression),
        "s / image": (time.perf_counter() - started) / images,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="model folder (default: the built-in model)")
    parser.add_argument("--n", type=int, default=12, help="examples of each kind")
    parser.add_argument("--longest", type=int, default=9, help="longest group drawn")
    parser.add_argument("--settings", default="20:1.0,20:0.5,16:0.5", help="steps:guidance_until, comma-separated")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED + 7)
    args = parser.parse_args()
    captions, edits, groups = sample(args.n, args.seed, args.longest)
    rows = []
    for setting in args.settings.split(","):
        steps, until, *cache = setting.split(":")
        extra: dict[str, object] = {"model": args.model} if args.model else {}
        extra["cache"] = "magcache" if cache else "none"  # not the model's own choice: the setting's
        if cache:
            extra["cache_threshold"] = float(cache[0].removeprefix("mag"))
        engine = load_engine(Settings(num_inference_steps=int(steps), guidance_until=float(until), **extra))
        rows.append((setting, measure(engine, captions, edits, groups)))
        print(f"{setting}: {rows[-1][1]}", flush=True)
    names = list(rows[0][1])
    print(f"\n{'setting':16s}" + "".join(f"{name:>19s}" for name in names))
    for setting, scores in rows:
        cells = [f"{value:.2f}" if name == "s / image" else f"{value:.0%}" for name, value in scores.items()]
        print(f"{setting:16s}" + "".join(f"{cell:>19s}" for cell in cells))
    base = rows[0][1]["s / image"]
    print("time against the first setting: " + ", ".join(f"{s} {r['s / image'] / base:.2f}" for s, r in rows))


if __name__ == "__main__":
    main()
