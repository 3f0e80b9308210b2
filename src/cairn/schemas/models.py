"""The model registry on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from cairn.domain.models import AliasMove, Approval, ModelFile, ModelVersion, RegisteredModel
from cairn.schemas.base import Wire, as_utc


class ModelFileIn(Wire):
    path: str
    digest: str
    size: int = Field(ge=0)


class ModelVersionIn(Wire):
    """A new version from files already sent (``POST /blobs/missing``, ``PUT /blobs``)."""

    files: list[ModelFileIn]
    flavor: str
    run_id: str | None = None
    algorithm: str | None = None
    signature: dict[str, Any] | None = None
    requirements: dict[str, str] | None = None
    bump: str | None = Field(default=None, description="major, minor or patch")
    semver: str | None = None
    description: str | None = None
    tags: dict[str, str] | None = None


class ModelVersionOut(Wire):
    project: str
    name: str
    version: int
    ref: str
    semver: str
    bump_reason: str
    run_id: str | None
    flavor: str
    algorithm: str | None
    signature: dict[str, Any] | None
    digest: str
    size: int
    approval: Approval
    created_at: datetime
    training_data: list[str] = []
    requirements: dict[str, str] = {}
    description: str = ""
    tags: dict[str, str] = {}
    approval_comment: str | None = None
    approval_actor: str | None = None
    approval_at: datetime | None = None
    author: str | None = None
    aliases: list[str] = []

    @classmethod
    def of(cls, v: ModelVersion) -> ModelVersionOut:
        return cls(
            project=v.project,
            name=v.name,
            version=v.version,
            ref=v.ref,
            semver=v.semver,
            bump_reason=v.bump_reason,
            run_id=v.run_id,
            flavor=v.flavor,
            algorithm=v.algorithm,
            signature=v.signature,
            digest=v.digest,
            size=v.size,
            approval=v.approval,
            created_at=v.created_at,
            training_data=v.training_data,
            requirements=v.requirements,
            description=v.description,
            tags=v.tags,
            approval_comment=v.approval_comment,
            approval_actor=v.approval_actor,
            approval_at=v.approval_at,
            author=v.author,
            aliases=v.aliases,
        )

    def to_domain(self) -> ModelVersion:
        return ModelVersion(
            project=self.project,
            name=self.name,
            version=self.version,
            semver=self.semver,
            bump_reason=self.bump_reason,
            run_id=self.run_id,
            flavor=self.flavor,
            algorithm=self.algorithm,
            signature=self.signature,
            digest=self.digest,
            size=self.size,
            approval=self.approval,
            created_at=as_utc(self.created_at),
            training_data=self.training_data,
            requirements=self.requirements,
            description=self.description,
            tags=self.tags,
            approval_comment=self.approval_comment,
            approval_actor=self.approval_actor,
            approval_at=as_utc(self.approval_at) if self.approval_at else None,
            author=self.author,
            aliases=self.aliases,
        )


class RegisteredModelOut(Wire):
    project: str
    name: str
    description: str
    created_at: datetime
    latest_version: int | None
    version_count: int
    aliases: dict[str, int] = {}
    protected_aliases: list[str] = []

    @classmethod
    def of(cls, m: RegisteredModel) -> RegisteredModelOut:
        return cls(
            project=m.project,
            name=m.name,
            description=m.description,
            created_at=m.created_at,
            latest_version=m.latest_version,
            version_count=m.version_count,
            aliases=m.aliases,
            protected_aliases=m.protected_aliases,
        )

    def to_domain(self) -> RegisteredModel:
        return RegisteredModel(
            self.project,
            self.name,
            self.description,
            as_utc(self.created_at),
            self.latest_version,
            self.version_count,
            self.aliases,
            self.protected_aliases,
        )


class ModelFilesOut(Wire):
    version: ModelVersionOut
    files: list[ModelFileIn]

    def to_domain(self) -> tuple[ModelVersion, list[ModelFile]]:
        return self.version.to_domain(), [ModelFile(f.path, f.digest, f.size) for f in self.files]


class DecisionIn(Wire):
    comment: str | None = None


class AliasIn(Wire):
    version: int | str = Field(description="A version number or a reference (iris@1.2.0)")
    reason: str | None = None


class ReasonIn(Wire):
    reason: str | None = None


class AliasMoveOut(Wire):
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str | None
    reason: str | None
    at: datetime

    @classmethod
    def of(cls, m: AliasMove) -> AliasMoveOut:
        return cls(
            model=m.model,
            alias=m.alias,
            from_version=m.from_version,
            to_version=m.to_version,
            actor=m.actor,
            reason=m.reason,
            at=m.at,
        )

    def to_domain(self) -> AliasMove:
        return AliasMove(
            self.model,
            self.alias,
            self.from_version,
            self.to_version,
            self.actor,
            self.reason,
            as_utc(self.at),
        )


class ModelInputIn(Wire):
    model: str = Field(description="A model reference: iris:3, iris@production, iris@1.2.0")
    role: str = "evaluate"
