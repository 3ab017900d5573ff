"""The secret that signs the caller's webhooks (WaveSpeed's `GET /api/v3/webhook/secret`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from seqdream.api.deps import Caller, get_services, require_key
from seqdream.api.envelope import success
from seqdream.services import Services

router = APIRouter(prefix="/api/v3")


@router.get("/webhook/secret", tags=["webhooks"], summary="The secret that signs your webhooks")
async def webhook_secret(
    caller: Caller = Depends(require_key), services: Services = Depends(get_services)
) -> dict[str, Any]:
    """`whsec_<key>`: verify `webhook-signature` with HMAC-SHA256 keyed by the part after `whsec_`."""
    secret = await run_in_threadpool(services.webhooks.secret, caller.key_id or "")
    return success({"secret": secret})
