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
# Ark's and OpenAI's routes answer errors in their own shape: {"error": {"message": ..., ...}}.
DIALECT_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message"],
            "properties": {
                "message": {"type": "string"},
                "code": {"type": ["string", "null"]},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
            },
        }
    },
}
DIALECT_PREFIXES = ("/api/v3/images/", "/v1/")
ERRORS = {
    "400": "Bad input: the message names the field and what is allowed",
    "401": "Missing, invalid or revoked API key",
    "404": "Unknown task, file or route",
    "413": "Body or upload too large",
    "415": "Not an image, or an unsupported image format",
    "503": "Storage or database unavailable; nothing was queued",
    "504": "The images were not ready within the sync timeout; the task keeps running",
}


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    # Every submit validates its input; FastAPI marks most with a 422, a hand-parsed form has none.
    statuses = ["400"] if "422" in operation.get("responses", {}) or method == "post" else []
    if operation.get("security"):
        statuses.append("401")
    if "{" in path:
        statuses.append("404")
    if method in ("post", "put"):
        statuses += ["413", "415", "503"]
    if path.startswith(DIALECT_PREFIXES):
        statuses.append("504")
    return statuses


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE
        components["schemas"]["DialectError"] = DIALECT_ERROR
        for name in ("HTTPValidationError", "ValidationError"):
            components["schemas"].pop(name, None)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                statuses = _statuses(path, method, operation)
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                shape = "DialectError" if path.startswith(DIALECT_PREFIXES) else "ErrorEnvelope"
                for status in statuses:
                    responses[status] = {
                        "description": ERRORS[status],
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
