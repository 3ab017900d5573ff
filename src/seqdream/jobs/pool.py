"""A process's worker threads: started together, restarted if one ends, stopped gracefully (running
jobs finish within the grace, then are handed back to the queue)."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack

from seqdream.jobs.presence import Presence
from seqdream.jobs.worker import Worker

log = logging.getLogger(__name__)

HAND_BACK_WAIT_S = 0.5  # after handing jobs back, how long shutdown waits for their threads to stop
SUPERVISE_S = 1.0  # how often a pool looks for worker threads that ended


class WorkerPool:
    """Worker threads of one process, with a graceful stop.

    `shutdown` stops claiming at once, lets running jobs finish for up to `grace_s`, then
    interrupts them between denoising steps and hands them back to the queue: no job waits
    out its lease because this process stopped."""

    def __init__(self, workers: list[Worker], grace_s: float = 20.0, presence: Presence | None = None) -> None:
        self.workers = workers
        self.grace_s = grace_s  # what a stop signal announces; `shutdown` is given its own
        self.presence = presence  # reports the workers in the database while they run
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=worker.run, args=(self.stop,), name=f"worker-{index}", daemon=True)
            for index, worker in enumerate(workers)
        ]

    def start(self) -> WorkerPool:
        for thread in self.threads:
            thread.start()
        if self.presence is not None:
            self.presence.start()
        threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True).start()
        return self

    def _supervise(self) -> None:
        """Restart a worker thread that ended while the pool runs (its loop guards every dependency,
        so this is the last line of defence, not the way outages are handled)."""
        while not self.stop.wait(SUPERVISE_S):
            for index, thread in enumerate(self.threads):
                if not thread.is_alive() and not self.stop.is_set():
                    log.error("worker thread %s ended unexpectedly; starting it again", thread.name)
                    self.threads[index] = threading.Thread(
                        target=self.workers[index].run, args=(self.stop,), name=thread.name, daemon=True
                    )
                    self.threads[index].start()

    def alive_count(self) -> int:
        return sum(thread.is_alive() for thread in self.threads)

    def begin_shutdown(self) -> None:
        """Stop claiming new jobs (running ones go on)."""
        self.stop.set()
        for worker in self.workers:
            worker.wake.set()

    def on_signal(self) -> None:
        """A stop signal: the first stops claiming, a second hands running jobs back at once.
        Each says what happens to the running jobs, by id."""
        with ExitStack() as claims_paused:  # no worker is between claiming a job and naming it
            for worker in self.workers:
                claims_paused.enter_context(worker.claiming)
            running = ", ".join(self.running_jobs())
            first = not self.stop.is_set()
            self.stop.set()
        if not first:
            if running:
                log.warning("stopping now: handing job %s back to the queue", running)
            self.abort_running()
        elif running:
            log.warning(
                "stopping: job %s may finish within %.0fs, then goes back to the queue; "
                "press Ctrl-C again to hand it back now",
                running,
                self.grace_s,
            )
        else:
            log.info("stopping: no job running")
        self.begin_shutdown()

    def running_jobs(self) -> list[str]:
        return [job for worker in self.workers for job in worker.current_jobs]

    def shutdown(self, grace_s: float) -> None:
        self.begin_shutdown()
        deadline = time.monotonic() + grace_s
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.alive():
            log.warning("running jobs did not finish within %.0fs; handing them back to the queue", grace_s)
            self.abort_running()
            deadline = time.monotonic() + HAND_BACK_WAIT_S  # the threads are daemons: exit without them
            for thread in self.threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.presence is not None:
            self.presence.stop()

    def notice_deleted(self, job_id: str) -> None:
        """A job was deleted in this process: the worker running it stops at its next step."""
        for worker in self.workers:
            worker.notice_deleted(job_id)

    def abort_running(self) -> None:
        """Hand running jobs back to the queue now; their threads stop at their next denoising step."""
        for worker in self.workers:
            worker.hand_back_now()

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)
