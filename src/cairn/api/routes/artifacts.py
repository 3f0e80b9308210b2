"""Run artifacts: streaming upload and download, and the manifest.

Uploads are the one ``async`` route: the body is read chunk by chunk from the ASGI
stream while the blocking blob store runs in the thread pool, so a large file is never
held whole in memory.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, BinaryIO

import anyio.from_thread
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from cairn.api.deps import ActorDep, ArtifactsDep
from cairn.blobs import CHUNK
from cairn.schemas.artifacts import ArtifactOut

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

router = APIRouter(tags=["artifacts"])

_RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class _BodyReader(io.RawIOBase):
    """A blocking reader of an async request body, for use in a worker thread."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        while not self._pending:
            if self._done:
                return 0
            chunk = anyio.from_thread.run(self._next)
            if chunk is None:
                self._done = True
                return 0
            self._pending = chunk
        with memoryview(buffer) as view, view.cast("B") as out:
            n = min(len(out), len(self._pending))
            out[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


@router.put(
    "/runs/{run_id}/artifacts/{path:path}",
    response_model=ArtifactOut,
    status_code=201,
    openapi_extra=_RAW_BODY,
)
async def upload_artifact(
    run_id: str, path: str, request: Request, artifacts: ArtifactsDep, actor: ActorDep
) -> ArtifactOut:
    """Store the raw request body as the run's file ``path`` (a new version if it exists).

    ``Content-Type`` is kept as the media type (guessed from the extension when absent
    or ``application/octet-stream``); ``X-Cairn-Digest`` (sha256 hex), when given, must
    match the bytes received, else nothing is stored.
    """
    content_type = request.headers.get("content-type")
    media_type = None if content_type in (None, "", "application/octet-stream") else content_type
    expected = request.headers.get("x-cairn-digest") or None
    stream: BinaryIO = io.BufferedReader(_BodyReader(request.stream()), CHUNK)
    entry = await run_in_threadpool(
        artifacts.log_artifact,
        run_id,
        path,
        stream,
        media_type,
        expected_digest=expected,
        actor=actor,
    )
    return ArtifactOut.of(entry)


@router.get("/runs/{run_id}/artifacts", response_model=list[ArtifactOut])
def list_artifacts(
    run_id: str, artifacts: ArtifactsDep, prefix: str | None = None
) -> list[ArtifactOut]:
    """The run's artifacts by path; ``prefix`` keeps the file it names or those under it."""
    return [ArtifactOut.of(e) for e in artifacts.list_artifacts(run_id, prefix)]


@router.get("/runs/{run_id}/artifacts/{path:path}", response_class=StreamingResponse)
def download_artifact(run_id: str, path: str, artifacts: ArtifactsDep) -> StreamingResponse:
    """The file's bytes, streamed; ``ETag`` and ``X-Cairn-Digest`` carry its sha256."""
    entry, reader = artifacts.open_artifact(run_id, path)

    def chunks() -> Iterator[bytes]:
        with reader:
            while chunk := reader.read(CHUNK):
                yield chunk

    headers = {
        "Content-Length": str(entry.size),
        "ETag": f'"{entry.digest}"',
        "X-Cairn-Digest": entry.digest,
    }
    return StreamingResponse(chunks(), media_type=entry.media_type, headers=headers)
