"""Create, list, revoke and verify API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update

from seqdream.db import ApiKey, Database, rows_changed
from seqdream.db.models import utcnow

KEY_PREFIX = "sqd_"


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

    def create(self, name: str) -> CreatedKey:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=uuid.uuid4().hex,
            name=name,
            prefix=secret[:10],
            key_hash=hash_secret(secret),
            created_at=utcnow(),
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

    def verify(self, secret: str) -> ApiKey | None:
        with self.db.session() as session:
            key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(secret)))
        if key is None or key.revoked_at is not None:
            return None
        return key
