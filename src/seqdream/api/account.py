"""The caller's account: credits left (WaveSpeed's balance routes) and usage per day and model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from seqdream.api.deps import Caller, CallerDep, ServicesDep
from seqdream.api.envelope import success
from seqdream.db import ApiKey
from seqdream.db.models import utcnow
from seqdream.numbers import day_span
from seqdream.services import Services
from seqdream.tenancy.usage import MAX_DAYS, USAGE_DAYS, day_range, totals, usage

router = APIRouter(prefix="/api/v3", tags=["account"])


def _balance(services: Services, caller: Caller) -> dict[str, Any]:
    key = None
    if caller.key_id is not None:
        with services.db.session() as session:
            key = session.get(ApiKey, caller.key_id)
    credits = key.credits if key is not None else None
    # WaveSpeed reports dollars; here one credit is one image, and a key without credits is unmetered.
    return {"balance": credits, "currency": "credits", "metered": credits is not None}


@router.get("/balance", summary="Credits left to the calling key (null when it is unmetered)")
@router.get("/account/balance", summary="Same as /balance")
async def balance(caller: CallerDep, services: ServicesDep) -> dict[str, Any]:
    return success(await run_in_threadpool(_balance, services, caller))


@router.get("/usage", summary="The calling key's tasks, images and model seconds per day and model")
async def get_usage(
    caller: CallerDep,
    services: ServicesDep,
    start: Annotated[
        str | None, Query(alias="from", description="first day, YYYY-MM-DD (UTC); default: 30 days ago")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", description="last day, YYYY-MM-DD (UTC), included; default: today")
    ] = None,
) -> dict[str, Any]:
    first, last = day_span(start, end, utcnow().date(), default_days=USAGE_DAYS, max_days=MAX_DAYS)

    def read() -> list[Any]:
        with services.db.session() as session:
            return usage(session, *day_range(first, last), api_key_id=caller.key_id or "").get(caller.key_id or "", [])

    rows = await run_in_threadpool(read)
    return success(
        {"from": first.isoformat(), "to": last.isoformat(), "days": [row.as_dict() for row in rows]}
        | {"totals": totals(rows)}
    )
