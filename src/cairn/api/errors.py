"""The one mapping from error codes to HTTP status, and the one envelope on the wire.

Every error response is ``{"error": {"code", "message", "details"}}``. A 500 never echoes
internals: its message is fixed and the details carry only a request id to find the log.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cairn.domain.errors import CairnError

log = logging.getLogger("cairn.api")

STATUS_BY_CODE: dict[str, int] = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "already_exists": 409,
    "conflict": 409,
    "method_not_allowed": 405,
    "too_large": 413,
    "rate_limited": 429,
    "internal": 500,
    "corrupt": 500,
    "schema_outdated": 503,
    "unavailable": 503,
}
_CODE_BY_STATUS = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
}


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, 500)


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(code: str, message: str, details: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse(envelope(code, message, details), status_code=status_for(code))


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _cairn_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CairnError)
    response = error_response(**exc.to_dict())
    wait = exc.details.get("retry_after_s")
    if exc.code == "rate_limited" and isinstance(wait, int):
        response.headers["Retry-After"] = str(wait)
    return response


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            # A body that is not JSON at all: the location is a character offset.
            "field": "body" if e.get("type") == "json_invalid" else _field_of(tuple(e["loc"])),
            "message": str(e.get("msg", "")),
        }
        for e in exc.errors()[:20]
    ]
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    return error_response(
        "invalid",
        f"{first['field']}: {first['message']}",
        {"field": first["field"], "problems": problems},
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_BY_STATUS.get(exc.status_code, "internal")
    message = str(exc.detail) if exc.status_code < 500 else "internal error"
    response = JSONResponse(envelope(code, message), status_code=exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    log.error("unhandled error, incident %s", incident, exc_info=exc)
    return error_response("internal", "internal error", {"incident": incident})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CairnError, _cairn_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
