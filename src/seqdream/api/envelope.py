"""WaveSpeed's response envelope, for successes and for every error.

Routes of other dialects (Ark, OpenAI) answer errors in their own shape: each registers its
formatter for its path prefix (`error_format`), and every layer that answers an error (route
handlers, validation, the body limit, the HTTP protocol's head limits) renders it with
`render_error`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from seqdream.dependencies import STORAGE, is_database_outage
from seqdream.numbers import BadValue, cut
from seqdream.storage import StorageError

log = logging.getLogger(__name__)
ROUTES_HINT = (
    "models are POSTed to /api/v3/bytedance/seedream-v4[/edit|/sequential|/edit-sequential] (and seedream-v4.5), "
    "results read at GET /api/v3/predictions/{id}/result; GET /openapi.json lists every route"
)
RETRY_AFTER_OUTAGE_S = 5  # what a 503 of an unavailable database or storage tells the client to wait


class JSONLine(JSONResponse):
    """JSON that ends with a newline, so replies printed one after another by curl stay apart."""

    def render(self, content: Any) -> bytes:
        return super().render(content) + b"\n"


class APIError(Exception):
    """Raise anywhere in a route to answer `status` with `message` in the envelope."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}  # e.g. Retry-After


def storage_unavailable(exc: OSError, stored: str = "", *, nothing_queued: bool = False) -> APIError:
    """The one 503 of storage that failed under a request (a full disk, a bucket that cannot be
    reached): what could not be stored, the store's public reason (never a path or an address), and
    when to try again."""
    head = f"could not store {stored}: " if stored else ""
    tail = "nothing was queued, try again shortly" if nothing_queued else "try again shortly"
    return APIError(
        503,
        f"{head}storage is unavailable ({StorageError.of(exc).reason}); {tail}",
        {"Retry-After": str(RETRY_AFTER_OUTAGE_S)},
    )


def database_unavailable(*, nothing_queued: bool = False) -> APIError:
    """The one 503 of a database outage under a request, and when to try again (`nothing_queued`: a
    submit, whose task was not recorded)."""
    tail = "nothing was queued, try again shortly" if nothing_queued else "try again shortly"
    return APIError(503, f"the database is unavailable; {tail}", {"Retry-After": str(RETRY_AFTER_OUTAGE_S)})


def prediction_not_found(job_id: str) -> APIError:
    """The one 404 of a task id the caller has no task of (an id from a URL, quoted cut short)."""
    return APIError(404, f"prediction not found: {cut(job_id, 64)}")


def success(data: Any) -> dict[str, Any]:
    return {"code": 200, "message": "success", "data": data}


def error_response(status: int, message: str) -> JSONResponse:
    return JSONLine({"code": status, "message": message, "data": None}, status_code=status)


ErrorFormat = Callable[[int, str], JSONResponse]
_FORMATS: dict[str, ErrorFormat] = {}  # path prefix -> the error shape of the dialect served there


def error_format(prefix: str) -> Callable[[ErrorFormat], ErrorFormat]:
    """Register a dialect's error shape for the routes under `prefix` (WaveSpeed's envelope elsewhere)."""

    def register(formatter: ErrorFormat) -> ErrorFormat:
        _FORMATS[prefix] = formatter
        return formatter

    return register


