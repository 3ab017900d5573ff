"""Images per second and latency under concurrent clients, with batching across tasks off and on
(built-in model, 1024*1024 single images; one run, one machine).

For each mode a fresh `seqdream serve` (one worker) takes: 1, 4, 8 and 16 concurrent clients, each
sending single-image tasks one after another in sync mode (the request returns with the images),
then a mixed load (8 clients of single images beside 1 client of 14-image groups). Printed per load:
images/s, p50/p95 latency of a single image, and the ratios batching on / off and against one client.

Targets (issue 46): 8 clients >= 1.6x one client's images/s with p95 <= 2x a lone task's latency;
a lone task's latency with batching on within 5 % of batching off.

Usage: python bench/throughput.py [--tasks 3] [--modes off,on]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from seqdream_devkit.server_process import ServerProcess

ROUTE = "/api/v3/bytedance/seedream-v4/sequential"
SINGLE = "a small red circle in the center on a blue background"
GROUP = "a series of 14 images of a green square growing on a white background"
LOADS = [("1 client", 1, 0), ("4 clients", 4, 0), ("8 clients", 8, 0), ("16 clients", 16, 0), ("mixed 8+group", 8, 1)]


def task(api: httpx.Client, prompt: str, images: int, seed: int) -> tuple[float, int]:
    """One task in sync mode: (its latency in seconds, images made)."""
    body = {"prompt": prompt, "max_images": images, "size": "1024*1024", "seed": seed, "enable_sync_mode": True}
    started = time.monotonic()
    data = api.post(ROUTE, json=body).raise_for_status().json()["data"]
    if data["status"] != "completed":
        raise RuntimeError(f"task {data['id']} ended {data['status']}: {data.get('error')}")
    return time.monotonic() - started, len(data["outputs"])


def run_load(base: str, key: str, clients: int, groups: int, tasks: int) -> dict[str, float]:
    """`clients` clients of `tasks` single images each, beside `groups` clients of one 14-image group."""
    latencies: list[float] = []
    images = [0]
    lock = threading.Lock()

    def client(n: int, prompt: str, count: int, repeat: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as api:
            for i in range(repeat):
                latency, made = task(api, prompt, count, seed=1000 * n + i)
                with lock:
                    images[0] += made
                    if count == 1:
                        latencies.append(latency)

    threads = [threading.Thread(target=client, args=(n, SINGLE, 1, tasks)) for n in range(clients)]
    threads += [threading.Thread(target=client, args=(100 + n, GROUP, 14, 1)) for n in range(groups)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    return {"images_s": images[0] / wall, "p50": statistics.median(latencies), "p95": p95, "images": images[0]}


def measure(mode: str, tasks: int) -> dict[str, dict[str, float]]:
    env = {"SEQDREAM_LOG_LEVEL": "warning", **({"SEQDREAM_BATCH_TASKS": "1"} if mode == "off" else {})}
    server = ServerProcess(Path(tempfile.mkdtemp(prefix=f"seqdream-throughput-{mode}-")), None, **env).start()
    try:
        made = server.cli("keys", "create", "--name", "bench", "--rate", "unlimited", "--max-active", "unlimited")
        key = made.stdout.strip()
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=600) as api:
            task(api, SINGLE, 1, seed=0)  # the model loaded and warm
        results = {}
        for name, clients, groups in LOADS:
            repeat = tasks * 2 if clients == 1 else tasks
            results[name] = run_load(server.base_url, key, clients, groups, repeat)
            r = results[name]
            print(f"  batching {mode:3} {name:14} {r['images_s']:5.2f} images/s   single image p50 {r['p50']:5.2f} s"
                  f"  p95 {r['p95']:5.2f} s   ({r['images']:.0f} images)", flush=True)  # fmt: skip
        return results
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=3, help="single-image tasks per client (one client: twice)")
    parser.add_argument("--modes", default="off,on")
    args = parser.parse_args()
    modes = args.modes.split(",")
    results = {mode: measure(mode, args.tasks) for mode in modes}
    print()
    for mode in modes:
        one = results[mode]["1 client"]
        eight = results[mode]["8 clients"]
        speedup, p95 = eight["images_s"] / one["images_s"], eight["p95"] / one["p50"]
        print(
            f"batching {mode}: 8 clients {speedup:.2f}x one client's images/s (target >= 1.6x), "
            f"p95 {p95:.2f}x a lone task's latency (target <= 2x)"
        )
    if {"off", "on"} <= set(modes):
        off, on = results["off"], results["on"]
        print(
            f"a lone task's latency, batching on / off: {on['1 client']['p50'] / off['1 client']['p50']:.3f}x"
            " (target within 5 %)"
        )
        for name, _, _ in LOADS:
            print(f"{name:14} images/s on / off: {on[name]['images_s'] / off[name]['images_s']:.2f}x")


if __name__ == "__main__":
    main()
