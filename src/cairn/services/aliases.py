"""Aliases: movable pointers to model versions, with every move kept.

aliases = AliasService(db, registry)
aliases.set_alias("iris", "production", 3, reason="beats v2 on holdout", actor="lee")
aliases.resolve_alias("iris", "production", at=datetime(2026, 3, 3, tzinfo=UTC))
aliases.rollback("iris", "production", actor="lee")     # back to what it pointed to before

A protected alias may only point to an approved version; trying otherwise is a
``Conflict`` that says which version and why. Each move is one audit event.
"""

from __future__ import annotations

from datetime import datetime

from cairn.domain.datasets import check_optional_text
from cairn.domain.errors import Conflict, NotFound
from cairn.domain.models import AliasMove, Approval, ModelVersion, RegisteredModel, check_alias
from cairn.domain.records import datetime_to_ms
from cairn.domain.validation import DEFAULT_PROJECT
from cairn.services.registry import RegistryService, locate
from cairn.store.database import Database, Tx
from cairn.store.repositories.events import EventRepository, NewEvent
from cairn.store.repositories.models import ModelRepository


class AliasService:
    def __init__(self, db: Database, registry: RegistryService) -> None:
        self.db = db
        self.registry = registry

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int | str,
        *,
        project: str = DEFAULT_PROJECT,
        reason: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Point ``alias`` at a version (a number, or a reference such as ``iris@1.2.0``)."""
        check_alias(alias)
        reason = check_optional_text(reason, "reason", 10_000)
        ref = f"{name}:{version}" if isinstance(version, int) else str(version)
        if isinstance(version, str) and version.isdigit():
            ref = f"{name}:{version}"
        target = self.registry.resolve(ref, project)
        if target.name != name or target.project != project:
            raise Conflict(
                f"{ref} is a version of another model; aliases of {name!r} point to its own",
                details={"model": name, "ref": ref},
            )
        with self.db.write() as tx:
            where = locate(tx.conn, project, name)
            repo = ModelRepository(tx.conn)
            repo.lock(where.model_id)
            current = repo.aliases(where.model_id).get(alias)
            if alias in repo.protected(where.model_id):
                fresh = repo.get_version(where.model_id, target.version, project, name)
                assert fresh is not None
                if fresh.approval is not Approval.APPROVED:
                    raise Conflict(
                        f"alias {alias!r} of {name!r} is protected: it may point only to an "
                        f"approved version, and {name}:{target.version} is {fresh.approval.value}",
                        details={
                            "alias": alias,
                            "version": target.version,
                            "approval": fresh.approval.value,
                        },
                    )
            if current != target.version:
                repo.move_alias(where.model_id, alias, current, target.version, actor, reason)
                self._event(
                    tx,
                    where.project_id,
                    project,
                    name,
                    alias,
                    current,
                    target.version,
                    reason,
                    actor,
                )
            moved = repo.get_version(where.model_id, target.version, project, name)
        assert moved is not None
        return moved

    def delete_alias(
        self,
        name: str,
        alias: str,
        *,
        project: str = DEFAULT_PROJECT,
        reason: str | None = None,
        actor: str | None = None,
    ) -> None:
        check_alias(alias)
        reason = check_optional_text(reason, "reason", 10_000)
        with self.db.write() as tx:
            where = locate(tx.conn, project, name)
            repo = ModelRepository(tx.conn)
            repo.lock(where.model_id)
            current = repo.aliases(where.model_id).get(alias)
            if current is None:
                raise NotFound(
                    f"model {name!r} has no alias {alias!r}",
                    details={"model": name, "alias": alias},
                )
            repo.move_alias(where.model_id, alias, current, None, actor, reason)
            self._event(tx, where.project_id, project, name, alias, current, None, reason, actor)

    def history(
        self, name: str, alias: str | None = None, *, project: str = DEFAULT_PROJECT
    ) -> list[AliasMove]:
        """Every move of ``alias`` (or of all the model's aliases), oldest first."""
        if alias is not None:
            check_alias(alias)
        with self.db.read() as conn:
            where = locate(conn, project, name)
            return ModelRepository(conn).alias_moves(where.model_id, name, alias)

    def resolve_alias(
        self,
        name: str,
        alias: str,
        *,
        at: datetime | None = None,
        project: str = DEFAULT_PROJECT,
    ) -> ModelVersion | None:
        """The version ``alias`` points to now, or pointed to at ``at``; None when it was
        unset then. Example: which version served production on 3 March?"""
        check_alias(alias)
        with self.db.read() as conn:
            where = locate(conn, project, name)
            repo = ModelRepository(conn)
            if at is None:
                version = repo.aliases(where.model_id).get(alias)
            else:
                cutoff = datetime_to_ms(at)
                assert cutoff is not None
                moves = [
                    m
                    for m in repo.alias_moves(where.model_id, name, alias)
                    if (datetime_to_ms(m.at) or 0) <= cutoff
                ]
                version = moves[-1].to_version if moves else None
            if version is None:
                return None
            return repo.get_version(where.model_id, version, project, name)

    def rollback(
        self,
        name: str,
        alias: str,
        *,
        project: str = DEFAULT_PROJECT,
        reason: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Move ``alias`` back to the version it pointed to before its last move."""
        moves = self.history(name, alias, project=project)
        previous = moves[-1].from_version if moves else None
        if previous is None:
            raise Conflict(
                f"alias {alias!r} of {name!r} has no earlier target to roll back to",
                details={"model": name, "alias": alias},
            )
        last = moves[-1].to_version
        why = reason or (
            f"rollback from {name}:{last} to {name}:{previous}"
            if last is not None
            else f"rollback: restored {name}:{previous} after the alias was deleted"
        )
        return self.set_alias(name, alias, previous, project=project, reason=why, actor=actor)

    def protect(
        self,
        name: str,
        alias: str,
        protect: bool = True,
        *,
        project: str = DEFAULT_PROJECT,
        actor: str | None = None,
    ) -> RegisteredModel:
        """Declare an alias protected: from now on it may point only to approved versions."""
        check_alias(alias)
        with self.db.write() as tx:
            where = locate(tx.conn, project, name)
            repo = ModelRepository(tx.conn)
            if repo.protect(where.model_id, alias, protect):
                action = "model.alias_protected" if protect else "model.alias_unprotected"
                EventRepository(tx.conn).add_many(
                    actor,
                    [
                        NewEvent(
                            action,
                            "model",
                            f"{project}/{name}",
                            where.project_id,
                            after={"alias": alias},
                        )
                    ],
                )
            return repo.get_model(where.model_id, project)

    @staticmethod
    def _event(
        tx: Tx,
        project_id: int,
        project: str,
        name: str,
        alias: str,
        before: int | None,
        after: int | None,
        reason: str | None,
        actor: str | None,
    ) -> None:
        EventRepository(tx.conn).add_many(
            actor,
            [
                NewEvent(
                    "model.alias_moved" if after is not None else "model.alias_deleted",
                    "model",
                    f"{project}/{name}",
                    project_id,
                    before={"alias": alias, "version": before},
                    after={"alias": alias, "version": after, "reason": reason},
                )
            ],
        )
