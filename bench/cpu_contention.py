"""How the built-in model shares a busy CPU: a 4-image group alone, then under the loads users have.

Starts a real `seqdream serve` (production settings, the built-in model) and times sync-mode 4-image
groups at 1024*1024 from submit to the last decoded output, all in one run:

  * alone, then beside H CPU-bound processes for H = 2, 4, 8: with C cores a fair share is
    (C + H) / C times alone; the target is <= 1.25 x the fair share;
  * two seqdream servers busy side by side with the same work: each <= 2.5 x alone;
  * inside a CPU quota of one CPU (a cgroup the bench makes; as root), against the same server
    pinned to one core alone (taskset): <= 1.25 x. Without cgroups it says so and skips.

Usage: python bench/cpu_contention.py [--runs 3] [--hogs 2,4,8] [--threads N] [--static] [--skip-quota] [--skip-pair]
(--static: threads fixed instead of following the load, to compare)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from seqdream.cpu.threads import available_cores
from seqdream_devkit.cpu_hogs import cpu_bound_processes
from seqdream_devkit.images import decode
from seqdream_devkit.server_process import ServerProcess

FAIR_TARGET = 1.25  # x the fair share
PAIR_TARGET = 2.5  # x alone, each of two busy servers
PROMPT = "a series of 4 images of a small red circle moving from left to right on a blue background"
CGROUP_V1 = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup")


INFERENCE: list[float] = []  # the model's share of each timed group (the task's timings.inference)


def one_group(server: ServerProcess, seed: int) -> float:
    with server.client() as api:
        body = {"prompt": PROMPT, "size": "1024*1024", "max_images": 4, "seed": seed, "enable_sync_mode": True}
        started = time.perf_counter()
        data = api.post("/api/v3/bytedance/seedream-v4/sequential", json=body).json()["data"]
        assert data["status"] == "completed" and len(data["outputs"]) == 4, data
        for url in data["outputs"]:
            decode(api.get(url).content)
        INFERENCE.append(data["timings"]["inference"] / 1000)
        return time.perf_counter() - started


def time_groups(server: ServerProcess, runs: int) -> float:
    INFERENCE.clear()
    return statistics.median(one_group(server, run) for run in range(runs))


def model_share() -> str:
    """How much of the median request the model itself took: the rest is the service around it
    (event loop, image encoding, NSFW check, storage, HTTP), which must not grow under load."""
    return f"model {statistics.median(INFERENCE):.2f} s" if INFERENCE else ""


def start(env: dict[str, str], prefix: list[str] | None = None) -> ServerProcess:
    server = ServerProcess(Path(tempfile.mkdtemp(prefix="seqdream-bench-")) / "data", None, **env)
    server.prefix = prefix or []  # e.g. taskset: the server's whole process tree runs under it
    server.start()
    one_group(server, 99)  # warm-up
    return server


def make_quota_cgroup(cpus: float) -> tuple[Path, str] | None:
    """A cgroup limited to `cpus` CPUs (v1 cpu controller or v2 cpu.max), or None where none can be made."""
    name = f"seqdream-bench-{os.getpid()}"
    try:
        if (CGROUP_V1 / "cpu.cfs_quota_us").exists():
            folder = CGROUP_V1 / name
            folder.mkdir()
            (folder / "cpu.cfs_period_us").write_text("100000")
            (folder / "cpu.cfs_quota_us").write_text(str(int(cpus * 100000)))
            return folder, f"cgroup v1 cpu.cfs_quota_us {int(cpus * 100000)}/100000"
        if (CGROUP_V2 / "cgroup.controllers").exists():
            folder = CGROUP_V2 / name
            folder.mkdir()
            (folder / "cpu.max").write_text(f"{int(cpus * 100000)} 100000")
            return folder, f"cgroup v2 cpu.max {int(cpus * 100000)} 100000"
    except OSError as exc:
        print(f"no CPU-quota cgroup could be made here ({exc})")
    return None


def run_in_cgroup(folder: Path) -> list[str]:
    """A command prefix that moves the started process into `folder` before it runs the server."""
    return ["sh", "-c", f'echo $$ > {folder}/cgroup.procs && exec "$@"', "sh"]


def busy_pair(env: dict[str, str], runs: int) -> list[float]:
    """Two servers, each serving back-to-back groups from its own client; each one's median."""
    servers = [start(env), start(env)]
    results: list[list[float]] = [[], []]
    try:

        def client(index: int) -> None:
            for run in range(runs + 1):
                elapsed = one_group(servers[index], run)
                if run:  # the first overlaps the other's warm-up
                    results[index].append(elapsed)

        threads = [threading.Thread(target=client, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for server in servers:
            server.stop()
    return [statistics.median(times) for times in results]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hogs", default="2,4,8", help="comma list of CPU-bound process counts")
    parser.add_argument("--threads", type=int, default=None, help="SEQDREAM_THREADS for the servers (default: theirs)")
    parser.add_argument("--static", action="store_true", help="threads fixed (SEQDREAM_THREADS_FOLLOW_LOAD=false)")
    parser.add_argument("--skip-quota", action="store_true")
    parser.add_argument("--skip-pair", action="store_true")
    args = parser.parse_args()
    env = {"SEQDREAM_THREADS": str(args.threads)} if args.threads else {}
    if args.static:
        env["SEQDREAM_THREADS_FOLLOW_LOAD"] = "false"
    cores = available_cores()
    follows = "fixed" if args.static or args.threads else "following the load"
    print(f"{cores} cores; 4-image group at 1024*1024, sync mode, median of {args.runs}; threads: "
          f"{args.threads or 'default'}, {follows}")  # fmt: skip
    print(f"{'load':34s} {'seconds':>8s} {'x alone':>8s} {'fair':>6s} {'x fair':>7s}  verdict")

    server = start(env)
    try:
        alone = time_groups(server, args.runs)
        print(f"{'alone':34s} {alone:8.2f} {1:8.2f} {'':6s} {'':7s}  {model_share()}")
        for count in (int(part) for part in args.hogs.split(",")):
            with cpu_bound_processes(count, settle_s=1):
                shared = time_groups(server, args.runs)
            fair = (cores + count) / cores
            ratio = shared / alone
            verdict = "ok" if ratio <= FAIR_TARGET * fair else "ABOVE TARGET"
            print(f"{f'beside {count} CPU-bound processes':34s} {shared:8.2f} {ratio:8.2f} {fair:6.1f} "
                  f"{ratio / fair:7.2f}  {verdict} (<= {FAIR_TARGET} x fair); {model_share()}")  # fmt: skip
    finally:
        server.stop()

    if not args.skip_pair:
        pair = busy_pair(env, args.runs)
        for index, median in enumerate(pair):
            ratio = median / alone
            verdict = "ok" if ratio <= PAIR_TARGET else "ABOVE TARGET"
            print(f"{f'two busy servers, server {index + 1}':34s} {median:8.2f} {ratio:8.2f} {'':6s} {'':7s}  "
                  f"{verdict} (<= {PAIR_TARGET} x alone)")  # fmt: skip

    if not args.skip_quota:
        pinned = start(env, ["taskset", "-c", "0"])
        try:
            one_core = time_groups(pinned, args.runs)
        finally:
            pinned.stop()
        print(f"{'pinned to one core (taskset)':34s} {one_core:8.2f} {one_core / alone:8.2f}")
        made = make_quota_cgroup(1.0)
        if made is None:
            print("CPU quota: no cgroup could be made (not root, or cgroups read-only); skipped")
            return
        folder, how = made
        try:
            quota = start(env, run_in_cgroup(folder))
            try:
                limited = time_groups(quota, args.runs)
                health = quota.client().get("/health").json()["threads"]
            finally:
                quota.stop()
        finally:
            folder.rmdir()
        ratio = limited / one_core
        verdict = "ok" if ratio <= FAIR_TARGET else "ABOVE TARGET"
        print(f"{'in a 1-CPU quota (' + how.split(' in ')[0] + ')':34s} {limited:8.2f} {limited / alone:8.2f} "
              f"{'':6s} {'':7s}  {ratio:.2f} x pinned, {verdict} (<= {FAIR_TARGET} x); threads {health}")  # fmt: skip


if __name__ == "__main__":
    main()
