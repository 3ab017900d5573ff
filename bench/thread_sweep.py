"""Intra-op thread counts against the work: a 4-image group through the production engine, for the
built-in model and the tiny FLUX.2 [klein] pipeline at a few render sizes, with 1..N torch threads,
quiet and beside N CPU-bound processes (N = this process's cores), all in one run.

It prints, per model and size, each thread count's median time quiet and loaded and its ratio to the
best quiet time, then what seqdream's default does: every core when quiet, and under load only the
cores the others leave free (`SEQDREAM_THREADS_FOLLOW_LOAD`, seqdream/cpu_load.py).

Usage: python bench/thread_sweep.py [--runs 3] [--sizes 64,128,256]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from seqdream.builtin import resolve_model
from seqdream.config import Settings
from seqdream.cpu.threads import available_cores
from seqdream.engines.base import GenerationPlan
from seqdream.engines.registry import load_engine
from seqdream_devkit.cpu_hogs import cpu_bound_processes
from seqdream_devkit.tiny_pipeline import build_tiny_flux2_klein

PROMPT = "a series of 4 images of a small red circle moving from left to right on a blue background"


def group_seconds(engine, runs: int) -> float:  # type: ignore[no-untyped-def]
    plan = GenerationPlan(prompts=[PROMPT] * 4, seeds=[1, 2, 3, 4], width=1024, height=1024, references=[])
    engine.generate(plan)  # warm-up at this thread count
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        engine.generate(plan)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="64,128,256", help="render sides for the tiny pipeline")
    args = parser.parse_args()
    cores = available_cores()
    tiny = build_tiny_flux2_klein(Path(tempfile.mkdtemp(prefix="seqdream-sweep-")) / "tiny")
    models = [("built-in", resolve_model("builtin"), 64)] + [
        ("tiny klein", str(tiny), int(side)) for side in args.sizes.split(",")
    ]
    print(f"{cores} cores; 4-image group, median of {args.runs}; loaded = beside {cores} CPU-bound processes")
    header = ("model", "render", "threads", "quiet", "loaded", "quiet/best", "loaded/quiet")
    print("{:12s} {:>6s} {:>7s} {:>7s} {:>7s} {:>10s} {:>12s}".format(*header))
    for name, model, side in models:
        settings = Settings(model=model, native_resolution=side, threads_follow_load=False, nsfw_check=False)
        engine = load_engine(settings)
        rows = []
        for threads in range(1, cores + 1):
            torch.set_num_threads(threads)
            quiet = group_seconds(engine, args.runs)
            with cpu_bound_processes(cores, settle_s=1):
                loaded = group_seconds(engine, args.runs)
            rows.append((threads, quiet, loaded))
        best = min(quiet for _, quiet, _ in rows)
        for threads, quiet, loaded in rows:
            ratios = f"{quiet / best:10.2f} {loaded / quiet:12.2f}"
            print(f"{name:12s} {side:6d} {threads:7d} {quiet:7.2f} {loaded:7.2f} {ratios}")
        most = rows[-1]
        fewest = rows[0]
        note = "(all cores quiet, 1 thread under load)"
        print(f"{name:12s} {side:6d} {'default':>7s} {most[1]:7.2f} {fewest[2]:7.2f}   {note}")
    torch.set_num_threads(cores)


if __name__ == "__main__":
    main()
