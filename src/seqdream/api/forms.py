"""Multipart forms that carry one file (legacy uploads, verify): parsed with tight bounds, refused in
the route's own words.

FastAPI's `UploadFile` parameter parses a form with Starlette's defaults (1000 files, 1000 fields) and
answers a text part where a file belongs with Python's words ("Expected UploadFile, received:
<class 'str'>"); a route that takes one file reads at most one, and says what to send.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from seqdream.api.envelope import APIError

MAX_FIELDS = 4  # the file and a few text parts a client may add (a name, a purpose)


def one_file_form(description: str) -> dict[str, Any]:
    """The OpenAPI request body of a form whose one file part is named `file`."""
    schema = {"type": "string", "format": "binary", "description": description}
    return {"type": "object", "required": ["file"], "properties": {"file": schema}}


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


async def one_file(request: Request, *names: str) -> UploadFile:
    """The form's one file, from the first of `names` (default "file") that is there."""
    if not is_multipart(request):
        raise APIError(400, "file: send the image as multipart/form-data, in a file part named 'file'")
    form = await request.form(max_files=1, max_fields=MAX_FIELDS)
    found = next((form[name] for name in names or ("file",) if form.get(name) is not None), None)
    if not isinstance(found, UploadFile):
        raise APIError(400, "file: send the image as a file part named 'file' (a file, not a text field)")
    return found
