"""Prometheus metrics: the queue as the database has it (read at scrape time), and what this
process's workers did (the instruments in `seqdream.jobs.measures`; the engine's state).

`serve` exposes them at `/metrics`; `seqdream worker --metrics-port N` on its own port."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from seqdream.db import JobStatus
from seqdream.dependencies import DATABASE, STORAGE, is_database_outage
from seqdream.jobs.store import JobStore
from seqdream.tenancy.usage import key_activity
from seqdream.webhooks.store import WebhookStore


class QueueCollector(Collector):
    """Tasks by status and webhooks waiting, counted in the shared database on every scrape."""

    def __init__(
        self, jobs: JobStore, webhooks: WebhookStore, engine_state: Callable[[], str] | None, key_labels: int = 0
    ) -> None:
        self.jobs, self.webhooks = jobs, webhooks
        self.engine_state = engine_state  # "ready", "loading" or "unavailable"; None: no engine here
        self.key_labels = key_labels  # per-key series for the busiest keys (the rest as "other"); 0: none

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "seqdream_dependency_up", "1 while this process can use the dependency.", labels=["dependency"]
        )
        for dependency in (DATABASE, STORAGE):
            up.add_metric([dependency.name], 1.0 if dependency.up else 0.0)
        yield up
        try:
            counts = self.jobs.counts()
        except Exception as exc:  # noqa: BLE001 - the database is down: the queue cannot be read, the rest can
            if not is_database_outage(exc):
                raise
            return
        jobs = GaugeMetricFamily("seqdream_jobs", "Tasks in the database by status.", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], float(counts.get(status.value, 0)))
        yield jobs
        yield GaugeMetricFamily(
            "seqdream_webhooks_pending",
            "Webhook deliveries not yet made (including retries).",
            value=float(self.webhooks.pending()),
        )
        if self.engine_state is not None:
            state = self.engine_state()
            engine = GaugeMetricFamily("seqdream_engine_state", "1 for this process's engine state.", labels=["state"])
            for name in ("loading", "ready", "unavailable"):
                engine.add_metric([name], 1.0 if state == name else 0.0)
            yield engine
        if self.key_labels:
            yield from self._per_key()

    def _per_key(self) -> Iterator[Metric]:
        with self.jobs.db.session() as session:
            shown, other = key_activity(session, self.key_labels)
        labels = ["key", "name"]
        tasks = GaugeMetricFamily(
            "seqdream_key_tasks", "Tasks queued and running, by API key.", labels=[*labels, "status"]
        )
        images = CounterMetricFamily("seqdream_key_images", "Images made, by API key.", labels=labels)
        for row in shown + ([other] if other else []):
            tasks.add_metric([row.prefix, row.name, "created"], float(row.queued))
            tasks.add_metric([row.prefix, row.name, "processing"], float(row.running))
            images.add_metric([row.prefix, row.name], float(row.images))
        yield tasks
        yield images


def process_registry(
    jobs: JobStore, webhooks: WebhookStore, engine_state: Callable[[], str] | None = None, key_labels: int = 0
) -> CollectorRegistry:
    """This process's metrics (the default registry) plus the queue collector."""
    registry = CollectorRegistry()
    registry.register(_Forward(REGISTRY))
    registry.register(QueueCollector(jobs, webhooks, engine_state, key_labels))
    return registry


class _Forward(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        yield from self.source.collect()
