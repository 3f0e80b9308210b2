"""Resumable uploads: a large blob sent in chunks, resumed where a broken one stopped.

uploads = UploadService(blobs)
up = uploads.start(size=1 << 30, digest=d)        # -> Upload(id, offset=0, ...)
uploads.append(up.id, 0, chunk_stream)             # -> new offset; bytes kept as they arrive
uploads.status(up.id).offset                       # after a broken connection: resume here
info = uploads.complete(up.id)                     # verified into the blob store

Chunks are appended to a staging file as they arrive, so a connection cut half-way
keeps what was received and ``status`` tells the client where to go on. An append at
any other offset than the current one is a ``Conflict`` whose details carry the offset.
Staging lives beside a local blob store (same disk: completion is one more pass), or
in ``staging_dir``; uploads untouched for a day are swept.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cairn.blobs import CHUNK, BlobInfo, check_digest
from cairn.blobs.base import check_expected, read_chunk
from cairn.domain.errors import Conflict, Invalid, NotFound
from cairn.domain.ids import is_ulid, new_ulid
from cairn.services.blobs import BlobService

STALE_AFTER_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    offset: int
    size: int | None
    digest: str | None


class UploadService:
    def __init__(self, blobs: BlobService, staging_dir: str | os.PathLike[str] | None = None):
        self.blobs = blobs
        self._staging = Path(staging_dir) if staging_dir is not None else None

    @property
    def staging(self) -> Path:
        if self._staging is None:
            self._staging = self.blobs.staging_dir()
        self._staging.mkdir(parents=True, exist_ok=True)
        return self._staging

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        if not isinstance(upload_id, str) or not is_ulid(upload_id):
            raise NotFound(f"upload {upload_id!r} does not exist", details={"upload_id": upload_id})
        return self.staging / f"{upload_id}.part", self.staging / f"{upload_id}.json"

    def start(self, size: int | None = None, digest: str | None = None) -> Upload:
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise Invalid("size must be a whole number >= 0", field="size")
        if digest is not None:
            check_digest(digest)
        self.sweep()
        upload_id = new_ulid()
        part, meta = self._paths(upload_id)
        part.touch(exist_ok=False)
        meta.write_text(json.dumps({"size": size, "digest": digest}))
        return Upload(upload_id, 0, size, digest)

    def status(self, upload_id: str) -> Upload:
        part, meta = self._paths(upload_id)
        try:
            info = json.loads(meta.read_text())
            offset = part.stat().st_size
        except FileNotFoundError:
            raise NotFound(
                f"upload {upload_id} does not exist (finished, cancelled or expired)",
                details={"upload_id": upload_id},
            ) from None
        return Upload(upload_id, offset, info.get("size"), info.get("digest"))

    def append(self, upload_id: str, offset: int, stream: BinaryIO) -> Upload:
        """Append what ``stream`` yields at ``offset``, which must be the current size.

        One append at a time per upload (a lock on the staging file, so across server
        processes too): a retry racing its own first attempt is a ``Conflict``.
        """
        current = self.status(upload_id)
        part, _meta = self._paths(upload_id)
        with open(part, "ab", buffering=0) as out:
            if not _try_lock(out.fileno()):
                raise Conflict(
                    f"upload {upload_id} is receiving another chunk right now",
                    details={"upload_id": upload_id, "offset": current.offset},
                )
            reached = os.fstat(out.fileno()).st_size  # under the lock: the true offset
            if offset != reached:
                raise Conflict(
                    f"upload {upload_id} is at offset {reached}, not {offset}: resume from there",
                    details={"upload_id": upload_id, "offset": reached},
                )
            written = reached
            try:
                while chunk := read_chunk(stream, CHUNK):
                    if current.size is not None and written + len(chunk) > current.size:
                        raise Invalid(
                            f"upload {upload_id} announced {current.size} bytes; more arrived",
                            field="body",
                        )
                    view = memoryview(chunk)
                    while view:
                        view = view[out.write(view) or 0 :]
                    written += len(chunk)
            finally:
                os.fsync(out.fileno())  # what arrived before a break is kept, durably
        return Upload(upload_id, written, current.size, current.digest)

    def complete(self, upload_id: str, digest: str | None = None) -> BlobInfo:
        """Move the staged bytes into the blob store, verified; the upload then ends."""
        current = self.status(upload_id)
        expected = digest or current.digest
        if expected is not None:
            check_digest(expected)
        if current.size is not None and current.offset != current.size:
            raise Conflict(
                f"upload {upload_id} holds {current.offset} of its {current.size} bytes",
                details={"upload_id": upload_id, "offset": current.offset},
            )
        part, _meta = self._paths(upload_id)
        with open(part, "rb", buffering=0) as stream:
            info = self.blobs.put(stream, expected_digest=expected)
        check_expected(info.digest, expected)
        self.cancel(upload_id)
        return info

    def cancel(self, upload_id: str) -> bool:
        part, meta = self._paths(upload_id)
        found = False
        for path in (part, meta):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                found = True
        return found

    def sweep(self, older_than_s: float = STALE_AFTER_S) -> int:
        """Remove uploads nobody touched for ``older_than_s``; returns how many."""
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in os.scandir(self.staging):
            name, _, suffix = entry.name.partition(".")
            with contextlib.suppress(FileNotFoundError):
                if suffix == "part" and entry.stat().st_mtime < cutoff and is_ulid(name):
                    removed += int(self.cancel(name))
        return removed


def _try_lock(fd: int) -> bool:
    """An exclusive lock on the open staging file, released when it is closed."""
    try:
        import fcntl
    except ImportError:  # Windows: one server process, appends are rare enough
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
