"""Request size limit, as plain ASGI middleware (no per-request task overhead)."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.api.errors import envelope


def is_streamed_upload(scope: Scope) -> bool:
    """Bodies streamed to the blob store, never buffered, so any size is fine:
    ``PUT /runs/{id}/artifacts/{path}``, ``PUT /blobs/{digest}``, ``POST /blobs/bundle``
    and ``PATCH /uploads/{id}``."""
    path: str = scope.get("path", "")
    method = scope.get("method")
    if method == "PUT":
        return path.startswith("/api/v1/blobs/") or (
            path.startswith("/api/v1/runs/") and "/artifacts/" in path[len("/api/v1/runs/") :]
        )
    if method == "POST":
        return path == "/api/v1/blobs/bundle"
    return method == "PATCH" and path.startswith("/api/v1/uploads/")


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or while streaming.

    Uploads of bytes are exempt: they stream to the blob store and may be any size.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_streamed_upload(scope):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        if declared is not None:
            await self.app(scope, receive, send)  # the server enforces Content-Length
            return
        # No length given (chunked): read up to the limit, then replay what was read.
        messages: list[Message] = []
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
        body: dict[str, Any] = envelope(
            "too_large",
            f"the request body is over the limit of {self.max_bytes} bytes",
            {"limit": "max_request_bytes", "max": self.max_bytes},
        )
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
