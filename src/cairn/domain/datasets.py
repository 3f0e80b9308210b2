"""Datasets: named data whose versions are content-addressed manifests.

A version's manifest lists its files (normalised path -> blob digest and size) or, for
data kept by reference, the objects it points at (path -> size and ETag or mtime). The
version's ``digest`` is the sha256 of the canonical manifest, so the same content always
has the same digest, whoever logs it and in whatever order the files were listed.

>>> one, two = DatasetFile("a.csv", "0" * 64, 3), DatasetFile("b.csv", "1" * 64, 5)
>>> manifest_digest([one, two], "files", None) == manifest_digest([two, one], "files", None)
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cairn.domain.artifact_paths import normalize_artifact_path
from cairn.domain.errors import Invalid
from cairn.domain.validation import is_sha256

MAX_FILES = 1_000_000
MAX_ETAG_LENGTH = 250
MAX_SOURCE_LENGTH = 2000
MAX_BATCH_LENGTH = 250
MAX_MESSAGE_LENGTH = 10_000
MAX_ROLE_LENGTH = 64


class DatasetKind(StrEnum):
    FILES = "files"  # the bytes are stored in the blob store
    REFERENCE = "reference"  # only the objects' identity (size, ETag or mtime) is kept


@dataclass(frozen=True, slots=True)
class DatasetFile:
    """One manifest entry. ``digest`` is None for a reference; ``etag`` for a reference only."""

    path: str
    digest: str | None
    size: int
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class Dataset:
    project: str
    name: str
    description: str
    created_at: datetime
    latest_version: int | None
    version_count: int


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """A version of a dataset. ``str(v)`` is its reference, ``wine:2``."""

    project: str
    name: str
    version: int
    digest: str
    kind: DatasetKind
    file_count: int
    size: int
    created_at: datetime
    batch: str | None = None
    message: str | None = None
    author: str | None = None
    parent_version: int | None = None
    source: str | None = None
    profile: dict[str, Any] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def ref(self) -> str:
        """The reference with its project: ``project/name:N``."""
        return f"{self.project}/{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A run's use of a dataset version, in a role (train, validation, test, …)."""

    run_id: str
    project: str
    name: str
    version: int
    digest: str
    role: str
    batch: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    old_digest: str | None
    new_digest: str | None
    old_size: int
    new_size: int


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    """How ``new`` differs from ``old``: files, then (for tables) schema and distributions."""

    old: str
    new: str
    added: list[str]
    removed: list[str]
    changed: list[FileChange]
    profile: dict[str, Any]

    @property
    def unchanged(self) -> bool:
        """True when the files are identical and no column drifted or changed type."""
        schema = self.profile.get("schema") or {}
        return not (
            self.added
            or self.removed
            or self.changed
            or schema.get("added")
            or schema.get("removed")
            or schema.get("changed")
            or any(c.get("drifted") for c in self.profile.get("columns", []))
        )


def check_files(files: list[DatasetFile], kind: DatasetKind) -> list[DatasetFile]:
    """Normalise the paths and refuse duplicates, bad digests, sizes and ETags."""
    if not files:
        raise Invalid("a dataset version needs at least one file", field="files")
    if len(files) > MAX_FILES:
        raise Invalid(
            f"a dataset version holds at most {MAX_FILES:,} files; this one has {len(files):,}",
            field="files",
            details={"max": MAX_FILES},
        )
    clean: dict[str, DatasetFile] = {}
    for index, item in enumerate(files):
        where = f"files[{index}]"
        path = normalize_artifact_path(item.path, f"{where}.path")
        if path in clean:
            raise Invalid(f"{where}.path {path!r} is listed twice", field=f"{where}.path")
        if isinstance(item.size, bool) or not isinstance(item.size, int) or item.size < 0:
            raise Invalid(f"{where}.size must be a whole number >= 0", field=f"{where}.size")
        if kind is DatasetKind.FILES:
            if item.digest is None or not is_sha256(item.digest):
                raise Invalid(
                    f"{where}.digest must be a sha256 (64 lowercase hex characters)",
                    field=f"{where}.digest",
                )
            etag = None
        else:
            if item.digest is not None and not is_sha256(item.digest):
                raise Invalid(f"{where}.digest must be a sha256 or absent", field=f"{where}.digest")
            etag = item.etag
            if etag is not None and (
                not isinstance(etag, str)
                or len(etag) > MAX_ETAG_LENGTH
                or any(ord(c) < 32 for c in etag)
            ):
                raise Invalid(
                    f"{where}.etag must be printable text of at most {MAX_ETAG_LENGTH} characters",
                    field=f"{where}.etag",
                )
        clean[path] = DatasetFile(path, item.digest, item.size, etag)
    return list(clean.values())  # the caller's order, so errors name the caller's index


def manifest_digest(files: list[DatasetFile], kind: DatasetKind | str, source: str | None) -> str:
    """The sha256 of the canonical manifest (files sorted by path; a reference's source too)."""
    hasher = hashlib.sha256(f"cairn-dataset-v1\n{DatasetKind(kind).value}\n".encode())
    if DatasetKind(kind) is DatasetKind.REFERENCE:
        hasher.update(f"source\t{source or ''}\n".encode())
    for item in sorted(files, key=lambda f: f.path):
        line = f"{item.path}\t{item.digest or '-'}\t{item.size}\t{item.etag or '-'}\n"
        hasher.update(line.encode("utf-8", "surrogatepass"))
    return hasher.hexdigest()


def check_optional_text(value: object, field: str, limit: int) -> str | None:
    """None, or printable text within ``limit`` characters (no NUL or lone surrogates)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string, got {type(value).__name__}", field=field)
    if len(value) > limit:
        raise Invalid(
            f"{field} is {len(value)} characters; the limit is {limit}",
            field=field,
            details={"max": limit},
        )
    if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise Invalid(f"{field} must not hold NUL or lone surrogate characters", field=field)
    return value


def check_role(role: object) -> str:
    if not isinstance(role, str) or not role or len(role) > MAX_ROLE_LENGTH:
        raise Invalid(
            f"role must be a non-empty string of at most {MAX_ROLE_LENGTH} characters",
            field="role",
        )
    if not all(c.isalnum() or c in "_-." for c in role):
        raise Invalid(
            f"role {role!r} may hold only letters, digits, '_', '-' and '.'", field="role"
        )
    return role


def diff_manifests(
    old: list[DatasetFile], new: list[DatasetFile]
) -> tuple[list[str], list[str], list[FileChange]]:
    """Files added, removed and changed (by digest, else by size and ETag) from old to new."""
    before = {f.path: f for f in old}
    after = {f.path: f for f in new}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = [
        FileChange(
            path, before[path].digest, after[path].digest, before[path].size, after[path].size
        )
        for path in sorted(set(before) & set(after))
        if (before[path].digest, before[path].size, before[path].etag)
        != (after[path].digest, after[path].size, after[path].etag)
    ]
    return added, removed, changed
