"""Request-scoped helpers: the services, the caller's key and the public base URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from seqdream.api.envelope import APIError
from seqdream.api.state import running
from seqdream.services import Services


def get_services(request: Request) -> Services:
    return running(request.app).services


def base_url(request: Request) -> str:
    services = running(request.app).services
    configured = services.settings.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


def own_bases(request: Request) -> list[str]:
    """Every base URL a client may use for this service: the configured one and the request's own."""
    services = running(request.app).services
    bases = [services.settings.public_base_url, str(request.base_url)]
    return [base.rstrip("/") for base in bases if base]


@dataclass(frozen=True)
class Caller:
    key_id: str | None  # None when authentication is disabled


# Declares bearer auth in the OpenAPI document (the Authorize button in /docs); errors are ours.
bearer = HTTPBearer(auto_error=False, description="An API key from `seqdream keys create`")


ServicesDep = Annotated[Services, Depends(get_services)]  # the process's services, in a route's signature


async def require_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)], services: ServicesDep
) -> Caller:
    if services.settings.auth_disabled:
        return Caller(key_id=None)
    secret = credentials.credentials.strip() if credentials else ""
    if not secret:
        raise APIError(401, "Unauthorized: send your API key as 'Authorization: Bearer <key>'")
    key_id = await run_in_threadpool(services.keys.verify, secret)
    if key_id is None:
        raise APIError(401, "Unauthorized: the API key is invalid or revoked")
    return Caller(key_id=key_id)


CallerDep = Annotated[Caller, Depends(require_key)]  # the authenticated caller, in a route's signature