def render_error(path: str, status: int, message: str) -> JSONResponse:
    """An error as the dialect of `path` shapes it: every layer answers errors through here (route
    handlers, validation, the body and head limits), so a client reads every error of its dialect."""
    formatter: ErrorFormat = _by_prefix(_FORMATS, path, error_response)
    return formatter(status, message)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [part for part in loc if part not in ("body", "query", "path")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def validation_message(error: Any) -> str:
    """What one of pydantic's errors says, without the "Value error, " it puts before a validator's own words."""
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")


def describe_validation_error(exc: RequestValidationError | ValidationError, rules: dict[str, str]) -> str:
    """One line per problem: the field, what was wrong and what is allowed (a request's, or the
    command line's, which checks its options with the same request models)."""
    lines = []
    for error in exc.errors():
        where = _location(tuple(error.get("loc", ())))
        if error.get("type") == "json_invalid":  # where the decoder stopped, and why
            lines.append(not_json((error.get("ctx") or {}).get("error"), error.get("loc", (None,))[-1]))
            continue
        if error.get("type") in ("model_attributes_type", "dict_type", "model_type"):
            hint = " sent with 'Content-Type: application/json'" if isinstance(error.get("input"), bytes) else ""
            lines.append(f"body: must be a JSON object{hint}")
            continue
        message = validation_message(error)
        field = where.split("[")[0].split(".")[0]
        rule = rules.get(field)
        if where == "body" and error.get("type") == "missing":
            lines.append(
                "body: is empty; send a JSON object with the task's fields and 'Content-Type: application/json'"
            )
            continue
        if where == "body":  # a whole-request rule already names its field
            lines.append(message)
            continue
        lines.append(f"{where}: {message}" + (f" (allowed: {rule})" if rule else ""))
    return "; ".join(lines) or "invalid request"


def _by_prefix(table: dict[str, Any], path: str, default: Any) -> Any:
    """The entry of the longest prefix of `path` in `table`."""
    matching = [prefix for prefix in table if path.startswith(prefix)]
    return table[max(matching, key=len)] if matching else default


_UNREADABLE_BODY = "There was an error parsing the body"  # FastAPI's words for a body json.loads raised on


def not_json(reason: str | None = None, position: object = None) -> str:
    at = f" at character {position}" if isinstance(position, int) else ""
    return "body: is not valid JSON" + (f" ({reason}{at})" if reason else "")


def unreadable_body(cause: BaseException | None) -> str:
    """Why a JSON body could not be decoded, from what `json.loads` raised (any of it: a deep nest
    raises RecursionError, not a ValueError)."""
    if isinstance(cause, json.JSONDecodeError):
        return not_json(cause.msg, cause.pos)
    if isinstance(cause, RecursionError):
        return not_json("its arrays or objects are nested too deeply")
    if isinstance(cause, UnicodeDecodeError):
        return f"body: is not UTF-8 text (byte {cause.start} cannot be decoded)"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return not_json("a number in it has more than 4300 digits")
    return not_json()


def install_error_handlers(app: FastAPI, rules_by_prefix: dict[str, dict[str, str]]) -> None:
    """`rules_by_prefix`: what each field allows, by path prefix (the longest matching one wins),
    since the same field name can mean different things on different routes. Errors take the shape
    of the route's dialect (`error_format`)."""

    def respond(request: Request, status: int, message: str) -> JSONResponse:
        return render_error(request.url.path, status, message)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        response = respond(request, exc.status, exc.message)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        rules = _by_prefix(rules_by_prefix, request.url.path, {})
        return respond(request, 400, describe_validation_error(exc, rules))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":  # no such route: say which there are
            message = f"no route {request.method} {request.url.path[:200]}; {ROUTES_HINT}"
        if message == _UNREADABLE_BODY:  # FastAPI names no cause: the JSON decoder's exception does
            message = unreadable_body(exc.__cause__)
        if message.startswith("Part exceeded maximum size"):  # Starlette's multipart limit names no field
            message = (
                "multipart: a text field is larger than the 1 MiB a text part may carry "
                "(send images as file parts; a prompt is at most 10000 characters)"
            )
        return respond(request, exc.status_code, message)

    @app.exception_handler(BadValue)
    async def _bad_value(request: Request, exc: BadValue) -> JSONResponse:
        return respond(request, 400, str(exc))

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> JSONResponse:
        STORAGE.failed(exc)  # one log line per outage
        return await _api_error(request, storage_unavailable(exc))

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # Handled here, not by the catch-all below: Starlette re-raises what reaches that one, and the
        # server then logs a traceback per request. An outage is logged once, where the session failed.
        if is_database_outage(exc):
            return await _api_error(request, database_unavailable())
        log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return respond(request, 500, "internal error; the server log has the details")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return respond(request, 500, "internal error; the server log has the details")
