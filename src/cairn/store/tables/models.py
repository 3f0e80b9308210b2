"""The model registry: registered models, numbered versions with their files, aliases
with every move kept, protected aliases, and runs' use of model versions."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cairn.store.tables.base import Base, BigId


class RegisteredModelRow(Base):
    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(250))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("project_id", "name"),)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    semver: Mapped[str] = mapped_column(String(40))
    bump_reason: Mapped[str] = mapped_column(Text)
    run_pk: Mapped[int | None] = mapped_column(ForeignKey("runs.pk"), index=True)
    flavor: Mapped[str] = mapped_column(String(50))
    algorithm: Mapped[str | None] = mapped_column(String(250))
    signature: Mapped[str | None] = mapped_column(Text)  # JSON
    requirements: Mapped[str | None] = mapped_column(Text)  # JSON
    training_data: Mapped[str] = mapped_column(Text)  # JSON list of dataset version refs
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[str] = mapped_column(Text)  # JSON object
    approval: Mapped[str] = mapped_column(String(16))
    approval_comment: Mapped[str | None] = mapped_column(Text)
    approval_actor: Mapped[str | None] = mapped_column(String(250))
    approval_at: Mapped[int | None] = mapped_column(BigInteger)
    author: Mapped[str | None] = mapped_column(String(250))
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        UniqueConstraint("model_id", "semver"),
    )


class ModelFileRow(Base):
    __tablename__ = "model_files"

    version_pk: Mapped[int] = mapped_column(
        ForeignKey("model_versions.pk", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    # Indexed: garbage collection asks which digests any manifest still references.
    digest: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)


class ModelAliasRow(Base):
    """Where an alias points now; ``alias_moves`` keeps how it got there."""

    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class AliasMoveRow(Base):
    """Every move of an alias: from and to a version number (NULL: unset), who, when, why."""

    __tablename__ = "alias_moves"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(100))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str | None] = mapped_column(String(250))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_alias_moves_model_alias_at", "model_id", "alias", "at", "id"),)


class ProtectedAliasRow(Base):
    """An alias that may point only to approved versions."""

    __tablename__ = "protected_aliases"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class RunModelInputRow(Base):
    """A run used a model version (evaluation, distillation, a pipeline's next step)."""

    __tablename__ = "run_model_inputs"

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True)
    version_pk: Mapped[int] = mapped_column(
        ForeignKey("model_versions.pk", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
