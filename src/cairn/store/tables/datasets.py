"""Datasets, their versions (content-addressed manifests) and the runs that used them."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cairn.store.tables.base import Base, BigId


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(250))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("project_id", "name"),)


class DatasetVersionRow(Base):
    __tablename__ = "dataset_versions"

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    file_count: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    batch: Mapped[str | None] = mapped_column(String(250))
    message: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(250))
    parent_version: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text)
    profile: Mapped[str | None] = mapped_column(Text)  # JSON, see domain/profiles.py
    # The run that produced this version (a pipeline's preprocessing step), if any.
    run_pk: Mapped[int | None] = mapped_column(ForeignKey("runs.pk"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("dataset_id", "version"),
        Index("ix_dataset_versions_dataset_digest", "dataset_id", "digest"),
        Index("ix_dataset_versions_dataset_batch", "dataset_id", "batch"),
    )


class DatasetFileRow(Base):
    """One manifest entry; ``digest`` is NULL for data kept by reference."""

    __tablename__ = "dataset_files"

    version_pk: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.pk", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    # Indexed: garbage collection asks which digests any manifest still references.
    digest: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str | None] = mapped_column(String(250))


class RunInputRow(Base):
    """A run used a dataset version in a role (train, validation, …)."""

    __tablename__ = "run_inputs"

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True)
    version_pk: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.pk", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
