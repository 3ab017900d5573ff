"""Create, list, revoke and verify API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, update

from seqdream.db import ApiKey, Database, rows_changed
from seqdream.db.models import utcnow
from seqdream.numbers import CREDITS, MAX_ACTIVE, RATE_PER_MIN, WEIGHT, BadValue, top_up

KEY_PREFIX = "sqd_"
KEY_NAME_MAX = 128  # characters: the column's length (PostgreSQL refuses more, SQLite would keep it)
# Built once (every request runs it): its compiled form is then found by a cached key.
_ACTIVE_KEY = select(ApiKey.id).where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))


def hash_secret(secret: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    id: str
    name: str
    secret: str  # shown once, never stored


class KeyRing:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, **limits: int | float | None) -> CreatedKey:
        if not name.strip() or len(name) > KEY_NAME_MAX:
            raise BadValue(
                "name", f"a key's name is 1 to {KEY_NAME_MAX} characters, not all spaces ({len(name)} given)"
            )
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=uuid.uuid4().hex,
            name=name,
            prefix=secret[:10],
            key_hash=hash_secret(secret),
            created_at=utcnow(),
            **_limit_columns(limits),
        )
        with self.db.session() as session:
            session.add(key)
        return CreatedKey(id=key.id, name=name, secret=secret)

    def list(self) -> Sequence[ApiKey]:
        with self.db.session() as session:
            return session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()

    def count_active(self) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))) or 0

    def revoke(self, key_id_or_prefix: str) -> bool:
        with self.db.session() as session:
            result = session.execute(
                update(ApiKey)
                .where(
                    (ApiKey.id == key_id_or_prefix) | (ApiKey.prefix == key_id_or_prefix),
                    ApiKey.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            return rows_changed(result) > 0

    def find(self, key: str) -> ApiKey | None:
        """A key by id, prefix, or name when one active key has that name."""
        with self.db.session() as session:
            found = session.scalar(select(ApiKey).where((ApiKey.id == key) | (ApiKey.prefix == key)))
            if found is not None:
                return found
            named = session.scalars(select(ApiKey).where(ApiKey.name == key, ApiKey.revoked_at.is_(None))).all()
            return named[0] if len(named) == 1 else None

    def update_limits(self, key_id_or_prefix: str, add_credits: int = 0, **limits: int | float | None) -> ApiKey | None:
        """Set a key's limits (a None value: back to the service's default; credits None: unmetered)
        and add to its credits (negative: take some back); returns the key as it is now, or None when
        no key matches. A top-up that would leave the balance below 0 or past CREDITS.high raises
        BadValue and changes nothing, decided in the one UPDATE so concurrent submits cannot race it."""
        key = self.find(key_id_or_prefix)
        if key is None:
            return None
        with self.db.session() as session:
            values: dict[str, object] = dict(_limit_columns(limits))
            guard: list[Any] = []
            if add_credits and "credits" in values:  # set and top up in one go: plain arithmetic
                values["credits"] = top_up(values["credits"], add_credits)  # type: ignore[arg-type]
            elif add_credits:
                after = func.coalesce(ApiKey.credits, 0) + add_credits
                values["credits"], guard = after, [after >= 0, after <= CREDITS.high]
            if values:
                result = session.execute(update(ApiKey).where(ApiKey.id == key.id, *guard).values(**values))
                if guard and rows_changed(result) == 0:
                    current = session.get(ApiKey, key.id, populate_existing=True)
                    top_up(current.credits if current else 0, add_credits)  # raises with the reason
            return session.get(ApiKey, key.id, populate_existing=True)

    def verify(self, secret: str) -> str | None:
        """The id of the active key whose secret this is, or None (unknown or revoked). Read on every
        request: one indexed row, no ORM object."""
        with self.db.connection() as connection:
            return connection.execute(_ACTIVE_KEY, {"key_hash": hash_secret(secret)}).scalar()


LIMIT_COLUMNS = ("rate_per_min", "max_active", "credits", "weight")


def _limit_columns(limits: dict[str, int | float | None]) -> dict[str, int | float | None]:
    """The limits as columns, each checked against its quantity's range (BadValue when out of it)."""
    unknown = set(limits) - set(LIMIT_COLUMNS)
    if unknown:
        raise ValueError(f"unknown key limits: {sorted(unknown)}")
    for column, quantity in (("rate_per_min", RATE_PER_MIN), ("max_active", MAX_ACTIVE), ("credits", CREDITS)):
        value = limits.get(column)
        if value is not None:
            quantity.check(int(value))
    weight = limits.get("weight")
    if weight is not None and not WEIGHT[0] <= weight <= WEIGHT[1]:
        raise BadValue("weight", f"{weight} is outside {WEIGHT[0]:g}-{WEIGHT[1]:g}")
    return limits
