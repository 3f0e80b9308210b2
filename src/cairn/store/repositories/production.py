"""Endpoints and their variants; predictions (append-only) and feedback."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    bindparam,
    case,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.elements import TextClause

from cairn.domain.production import Endpoint, Variant
from cairn.domain.records import ms_to_datetime, now_ms
from cairn.store.bulk import executemany, fetchall, no_gc_pauses
from cairn.store.repositories.prediction_rollups import ROLLUP_COLUMNS, RollupRepository
from cairn.store.tables import EndpointRow, EndpointVariantRow, FeedbackRow, PredictionRow

_E = cast(Table, EndpointRow.__table__)
_EV = cast(Table, EndpointVariantRow.__table__)
_P = cast(Table, PredictionRow.__table__)
_FB = cast(Table, FeedbackRow.__table__)

PREDICTION_COLUMNS = [
    "project_id",
    "model_id",
    "model_version",
    "endpoint_id",
    "variant",
    "shadow",
    "request_id",
    "unit_id",
    "at",
    "inputs",
    "outputs",
    "latency_ms",
    "error",
]
_IN_CHUNK = 500  # request ids a query names at a time
_PG_CHUNK = 10_000  # rows an insert sends at a time (PostgreSQL)
_LATENCY = PREDICTION_COLUMNS.index("latency_ms")
_LABELS_LOCK = 0x6C61  # namespace of the advisory locks of ``_lock_labels`` ("la")
# A row of PREDICTION_COLUMNS as the rollups read it (ROLLUP_COLUMNS).
_ROLLUP_SOURCE = itemgetter(*[PREDICTION_COLUMNS.index(c) for c in ROLLUP_COLUMNS])


# Statements built once (a list of ids is one expanding parameter, not 500 literals to
# coerce on every call): the feedback stored for requests of a project, the feedback of
# the predictions past an id (SQLite: those an insert just added), and the predictions
# of requests of a project as the rollups read them.
_ACTUALS = select(_FB.c.request_id, _FB.c.actual).where(
    _FB.c.project_id == bindparam("project_id"),
    _FB.c.request_id.in_(bindparam("ids", expanding=True)),
)
_NEW_ACTUALS = (
    select(_FB.c.request_id, _FB.c.actual)
    .select_from(_P)
    .join(_FB, (_FB.c.project_id == _P.c.project_id) & (_FB.c.request_id == _P.c.request_id))
    .where(_P.c.id > bindparam("last_id"), _P.c.error.is_(None))
)
_SOURCES = select(*[_P.c[c] for c in ROLLUP_COLUMNS]).where(
    _P.c.project_id == bindparam("project_id"),
    _P.c.request_id.in_(bindparam("ids", expanding=True)),
)


class ProductionRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert

    # -- endpoints ----------------------------------------------------------------------

    def endpoint_id(self, project_id: int, name: str) -> int | None:
        stmt = select(_E.c.id).where(_E.c.project_id == project_id, _E.c.name == name)
        return cast(int | None, self.conn.execute(stmt).scalar())

    def create_endpoint(
        self, project_id: int, name: str, description: str, settings: dict[str, Any]
    ) -> int:
        at = now_ms()
        stmt = _E.insert().values(
            project_id=project_id,
            name=name,
            description=description,
            settings=json.dumps(settings, sort_keys=True),
            created_at=at,
            updated_at=at,
        )
        return int(self.conn.execute(stmt.returning(_E.c.id)).scalar_one())

    def update_endpoint(
        self, endpoint_id: int, *, description: str | None, settings: dict[str, Any] | None
    ) -> None:
        values: dict[str, Any] = {"updated_at": now_ms()}
        if description is not None:
            values["description"] = description
        if settings is not None:
            values["settings"] = json.dumps(settings, sort_keys=True)
        self.conn.execute(_E.update().where(_E.c.id == endpoint_id).values(**values))

    def set_variants(self, endpoint_id: int, variants: Sequence[Variant]) -> None:
        self.conn.execute(_EV.delete().where(_EV.c.endpoint_id == endpoint_id))
        self.conn.execute(
            _EV.insert(),
            [
                {
                    "endpoint_id": endpoint_id,
                    "name": v.name,
                    "target": v.target,
                    "weight": v.weight,
                    "shadow": v.shadow,
                }
                for v in variants
            ],
        )
        self.conn.execute(_E.update().where(_E.c.id == endpoint_id).values(updated_at=now_ms()))

    def get_endpoint(self, endpoint_id: int, project: str) -> Endpoint:
        row = self.conn.execute(select(_E).where(_E.c.id == endpoint_id)).one()
        variants = [
            Variant(v.name, v.target, int(v.weight), bool(v.shadow))
            for v in self.conn.execute(
                select(_EV).where(_EV.c.endpoint_id == endpoint_id).order_by(_EV.c.name)
            )
        ]
        created, updated = ms_to_datetime(row.created_at), ms_to_datetime(row.updated_at)
        assert created is not None and updated is not None
        return Endpoint(
            project,
            row.name,
            row.description,
            variants,
            json.loads(row.settings or "{}"),
            created,
            updated,
        )

    def list_endpoints(self, project_id: int, project: str) -> list[Endpoint]:
        ids = self.conn.execute(
            select(_E.c.id).where(_E.c.project_id == project_id).order_by(_E.c.name)
        ).scalars()
        return [self.get_endpoint(i, project) for i in ids]

    # -- predictions and feedback -------------------------------------------------------

    def add_predictions(self, rows: list[dict[str, Any]] | list[tuple[Any, ...]]) -> int:
        """Insert; a row whose (project, request, variant) exists already is skipped.

        Rows are dicts keyed by PREDICTION_COLUMNS, or tuples in that order. Returns how
        many were new: on SQLite the connection's count of changed rows (a skipped row
        changes none), elsewhere the rows the insert returns. The new ones, and only
        they, are added to the per-minute rollups in the same transaction, with the
        feedback that arrived for them before they did.
        """
        if not rows:
            return 0
        if self.conn.dialect.name == "sqlite":
            new, actuals = self._add_sqlite(rows)
        else:
            self._lock_labels({r["project_id"] if isinstance(r, dict) else r[0] for r in rows})
            new = self._add_returning(rows)
            actuals = self.actuals_of(new)
        RollupRepository(self.conn).add(new, actuals)
        return len(new)

    def _add_sqlite(self, rows: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """SQLite (one writer): the rows new to the table, as the rollups read them, and
        the feedback already stored for them (those past the last id before: one join)."""
        dbapi = self.conn.connection.driver_connection
        before = int(dbapi.total_changes)  # type: ignore[union-attr]
        as_tuples = (
            [tuple(r[c] for c in PREDICTION_COLUMNS) for r in rows]
            if isinstance(rows[0], dict)
            else rows
        )
        last_id = self.conn.execute(select(func.max(_P.c.id))).scalar() or 0
        executemany(
            self.conn,
            _insert_predictions_sqlite,
            as_tuples,
            PREDICTION_COLUMNS,
            name="predictions.insert",
        )
        stored = int(dbapi.total_changes) - before  # type: ignore[union-attr]
        found = self.conn.execute(_NEW_ACTUALS, {"last_id": last_id})
        actuals = {request_id: actual for request_id, actual in found}
        if stored == len(as_tuples):
            return list(map(_ROLLUP_SOURCE, as_tuples)), actuals
        # Some were skipped: the new ones are those past the last id (one writer).
        columns = [_P.c[c] for c in ROLLUP_COLUMNS]
        new = self.conn.execute(select(*columns).where(_P.c.id > last_id)).all()
        return list(new), actuals

    def _add_returning(self, rows: list[Any]) -> list[Any]:
        """PostgreSQL: the insert returns what the rows that were new add to the rollups
        (a row another transaction inserted first is skipped and returns nothing)."""
        tuples = (
            [tuple(r[c] for c in PREDICTION_COLUMNS) for r in rows]
            if isinstance(rows[0], dict)
            else rows
        )
        new: list[Any] = []
        for start in range(0, len(tuples), _PG_CHUNK):
            chunk = tuples[start : start + _PG_CHUNK]
            columns = [list(values) for values in zip(*chunk, strict=True)]
            latency = columns[_LATENCY]  # one array type: no int beside a float
            columns[_LATENCY] = [None if v is None else float(v) for v in latency]
            params = dict(zip(PREDICTION_COLUMNS, columns, strict=True))
            new += self.conn.execute(_pg_insert(), params).all()
        return new

    def upsert_feedback(self, project_id: int, items: list[tuple[str, str]]) -> None:
        """Store feedback (a value sent again replaces the old one) and count it in the
        rollups of the predictions it names: the new (outputs, actual) pair in, the one it
        replaces out."""
        if not items:
            return
        self._lock_labels({project_id})
        ids = [r for r, _ in items]
        old = self._actuals(project_id, ids)
        at = now_ms()
        stmt = self._insert(_FB)
        stmt = stmt.on_conflict_do_update(
            index_elements=["project_id", "request_id"],
            set_={"actual": stmt.excluded.actual, "at": stmt.excluded.at},
        )
        self.conn.execute(
            stmt,
            [{"project_id": project_id, "request_id": r, "actual": a, "at": at} for r, a in items],
        )
        self.label_predictions(project_id, [(r, a) for r, a in items if old.get(r) != a], old)

    def label_predictions(
        self, project_id: int, items: Sequence[tuple[str, str]], replaced: Mapping[str, str]
    ) -> None:
        """Count feedback just stored (request id, actual JSON) in the rollups of the
        stored predictions it names; ``replaced``: the values it took the place of."""
        changes: list[tuple[Any, str, int]] = []
        actual = dict(items)
        for chunk in _chunks(list(actual), _IN_CHUNK):
            params = {"project_id": project_id, "ids": list(chunk)}
            for source in self.conn.execute(_SOURCES, params):
                request_id = source[-1]
                changes.append((source, actual[request_id], 1))
                if request_id in replaced:
                    changes.append((source, replaced[request_id], -1))
        RollupRepository(self.conn).add_labels(changes)

    def _actuals(self, project_id: int, request_ids: Sequence[str]) -> dict[str, str]:
        """The feedback stored for these requests of a project: actual JSON by id."""
        found: dict[str, str] = {}
        for chunk in _chunks(request_ids, _IN_CHUNK):
            params = {"project_id": project_id, "ids": list(chunk)}
            found.update((r, a) for r, a in self.conn.execute(_ACTUALS, params))
        return found

    def actuals_of(self, sources: Sequence[Any]) -> dict[str, str]:
        """The feedback already stored for new predictions (rollup sources): by request
        id, of their project (a batch is one project's)."""
        by_project: dict[int, list[str]] = {}
        for source in sources:
            if source[9] is None:  # feedback counts for successful predictions only
                by_project.setdefault(source[0], []).append(source[10])
        found: dict[str, str] = {}
        for project_id, ids in by_project.items():
            found.update(self._actuals(project_id, ids))
        return found

    def _lock_labels(self, project_ids: set[int]) -> None:
        """PostgreSQL: a logged prediction and the feedback for it, written at once by two
        transactions, would each miss the other (neither is committed when the other
        looks), and the pair would never be counted. Both writers take this lock of the
        project first, until commit. SQLite has one writer at a time anyway."""
        if self.conn.dialect.name != "postgresql":
            return
        for project_id in sorted(project_ids):
            self.conn.execute(
                select(func.pg_advisory_xact_lock(_LABELS_LOCK, int(project_id) % 2**31))
            )

    def predictions(
        self,
        project_id: int,
        *,
        model_id: int | None = None,
        endpoint_id: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 100_000,
    ) -> list[Any]:
        """Rows of a model's or an endpoint's predictions in a window, with feedback."""
        stmt = (
            select(_P, _FB.c.actual)
            .outerjoin(
                _FB,
                (_FB.c.project_id == _P.c.project_id) & (_FB.c.request_id == _P.c.request_id),
            )
            .where(_P.c.project_id == project_id)
        )
        if model_id is not None:
            stmt = stmt.where(_P.c.model_id == model_id)
        if endpoint_id is not None:
            stmt = stmt.where(_P.c.endpoint_id == endpoint_id)
        if since_ms is not None:
            stmt = stmt.where(_P.c.at >= since_ms)
        if until_ms is not None:
            stmt = stmt.where(_P.c.at < until_ms)
        return list(self.conn.execute(stmt.order_by(_P.c.at, _P.c.id).limit(limit)))

    # -- what a monitoring report reads -------------------------------------------------

    def _where(self, scope: PredictionScope) -> list[ColumnElement[bool]]:
        return [*self._subject(scope), _P.c.at >= scope.since_ms, _P.c.at < scope.until_ms]

    def _subject(self, scope: PredictionScope) -> list[ColumnElement[bool]]:
        where = [_P.c.project_id == scope.project_id]
        if scope.model_id is not None:
            where.append(_P.c.model_id == scope.model_id)
        if scope.endpoint_id is not None:
            where.append(_P.c.endpoint_id == scope.endpoint_id)
        if scope.version is not None:
            where.append(_P.c.model_version == scope.version)
        return where

    def _where_group(
        self, scope: PredictionScope, variant: str | None, model_id: int, version: int
    ) -> list[ColumnElement[bool]]:
        return [*self._where(scope), *_group(variant, model_id, version)]

    def outcome_counts(self, scope: PredictionScope) -> list[tuple[Any, ...]]:
        """Predictions counted per window, group and outcome: (window index, variant, model
        id, version, shadow 0/1, failed 0/1, outputs JSON, actual JSON, count). The outputs
        and actual are None for failed predictions, the actual for those with no feedback.

        Two passes: every prediction counted by its outputs, and the feedback joined to the
        predictions it names (a join of every prediction to the feedback table costs as
        much again as the count).
        """
        # Integer division written out, with literals, not binds: PostgreSQL matches a
        # GROUP BY expression to the selected one by its text (two binds are two values).
        origin, size = int(scope.origin_ms), int(scope.size_ms)
        window = literal_column(f"({_P.name}.at - {origin}) / {size}", BigInteger).label("w")
        ok = _P.c.error.is_(None)
        failed = case((ok, 0), else_=1).label("failed")
        outputs = case((ok, _P.c.outputs), else_=None).label("outputs")
        shadow = case((_P.c.shadow, 1), else_=0).label("shadow")
        keys = [window, _P.c.variant, _P.c.model_id, _P.c.model_version, shadow, failed, outputs]
        counted = select(*keys, func.count()).where(*self._where(scope)).group_by(*keys)
        labeled = self._labeled_sql(scope, origin, size)
        with no_gc_pauses():
            totals = {tuple(r[:7]): int(r[7]) for r in fetchall(self.conn, counted)}
            found: list[tuple[Any, ...]] = []
            for *head, out, actual, n in self.conn.exec_driver_sql(labeled).cursor.fetchall():
                key = (*head, 0, out)
                if key in totals:  # always, but for rows written between the two passes
                    n = min(int(n), totals[key])
                    totals[key] -= n
                    found.append((*key, actual, n))
        found.extend((*key, None, n) for key, n in totals.items() if n > 0)
        return found

    def rollup_sources(
        self, scope: PredictionScope, versions: Sequence[int] | None = None
    ) -> list[Any]:
        """The scope's predictions as the rollups read them (ROLLUP_COLUMNS): for the
        part of a minute that a report's end cuts off. ``versions``, all a model has,
        let the index on (model, version, time) seek each instead of reading it all."""
        where = self._where(scope)
        if versions is not None:
            where.append(_P.c.model_version.in_(list(versions)))
        columns = [_P.c[c] for c in ROLLUP_COLUMNS]
        return list(self.conn.execute(select(*columns).where(*where)).all())

    def _labeled_sql(self, scope: PredictionScope, origin: int, size: int) -> str:
        """The feedback joined to its predictions, counted like ``outcome_counts``. Written
        out (every value is an integer of ours) for ``CROSS JOIN``, which makes SQLite
        start from the feedback: otherwise it walks every prediction by request id."""
        where = [
            f"f.project_id = {int(scope.project_id)}",
            "p.project_id = f.project_id",
            "p.request_id = f.request_id",
            "p.error IS NULL",
            f"p.at >= {int(scope.since_ms)}",
            f"p.at < {int(scope.until_ms)}",
        ]
        if scope.model_id is not None:
            where.append(f"p.model_id = {int(scope.model_id)}")
        if scope.endpoint_id is not None:
            where.append(f"p.endpoint_id = {int(scope.endpoint_id)}")
        if scope.version is not None:
            where.append(f"p.model_version = {int(scope.version)}")
        keys = (
            f"(p.at - {origin}) / {size}, p.variant, p.model_id, p.model_version, "
            "CASE WHEN p.shadow THEN 1 ELSE 0 END, p.outputs, f.actual"
        )
        return (
            f"SELECT {keys}, count(*) FROM {_FB.name} AS f CROSS JOIN {_P.name} AS p "
            f"WHERE {' AND '.join(where)} GROUP BY {keys}"
        )

    def latencies(
        self, scope: PredictionScope, variant: str | None, model_id: int, version: int
    ) -> list[float]:
        """One group's latencies in the scope's window, ascending."""
        where = self._where_group(scope, variant, model_id, version)
        stmt = select(_P.c.latency_ms).where(*where, _P.c.latency_ms.is_not(None))
        with no_gc_pauses():
            found = [float(r[0]) for r in fetchall(self.conn, stmt)]
        found.sort()
        return found

    def inputs_sample(
        self,
        scope: PredictionScope,
        variant: str | None,
        model_id: int,
        version: int,
        *,
        every: int,
        limit: int,
    ) -> list[str]:
        """The inputs (JSON) of one group's successful predictions, every ``every``-th by
        id (the same sample for the same rows), at most ``limit``."""
        where = [*self._where_group(scope, variant, model_id, version), _P.c.error.is_(None)]
        if every > 1:
            where.append(literal_column(f"{_P.name}.id % {int(every)}") == 0)
        stmt = select(_P.c.inputs).where(*where).order_by(_P.c.id).limit(limit)
        return [r[0] for r in fetchall(self.conn, stmt)]

    def inputs_strata(
        self,
        scope: PredictionScope,
        variant: str | None,
        model_id: int,
        version: int,
        strata: Sequence[tuple[int, int]],
        per: int,
    ) -> list[str]:
        """The inputs (JSON) of one group's earliest ``per`` successful predictions in
        each time range [start, end) of ``strata``: one index seek each, the statement
        compiled once (building it per range cost more than running it)."""
        where = [
            *self._subject(scope),
            *_group(variant, model_id, version),
            _P.c.at >= bindparam("b_start"),
            _P.c.at < bindparam("b_end"),
            _P.c.error.is_(None),
        ]
        stmt = select(_P.c.inputs).where(*where).order_by(_P.c.at, _P.c.id).limit(per)
        compiled = stmt.compile(
            dialect=self.conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        sql, fixed = str(compiled), compiled.params
        found: list[str] = []
        for start, end in strata:
            params: Any = {**fixed, "b_start": start, "b_end": end}
            if self.conn.dialect.paramstyle == "qmark":
                params = tuple(params[name] for name in compiled.positiontup or [])
            found += [r[0] for r in self.conn.exec_driver_sql(sql, params).cursor.fetchall()]
        return found


@dataclass(frozen=True, slots=True)
class PredictionScope:
    """The predictions a report reads: a project's, of a model or an endpoint (and
    version), at times in [since, until), in windows of ``size_ms`` from ``origin_ms``."""

    project_id: int
    since_ms: int
    until_ms: int
    origin_ms: int
    size_ms: int
    model_id: int | None = None
    endpoint_id: int | None = None
    version: int | None = None


def _group(variant: str | None, model_id: int, version: int) -> list[ColumnElement[bool]]:
    where = [_P.c.model_id == model_id, _P.c.model_version == version]
    if variant is not None:
        where.append(_P.c.variant == variant)
    return where


@cache
def _pg_insert() -> TextClause:
    """PostgreSQL's insert of a batch as one statement with one array parameter a column,
    unnested; built once. (A multi-row VALUES of 1,000 rows cost SQLAlchemy and psycopg
    about 0.4 ms a row to build and convert, ten times what the database took.)"""
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(
        f"CAST(:{c} AS {_P.c[c].type.compile(dialect=dialect)}[])" for c in PREDICTION_COLUMNS
    )
    return text(
        f"INSERT INTO {quote(_P.name)} ({', '.join(map(quote, PREDICTION_COLUMNS))}) "
        f"SELECT * FROM unnest({arrays}) "
        "ON CONFLICT (project_id, request_id, variant) DO NOTHING "
        f"RETURNING {', '.join(map(quote, ROLLUP_COLUMNS))}"
    )


def _insert_predictions_sqlite() -> Any:
    return sqlite_insert(_P).on_conflict_do_nothing(
        index_elements=["project_id", "request_id", "variant"]
    )


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
