"""Sends due webhooks from the outbox on its own threads: a slow receiver never holds up a worker.

Every process that runs workers runs a dispatcher; deliveries are claimed with a lease, so each
one is sent by one process at a time, and a delivery a crash interrupted is sent again later.
Receivers are reached under the same SSRF policy as reference images (no redirects followed)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from seqdream.config import Settings
from seqdream.db import WebhookDelivery
from seqdream.dependencies import Backoff, is_database_outage
from seqdream.images.decode import ImageInputError
from seqdream.images.fetch import FetchPolicy, GuardedTransport
from seqdream.webhooks import signing
from seqdream.webhooks.store import WebhookStore

log = logging.getLogger(__name__)


def retry_delay_s(attempt: int, base_s: float) -> float:
    """Back-off after failed attempt `attempt` (1-based): base, 4x, 16x ... capped at 6 hours."""
    return float(min(base_s * 4 ** (attempt - 1), 6 * 3600))


# A task as its result endpoint shows it, outputs as URLs, by id; None once it no longer exists.
TaskView = Callable[[str], "dict[str, Any] | None"]


class WebhookDispatcher:
    def __init__(self, webhooks: WebhookStore, task_view: TaskView, policy: FetchPolicy, settings: Settings) -> None:
        self.webhooks, self.task_view, self.settings = webhooks, task_view, settings
        timeout = httpx.Timeout(settings.webhook_timeout_s, connect=policy.connect_timeout_s)
        self.client = httpx.Client(transport=GuardedTransport(policy), timeout=timeout, follow_redirects=False)
        self.senders = ThreadPoolExecutor(settings.webhook_concurrency, thread_name_prefix="webhook")
        # Deliveries claimed and not yet finished. Only free senders claim: a delivery waiting in
        # the pool past its lease would be claimed, and sent, a second time.
        self.in_flight = 0
        self.slot_freed = threading.Condition()
        self.wake = threading.Event()  # set when a job ends in this process: look at once
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)

    def start(self) -> WebhookDispatcher:
        self.thread.start()
        return self

    def shutdown(self) -> None:
        """Stop claiming; sends in flight finish (each within the webhook timeout)."""
        self.stop.set()
        self.wake.set()
        with self.slot_freed:
            self.slot_freed.notify_all()
        self.thread.join()
        self.senders.shutdown(wait=True)
        self.client.close()

    def _run(self) -> None:
        settings = self.settings
        lease_s = settings.webhook_timeout_s + 30
        backoff = Backoff(first=settings.webhook_poll_s, cap=5.0)
        while not self.stop.is_set():
            with self.slot_freed:
                self.slot_freed.wait_for(
                    lambda: self.in_flight < settings.webhook_concurrency or self.stop.is_set(), settings.webhook_poll_s
                )
                free = settings.webhook_concurrency - self.in_flight
            if free <= 0 or self.stop.is_set():
                continue
            try:
                due = self.webhooks.claim_due(free, lease_s)
                backoff.reset()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the dispatcher
                if not is_database_outage(exc):  # an outage is logged once, by seqdream.dependencies
                    log.exception("webhooks: could not read the outbox")
                self.wake.wait(backoff.next())
                continue
            with self.slot_freed:
                self.in_flight += len(due)
            for delivery in due:
                self.senders.submit(self._send_in_slot, delivery)
            if not due:
                self.wake.wait(settings.webhook_poll_s)
                self.wake.clear()

    def _send_in_slot(self, delivery: WebhookDelivery) -> None:
        try:
            self.send(delivery)
        except Exception as exc:  # noqa: BLE001 - the outcome could not be recorded: the lease resends it
            if not is_database_outage(exc):
                log.exception("webhook %s: could not record the outcome", delivery.id)
        finally:
            with self.slot_freed:
                self.in_flight -= 1
                self.slot_freed.notify()

    def payload(self, delivery: WebhookDelivery) -> bytes:
        """The task object as the result endpoint shows it (outputs as URLs)."""
        data = self.task_view(delivery.job_id)
        if data is None:
            raise LookupError(f"task {delivery.job_id} no longer exists")
        return json.dumps(data, separators=(",", ":")).encode()

    def send(self, delivery: WebhookDelivery) -> bool:
        """One attempt; records the outcome. True when the receiver answered 2xx."""
        try:
            body = self.payload(delivery)
            secret = self.webhooks.secret(delivery.owner)
            headers = signing.headers(secret, delivery.id, body)
            # Streamed and never read: a receiver's answer is its status alone, so an endless or
            # compressed body costs nothing (closing the stream drops the connection).
            with self.client.stream("POST", delivery.url, content=body, headers=headers) as response:
                answered = response.status_code
            if 200 <= answered < 300:
                self.webhooks.delivered(delivery.id)
                log.info("webhook %s for task %s delivered", delivery.id, delivery.job_id)
                return True
            error = f"the receiver answered HTTP {answered}"
        except LookupError as exc:
            self.webhooks.give_up(delivery.id, str(exc))
            return False
        except (httpx.HTTPError, ImageInputError) as exc:
            error = f"could not reach the receiver: {exc}"
        except Exception as exc:  # noqa: BLE001 - a sender thread must record every outcome
            if is_database_outage(exc):
                raise  # nothing can be recorded now; the delivery's lease sends it again
            log.exception("webhook %s: unexpected error", delivery.id)
            error = f"internal error: {type(exc).__name__}"
        if delivery.attempts >= self.settings.webhook_max_attempts:
            self.webhooks.give_up(delivery.id, error)
            log.error(
                "webhook %s for task %s: giving up after %d attempts: %s",
                delivery.id,
                delivery.job_id,
                delivery.attempts,
                error,
            )
        else:
            delay = retry_delay_s(delivery.attempts, self.settings.webhook_retry_base_s)
            self.webhooks.retry(delivery.id, error, delay)
            log.warning("webhook %s for task %s: %s; retrying in %.0fs", delivery.id, delivery.job_id, error, delay)
        return False
