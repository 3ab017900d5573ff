"""End-to-end speed of the built-in model through the API, measured in one run on this machine.

Starts a real `seqdream serve` on loopback with no model configured (so the built-in one is
used) and times sync-mode requests from submit to the last output downloaded and decoded,
against the targets on a quiet 2-core CPU: a 4-image group at 1024*1024 in <= 5 s, a 14-image
group at 1024*1024 in <= 8 s.
Usage: python bench/builtin_speed.py [--runs 5] [--model DIR]
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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqdream-bench-"))
    server = ServerProcess(work / "data", args.model)
    server.start()
    print(f"{os.cpu_count()} CPU cores; model: {args.model or 'built-in'}; {args.runs} runs per case (medians)")
    print(f"{'route':34s} {'images':>6s} {'size':>10s} {'end-to-end s':>13s} {'inference s':>12s} {'per image s':>12s}")
    try:
        with server.client() as api:
            api.post("/api/v3/bytedance/seedream-v4", json={"prompt": "warm-up", "enable_sync_mode": True})
            for route, count, size, prompt in CASES:
                total, inference = [], []
                for run in range(args.runs):
                    body = {"prompt": prompt, "size": size, "max_images": count, "seed": run, "enable_sync_mode": True}
                    started = time.perf_counter()
                    data = api.post(f"/api/v3/{route}", json=body).json()["data"]
                    images = [decode(api.get(url).content) for url in data["outputs"]]
                    total.append(time.perf_counter() - started)
                    inference.append(data["timings"]["inference"] / 1000)
                    assert len(images) == count and data["status"] == "completed", data
                t, m = statistics.median(total), statistics.median(inference)
                print(f"{route:34s} {count:>6d} {size:>10s} {t:>13.2f} {m:>12.2f} {t / count:>12.2f}")
                if (target := TARGETS_S.get((count, size))) is not None:
                    verdict = "ok" if t <= target else "ABOVE TARGET"
                    print(f"{'':34s} target <= {target:.0f} s: {t / target:.0%} of it, {verdict}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
