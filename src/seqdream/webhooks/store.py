"""The outbox of deliveries and the per-key signing secrets, in the database."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seqdream.db import Database, Job, WebhookDelivery, WebhookSecret, rows_changed
from seqdream.db.models import utcnow
from seqdream.webhooks.signing import SECRET_PREFIX


def queue_delivery(session: Session, job: Job, url: str | None) -> None:
    """Put an ended job's delivery in the outbox, in the transaction that ends it (so neither is
    ever without the other); nothing without a webhook URL."""
    if url:
        session.add(
            WebhookDelivery(
                id=uuid.uuid4().hex,
                job_id=job.id,
                url=url,
                owner=job.api_key_id or "",
                status="pending",
                attempts=0,
                next_attempt_at=utcnow(),
                last_error="",
                created_at=utcnow(),
            )
        )


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- secrets ----------------------------------------------------------------------
    def secret(self, owner: str) -> str:
        """The signing secret of an API key id ("" without authentication), made on first use."""
        with self.db.session() as session:
            found = session.get(WebhookSecret, owner)
            if found is not None:
                return found.secret
        try:
            with self.db.session() as session:
                made = SECRET_PREFIX + secrets.token_hex(24)
                session.add(WebhookSecret(owner=owner, secret=made, created_at=utcnow()))
            return made
        except IntegrityError:  # another process made it first
            return self.secret(owner)

    # -- outbox -----------------------------------------------------------------------
    def get(self, delivery_id: str) -> WebhookDelivery | None:
        with self.db.session() as session:
            return session.get(WebhookDelivery, delivery_id)

    def for_job(self, job_id: str) -> Sequence[WebhookDelivery]:
        with self.db.session() as session:
            return session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).all()

    def pending(self) -> int:
        """Deliveries not yet made (retries included)."""
        with self.db.session() as session:
            count = session.scalar(
                select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "pending")
            )
        return int(count or 0)

    def claim_due(self, limit: int, lease_s: float) -> list[WebhookDelivery]:
        """Take up to `limit` due deliveries for `lease_s`: one sender each, across processes."""
        now = utcnow()
        claimed: list[WebhookDelivery] = []
        with self.db.session() as session:
            due = session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            ).all()
            for delivery in due:
                taken = session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == delivery.id,
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at == delivery.next_attempt_at,
                    )
                    .values(next_attempt_at=now + timedelta(seconds=lease_s), attempts=WebhookDelivery.attempts + 1)
                )
                session.commit()
                if rows_changed(taken) == 1:
                    claimed.append(session.get(WebhookDelivery, delivery.id, populate_existing=True))  # type: ignore[arg-type]
        return claimed

    def delivered(self, delivery_id: str) -> None:
        self._set(delivery_id, status="delivered", delivered_at=utcnow(), last_error="")

    def retry(self, delivery_id: str, error: str, delay_s: float) -> None:
        self._set(delivery_id, last_error=error, next_attempt_at=utcnow() + timedelta(seconds=delay_s))

    def give_up(self, delivery_id: str, error: str) -> None:
        self._set(delivery_id, status="failed", last_error=error)

    def purge_before(self, cutoff: datetime) -> int:
        """Forget deliveries that ended (delivered or given up) before `cutoff`; returns how many."""
        with self.db.session() as session:
            result = session.execute(
                delete(WebhookDelivery).where(WebhookDelivery.status != "pending", WebhookDelivery.created_at < cutoff)
            )
            return rows_changed(result)

    def _set(self, delivery_id: str, **values: object) -> None:
        with self.db.session() as session:
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))
