"""Access to the store's blobs, shared by artifacts, datasets and (later) models.

blobs = BlobService(db)                       # opens db.artifacts on first use
missing = blobs.missing([d1, d2])             # which of these a client must still send
info = blobs.put(stream, expected_digest=d1)  # verified: nothing stored on a mismatch
infos = blobs.put_bundle(stream)              # many small blobs in one request body

A bundle is a sequence of frames, each an ASCII header line ``<sha256 hex> <size>\\n``
followed by exactly ``size`` bytes. Every frame is verified against its digest; a
bundle is all or nothing.
"""

from __future__ import annotations

import io
import tempfile
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cairn.blobs import (
    CHUNK,
    BlobInfo,
    BlobStore,
    LocalBlobStore,
    check_digest,
    open_blob_store,
)
from cairn.blobs.base import BlobBatch
from cairn.blobs.s3 import S3BlobStore
from cairn.domain.errors import Invalid, NotFound
from cairn.store.database import Database

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAX_DIGESTS_PER_QUERY = 100_000
MAX_HEADER = 100


@dataclass(frozen=True, slots=True)
class PresignedUpload:
    token: str
    url: str
    headers: dict[str, str]


class BlobService:
    def __init__(
        self, db: Database, store: BlobStore | None = None, *, presign: bool = True
    ) -> None:
        self.db = db
        self._store = store
        self._presign = presign
        self._lock = threading.Lock()

    @property
    def store(self) -> BlobStore:
        """The blob store, opened on first use from the database's artifact location."""
        with self._lock:
            if self._store is None:
                if not self.db.artifacts:
                    raise Invalid(
                        "this store has no artifact location: a PostgreSQL store needs one "
                        "(cairn server --artifacts FOLDER_OR_S3_URI, or CAIRN_ARTIFACTS)",
                        field="artifacts",
                    )
                self._store = open_blob_store(self.db.artifacts)
            return self._store

    def staging_dir(self) -> Path:
        """Where resumable uploads gather: beside a local store (same disk), else a temp
        folder of this host (a resumed upload must then reach the same host)."""
        store = self.store
        if isinstance(store, LocalBlobStore):
            return store.root / "uploads"
        return Path(tempfile.gettempdir()) / "cairn-uploads"

    def missing(self, digests: Iterable[str]) -> list[str]:
        """The digests (checked, deduplicated, in the order given) not stored yet."""
        wanted = list(dict.fromkeys(digests))
        if len(wanted) > MAX_DIGESTS_PER_QUERY:
            raise Invalid(
                f"ask about at most {MAX_DIGESTS_PER_QUERY:,} digests at once",
                field="digests",
                details={"max": MAX_DIGESTS_PER_QUERY},
            )
        for digest in wanted:
            check_digest(digest)
        store = self.store
        missing = []
        for digest in wanted:
            if store.exists(digest):
                store.touch(digest)  # about to be referenced: garbage collection waits
            else:
                missing.append(digest)
        return missing

    def put(self, stream: BinaryIO, *, expected_digest: str | None = None) -> BlobInfo:
        return self.store.put(stream, expected_digest=expected_digest)

    def put_bundle(self, stream: BinaryIO) -> list[BlobInfo]:
        """Store every frame of a bundle, made durable together; a bad frame fails the
        request and nothing of it becomes visible."""
        stored: list[BlobInfo] = []
        with self.store.batch() as batch:
            while True:
                header = stream.readline(MAX_HEADER)
                if not header:
                    return stored
                digest, size = _parse_frame_header(header, len(stored))
                frame = io.BufferedReader(_Exactly(stream, size, len(stored)), CHUNK)
                try:
                    stored.append(batch.put(frame, expected_digest=digest))
                except Invalid as exc:
                    exc.details["frame"] = len(stored)
                    exc.message = f"bundle frame {len(stored)}: {exc.message}"
                    raise

    def batch(self) -> AbstractContextManager[BlobBatch]:
        """Many puts made durable together (see ``BlobStore.batch``)."""
        return self.store.batch()

    def size(self, digest: str) -> int:
        return self.store.size(digest)

    def check_stored(self, files: Iterable[tuple[str, str, int]]) -> None:
        """Every ``(path, digest, size)`` of a manifest must name a stored blob of that
        size; else ``Invalid`` naming ``files[i]`` (the caller's index) and what is wrong."""
        store = self.store
        for index, (path, digest, size) in enumerate(files):
            try:
                stored = store.size(digest)
            except NotFound:
                raise Invalid(
                    f"files[{index}] ({path}): blob {digest} has not been uploaded",
                    field=f"files[{index}].digest",
                    details={"digest": digest},
                ) from None
            if stored != size:
                raise Invalid(
                    f"files[{index}] ({path}) says {size} bytes; the stored blob has {stored}",
                    field=f"files[{index}].size",
                )

    def presign_upload(self, digest: str, size: int) -> PresignedUpload | None:
        """A URL the client PUTs the bytes to directly (S3 stores), or None: send them
        through the server instead."""
        check_digest(digest)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise Invalid("size must be a whole number >= 0", field="size")
        store = self.store
        if not self._presign or not isinstance(store, S3BlobStore):
            return None
        token, url, headers = store.presign_incoming(digest, size)
        return PresignedUpload(token, url, headers)

    def complete_presigned(self, digest: str, token: str) -> BlobInfo:
        """The bytes sent to a presigned URL become the blob, once verified."""
        check_digest(digest)
        store = self.store
        if not isinstance(store, S3BlobStore):
            raise Invalid("this server's blob store takes no presigned uploads", field="token")
        return store.adopt_incoming(digest, token)


def _parse_frame_header(header: bytes, index: int) -> tuple[str, int]:
    try:
        text = header.decode("ascii")
        if not text.endswith("\n"):
            raise ValueError
        digest, size_text = text[:-1].split(" ")
        size = int(size_text)
        if size < 0 or not size_text.isdigit():
            raise ValueError
        return check_digest(digest), size
    except (ValueError, Invalid):
        raise Invalid(
            f"bundle frame {index} has a malformed header: expected '<sha256> <size>\\n'",
            field="body",
            details={"frame": index},
        ) from None


class _Exactly(io.RawIOBase):
    """The next ``size`` bytes of ``inner``; a short body is an error, not EOF."""

    def __init__(self, inner: BinaryIO, size: int, index: int) -> None:
        super().__init__()
        self._inner = inner
        self._left = size
        self._index = index

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        if self._left == 0:
            return 0
        with memoryview(buffer) as view, view.cast("B") as out:
            data = self._inner.read(min(len(out), self._left))
            if not data:
                raise Invalid(
                    f"bundle frame {self._index} ended {self._left} bytes short",
                    field="body",
                    details={"frame": self._index},
                )
            out[: len(data)] = data
        self._left -= len(data)
        return len(data)
