"""Blobs in a local folder: ``root/ab/cd/<digest>``, written through ``root/tmp/``.

A put streams into a temporary file in ``root/tmp/`` while hashing; the bytes are made
durable, then the file is ``os.replace``-d into place and the rename made durable, so a
blob is visible whole or not at all, even across a crash. ``batch()`` does that for many
puts at once (two ``syncfs`` calls on Linux instead of two fsyncs per blob: what makes a
folder of 10,000 small files cheap). Two puts of the same bytes at once are harmless:
both rename identical files onto the same name. A temporary file left by a killed
process is never listed; ``remove_stale_temps`` sweeps them.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from cairn.blobs.base import (
    CHUNK,
    BlobInfo,
    BlobStoreBase,
    LimitedReader,
    blob_not_found,
    check_digest,
    check_expected,
    is_digest,
    read_chunk,
    verifying_reader,
)

_HEX = frozenset("0123456789abcdef")


class LocalBlobStore(BlobStoreBase):
    """Content-addressed blobs under ``root``. Example: ``LocalBlobStore("/data/blobs")``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path(self, digest: str) -> Path:
        """Where the blob lives (or would live) on disk."""
        digest = check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, stream: BinaryIO, *, expected_digest: str | None = None) -> BlobInfo:
        with self.batch() as batch:
            return batch.put(stream, expected_digest=expected_digest)

    @contextlib.contextmanager
    def batch(self) -> Iterator[_LocalBatch]:
        """Puts inside the block are written to temp files; at exit their bytes are made
        durable, then they are renamed into place and the renames made durable, so a blob
        visible under its digest always has its bytes on disk, even across a crash. On
        Linux that is two ``syncfs`` calls for the whole batch, not two fsyncs per blob."""
        batch = _LocalBatch(self)
        try:
            yield batch
            batch.commit()
        finally:
            batch.discard()

    def open(self, digest: str) -> BinaryIO:
        path = self.path(digest)
        try:
            raw = open(path, "rb", buffering=0)  # noqa: SIM115 - the reader owns and closes it
        except FileNotFoundError:
            raise blob_not_found(digest) from None
        return verifying_reader(raw, digest)

    def open_range(self, digest: str, start: int, length: int) -> BinaryIO:
        path = self.path(digest)
        try:
            raw = open(path, "rb", buffering=0)  # noqa: SIM115 - the reader owns and closes it
        except FileNotFoundError:
            raise blob_not_found(digest) from None
        raw.seek(start)
        return io.BufferedReader(LimitedReader(raw, length), CHUNK)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def modified(self, digest: str) -> float:
        try:
            return self.path(digest).stat().st_mtime
        except FileNotFoundError:
            raise blob_not_found(digest) from None

    def touch(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise blob_not_found(digest) from None

    def delete(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def digests(self) -> Iterator[str]:
        for first in _hex_dirs(self.root):
            for second in _hex_dirs(first):
                names = sorted(os.listdir(second))
                for name in names:
                    if name.startswith(first.name + second.name) and is_digest(name):
                        yield name

    def remove_stale_temps(self, older_than_s: float = 24 * 3600) -> int:
        """Delete temporary files left by killed writers; returns how many went."""
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in os.scandir(self._tmp):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed


class _LocalBatch:
    def __init__(self, store: LocalBlobStore) -> None:
        self.store = store
        self.pending: dict[str, Path] = {}  # digest -> its temp file
        self.sizes: dict[str, int] = {}
        self.per_file_sync = _syncfs is None

    def put(self, stream: BinaryIO, *, expected_digest: str | None = None) -> BlobInfo:
        if expected_digest is not None:
            check_digest(expected_digest)
        tmp = self.store._tmp / f"put-{uuid.uuid4().hex}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o644)
        keep = False
        try:
            digest, size = _write_hashed(fd, stream, fsync=self.per_file_sync)
            check_expected(digest, expected_digest)
            if digest not in self.pending and not _has_size(self.store.path(digest), size):
                self.pending[digest] = tmp
                self.sizes[digest] = size
                keep = True
            return BlobInfo(digest, size)  # stored already (or in this batch): write nothing
        finally:
            if not keep:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()

    def commit(self) -> None:
        if not self.pending:
            return
        if _syncfs is not None:
            _syncfs(self.store._tmp)  # every temp file's bytes, at once
        changed: set[Path] = set()
        for digest, tmp in list(self.pending.items()):
            final = self.store.path(digest)
            changed.update(_make_dirs(final.parent, stop=self.store.root))
            changed.add(final.parent)
            os.replace(tmp, final)
            del self.pending[digest]
        if _syncfs is not None:
            _syncfs(self.store.root)  # every rename and new folder, at once
        else:
            for folder in sorted(changed, key=lambda p: len(p.parts), reverse=True):
                _fsync_dir(folder)

    def discard(self) -> None:
        for tmp in self.pending.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self.pending.clear()


def _find_syncfs() -> Callable[[Path], None] | None:
    """Linux's syncfs(2): flush one filesystem. None elsewhere (fsync per file instead)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return None

    def syncfs(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if call(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), str(path))
        finally:
            os.close(fd)

    return syncfs


_syncfs = _find_syncfs()
_O_BINARY = getattr(os, "O_BINARY", 0)


def _write_hashed(fd: int, stream: BinaryIO, *, fsync: bool = True) -> tuple[str, int]:
    """Copy ``stream`` into the open temp file ``fd`` while hashing; fsync; close."""
    digest = hashlib.sha256()
    size = 0
    with open(fd, "wb", buffering=0) as out:
        while chunk := read_chunk(stream):
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[out.write(view) or 0 :]
            size += len(chunk)
        if fsync:
            os.fsync(fd)
    return digest.hexdigest(), size


def _has_size(path: Path, size: int) -> bool:
    # A same-named file of another size was damaged (truncated); the new copy replaces it.
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _make_dirs(folder: Path, *, stop: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return the parents whose entries changed."""
    changed: list[Path] = []
    missing: list[Path] = []
    current = folder
    while current != stop and not current.is_dir():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        changed.append(path.parent)
    return changed


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder to fsync it
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hex_dirs(folder: Path) -> list[Path]:
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    return [
        folder / name
        for name in names
        if len(name) == 2 and set(name) <= _HEX and (folder / name).is_dir()
    ]
