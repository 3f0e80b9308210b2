"""Bytes in and out of routes without holding them: request bodies read as blocking
streams in a worker thread, and blob downloads with ``Range`` support.

A full download is verified against its digest as it streams (a damaged blob ends the
response early with an error logged, so the client sees a short body, never wrong bytes
presented as whole). A ``Range`` request serves the slice asked for (one range; several
ranges get the whole file, as RFC 9110 allows); a part cannot be checked against the
whole file's digest, so clients verify what they assemble.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

import anyio.from_thread
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from cairn.blobs import CHUNK, BlobStore

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
RANGE_RESPONSES: dict[int | str, dict[str, object]] = {
    206: {"description": "The byte range asked for (``Range: bytes=a-b``)."},
    416: {"description": "The range lies outside the file; ``Content-Range: bytes */size``."},
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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


def body_stream(request: Request) -> BinaryIO:
    """The request body as a buffered blocking stream (read it in the thread pool)."""
    return io.BufferedReader(_BodyReader(request.stream()), CHUNK)


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """``(start, length)`` for one satisfiable range; None to send everything; False when
    the range lies wholly outside the file (416)."""
    if not header or size == 0:
        return None  # an empty file has no byte to range over: send it whole
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # several ranges, or another unit: the whole file is a valid answer
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0:
            return False
        start = max(0, size - suffix)
        return start, size - start
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return False
    return start, end - start + 1


def _chunks(reader: BinaryIO) -> Iterator[bytes]:
    with reader:
        while chunk := reader.read(CHUNK):
            yield chunk


def blob_response(
    request: Request,
    store: BlobStore,
    digest: str,
    size: int,
    media_type: str,
    *,
    open_whole: Callable[[], BinaryIO] | None = None,
) -> Response:
    """Stream a blob, whole (verified) or the one range the request asks for."""
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "X-Cairn-Digest": digest,
    }
    wanted = parse_range(request.headers.get("range"), size)
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != headers["ETag"]:
        wanted = None  # the client's copy is of other bytes: send the whole file
    if wanted is False:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=headers)
    if isinstance(wanted, tuple):
        start, length = wanted
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        headers["Content-Length"] = str(length)
        reader = store.open_range(digest, start, length)
        return StreamingResponse(
            _chunks(reader), status_code=206, media_type=media_type, headers=headers
        )
    headers["Content-Length"] = str(size)
    reader = open_whole() if open_whole is not None else store.open(digest)
    return StreamingResponse(_chunks(reader), media_type=media_type, headers=headers)
