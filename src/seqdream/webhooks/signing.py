"""WaveSpeed's webhook signature: `v3,<hex HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{raw body}">`.

The secret is handed out as `whsec_<key>`; the HMAC key is the part after the prefix, as text."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
VERSION = "v3"
MAX_AGE_S = 300  # what WaveSpeed tells receivers to accept


def hmac_key(secret: str) -> bytes:
    return secret.removeprefix(SECRET_PREFIX).encode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(hmac_key(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return f"{VERSION},{digest.hexdigest()}"


def headers(secret: str, webhook_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }


def verify(secret: str, received: Mapping[str, str], body: bytes, now: float | None = None) -> bool:
    """What a receiver does: recompute the signature and check the timestamp is fresh."""
    try:
        timestamp = int(received["webhook-timestamp"])
        expected = sign(secret, received["webhook-id"], timestamp, body)
    except (KeyError, ValueError):
        return False
    fresh = abs((time.time() if now is None else now) - timestamp) <= MAX_AGE_S
    return fresh and hmac.compare_digest(expected, received.get("webhook-signature", ""))
