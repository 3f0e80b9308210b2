"""The OpenAPI document says what the API really answers.

Every error is the one envelope (``ErrorOut``), sent as 400, 404, 409, 413 … — never
FastAPI's 422, which this API does not use (validation errors are 400 ``invalid``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cairn.schemas.base import ErrorOut

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad input (`invalid`); `details.field` names it"},
    404: {"model": ErrorOut, "description": "Not found (`not_found`)"},
    409: {"model": ErrorOut, "description": "Conflict (`conflict`, `already_exists`)"},
    413: {"model": ErrorOut, "description": "Too large (`too_large`)"},
    500: {"model": ErrorOut, "description": "Internal error; `details.incident` finds the log"},
    503: {"model": ErrorOut, "description": "Unavailable (`schema_outdated`, `unavailable`)"},
}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            components = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
