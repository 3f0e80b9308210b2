"""Registered models, their versions and files, aliases with their moves."""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cairn.domain.models import AliasMove, Approval, ModelFile, ModelVersion, RegisteredModel
from cairn.domain.records import ms_to_datetime, now_ms
from cairn.store.bulk import executemany
from cairn.store.named import ensure_named, find_named, lock_row
from cairn.store.tables import (
    AliasMoveRow,
    ModelAliasRow,
    ModelFileRow,
    ModelVersionRow,
    ProtectedAliasRow,
    RegisteredModelRow,
    RunModelInputRow,
    RunRow,
)

_M = cast(Table, RegisteredModelRow.__table__)
_V = cast(Table, ModelVersionRow.__table__)
_F = cast(Table, ModelFileRow.__table__)
_A = cast(Table, ModelAliasRow.__table__)
_MOVES = cast(Table, AliasMoveRow.__table__)
_PROT = cast(Table, ProtectedAliasRow.__table__)
_IN = cast(Table, RunModelInputRow.__table__)
_R = cast(Table, RunRow.__table__)


def _when(ms: int) -> Any:
    value = ms_to_datetime(ms)
    assert value is not None
    return value


class ModelRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert

    # -- models -------------------------------------------------------------------------

    def find_id(self, project_id: int, name: str) -> int | None:
        return find_named(self.conn, _M, project_id, name)

    def ensure(self, project_id: int, name: str) -> tuple[int, bool]:
        """The model's id, created when missing; True when this call created it."""
        return ensure_named(self.conn, _M, project_id, name)

    def lock(self, model_id: int) -> None:
        """Serialise version numbering of one model (PostgreSQL: a row lock)."""
        lock_row(self.conn, _M, model_id)

    def set_description(self, model_id: int, description: str) -> None:
        self.conn.execute(_M.update().where(_M.c.id == model_id).values(description=description))

    def get_model(self, model_id: int, project: str) -> RegisteredModel:
        row = self.conn.execute(select(_M).where(_M.c.id == model_id)).one()
        stats = self.conn.execute(
            select(func.max(_V.c.version), func.count()).where(_V.c.model_id == model_id)
        ).one()
        return RegisteredModel(
            project,
            row.name,
            row.description,
            _when(row.created_at),
            stats[0],
            int(stats[1]),
            self.aliases(model_id),
            self.protected(model_id),
        )

    def names(self, model_ids: set[int]) -> dict[int, str]:
        if not model_ids:
            return {}
        stmt = select(_M.c.id, _M.c.name).where(_M.c.id.in_(sorted(model_ids)))
        return {int(row.id): row.name for row in self.conn.execute(stmt)}

    def list_models(self, project_id: int, project: str) -> list[RegisteredModel]:
        ids = self.conn.execute(
            select(_M.c.id).where(_M.c.project_id == project_id).order_by(_M.c.name)
        ).scalars()
        return [self.get_model(model_id, project) for model_id in ids]

    # -- versions -----------------------------------------------------------------------

    def latest_version(self, model_id: int) -> int | None:
        stmt = select(func.max(_V.c.version)).where(_V.c.model_id == model_id)
        return cast(int | None, self.conn.execute(stmt).scalar())

    def semvers(self, model_id: int) -> list[str]:
        return list(
            self.conn.execute(select(_V.c.semver).where(_V.c.model_id == model_id)).scalars()
        )

    def version_by_semver(self, model_id: int, semver: str) -> int | None:
        stmt = select(_V.c.version).where(_V.c.model_id == model_id, _V.c.semver == semver)
        return cast(int | None, self.conn.execute(stmt).scalar())

    def version_pk(self, model_id: int, version: int) -> int | None:
        stmt = select(_V.c.pk).where(_V.c.model_id == model_id, _V.c.version == version)
        return cast(int | None, self.conn.execute(stmt).scalar())

    def add_version(self, model_id: int, values: dict[str, Any], files: list[ModelFile]) -> int:
        row = dict(values)
        for key in ("signature", "requirements", "training_data", "tags"):
            row[key] = json.dumps(row[key], sort_keys=True) if row[key] is not None else None
        row.update(model_id=model_id, created_at=now_ms())
        pk = int(self.conn.execute(_V.insert().values(**row).returning(_V.c.pk)).scalar_one())
        executemany(
            self.conn,
            lambda: _F.insert(),
            [(pk, f.path, f.digest, f.size) for f in files],
            ["version_pk", "path", "digest", "size"],
            name="model_files.insert",
        )
        return pk

    def get_version(
        self, model_id: int, version: int, project: str, name: str
    ) -> ModelVersion | None:
        stmt = (
            select(_V, _R.c.id.label("run_id"))
            .outerjoin(_R, _R.c.pk == _V.c.run_pk)
            .where(_V.c.model_id == model_id, _V.c.version == version)
        )
        row = self.conn.execute(stmt).first()
        if row is None:
            return None
        aliases = sorted(a for a, v in self.aliases(model_id).items() if v == version)
        return _version(row, project, name, aliases)

    def list_versions(self, model_id: int, project: str, name: str) -> list[ModelVersion]:
        stmt = (
            select(_V, _R.c.id.label("run_id"))
            .outerjoin(_R, _R.c.pk == _V.c.run_pk)
            .where(_V.c.model_id == model_id)
            .order_by(_V.c.version.desc())
        )
        by_version: dict[int, list[str]] = {}
        for alias, version in self.aliases(model_id).items():
            by_version.setdefault(version, []).append(alias)
        return [
            _version(row, project, name, sorted(by_version.get(row.version, [])))
            for row in self.conn.execute(stmt)
        ]

    def files(self, version_pk: int) -> list[ModelFile]:
        stmt = select(_F.c.path, _F.c.digest, _F.c.size).where(_F.c.version_pk == version_pk)
        return [
            ModelFile(r.path, r.digest, int(r.size))
            for r in self.conn.execute(stmt.order_by(_F.c.path))
        ]

    def set_approval(
        self, version_pk: int, approval: Approval, comment: str | None, actor: str | None
    ) -> None:
        self.conn.execute(
            _V.update()
            .where(_V.c.pk == version_pk)
            .values(
                approval=approval.value,
                approval_comment=comment,
                approval_actor=actor,
                approval_at=now_ms(),
            )
        )

    def update_version(self, version_pk: int, **values: Any) -> None:
        if "tags" in values:
            values["tags"] = json.dumps(values["tags"], sort_keys=True)
        self.conn.execute(_V.update().where(_V.c.pk == version_pk).values(**values))

    def referenced_digests(self) -> set[str]:
        return {row[0] for row in self.conn.execute(select(_F.c.digest).distinct())}

    # -- aliases ------------------------------------------------------------------------

    def aliases(self, model_id: int) -> dict[str, int]:
        stmt = select(_A.c.alias, _A.c.version).where(_A.c.model_id == model_id)
        return {row.alias: int(row.version) for row in self.conn.execute(stmt)}

    def move_alias(
        self,
        model_id: int,
        alias: str,
        from_version: int | None,
        to_version: int | None,
        actor: str | None,
        reason: str | None,
    ) -> None:
        """Point ``alias`` at ``to_version`` (None deletes it) and record the move."""
        at = now_ms()
        self.conn.execute(_A.delete().where(_A.c.model_id == model_id, _A.c.alias == alias))
        if to_version is not None:
            self.conn.execute(
                _A.insert().values(
                    model_id=model_id, alias=alias, version=to_version, updated_at=at
                )
            )
        self.conn.execute(
            _MOVES.insert().values(
                model_id=model_id,
                alias=alias,
                from_version=from_version,
                to_version=to_version,
                actor=actor,
                reason=reason,
                at=at,
            )
        )

    def alias_moves(self, model_id: int, name: str, alias: str | None = None) -> list[AliasMove]:
        stmt = select(_MOVES).where(_MOVES.c.model_id == model_id)
        if alias is not None:
            stmt = stmt.where(_MOVES.c.alias == alias)
        return [
            AliasMove(
                name,
                row.alias,
                row.from_version,
                row.to_version,
                row.actor,
                row.reason,
                _when(row.at),
            )
            for row in self.conn.execute(stmt.order_by(_MOVES.c.at, _MOVES.c.id))
        ]

    def protected(self, model_id: int) -> list[str]:
        stmt = select(_PROT.c.alias).where(_PROT.c.model_id == model_id).order_by(_PROT.c.alias)
        return list(self.conn.execute(stmt).scalars())

    def protect(self, model_id: int, alias: str, protect: bool) -> bool:
        """Protect (or unprotect) an alias; False when that changed nothing."""
        if not protect:
            result = self.conn.execute(
                _PROT.delete().where(_PROT.c.model_id == model_id, _PROT.c.alias == alias)
            )
            return bool(result.rowcount)
        stmt = (
            self._insert(_PROT)
            .values(model_id=model_id, alias=alias, created_at=now_ms())
            .on_conflict_do_nothing(index_elements=["model_id", "alias"])
            .returning(_PROT.c.alias)
        )
        return self.conn.execute(stmt).first() is not None

    # -- runs' use of versions ----------------------------------------------------------

    def add_input(self, run_pk: int, version_pk: int, role: str) -> bool:
        stmt = (
            self._insert(_IN)
            .values(run_pk=run_pk, version_pk=version_pk, role=role, created_at=now_ms())
            .on_conflict_do_nothing(index_elements=["run_pk", "version_pk", "role"])
            .returning(_IN.c.run_pk)
        )
        return self.conn.execute(stmt).first() is not None


def _version(row: Any, project: str, name: str, aliases: list[str]) -> ModelVersion:
    return ModelVersion(
        project=project,
        name=name,
        version=int(row.version),
        semver=row.semver,
        bump_reason=row.bump_reason,
        run_id=row.run_id,
        flavor=row.flavor,
        algorithm=row.algorithm,
        signature=json.loads(row.signature) if row.signature else None,
        digest=row.digest,
        size=int(row.size),
        approval=Approval(row.approval),
        created_at=_when(row.created_at),
        training_data=json.loads(row.training_data) if row.training_data else [],
        requirements=json.loads(row.requirements) if row.requirements else {},
        description=row.description or "",
        tags=json.loads(row.tags) if row.tags else {},
        approval_comment=row.approval_comment,
        approval_actor=row.approval_actor,
        approval_at=ms_to_datetime(row.approval_at),
        author=row.author,
        aliases=aliases,
    )
