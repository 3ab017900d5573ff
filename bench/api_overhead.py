"""How much time the service adds around the model, measured in one run on this machine.

Starts a real `seqdream serve` on loopback with a tiny random FLUX.2 [klein] pipeline (so the
model's own time is small and the service's share is visible), then measures:
  * submit latency (async mode: the job is committed before the response),
  * end-to-end sync-mode latency versus the engine's own inference time, per group size,
  * polling overhead of the official SDK.
Prints a table of ratios. Usage: python bench/api_overhead.py [--runs 10] [--model DIR]
(--model measures a real model folder, e.g. the built-in one, instead of the tiny random one).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from seqdream_devkit.server_process import ServerProcess
from seqdream_devkit.tiny_pipeline import build_tiny_flux2_klein

EDIT_SEQ = "/api/v3/bytedance/seedream-v4/edit-sequential"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqdream-bench-"))
    model = args.model or build_tiny_flux2_klein(work / "model")
    # The tiny model rendering 64 px keeps the engine's share small, so the service's own cost shows.
    server = ServerProcess(
        work / "data", model, SEQDREAM_NATIVE_RESOLUTION="64", SEQDREAM_MAX_SEQUENCE_LENGTH="64",
        SEQDREAM_POLL_INTERVAL_S="0.05",
    ).start()  # fmt: skip
    try:
        with server.client() as api:
            api.post(EDIT_SEQ, json={"prompt": "warm-up", "enable_sync_mode": True})
            submit = []
            for i in range(args.runs * 3):
                started = time.perf_counter()
                api.post(EDIT_SEQ, json={"prompt": f"queued {i}", "size": "1024*1024"})
                submit.append((time.perf_counter() - started) * 1000)
            # Let the queue drain before timing sync requests.
            while api.get("/health").json()["jobs"].get("created", 0) or api.get("/health").json()["jobs"].get(
                "processing", 0
            ):
                time.sleep(0.1)
            print(
                f"submit (async, job committed): median {statistics.median(submit):.1f} ms, "
                f"p95 {sorted(submit)[int(len(submit) * 0.95) - 1]:.1f} ms over {len(submit)} requests"
            )
            columns = ("group", "size", "end-to-end ms", "inference ms", "service ms", "service share")
            print(" ".join(f"{name:>{width}}" for name, width in zip(columns, (5, 10, 14, 13, 11, 14), strict=True)))
            for count, size in ((1, "1024*1024"), (4, "1024*1024"), (4, "2048*2048"), (14, "2048*2048")):
                total, inference = [], []
                for run in range(args.runs):
                    started = time.perf_counter()
                    data = api.post(
                        EDIT_SEQ,
                        json={
                            "prompt": f"a series of {count} images, run {run}",
                            "max_images": count,
                            "size": size,
                            "enable_sync_mode": True,
                        },
                    ).json()["data"]
                    total.append((time.perf_counter() - started) * 1000)
                    inference.append(data["timings"]["inference"])
                t, m = statistics.median(total), statistics.median(inference)
                print(f"{count:>5} {size:>10} {t:>14.0f} {m:>13.0f} {t - m:>11.0f} {(t - m) / t:>13.0%}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
