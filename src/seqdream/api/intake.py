"""Submit-time handling of `images`: validate inline data, resolve this service's own URLs.

A URL this service handed out (an upload's download URL, an output of an earlier task, an
example file) is read from storage, never fetched: whichever host name the client used for us.
A reference that can never load (an own URL that is unknown or expired, a literal address the
fetch policy refuses) is a 400 here rather than a failed job later.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from seqdream.api.envelope import APIError, storage_unavailable
from seqdream.api.examples import example_file
from seqdream.api.schemas import MAX_URL_CHARS
from seqdream.images.decode import (
    ImageInputError,
    check_header,
    decode_base64_image,
    looks_like_url,
    open_image,
    reference_limits,
)
from seqdream.jobs.request import Reference
from seqdream.locations import OWN_EXAMPLE, OWN_OUTPUT, OWN_UPLOAD, input_key, output_key_from_url_parts
from seqdream.net.addresses import HostError, is_loopback_name, normalise_host, refusal, url_host
from seqdream.services import Services
from seqdream.storage import BlobNotFound

# Named in every refusal of a private address: how an operator lets a local receiver through.
_ALLOW_HINT = " (an operator can allow a network with SEQDREAM_FETCH_ALLOW_NETWORKS)"
_UPLOAD_HINT = (
    "; a file on your machine is uploaded first (POST /api/v3/media/upload/binary with a multipart 'file'),"
    " then sent as the URL that answers"
)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def own_path(url: str, bases: list[str]) -> str | None:
    """The path below our root if `url` points at this service, else None.

    Ours: the same scheme, host and port as one of `bases` (the request's and the configured public
    base), or a loopback host on the port the request came in on."""
    try:
        parts = urlsplit(url)
        host, address = normalise_host(url_host(parts))
        port = parts.port or _default_port(parts.scheme)
    except (HostError, ValueError):  # not a host or port we could be reached at
        return None
    loopback = is_loopback_name(host) or (address is not None and (address.is_loopback or address.is_unspecified))
    for base in bases:
        ours = urlsplit(base)
        our_port = ours.port or _default_port(ours.scheme)
        same = (parts.scheme, host, port) == (ours.scheme, (ours.hostname or "").lower(), our_port)
        if same or (loopback and port == our_port):
            path = unquote(parts.path)
            prefix = ours.path.rstrip("/")
            return path[len(prefix) :] if prefix and path.startswith(prefix) else path
    return None


@dataclass(frozen=True)
class OwnImage:
    """An image this service handed out: in storage (`key`; `upload`: a client's upload, held to
    today's reference limits), or a file of the loaded model's examples (`data`, `suffix`)."""

    key: str | None = None
    upload: bool = False
    data: bytes | None = None
    suffix: str = ""


def own_image(path: str, label: str, services: Services) -> OwnImage | None:
    """What one of our own paths names (submit and verify read it this way, never over the network);
    None when the path is not one of ours, a 400 when it is ours but gone."""
    if match := OWN_UPLOAD.match(path):
        upload = services.uploads.get_ready(match["id"])
        if upload is None:
            raise APIError(400, f"{label}: no completed upload with id {match['id']} (it may have expired)")
        return OwnImage(key=upload.blob_key, upload=True)
    if match := OWN_OUTPUT.match(path):
        key = output_key_from_url_parts(match["job"], match["name"])
        if key is None or not services.blobs.exists(key):
            raise APIError(400, f"{label}: no stored output {match['job']}/{match['name']} (it may have expired)")
        return OwnImage(key=key)
    if match := OWN_EXAMPLE.match(path):
        found = example_file(services.settings.model, match["name"])
        if found is None:
            raise APIError(400, f"{label}: the loaded model has no example file {match['name']!r}")
        return OwnImage(data=found.read_bytes(), suffix=found.suffix)
    return None


def _own_source(path: str, label: str, job_id: str, index: int, services: Services) -> Reference | None:
    """The stored source behind one of our own paths (an example file is copied in with the task's inputs)."""
    own = own_image(path, label, services)
    if own is None:
        return None
    if own.key is None:
        assert own.data is not None
        return Reference(blob=_store(services, input_key(job_id, index, own.suffix), own.data, label))
    if own.upload:
        _check_stored(services, own.key, label)
    return Reference(blob=own.key)


def not_an_image(value: str, label: str, exc: ImageInputError) -> APIError:
    """The 400 for a value that is not a URL and does not decode as an image: a path on the client's
    machine is named so, with how to upload it (base64 may start with "/" too: "/9j/" is a JPEG)."""
    if _looks_like_a_path(value):
        return APIError(400, f"{label}: {value[:200]!r} looks like a path on your machine{_UPLOAD_HINT}")
    return APIError(400, f"{label} {exc}")


def refuse_other_schemes(value: str, label: str) -> None:
    """ftp://, file:// and the like: named as such, not reported as bad base64."""
    if value.startswith(("ftp://", "file://", "gopher://")) or "://" in value[:16]:
        raise APIError(400, f"{label}: only http(s) URLs, data: URIs and base64 are accepted{_UPLOAD_HINT}")


def _looks_like_a_path(value: str) -> bool:
    """A local file's path ("/home/me/cat.png", "./cat.png", "~/cat.png", "C:\\cat.png"), not its contents."""
    return value.startswith(("/", "./", "../", "~/", "~\\")) or (len(value) > 2 and value[1:3] in (":\\", ":/"))


def _check_stored(services: Services, key: str, label: str) -> None:
    """The limits a task will apply to a stored reference, checked now (they may have changed since)."""
    settings = services.settings
    try:
        check_header(services.blobs.get(key), **reference_limits(settings))
    except BlobNotFound:
        raise APIError(400, f"{label}: the upload is no longer stored (it may have expired)") from None
    except ImageInputError as exc:
        raise APIError(400, f"{label} {exc}") from exc


def _store(services: Services, key: str, data: bytes, label: str) -> str:
    try:
        services.blobs.put(key, data)
    except OSError as exc:
        raise storage_unavailable(exc, label, nothing_queued=True) from exc
    return key


def split_url(value: str, label: str) -> SplitResult:
    """`value` split into its parts, or a 400 for one that does not split (an unclosed "[" of an IPv6 host)."""
    try:
        return urlsplit(value)
    except ValueError as exc:
        raise APIError(400, f"{label}: {value[:200]!r} is not a valid URL ({exc})") from exc


def check_remote_url(value: str, label: str, services: Services) -> str:
    """The URL as it will be dialled (its host normalised as browsers do), or a 400 now for one the
    fetch policy can never allow: a name that cannot be valid, a loopback name, a literal private
    address in any notation."""
    if len(value) > MAX_URL_CHARS:
        raise APIError(400, f"{label}: the URL is longer than {MAX_URL_CHARS} characters")
    parts = split_url(value, label)
    try:
        port = parts.port
        host, address = normalise_host(url_host(parts))
    except HostError as exc:
        raise APIError(400, f"{label}: {value[:200]!r}: {exc}") from exc
    except ValueError as exc:  # a port out of range or not a number
        raise APIError(400, f"{label}: {value[:200]!r} is not a valid URL ({exc})") from exc
    if port == 0:  # a wildcard for a listener: nothing can be dialled there
        raise APIError(400, f"{label}: {value[:200]!r} is not a valid URL (port 0 cannot be connected to)")
    if is_loopback_name(host) and refusal(ipaddress.IPv4Address("127.0.0.1"), services.settings.allowed_networks):
        raise APIError(400, f"{label}: {value[:200]!r} points to a loopback address, which is not allowed{_ALLOW_HINT}")
    if address is not None:
        try:
            services.fetch_policy.check_address(address)
        except ImageInputError as exc:
            raise APIError(400, f"{label}: {value[:200]!r} {exc}{_ALLOW_HINT}") from exc
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def accept_webhook(url: str | None, services: Services) -> str | None:
    """The webhook URL a task will be POSTed to, checked like a reference URL."""
    if url is None or not url.strip():
        return None
    url = url.strip()
    if split_url(url, "webhook").scheme not in ("http", "https"):
        raise APIError(400, f"webhook: {url[:200]!r} is not an http(s) URL")
    return check_remote_url(url, "webhook", services)


def accept_images(images: list[str], job_id: str, services: Services, bases: list[str]) -> list[Reference]:
    """Turn the request's strings into references: stored blobs, or URLs to fetch when the job runs."""
    settings = services.settings
    sources: list[Reference] = []
    for index, value in enumerate(images):
        label = f"images[{index}]"
        value = value.strip()
        if looks_like_url(value):
            path = own_path(value, bases) if len(value) <= MAX_URL_CHARS else None
            own = _own_source(path, label, job_id, index, services) if path is not None else None
            if own is None:
                own = Reference(url=check_remote_url(value, label, services))
            sources.append(own)
            continue
        refuse_other_schemes(value, label)
        try:
            data = decode_base64_image(value)
            image = open_image(data, **reference_limits(settings))
        except ImageInputError as exc:
            raise not_an_image(value, label, exc) from exc
        key = input_key(job_id, index, (image.format or "bin").lower())
        sources.append(Reference(blob=_store(services, key, data, label)))
    return sources
