"""How the built-in model shares a busy CPU: a 4-image group alone, then beside CPU-bound processes.

Starts a real `seqdream serve` (production settings, the built-in model), times sync-mode 4-image
groups at 1024*1024 from submit to the last decoded output, then starts `--hogs` processes that
spin on the CPU and times the same requests again. With H hogs on C cores a fair share is about
(C + H) / C times slower; the goal is a ratio <= 2.5 with two hogs on two cores.
Usage: python bench/cpu_contention.py [--runs 3] [--hogs 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqdream.threads import available_cores
from seqdream_devkit.images import decode
from seqdream_devkit.server_process import ServerProcess

GOAL = 2.5
PROMPT = "a series of 4 images of a small red circle moving from left to right on a blue background"


def time_groups(server: ServerProcess, runs: int) -> float:
    times = []
    with server.client() as api:
        for run in range(runs):
            body = {"prompt": PROMPT, "size": "1024*1024", "max_images": 4, "seed": run, "enable_sync_mode": True}
            started = time.perf_counter()
            data = api.post("/api/v3/bytedance/seedream-v4/sequential", json=body).json()["data"]
            assert data["status"] == "completed" and len(data["outputs"]) == 4, data
            for url in data["outputs"]:
                decode(api.get(url).content)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hogs", type=int, default=2, help="CPU-bound processes started beside the service")
    args = parser.parse_args()
    server = ServerProcess(Path(tempfile.mkdtemp(prefix="seqdream-bench-")) / "data", None)
    server.start()
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        time_groups(server, 1)  # warm-up
        alone = time_groups(server, args.runs)
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
        time.sleep(1)
        shared = time_groups(server, args.runs)
    finally:
        for hog in hogs:
            hog.kill()
        server.stop()
    cores = available_cores()
    fair = (cores + args.hogs) / cores
    print(f"{cores} cores; 4-image group at 1024*1024, sync mode, median of {args.runs}")
    print(f"alone:                 {alone:6.2f} s")
    print(f"beside {args.hogs} CPU-bound:     {shared:6.2f} s")
    verdict = "ok" if shared / alone <= GOAL else "ABOVE GOAL"
    print(f"ratio: {shared / alone:.2f}x (fair share ~{fair:.1f}x, goal <= {GOAL}x) {verdict}")


if __name__ == "__main__":
    main()
