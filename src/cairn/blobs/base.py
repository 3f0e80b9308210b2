"""The blob store seam: bytes addressed by their sha256, written once, verified both ways.

A ``BlobStore`` keeps immutable blobs under their digest (64 lowercase hex characters).
Writes stream in chunks of ``CHUNK`` bytes, so a file is never held whole in memory, and
are atomic: a blob is visible whole or not at all. Putting bytes that are already stored
stores nothing new. Reads are verified: the reader hashes what it hands out and raises
``CorruptBlob`` at end of file when the bytes no longer match their digest.

A digest is checked strictly before it is used to build a path or a key, so it can never
be used to reach outside the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol, runtime_checkable

from cairn.domain.errors import CorruptBlob, Invalid, NotFound
from cairn.domain.validation import is_sha256

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob: its sha256 (hex) and its size in bytes."""

    digest: str
    size: int


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed bytes. Every backend (local folder, S3) has this shape."""

    def put(self, stream: BinaryIO, *, expected_digest: str | None = None) -> BlobInfo:
        """Store what ``stream`` yields until EOF; nothing is stored if it does not match
        ``expected_digest`` (``Invalid(field="digest")``)."""
        ...

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo: ...

    def put_bytes(self, data: bytes) -> BlobInfo: ...

    def open(self, digest: str) -> BinaryIO:
        """A reader of the blob that raises ``CorruptBlob`` at EOF if the bytes are damaged."""
        ...

    def open_range(self, digest: str, start: int, length: int) -> BinaryIO:
        """A reader of ``length`` bytes from ``start`` (HTTP Range requests). A part of a
        blob cannot be checked against the whole blob's digest: this reader is unverified."""
        ...

    def exists(self, digest: str) -> bool: ...

    def modified(self, digest: str) -> float:
        """When the blob was last written or touched (seconds since the epoch)."""
        ...

    def touch(self, digest: str) -> None:
        """Mark the blob as just used, so garbage collection's grace period covers it."""
        ...

    def size(self, digest: str) -> int: ...

    def delete(self, digest: str) -> bool:
        """Remove the blob; False if it was not there."""
        ...

    def digests(self) -> Iterator[str]:
        """Every stored digest, in order; unfinished writes are never listed."""
        ...

    def batch(self) -> contextlib.AbstractContextManager[BlobBatch]:
        """Many puts made durable together: blobs become visible when the block exits
        (local folders sync once for the lot instead of once per file)."""
        ...


class BlobBatch(Protocol):
    def put(self, stream: BinaryIO, *, expected_digest: str | None = None) -> BlobInfo: ...


class BlobStoreBase:
    """What every backend shares: the conveniences built on ``put``."""

    def batch(self) -> contextlib.AbstractContextManager[BlobBatch]:
        """Backends with no cheaper way to put many blobs put them one by one."""
        return contextlib.nullcontext(self)

    def put(self, stream: BinaryIO, *, expected_digest: str | None = None) -> BlobInfo:
        raise NotImplementedError

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        """Store a file's bytes, streamed. Example: ``store.put_file("model.pkl").digest``."""
        with open(path, "rb", buffering=0) as stream:
            return self.put(stream)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store bytes already in memory. Example: ``store.put_bytes(b"hello").size == 5``."""
        return self.put(io.BytesIO(data))


class LimitedReader(io.RawIOBase):
    """At most ``length`` bytes of ``inner``, then EOF; closes ``inner`` with itself."""

    def __init__(self, inner: BinaryIO, length: int) -> None:
        super().__init__()
        self._inner = inner
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        if self._left <= 0:
            return 0
        with memoryview(buffer) as view, view.cast("B") as out:
            data = self._inner.read(min(len(out), self._left))
            n = len(data)
            out[:n] = data
        self._left -= n
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def check_digest(digest: object) -> str:
    """Return ``digest`` if it is a sha256 in lowercase hex, else raise ``Invalid``."""
    if not is_sha256(digest):
        raise Invalid("a blob digest is a sha256: 64 lowercase hex characters", field="digest")
    return digest


def is_digest(name: str) -> bool:
    """Whether a stored name is a digest (listing skips anything else)."""
    return is_sha256(name)


def blob_not_found(digest: str) -> NotFound:
    return NotFound(f"blob {digest} not found", details={"digest": digest})


def check_expected(actual: str, expected: str | None) -> None:
    """Raise ``Invalid(field="digest")`` when the bytes received are not those announced."""
    if expected is not None and actual != expected:
        raise Invalid(
            f"the bytes received hash to {actual}, not to the expected digest {expected}",
            field="digest",
            details={"expected": expected, "actual": actual},
        )


def read_chunk(stream: BinaryIO, size: int = CHUNK) -> bytes:
    """One read of at most ``size`` bytes; b"" only at EOF (a short read is not EOF)."""
    data = stream.read(size)
    if data is None:  # a non-blocking raw stream with nothing ready
        raise Invalid("the upload stream is non-blocking and had no data ready", field="stream")
    return data


class _VerifyingRaw(io.RawIOBase):
    """Hands out the inner stream's bytes, hashing them; checks the digest at EOF."""

    def __init__(self, inner: BinaryIO, digest: str) -> None:
        super().__init__()
        self._inner = inner
        self._digest = digest
        self._hash = hashlib.sha256()
        self._verified = False
        readinto = getattr(inner, "readinto", None)
        self._readinto: Callable[[memoryview], int | None] | None = (
            readinto if callable(readinto) else None
        )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        if self._verified:
            return 0
        with memoryview(buffer) as view, view.cast("B") as out:
            if self._readinto is not None:
                n = self._readinto(out) or 0
                self._hash.update(out[:n])
            else:
                data = self._inner.read(len(out))
                n = len(data)
                out[:n] = data
                self._hash.update(data)
        if n == 0:
            self._verify()
        return n

    def _verify(self) -> None:
        if self._hash.hexdigest() != self._digest:
            raise CorruptBlob(
                f"blob {self._digest} is corrupt: its bytes no longer match its digest",
                details={"digest": self._digest},
            )
        self._verified = True

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def verifying_reader(inner: BinaryIO, digest: str) -> BinaryIO:
    """Wrap a stored blob's raw stream so that reading it to EOF verifies its digest."""
    return io.BufferedReader(_VerifyingRaw(inner, digest), CHUNK)
