"""Local files on their way to the blob store: hashed once, sent only when missing.

A ``LocalFile`` is a file on disk with the name it will have in Cairn and its sha256.
Backends ask the store which digests it lacks and send only those, so logging bytes
Cairn already holds (in any run or dataset) costs one hash pass and no transfer.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cairn.client import hash_cache
from cairn.domain.artifact_paths import normalize_artifact_path
from cairn.domain.errors import Invalid

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

READ_CHUNK = 1024 * 1024
# Called with the number of bytes just hashed, sent or received.
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: Path
    name: str
    digest: str
    size: int


def hash_file(path: Path, progress: Progress | None = None) -> tuple[str, int]:
    """The sha256 (hex) and size of a file, read in 1 MiB chunks; large files' digests
    come from the local digest cache while the file is unchanged."""
    before = os.stat(path)
    cached = hash_cache.lookup(path, before)
    if cached is not None:
        if progress is not None:
            progress(before.st_size)
        return cached, before.st_size
    digest, size = sha256_of(path, progress)
    after = os.stat(path)
    if size == after.st_size and after.st_mtime_ns == before.st_mtime_ns:
        hash_cache.remember(path, after, digest)  # only what was stable while we read
    return digest, size


def sha256_of(path: Path, progress: Progress | None = None) -> tuple[str, int]:
    """The sha256 (hex) and size of a file's bytes as they are now: no cache."""
    hasher = hashlib.sha256()
    size = 0
    buffer = bytearray(READ_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as stream:
        while n := stream.readinto(buffer):
            hasher.update(view[:n])
            size += n
            if progress is not None:
                progress(n)
    return hasher.hexdigest(), size


def local_file(
    path: str | os.PathLike[str], name: str, progress: Progress | None = None
) -> LocalFile:
    local = Path(path)
    if not local.is_file():
        raise Invalid(f"{os.fspath(path)!r} is not a file", field="path")
    digest, size = hash_file(local, progress)
    return LocalFile(local, normalize_artifact_path(name), digest, size)


def folder_files(
    folder: str | os.PathLike[str], prefix: str | None = None, progress: Progress | None = None
) -> list[LocalFile]:
    """Every file under ``folder`` (sorted, relative POSIX names under ``prefix``), hashed.

    Every name is checked before anything is hashed: a bad one stops everything.
    """
    root = Path(folder)
    if not root.is_dir():
        raise Invalid(f"{os.fspath(folder)!r} is not a folder", field="folder")
    base = normalize_artifact_path(prefix, "prefix") if prefix else None
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    names = [
        normalize_artifact_path(f"{base}/{rel}" if base else rel)
        for rel in (p.relative_to(root).as_posix() for p in paths)
    ]
    out = []
    for path, name in zip(paths, names, strict=True):
        digest, size = hash_file(path, progress)
        out.append(LocalFile(path, name, digest, size))
    return out


class _Counting(io.RawIOBase):
    def __init__(self, inner: BinaryIO, progress: Progress) -> None:
        super().__init__()
        self._inner = inner
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        with memoryview(buffer) as view, view.cast("B") as out:
            data = self._inner.read(len(out))
            n = len(data)
            out[:n] = data
        if n:
            self._progress(n)
        return n


def counting_reader(inner: BinaryIO, progress: Progress) -> BinaryIO:
    """``inner``, reporting every read to ``progress`` (for progress bars)."""
    return io.BufferedReader(_Counting(inner, progress), READ_CHUNK)
