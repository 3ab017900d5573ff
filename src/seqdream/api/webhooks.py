"""The secret that signs the caller's webhooks (WaveSpeed's `GET /api/v3/webhook/secret`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from seqdream.api.deps import CallerDep, ServicesDep
from seqdream.api.envelope import success

router = APIRouter(prefix="/api/v3")


@router.get("/webhook/secret", tags=["webhooks"], summary="The secret that signs your webhooks")
async def webhook_secret(caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    """`whsec_<key>`: verify `webhook-signature` with HMAC-SHA256 keyed by the part after `whsec_`."""
    secret = await run_in_threadpool(services.webhooks.secret, caller.key_id or "")
    return success({"secret": secret})
