"""Where things live: blob keys in storage and the public URLs that serve them, in one place.

The API builds URLs with these functions and recognises its own URLs (given back as references)
with the matching patterns, so the two can never drift apart.
"""

from __future__ import annotations

import re

MEDIA = "/api/v3/media"
EXAMPLE_FILES = "/api/v3/examples/files"
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"  # no "..", no hidden names
_KEY_PART = re.compile(rf"^{_PART}$")


# ---- blob keys ------------------------------------------------------------------------------
def output_key(job_id: str, index: int, fmt: str, attempt: str) -> str:
    """Output `index` of one attempt at a job: a worker that lost its job to another (it stalled past
    its lease) writes under its own attempt's names, so it can never change the files that were delivered."""
    return f"outputs/{job_id}/{index}-{attempt}.{fmt}"


def input_key(job_id: str, index: int, extension: str) -> str:
    """A reference the request carried inline (base64, an example file): owned by its job."""
    return f"inputs/{job_id}/{index}.{extension.lstrip('.')}"


def upload_key(upload_id: str, filename: str) -> str:
    return f"uploads/{upload_id}/{filename}"


def is_safe_name(name: str) -> bool:
    """A name usable as one path part: no separators, no "..", no hidden names, at most 128 characters."""
    return bool(_KEY_PART.match(name))


def output_key_from_url_parts(job_id: str, name: str) -> str | None:
    """The blob key behind `/media/outputs/{job_id}/{name}`, or None for names that are no key part."""
    return f"outputs/{job_id}/{name}" if is_safe_name(job_id) and is_safe_name(name) else None


# ---- public URLs ----------------------------------------------------------------------------
def result_url(base: str, job_id: str) -> str:
    return f"{base}/api/v3/predictions/{job_id}/result"


def output_url(base: str, key: str) -> str:
    return f"{base}{MEDIA}/{key}"  # keys are outputs/{job_id}/{name}


def upload_url(base: str, upload_id: str, filename: str) -> str:
    return f"{base}{MEDIA}/files/{upload_id}/{filename}"


def upload_put_url(base: str, upload_id: str, token: str) -> str:
    return f"{base}{MEDIA}/uploads/{upload_id}?token={token}"


def example_file_url(base: str, name: str) -> str:
    return f"{base}{EXAMPLE_FILES}/{name}"


# ---- recognising our own URLs (paths below the service's root) --------------------------------
OWN_UPLOAD = re.compile(rf"^{MEDIA}/files/(?P<id>[0-9a-f]{{32}})/[^/]+$")
OWN_OUTPUT = re.compile(rf"^{MEDIA}/outputs/(?P<job>{_PART})/(?P<name>{_PART})$")
OWN_EXAMPLE = re.compile(rf"^{EXAMPLE_FILES}/(?P<name>[^/]+)$")
