"""The OpenAPI document as the service really behaves: bearer auth, and WaveSpeed's error envelope
with the statuses the routes answer (400, never FastAPI's default 422)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_ENVELOPE = {
    "type": "object",
    "required": ["code", "message", "data"],
    "properties": {
        "code": {"type": "integer", "description": "The HTTP status again", "example": 400},
        "message": {"type": "string", "example": "max_images: Input should be less than or equal to 14"},
        "data": {"type": "null"},
    },
}
ERRORS = {
    "400": "Bad input: the message names the field and what is allowed",
    "401": "Missing, invalid or revoked API key",
    "404": "Unknown task, file or route",
    "413": "Body or upload too large",
    "415": "Not an image, or an unsupported image format",
    "503": "Storage or database unavailable; nothing was queued",
}


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["400"] if "422" in operation.get("responses", {}) else []
    if operation.get("security"):
        statuses.append("401")
    if "{" in path:
        statuses.append("404")
    if method in ("post", "put"):
        statuses += ["413", "415", "503"]
    return statuses


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE
        for name in ("HTTPValidationError", "ValidationError"):
            components["schemas"].pop(name, None)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                statuses = _statuses(path, method, operation)
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status in statuses:
                    responses[status] = {
                        "description": ERRORS[status],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
