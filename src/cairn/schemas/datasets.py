"""Datasets and blobs on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from cairn.domain.datasets import (
    Dataset,
    DatasetDiff,
    DatasetFile,
    DatasetInput,
    DatasetKind,
    DatasetVersion,
)
from cairn.schemas.base import Wire, as_utc


class DatasetFileIn(Wire):
    path: str
    digest: str | None = None
    size: int = Field(ge=0)
    etag: str | None = None

    def to_domain(self) -> DatasetFile:
        return DatasetFile(self.path, self.digest, self.size, self.etag)


class DatasetFileOut(DatasetFileIn):
    @classmethod
    def of(cls, item: DatasetFile) -> DatasetFileOut:
        return cls(path=item.path, digest=item.digest, size=item.size, etag=item.etag)


class DatasetVersionIn(Wire):
    """A new version: its manifest (blobs sent first) or its reference, and labels."""

    files: list[DatasetFileIn]
    kind: DatasetKind = DatasetKind.FILES
    source: str | None = None
    batch: str | None = None
    message: str | None = None
    profile: dict[str, Any] | None = None
    run_id: str | None = Field(
        default=None,
        description="The run that produced this data; an existing version keeps its producer.",
    )


class DatasetVersionOut(Wire):
    project: str
    name: str
    version: int
    ref: str
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
    profile: dict[str, Any] | None = None
    created: bool | None = Field(
        default=None, description="On a write: whether this call made the version."
    )

    @classmethod
    def of(cls, v: DatasetVersion, created: bool | None = None) -> DatasetVersionOut:
        return cls(
            project=v.project,
            name=v.name,
            version=v.version,
            ref=v.ref,
            digest=v.digest,
            kind=v.kind,
            file_count=v.file_count,
            size=v.size,
            created_at=v.created_at,
            batch=v.batch,
            message=v.message,
            author=v.author,
            parent_version=v.parent_version,
            source=v.source,
            profile=v.profile,
            created=created,
        )

    def to_domain(self) -> DatasetVersion:
        return DatasetVersion(
            project=self.project,
            name=self.name,
            version=self.version,
            digest=self.digest,
            kind=self.kind,
            file_count=self.file_count,
            size=self.size,
            created_at=as_utc(self.created_at),
            batch=self.batch,
            message=self.message,
            author=self.author,
            parent_version=self.parent_version,
            source=self.source,
            profile=self.profile,
        )


class DatasetOut(Wire):
    project: str
    name: str
    description: str
    created_at: datetime
    latest_version: int | None
    version_count: int

    @classmethod
    def of(cls, d: Dataset) -> DatasetOut:
        return cls(
            project=d.project,
            name=d.name,
            description=d.description,
            created_at=d.created_at,
            latest_version=d.latest_version,
            version_count=d.version_count,
        )

    def to_domain(self) -> Dataset:
        return Dataset(
            self.project,
            self.name,
            self.description,
            as_utc(self.created_at),
            self.latest_version,
            self.version_count,
        )


class DatasetFilesOut(Wire):
    version: DatasetVersionOut
    files: list[DatasetFileOut]


class FileChangeOut(Wire):
    path: str
    old_digest: str | None
    new_digest: str | None
    old_size: int
    new_size: int


class DatasetDiffOut(Wire):
    old: str
    new: str
    added: list[str]
    removed: list[str]
    changed: list[FileChangeOut]
    profile: dict[str, Any]
    unchanged: bool

    @classmethod
    def of(cls, d: DatasetDiff) -> DatasetDiffOut:
        return cls(
            old=d.old,
            new=d.new,
            added=d.added,
            removed=d.removed,
            changed=[
                FileChangeOut(
                    path=c.path,
                    old_digest=c.old_digest,
                    new_digest=c.new_digest,
                    old_size=c.old_size,
                    new_size=c.new_size,
                )
                for c in d.changed
            ],
            profile=d.profile,
            unchanged=d.unchanged,
        )


class DatasetInputIn(Wire):
    dataset: str = Field(description="A dataset reference: name, name:N, name@batch, p/name:N")
    role: str = "train"


class DatasetInputOut(Wire):
    run_id: str
    project: str
    name: str
    version: int
    digest: str
    role: str
    batch: str | None
    created_at: datetime

    @classmethod
    def of(cls, i: DatasetInput) -> DatasetInputOut:
        return cls(
            run_id=i.run_id,
            project=i.project,
            name=i.name,
            version=i.version,
            digest=i.digest,
            role=i.role,
            batch=i.batch,
            created_at=i.created_at,
        )

    def to_domain(self) -> DatasetInput:
        return DatasetInput(
            self.run_id,
            self.project,
            self.name,
            self.version,
            self.digest,
            self.role,
            self.batch,
            as_utc(self.created_at),
        )


class RunUseOut(Wire):
    run_id: str
    role: str


class DigestsIn(Wire):
    digests: list[str]


class DigestsOut(Wire):
    missing: list[str]


class BlobOut(Wire):
    digest: str
    size: int


class UploadIn(Wire):
    size: int | None = Field(default=None, ge=0)
    digest: str | None = None


class UploadOut(Wire):
    id: str
    offset: int
    size: int | None = None
    digest: str | None = None


class PresignIn(Wire):
    digest: str
    size: int = Field(ge=0)


class PresignOut(Wire):
    """``url`` is None when this server takes uploads only through itself."""

    url: str | None = None
    method: str = "PUT"
    headers: dict[str, str] = {}
    token: str | None = None


class PresignCompleteIn(Wire):
    digest: str
