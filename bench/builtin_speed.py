"""End-to-end speed of the built-in model through the API, measured in one run on this machine.

Starts a real `seqdream serve` on loopback with no model configured (so the built-in one is
used) and times sync-mode requests from submit to the last output downloaded and decoded,
against the targets on a quiet 2-core CPU: a 4-image group at 1024*1024 in <= 5 s, a 14-image
group at 1024*1024 in <= 8 s.
With `--dtypes auto,float32` and/or `--caches auto,none` each case runs under each combination of
SEQDREAM_DTYPE and SEQDREAM_CACHE in turn (a server each), and the last column is the time relative
to the first combination, measured in the same run.
Usage: python bench/builtin_speed.py [--runs 5] [--model DIR] [--dtypes auto[,float32]] [--caches auto[,none]]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from seqdream_devkit.images import decode
from seqdream_devkit.server_process import ServerProcess

TARGETS_S = {(4, "1024*1024"): 5.0, (14, "1024*1024"): 8.0}  # (images, size) -> seconds, end to end
CASES = (  # (route, group size, size, prompt)
    ("bytedance/seedream-v4", 1, "1024*1024", "a large red square in the center on a white background"),
    (
        "bytedance/seedream-v4/sequential",
        4,
        "1024*1024",
        "a series of 4 images of a small green cross moving from left to right on a yellow background",
    ),
    (
        "bytedance/seedream-v4/sequential",
        14,
        "1024*1024",
        "a series of 14 images of a small red circle moving from left to right on a blue background",
    ),
    (
        "bytedance/seedream-v4/sequential",
        4,
        "2048*2048",
        "a series of 4 images of a blue circle in the center growing on a white background",
    ),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the built-in model)")
    parser.add_argument("--dtypes", default="auto", help="SEQDREAM_DTYPE values to compare, comma-separated")
    parser.add_argument("--caches", default="auto", help="SEQDREAM_CACHE values to compare, comma-separated")
    args = parser.parse_args()
    variants = [(dtype, cache) for dtype in args.dtypes.split(",") for cache in args.caches.split(",")]
    labels = [f"{dtype}/{cache}" for dtype, cache in variants]
    print(f"{os.cpu_count()} CPU cores; model: {args.model or 'built-in'}; {args.runs} runs per case (medians)")
    print(
        f"{'route':34s} {'images':>6s} {'size':>10s} {'dtype/cache':>16s} {'end-to-end s':>13s} {'inference s':>12s}"
        f" {'per image s':>12s} {'x ' + labels[0]:>18s}"
    )
    first: dict[Case, float] = {}
    for (dtype, cache), label in zip(variants, labels, strict=True):
        for (route, count, size), seconds, inference in measure(args.model, args.runs, dtype, cache):
            relative = seconds / first.setdefault((route, count, size), seconds)
            print(
                f"{route:34s} {count:>6d} {size:>10s} {label:>16s} {seconds:>13.2f} {inference:>12.2f}"
                f" {seconds / count:>12.2f} {relative:>18.2f}"
            )
            if (target := TARGETS_S.get((count, size))) is not None:
                verdict = "ok" if seconds <= target else "ABOVE TARGET"
                print(f"{'':34s} target <= {target:.0f} s: {seconds / target:.0%} of it, {verdict}")


Case = tuple[str, int, str]  # route, images, size


def measure(model: Path | None, runs: int, dtype: str, cache: str = "auto") -> list[tuple[Case, float, float]]:
    """(route, images, size), median end-to-end seconds and median inference seconds, per case."""
    work = Path(tempfile.mkdtemp(prefix="seqdream-bench-"))
    server = ServerProcess(work / "data", model, SEQDREAM_DTYPE=dtype, SEQDREAM_CACHE=cache)
    server.start()
    results = []
    try:
        with server.client() as api:
            api.post("/api/v3/bytedance/seedream-v4", json={"prompt": "warm-up", "enable_sync_mode": True})
            for route, count, size, prompt in CASES:
                total, inference = [], []
                for run in range(runs):
                    body = {"prompt": prompt, "size": size, "max_images": count, "seed": run, "enable_sync_mode": True}
                    started = time.perf_counter()
                    data = api.post(f"/api/v3/{route}", json=body).json()["data"]
                    images = [decode(api.get(url).content) for url in data["outputs"]]
                    total.append(time.perf_counter() - started)
                    inference.append(data["timings"]["inference"] / 1000)
                    assert len(images) == count and data["status"] == "completed", data
                results.append(((route, count, size), statistics.median(total), statistics.median(inference)))
    finally:
        server.stop()
    return results


if __name__ == "__main__":
    main()
