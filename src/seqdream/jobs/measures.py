"""What this process's workers measure, as Prometheus instruments in the default registry.

They live beside the worker that updates them; `seqdream.metrics` exposes them with the queue."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Job latency, submit to end: seconds on a GPU, minutes for a 14-image group on a CPU.
JOB_SECONDS = Histogram(
    "seqdream_job_duration_seconds",
    "Time from submission to the end of a task, by how it ended.",
    ["outcome"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
)
IMAGE_SECONDS = Histogram(
    "seqdream_image_inference_seconds",
    "Model time per output image (a task's inference time over its images).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
FAILURES = Counter(
    "seqdream_job_failures_total",
    "Task attempts that did not complete, by kind: input (a reference could not be used), engine "
    "(the model call failed), internal, storage (retried later), interrupted (handed back on shutdown).",
    ["kind"],
)
IMAGES = Counter("seqdream_images_generated_total", "Output images stored.")
QUEUE_WAIT_SECONDS = Histogram(
    "seqdream_queue_wait_seconds",
    "Time a task waited in the queue, from submission to the claim of its (first) attempt.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
)
ETA_ERROR_RATIO = Histogram(
    "seqdream_eta_error_ratio",
    "How far a task's estimated run time (its model's measured time, at its claim) was from its real "
    "claim-to-end time, as |estimate - real| / real; tasks whose model was never measured are not counted.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
