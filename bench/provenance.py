"""What provenance costs and how well the watermark holds, measured in one run on this machine.

  * added time per image at 1024x1024 and 2048x2048: the watermark, the C2PA signature and both,
    beside the JPEG encoding every output has anyway (goal: both marks <= 50 ms an image on CPU);
  * detection: N built-in-model outputs, each marked with its own task id, re-encoded as JPEG at
    quality 75 and scaled to 50 %: the share whose watermark reads back exactly (goal >= 99 %);
  * false positives: N unmarked images (built-in outputs and photos-like noise): any watermark read
    is a false positive (goal 0).

Usage: python bench/provenance.py [--n 100] [--runs 10]   (--n 0: the timings only)
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from seqdream.config import Settings
from seqdream.cpu.allocator import keep_large_buffers
from seqdream.engines.base import GenerationPlan
from seqdream.engines.registry import load_engine
from seqdream.images.encode import encode_image
from seqdream.provenance import watermark
from seqdream.provenance.marking import Marker
from seqdream_devkit import tasks

GOAL_MS, GOAL_DETECTION = 50.0, 0.99


def median_ms(action, runs: int) -> float:  # type: ignore[no-untyped-def]
    action()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def attacked(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=75)
    copy = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return copy.resize((copy.width // 2, copy.height // 2), Image.Resampling.BICUBIC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    keep_large_buffers()  # as `seqdream serve` and `seqdream worker` do
    engine = load_engine(Settings())
    rng = random.Random(2026)

    def output(size: int, seed: int) -> Image.Image:
        prompt = tasks.text_to_image(rng).prompt
        plan = GenerationPlan(prompts=[prompt], seeds=[seed], width=size, height=size)
        return engine.generate(plan).images[0]

    with tempfile.TemporaryDirectory() as folder:
        marker = Marker.from_settings(Settings(data_dir=Path(folder)))
        print("added time per image (median of", args.runs, "runs; JPEG q95 encoding shown for scale):")
        for size in (1024, 2048):
            image = output(size, 1)
            data = encode_image(image, "jpeg", 95)
            task = uuid.uuid4().hex
            encode = median_ms(partial(encode_image, image, "jpeg", 95), args.runs)
            mark = median_ms(partial(marker.watermark, image, task), args.runs)
            sign = median_ms(
                partial(marker.sign, data, "jpeg", model="m", task_id=task, index=0, ingredients=[]), args.runs
            )
            both = mark + sign
            verdict = "ok" if both <= GOAL_MS else "OVER GOAL"
            print(f"  {size}x{size}: watermark {mark:.1f} ms, C2PA {sign:.1f} ms, both {both:.1f} ms "
                  f"(goal <= {GOAL_MS:g}) {verdict}; JPEG encoding {encode:.1f} ms")  # fmt: skip

    if not args.n:  # timing only
        return
    found = 0
    for index in range(args.n):
        image = output(1024, 100 + index)
        task = uuid.uuid4().hex
        payload = watermark.Payload(marker.service or 0, watermark.content_tag(task))
        found += watermark.read(attacked(watermark.embed(image, payload))) == payload
    share = found / args.n
    print(f"detection after JPEG q75 + 50 % downscale: {found}/{args.n} = {share:.1%} "
          f"(goal >= {GOAL_DETECTION:.0%}) {'ok' if share >= GOAL_DETECTION else 'UNDER GOAL'}")  # fmt: skip

    noise = np.random.default_rng(7)
    false = 0
    for index in range(args.n):
        if index % 2:
            unmarked = output(1024, 10_000 + index)
        else:  # photo-like: smooth noise at several scales
            field = sum(
                np.kron(noise.normal(0, 40 / scale, (1024 // scale, 1024 // scale, 3)), np.ones((scale, scale, 1)))
                for scale in (4, 16, 64)
            )
            unmarked = Image.fromarray(np.clip(128 + field, 0, 255).astype(np.uint8))
        false += watermark.read(unmarked) is not None or watermark.read(attacked(unmarked)) is not None
    print(f"false positives on {args.n} unmarked images (as they are and re-encoded): {false} (goal 0) "
          f"{'ok' if false == 0 else 'FAILED'}")  # fmt: skip


if __name__ == "__main__":
    main()
