"""Fetch reference images from the internet without becoming an SSRF proxy.

Every connection, including each redirect hop, resolves the host name once, checks every
address DNS returned against the policy and then connects to exactly that checked
address, so a name cannot re-resolve to a private address between check and use.

A fetch is bounded in bytes and in time however the far end behaves: it asks for the image's own
bytes (`Accept-Encoding: identity`) and refuses a compressed answer rather than inflating it (a few
hundred bytes of nested gzip inflate to gigabytes before any size check could see them), and it gives
up once `total_timeout_s` has passed, however steadily a slow server drips.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from seqdream.images.decode import ImageInputError
from seqdream.net.addresses import IPAddress, Network, refusal
from seqdream.numbers import ascii_int


@dataclass(frozen=True)
class FetchPolicy:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    total_timeout_s: float = 60.0  # for the whole fetch, redirects included; checked before each read
    retry_waits_s: tuple[float, ...] = (0.5, 2.0)  # before each further try of a request that failed for now
    max_bytes: int = 30 * 1024 * 1024
    max_redirects: int = 5
    allowed_networks: tuple[Network, ...] = field(default_factory=tuple)

    def check_address(self, address: IPAddress) -> None:
        """Refuse an address the policy does not allow (an ImageInputError saying why)."""
        reason = refusal(address, self.allowed_networks)
        if reason is not None:
            raise ImageInputError(reason)


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ImageInputError(f"host {host!r} could not be resolved ({exc.strerror})") from exc
    except UnicodeError as exc:
        raise ImageInputError(f"host {host!r} is not a valid host name ({exc})") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore network backend that only dials addresses the policy allows."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve(host, port)
        for address in addresses:
            self.policy.check_address(address)
        return super().connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)


class GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__()
        # Same pool httpx builds by default, dialling through the guarded backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_GuardedBackend(policy),
        )


_ASKED = {"Accept": "image/*", "Accept-Encoding": "identity"}
RETRIED_STATUSES = (429, 502, 503, 504)  # a server or its proxy busy for now


class _ForNow(ImageInputError):
    """A failure that may pass: a status of RETRIED_STATUSES, a connection that failed or dropped."""


def fetch_image_bytes(url: str, policy: FetchPolicy) -> bytes:
    """GET `url` following at most `max_redirects` redirects, each one re-checked, within the policy's
    bytes and time; a request that fails for now (see _ForNow) is tried again after each of the
    policy's `retry_waits_s`."""
    deadline = time.monotonic() + policy.total_timeout_s

    def left() -> float:
        """Seconds left to the whole fetch; an ImageInputError once there are none."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ImageInputError(f"took longer than {policy.total_timeout_s:g} s in all")
        return remaining

    with httpx.Client(transport=GuardedTransport(policy), follow_redirects=False) as client:
        try:
            current = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ImageInputError(f"is not a valid URL ({exc})") from exc
        for _hop in range(policy.max_redirects + 1):
            if current.scheme not in ("http", "https"):
                raise ImageInputError(f"redirects to an unsupported scheme {current.scheme!r}")
            for tries, wait in enumerate((*policy.retry_waits_s, None), start=1):
                try:
                    got = _get(client, current, policy, left)
                    break
                except _ForNow as exc:
                    if wait is None or left() <= wait:
                        raise ImageInputError(f"{exc} ({tries} tries)") from exc
                    time.sleep(wait)
            if isinstance(got, bytes):
                return got
            current = got
        raise ImageInputError(f"redirected more than {policy.max_redirects} times")


def _get(client: httpx.Client, url: httpx.URL, policy: FetchPolicy, left: Callable[[], float]) -> bytes | httpx.URL:
    """One request: the image's bytes, or where it redirects to."""
    timeout = httpx.Timeout(min(policy.read_timeout_s, left()), connect=policy.connect_timeout_s)
    try:
        with client.stream("GET", url, headers=_ASKED, timeout=timeout) as response:
            if response.is_redirect:
                try:
                    return url.join(response.headers["location"])
                except httpx.InvalidURL as exc:
                    raise ImageInputError(f"redirects to an invalid URL ({exc})") from exc
            if response.status_code in RETRIED_STATUSES:
                raise _ForNow(f"answered HTTP {response.status_code}")
            if response.status_code != 200:
                raise ImageInputError(f"answered HTTP {response.status_code}")
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise ImageInputError(
                    f"was sent compressed (Content-Encoding: {encoding[:60]}); serve the image's own bytes"
                )
            declared = ascii_int(response.headers.get("content-length"))
            if declared is not None and declared > policy.max_bytes:
                raise ImageInputError(f"is {declared} bytes; the limit is {policy.max_bytes} bytes")
            body = bytearray()
            for chunk in response.iter_raw():  # the bytes as sent: nothing is inflated
                body.extend(chunk)
                if len(body) > policy.max_bytes:
                    raise ImageInputError(f"is larger than the limit of {policy.max_bytes} bytes")
                left()
            return bytes(body)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
        raise _ForNow(f"could not be fetched ({str(exc) or type(exc).__name__})") from exc
    except httpx.TimeoutException as exc:
        raise ImageInputError(f"timed out ({type(exc).__name__})") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ImageInputError(f"could not be fetched ({exc})") from exc
