"""Runs and what hangs off them one value per key: params and tags."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cairn.store.tables.base import Base, BigId


class RunRow(Base):
    __tablename__ = "runs"

    # An integer surrogate keeps the metric tables narrow; ``id`` is the public ULID.
    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(26), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str | None] = mapped_column(String(250))
    experiment: Mapped[str | None] = mapped_column(String(250))
    parent_id: Mapped[str | None] = mapped_column(String(26), index=True)
    status: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    author: Mapped[str | None] = mapped_column(String(250))
    notes: Mapped[str | None] = mapped_column(Text)
    command: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    git: Mapped[str | None] = mapped_column(Text)  # JSON
    git_diff_digest: Mapped[str | None] = mapped_column(ForeignKey("texts.digest"))
    environment_digest: Mapped[str | None] = mapped_column(ForeignKey("texts.digest"))
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_runs_project_start", "project_id", "start_time"),
        Index("ix_runs_project_status", "project_id", "status"),
        Index("ix_runs_project_experiment", "project_id", "experiment"),
    )


class ParamRow(Base):
    __tablename__ = "params"

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_params_key_value", "key", "value", "run_pk"),
        {"sqlite_with_rowid": False},
    )


class TagRow(Base):
    __tablename__ = "tags"

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_tags_key_value", "key", "value", "run_pk"),
        {"sqlite_with_rowid": False},
    )


class TextRow(Base):
    """Large texts stored once by sha256: environments (JSON) and git diffs."""

    __tablename__ = "texts"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
