"""The inference server's HTTP face: ``POST /predict``, ``/healthz``, ``/readyz``,
``/metrics``. Errors are Cairn's one envelope, ``{"error": {"code", "message",
"details"}}``, with the status its code maps to."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from pydantic_core import to_json
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn._version import __version__
from cairn.domain.errors import CairnError
from cairn.schemas.base import ErrorOut
from cairn.schemas.production import PredictIn, PredictOut
from cairn.serving.engine import InferenceServer
from cairn.serving.loop_budget import DEFAULT_BUDGET_S, LoopBudget
from cairn.serving.metrics import CONTENT_TYPE
from cairn.serving.predict_door import PredictDoor, Refuse, error_json, send_json

log = logging.getLogger("cairn.serve")
MAX_BODY_BYTES = 32 << 20

_STATUS = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "already_exists": 409,
    "too_large": 413,
    "unavailable": 503,
    "schema_outdated": 503,
}
_REF = "#/components/schemas/{model}"
_CODE = {400: "invalid", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad rows (`invalid`); `details.field` names it"},
    413: {"model": ErrorOut, "description": "Too large (`too_large`)"},
    500: {"model": ErrorOut, "description": "Internal error; `details.incident` finds the log"},
    503: {"model": ErrorOut, "description": "No model loaded yet (`unavailable`)"},
}


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=_STATUS.get(code, 500))


def create_serving_app(
    server: InferenceServer,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    loop_budget_s: float = DEFAULT_BUDGET_S,
) -> ASGIApp:
    """The app around one ``InferenceServer``; its lifespan starts and stops it.
    ``loop_budget_s``: how long the event loop may spend predicting (0: never)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        server.start()
        yield
        server.stop()

    app = FastAPI(
        title="Cairn inference server",
        version=__version__,
        description="Predictions stamped with the model version that made them.",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.server = server

    # Probes and metrics answer on the event loop. Predictions run in the server's
    # thread pool, except short ones while the loop has time to spare (loop_budget.py):
    # a liveness check never waits long behind them.
    budget = LoopBudget(loop_budget_s)

    async def answer(raw: bytes) -> bytes:
        body = _parse(raw)
        if budget.allows(len(raw), server.expected_s()):
            with budget.spending():
                return to_json(server.predict(body))
        loop = asyncio.get_running_loop()
        return to_json(await loop.run_in_executor(server.workers, server.predict, body))

    _document_predict(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", responses={503: {"model": ErrorOut}})
    async def readyz() -> JSONResponse:
        """Every variant that answers has a model loaded; what each serves now."""
        status = server.status()
        if not server.ready():
            return _error("unavailable", "no model is loaded yet", {"variants": status})
        return JSONResponse({"status": "ready", "variants": status})

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format: requests, errors and latency by model version."""
        return Response(server.metrics.render(), media_type=CONTENT_TYPE)

    refuse = _install_errors(app, server)
    # POST /predict is answered by PredictDoor in front of FastAPI, which never sees it
    # (predict_door.py); _document_predict writes its OpenAPI entry.
    return _BodyLimit(PredictDoor(app, answer=answer, refuse=refuse), max_body_bytes)


def _parse(raw: bytes) -> PredictIn:
    try:
        return PredictIn.model_validate_json(raw)
    except ValidationError as exc:  # answered by the handler of FastAPI's own refusals
        raise RequestValidationError(exc.errors()) from None


def _document_predict(app: FastAPI) -> None:
    """``POST /predict`` in the OpenAPI document, as FastAPI would write it for a route
    taking ``PredictIn`` and answering ``PredictOut``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI keeps it: this adds to it once
        if "/predict" not in schema["paths"]:
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, found in (
                ("PredictIn", PredictIn.model_json_schema(ref_template=_REF)),
                (
                    "PredictOut",
                    PredictOut.model_json_schema(ref_template=_REF, mode="serialization"),
                ),
            ):
                components.update(found.pop("$defs", {}))
                components[name] = found
            components.setdefault("ErrorOut", ErrorOut.model_json_schema(ref_template=_REF))
            errors = {
                str(status): {"description": spec["description"], "content": _json_of("ErrorOut")}
                for status, spec in _ERRORS.items()
            }
            schema["paths"]["/predict"] = {
                "post": {
                    "summary": "Predict",
                    "description": "Predict rows given as `records`, `columns` or `instances`. "
                    "The answer names the model version (and endpoint variant) that made "
                    "the predictions.",
                    "operationId": "predict_predict_post",
                    "requestBody": {"required": True, "content": _json_of("PredictIn")},
                    "responses": {
                        "200": {
                            "description": "Successful Response",
                            "content": _json_of("PredictOut"),
                        },
                        **errors,
                    },
                }
            }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _json_of(model: str) -> dict[str, Any]:
    """An OpenAPI content entry: JSON of a schema in the document's components."""
    return {"application/json": {"schema": {"$ref": _REF.format(model=model)}}}


def _install_errors(app: FastAPI, server: InferenceServer) -> Refuse:
    """Cairn's error envelope for every route; returns the same answers for PredictDoor."""

    async def cairn_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CairnError)
        if _STATUS.get(exc.code, 500) >= 500 and exc.code not in ("unavailable",):
            return await unexpected(_request, exc)
        return _error(exc.code, exc.message, exc.details)

    async def validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        server.refused()
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        if first.get("type") == "json_invalid":
            where = "body"
        return _error(
            "invalid", f"{where}: {first.get('msg', 'invalid request')}", {"field": where}
        )

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = _CODE.get(exc.status_code, "internal")
        response = _error(code, str(exc.detail) if exc.status_code < 500 else "internal error")
        response.status_code = exc.status_code
        return response

    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.error("cairn serve: unhandled error, incident %s", incident, exc_info=exc)
        return _error("internal", "internal error", {"incident": incident})

    handlers = {
        CairnError: cairn_error,
        RequestValidationError: validation,
        HTTPException: http_error,
        Exception: unexpected,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)

    async def refuse(scope: Scope, exc: Exception) -> Response:
        kind = next(k for k in handlers if isinstance(exc, k))
        return await handlers[kind](Request(scope), exc)

    return refuse


class _BodyLimit:
    """Refuse a body over the limit by its Content-Length (uvicorn holds the server to
    it), or while reading a chunked one."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []  # chunked: read up to the limit, then replay it
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is over the limit of {self.max_bytes} bytes"
        await send_json(send, 413, error_json("too_large", message))
