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


async def get_services(request: Request) -> Services:
    # async: FastAPI would run a plain function in the thread pool, a trip on every request
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


@dataclass(frozen=True)
class PresentedKey:
    """The bearer secret a request sent, not yet checked against the key ring. A submit checks it in
    the same trip to the thread pool as its queueing: one trip instead of two on the hottest path."""

    secret: str | None  # None when authentication is disabled

    def caller(self, services: Services) -> Caller:
        """The caller this secret authenticates (reads the key ring: call it off the event loop)."""
        if self.secret is None:
            return Caller(key_id=None)
        key_id = services.keys.verify(self.secret)
        if key_id is None:
            raise APIError(401, "Unauthorized: the API key is invalid or revoked")
        return Caller(key_id=key_id)


async def present_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)], services: ServicesDep
) -> PresentedKey:
    if services.settings.auth_disabled:
        return PresentedKey(secret=None)
    secret = credentials.credentials.strip() if credentials else ""
    if not secret:
        raise APIError(401, "Unauthorized: send your API key as 'Authorization: Bearer <key>'")
    return PresentedKey(secret=secret)


PresentedKeyDep = Annotated[PresentedKey, Depends(present_key)]  # a secret to check later, in a route's signature


async def require_key(presented: PresentedKeyDep, services: ServicesDep) -> Caller:
    if presented.secret is None:
        return Caller(key_id=None)
    return await run_in_threadpool(presented.caller, services)


CallerDep = Annotated[Caller, Depends(require_key)]  # the authenticated caller, in a route's signature
