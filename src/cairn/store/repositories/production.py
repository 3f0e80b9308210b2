"""Endpoints and their variants; predictions (append-only) and feedback."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cairn.domain.production import Endpoint, Variant
from cairn.domain.records import ms_to_datetime, now_ms
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

    def add_predictions(self, rows: list[dict[str, Any]]) -> int:
        """Insert; a row whose (project, request, variant) exists already is skipped."""
        if not rows:
            return 0
        stored = 0
        for start in range(0, len(rows), 1000):
            stmt = (
                self._insert(_P)
                .values(rows[start : start + 1000])
                .on_conflict_do_nothing(index_elements=["project_id", "request_id", "variant"])
                .returning(_P.c.id)
            )
            stored += len(self.conn.execute(stmt).all())  # rowcount is -1 on psycopg here
        return stored

    def upsert_feedback(self, project_id: int, items: list[tuple[str, str]]) -> None:
        if not items:
            return
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
