"""The links between dataset versions, runs, model versions and endpoints, read a hop at
a time.

Nodes are keyed ``(kind, pk)``. ``links`` answers one hop for a whole frontier with one
query per relation (chunked only for very large frontiers); ``nodes`` loads what is shown
of every node reached with one query per kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, case, literal, select

from cairn.domain.lineage import (
    LineageNode,
    NodeKind,
    Relation,
    dataset_node_id,
    endpoint_node_id,
    model_node_id,
    run_node_id,
)
from cairn.store.tables import (
    DatasetRow,
    DatasetVersionRow,
    EndpointRow,
    ModelAliasRow,
    ModelVersionRow,
    PredictionRollupRow,
    ProjectRow,
    RegisteredModelRow,
    RunInputRow,
    RunModelInputRow,
    RunRow,
)

_P = cast(Table, ProjectRow.__table__)
_R = cast(Table, RunRow.__table__)
_D = cast(Table, DatasetRow.__table__)
_DV = cast(Table, DatasetVersionRow.__table__)
_RI = cast(Table, RunInputRow.__table__)
_M = cast(Table, RegisteredModelRow.__table__)
_MV = cast(Table, ModelVersionRow.__table__)
_MI = cast(Table, RunModelInputRow.__table__)
_A = cast(Table, ModelAliasRow.__table__)
_E = cast(Table, EndpointRow.__table__)
_PR = cast(Table, PredictionRollupRow.__table__)

NodeKey = tuple[NodeKind, int]
_CHUNK = 5000  # bound parameters per query stay far below SQLite's and PostgreSQL's limits


@dataclass(frozen=True, slots=True)
class Link:
    """An edge as data flows: ``source`` -> ``target``."""

    source: NodeKey
    target: NodeKey
    relation: Relation
    role: str | None = None


@dataclass(frozen=True, slots=True)
class _Kind:
    """One relation: its two ends and a select of (src pk, dst pk, role)."""

    relation: Relation
    source: NodeKind
    target: NodeKind
    build: Callable[[], tuple[Select[Any], ColumnElement[Any], ColumnElement[Any]]]


def _dataset_inputs() -> tuple[Select[Any], ColumnElement[Any], ColumnElement[Any]]:
    stmt = select(_RI.c.version_pk, _RI.c.run_pk, _RI.c.role)
    return stmt, _RI.c.version_pk, _RI.c.run_pk


def _dataset_outputs() -> tuple[Select[Any], ColumnElement[Any], ColumnElement[Any]]:
    stmt = select(_DV.c.run_pk, _DV.c.pk, literal(None).label("role")).where(
        _DV.c.run_pk.is_not(None)
    )
    return stmt, _DV.c.run_pk, _DV.c.pk


def _trained() -> tuple[Select[Any], ColumnElement[Any], ColumnElement[Any]]:
    stmt = select(_MV.c.run_pk, _MV.c.pk, literal(None).label("role")).where(
        _MV.c.run_pk.is_not(None)
    )
    return stmt, _MV.c.run_pk, _MV.c.pk


def _model_inputs() -> tuple[Select[Any], ColumnElement[Any], ColumnElement[Any]]:
    stmt = select(_MI.c.version_pk, _MI.c.run_pk, _MI.c.role)
    return stmt, _MI.c.version_pk, _MI.c.run_pk


def _steps() -> tuple[Select[Any], ColumnElement[Any], ColumnElement[Any]]:
    parent, child = _R.alias("parent"), _R.alias("child")
    stmt = select(parent.c.pk, child.c.pk, literal(None).label("role")).join_from(
        child, parent, parent.c.id == child.c.parent_id
    )
    return stmt, parent.c.pk, child.c.pk


def _served() -> tuple[Select[Any], ColumnElement[Any], ColumnElement[Any]]:
    """Which versions answered an endpoint's traffic, as which variant: read off the
    per-minute prediction rollups, so it is what happened, not what is configured now."""
    role = case((_PR.c.shadow, _PR.c.variant + " (shadow)"), else_=_PR.c.variant)
    on_version = and_(_MV.c.model_id == _PR.c.model_id, _MV.c.version == _PR.c.model_version)
    stmt = (
        select(_MV.c.pk, _PR.c.endpoint_id, role.label("role"))
        .join_from(_PR, _MV, on_version)
        .where(_PR.c.endpoint_id != 0)
        .distinct()
    )
    return stmt, _MV.c.pk, _PR.c.endpoint_id


_RELATIONS = (
    _Kind(Relation.INPUT, NodeKind.DATASET, NodeKind.RUN, _dataset_inputs),
    _Kind(Relation.OUTPUT, NodeKind.RUN, NodeKind.DATASET, _dataset_outputs),
    _Kind(Relation.TRAINED, NodeKind.RUN, NodeKind.MODEL, _trained),
    _Kind(Relation.INPUT, NodeKind.MODEL, NodeKind.RUN, _model_inputs),
    _Kind(Relation.STEP, NodeKind.RUN, NodeKind.RUN, _steps),
    _Kind(Relation.SERVED, NodeKind.MODEL, NodeKind.ENDPOINT, _served),
)


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class LineageRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def links(self, frontier: Iterable[NodeKey], forward: bool) -> list[Link]:
        """Every edge leaving the frontier (``forward``) or entering it, one query per
        relation whose near end has nodes in the frontier."""
        by_kind: dict[NodeKind, list[int]] = {}
        for kind, pk in frontier:
            by_kind.setdefault(kind, []).append(pk)
        found: list[Link] = []
        for rel in _RELATIONS:
            near_kind = rel.source if forward else rel.target
            pks = sorted(by_kind.get(near_kind, ()))
            if not pks:
                continue
            stmt, src, dst = rel.build()
            near, far = (src, dst) if forward else (dst, src)
            for chunk in _chunks(pks):
                rows = self.conn.execute(stmt.where(near.in_(chunk)).order_by(near, far))
                found.extend(
                    Link((rel.source, int(r[0])), (rel.target, int(r[1])), rel.relation, r[2])
                    for r in rows
                )
        return found

    def nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, LineageNode]:
        """What is shown of each node, one query per kind."""
        by_kind: dict[NodeKind, list[int]] = {}
        for kind, pk in keys:
            by_kind.setdefault(kind, []).append(pk)
        loaders = {
            NodeKind.DATASET: self._datasets,
            NodeKind.RUN: self._runs,
            NodeKind.MODEL: self._models,
            NodeKind.ENDPOINT: self._endpoints,
        }
        found: dict[NodeKey, LineageNode] = {}
        for kind, pks in by_kind.items():
            for chunk in _chunks(sorted(set(pks))):
                found.update(((kind, pk), node) for pk, node in loaders[kind](chunk))
        return found

    def _datasets(self, pks: Sequence[int]) -> Iterable[tuple[int, LineageNode]]:
        stmt = (
            select(_DV.c.pk, _DV.c.version, _DV.c.batch, _D.c.name, _P.c.name.label("project"))
            .join(_D, _D.c.id == _DV.c.dataset_id)
            .join(_P, _P.c.id == _D.c.project_id)
            .where(_DV.c.pk.in_(pks))
        )
        for row in self.conn.execute(stmt):
            version = int(row.version)
            yield (
                int(row.pk),
                LineageNode(
                    id=dataset_node_id(row.project, row.name, version),
                    kind=NodeKind.DATASET,
                    label=f"{row.name}:{version}",
                    ref=f"{row.project}/{row.name}:{version}",
                    project=row.project,
                    name=row.name,
                    version=version,
                    batch=row.batch,
                ),
            )

    def _runs(self, pks: Sequence[int]) -> Iterable[tuple[int, LineageNode]]:
        stmt = (
            select(_R.c.pk, _R.c.id, _R.c.name, _R.c.status, _P.c.name.label("project"))
            .join(_P, _P.c.id == _R.c.project_id)
            .where(_R.c.pk.in_(pks))
        )
        for row in self.conn.execute(stmt):
            yield (
                int(row.pk),
                LineageNode(
                    id=run_node_id(row.id),
                    kind=NodeKind.RUN,
                    label=row.name or row.id,
                    ref=f"runs/{row.id}",
                    project=row.project,
                    name=row.name,
                    status=row.status,
                ),
            )

    def _endpoints(self, pks: Sequence[int]) -> Iterable[tuple[int, LineageNode]]:
        stmt = (
            select(_E.c.id, _E.c.name, _P.c.name.label("project"))
            .join(_P, _P.c.id == _E.c.project_id)
            .where(_E.c.id.in_(pks))
        )
        for row in self.conn.execute(stmt):
            yield (
                int(row.id),
                LineageNode(
                    id=endpoint_node_id(row.project, row.name),
                    kind=NodeKind.ENDPOINT,
                    label=row.name,
                    ref=f"endpoints/{row.project}/{row.name}",
                    project=row.project,
                    name=row.name,
                ),
            )

    def _models(self, pks: Sequence[int]) -> Iterable[tuple[int, LineageNode]]:
        on_alias = and_(_A.c.model_id == _MV.c.model_id, _A.c.version == _MV.c.version)
        stmt = (
            select(
                _MV.c.pk,
                _MV.c.version,
                _MV.c.semver,
                _MV.c.approval,
                _M.c.name,
                _P.c.name.label("project"),
                _A.c.alias,
            )
            .join(_M, _M.c.id == _MV.c.model_id)
            .join(_P, _P.c.id == _M.c.project_id)
            .outerjoin(_A, on_alias)
            .where(_MV.c.pk.in_(pks))
        )
        rows: dict[int, Any] = {}
        aliases: dict[int, list[str]] = {}
        for row in self.conn.execute(stmt):  # one row per alias (one with NULL for none)
            rows[int(row.pk)] = row
            if row.alias is not None:
                aliases.setdefault(int(row.pk), []).append(row.alias)
        for pk, row in rows.items():
            version = int(row.version)
            yield (
                pk,
                LineageNode(
                    id=model_node_id(row.project, row.name, version),
                    kind=NodeKind.MODEL,
                    label=f"{row.name}:{version}",
                    ref=f"{row.project}/{row.name}:{version}",
                    project=row.project,
                    name=row.name,
                    version=version,
                    semver=row.semver,
                    aliases=tuple(sorted(aliases.get(pk, []))),
                    approval=row.approval,
                ),
            )
