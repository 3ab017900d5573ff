"""How good the ETA is, and how often progress arrives, on a mixed load (built-in model, one run).

Starts `seqdream serve` with the built-in model and one worker, measures one task of each kind (1, 4
and 14 images at 1024*1024: the estimates start from measured times), then lets 3 keys submit a mixed
load at random moments while every task's result is polled: each poll's `eta_s` is compared with the
time the task really had left (seen by the same poller). A 14-image group is also followed through
its events stream: the gaps between events while it runs, and its first `progress` after `started`.

Targets (issue 45): median absolute ETA error <= 25 % of the true remaining time; progress at least
once a second, the first within 1 s of `started`.

Usage: python bench/eta.py [--tasks-per-key 6] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from seqdream_devkit.server_process import ServerProcess

ROUTE = "/api/v3/bytedance/seedream-v4/sequential"
KINDS = {1: "a small red circle in the center on a blue background",
         4: "a series of 4 images of a small red circle moving from left to right on a blue background",
         14: "a series of 14 images of a green square growing on a white background"}  # fmt: skip
MIN_REMAINING_S = 1.0  # errors are relative: a poll this close to the end says little


def body(images: int, seed: int) -> dict:
    return {"prompt": KINDS[images], "max_images": images, "size": "1024*1024", "seed": seed}


def follow(base: str, key: str, job_id: str, samples: list[tuple[float, str, float | None, dict]]) -> float:
    """Poll a task until it ends: (time, status, eta_s, the answer) per poll; returns when it ended."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        while True:
            data = api.get(f"/api/v3/predictions/{job_id}/result").json()["data"]
            now = time.monotonic()
            if data["status"] in ("completed", "failed", "deleted"):
                return now
            samples.append((now, data["status"], data.get("eta_s"), data))
            time.sleep(0.2)


def stream_gaps(base: str, key: str, job_id: str) -> tuple[list[float], float | None]:
    """Gaps between the events of a running task, and the delay from `started` to its first `progress`."""
    arrivals: list[tuple[float, str]] = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("GET", f"{base}/api/v3/predictions/{job_id}/events", headers=headers, timeout=600) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                arrivals.append((time.monotonic(), line[7:]))
    started = next((t for t, name in arrivals if name == "started"), None)
    end = arrivals[-1][0]
    running = [t for t, name in arrivals if started is not None and started <= t]
    gaps = [b - a for a, b in zip(running, running[1:], strict=False)] + ([end - running[-1]] if running else [])
    first = next((t for t, name in arrivals if name == "progress"), None)
    return gaps, None if (first is None or started is None) else first - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks-per-key", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dump", type=Path, help="write every poll (its fields, the true time left) as JSON lines")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    server = ServerProcess(Path(tempfile.mkdtemp(prefix="seqdream-eta-")), None, SEQDREAM_LOG_LEVEL="warning").start()
    try:
        keys = [server.cli("keys", "create", "--name", f"key-{n}").stdout.strip() for n in range(3)]
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {keys[0]}"}, timeout=600) as api:
            for images in KINDS:  # measured once each: where estimates start
                assert (
                    api.post(ROUTE, json=body(images, 0) | {"enable_sync_mode": True}).json()["data"]["status"]
                    == "completed"
                )
        samples: dict[str, list[tuple[float, str, float | None, dict]]] = {}
        ends: dict[str, float] = {}
        kinds: dict[str, int] = {}
        threads: list[threading.Thread] = []
        lock = threading.Lock()

        def client(key: str, plan: list[tuple[float, int]]) -> None:
            started = time.monotonic()
            with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
                for at, images in plan:
                    time.sleep(max(0.0, started + at - time.monotonic()))
                    job_id = api.post(ROUTE, json=body(images, rng.randrange(1 << 30))).json()["data"]["id"]
                    with lock:
                        samples[job_id], kinds[job_id] = [], images

                    def run(job_id: str = job_id) -> None:
                        ends[job_id] = follow(server.base_url, key, job_id, samples[job_id])

                    poller = threading.Thread(target=run)
                    poller.start()
                    threads.append(poller)

        plans = [[(rng.uniform(0, 20), rng.choice([1, 1, 4, 14])) for _ in range(args.tasks_per_key)] for _ in keys]
        clients = [
            threading.Thread(target=client, args=(key, sorted(plan))) for key, plan in zip(keys, plans, strict=True)
        ]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()

        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {keys[1]}"}, timeout=60) as api:
            watched = api.post(ROUTE, json=body(14, 99)).json()["data"]["id"]
        gaps, first_progress = stream_gaps(server.base_url, keys[1], watched)
        for thread in threads:
            thread.join()
    finally:
        server.stop()

    errors: dict[str, list[float]] = {"created": [], "processing": []}
    missing = 0
    dump = args.dump.open("w") if args.dump else None
    for job_id, polls in samples.items():
        for at, status, eta, data in polls:
            remaining = ends[job_id] - at
            if dump:
                fields = {
                    key: data.get(key) for key in ("queue_position", "images_done", "images_total", "step", "steps")
                }
                dump.write(json.dumps({"task": job_id, "images": kinds[job_id], "status": status, "eta_s": eta,
                                       "remaining_s": remaining, **fields}) + "\n")  # fmt: skip
            if remaining < MIN_REMAINING_S:
                continue
            if eta is None:
                missing += 1
                continue
            errors.setdefault(status, []).append(abs(eta - remaining) / remaining)
    every = errors["created"] + errors["processing"]
    counts = {images: sum(1 for kind in kinds.values() if kind == images) for images in KINDS}
    print(
        f"mixed load: {len(samples)} tasks from 3 keys ({counts[1]} x 1, {counts[4]} x 4, {counts[14]} x 14 images),"
        f" {len(every)} polls with >= {MIN_REMAINING_S:g} s left ({missing} without an estimate)"
    )
    for name, values in (("all", every), ("queued", errors["created"]), ("running", errors["processing"])):
        if values:
            median, p75 = statistics.median(values), sorted(values)[int(len(values) * 0.75)]
            print(f"  ETA error {name:<8} median {median:6.1%}   p75 {p75:6.1%}   ({len(values)} polls)")
    print(f"  target: median <= 25 %: {'met' if every and statistics.median(every) <= 0.25 else 'NOT met'}")
    print(
        f"events of a 14-image group while it ran: longest gap {max(gaps):.2f} s, "
        f"median {statistics.median(gaps):.2f} s;"
        f" first progress {first_progress:.2f} s after started"
        if gaps and first_progress is not None
        else "events: no progress seen"
    )
    print(
        json.dumps(
            {
                "median_error": statistics.median(every) if every else None,
                "longest_gap_s": max(gaps) if gaps else None,
                "first_progress_s": first_progress,
            }
        )
    )


if __name__ == "__main__":
    main()
