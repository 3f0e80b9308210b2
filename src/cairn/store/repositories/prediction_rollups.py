"""Per-minute rollups of predictions (``domain/rollups.py``): added to in the transaction
that logs the predictions, read by monitoring reports.

A rollup's histograms are JSON, which no SQL upsert can add up on both SQLite and
PostgreSQL, so a batch merges in Python: the rows it touches are created empty if new
(``ON CONFLICT DO NOTHING``), read with ``FOR UPDATE`` (PostgreSQL: two servers logging
the same minute wait for each other; SQLite has one writer), merged and written back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cairn.domain.rollups import Rollup, RollupKey, RollupSource, fold, fold_labels
from cairn.store.tables import PredictionRollupRow

_R = cast(Table, PredictionRollupRow.__table__)
KEY_COLUMNS = (
    "project_id",
    "model_id",
    "model_version",
    "endpoint_id",
    "variant",
    "shadow",
    "minute",
)
# What a prediction contributes, in the order of ``domain.rollups.RollupSource``.
ROLLUP_COLUMNS = (
    "project_id",
    "model_id",
    "model_version",
    "endpoint_id",
    "variant",
    "shadow",
    "at",
    "outputs",
    "latency_ms",
    "error",
    "request_id",
)
_EMPTY = Rollup()


class RollupRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert

    def add(self, rows: Iterable[RollupSource], actuals: Mapping[str, str] | None = None) -> int:
        """Add predictions (only ones just inserted: a skipped duplicate must not count
        twice), with the feedback already stored for them (``actuals``: JSON by request
        id), to their minutes' rollups; returns how many rollup rows changed."""
        return self._merge_in(fold(rows, actuals))

    def add_labels(self, changes: Iterable[tuple[RollupSource, str, int]]) -> int:
        """Feedback that arrived for stored predictions: (the prediction, the actual's
        JSON, +1, or -1 for the value it replaced); see ``domain.rollups.Labels``."""
        return self._merge_in(fold_labels(changes))

    def _merge_in(self, found: dict[RollupKey, Rollup]) -> int:
        if not found:
            return 0
        keys = sorted(found)
        self._create_missing(keys)
        stored = self._locked(keys)
        changes = []
        for key in keys:
            row_id, rollup = stored[key]
            rollup.merge(found[key])
            changes.append(
                {
                    "b_id": row_id,
                    "b_volume": rollup.volume,
                    "b_errors": rollup.errors,
                    "b_latency": rollup.latency_json(),
                    "b_outputs": rollup.outputs_json(),
                    "b_labels": rollup.labels_json(),
                }
            )
        stmt = (
            _R.update()
            .where(_R.c.id == bindparam("b_id"))
            .values(
                volume=bindparam("b_volume"),
                errors=bindparam("b_errors"),
                latency=bindparam("b_latency"),
                outputs=bindparam("b_outputs"),
                labels=bindparam("b_labels"),
            )
        )
        self.conn.execute(stmt, changes)
        return len(changes)

    def _create_missing(self, keys: Sequence[RollupKey]) -> None:
        """Empty rows for the keys, in key order (concurrent batches then lock alike)."""
        empty = {
            "volume": 0,
            "errors": 0,
            "latency": _EMPTY.latency_json(),
            "outputs": _EMPTY.outputs_json(),
            "labels": _EMPTY.labels_json(),
        }
        stmt = self._insert(_R).on_conflict_do_nothing(index_elements=list(KEY_COLUMNS))
        self.conn.execute(stmt, [{**dict(zip(KEY_COLUMNS, k, strict=True)), **empty} for k in keys])

    def _locked(self, keys: Sequence[RollupKey]) -> dict[RollupKey, tuple[int, Rollup]]:
        """The rows of the keys, locked until commit: those of the keys' projects, models
        and minutes read by the unique index, the others left out here."""
        wanted = set(keys)
        stmt = (
            select(_R)
            .where(
                _R.c.project_id.in_({k[0] for k in keys}),
                _R.c.model_id.in_({k[1] for k in keys}),
                _R.c.minute >= min(k[6] for k in keys),
                _R.c.minute <= max(k[6] for k in keys),
            )
            .order_by(_R.c.id)
            .with_for_update()
        )
        out: dict[RollupKey, tuple[int, Rollup]] = {}
        for row in self.conn.execute(stmt):
            key = cast(RollupKey, tuple(row._mapping[c] for c in KEY_COLUMNS))
            key = (*key[:5], bool(key[5]), int(key[6]))
            if key in wanted:
                out[key] = (int(row.id), _rollup(row))
        return out

    def read(
        self,
        project_id: int,
        first_minute: int,
        end_minute: int,
        *,
        model_id: int | None = None,
        endpoint_id: int | None = None,
        version: int | None = None,
    ) -> list[tuple[int, str, int, int, bool, Rollup]]:
        """(minute, variant, model id, version, shadow, rollup) of the minutes in
        [first_minute, end_minute) of a model's or an endpoint's predictions."""
        stmt = select(
            _R.c.minute,
            _R.c.variant,
            _R.c.model_id,
            _R.c.model_version,
            _R.c.shadow,
            _R.c.volume,
            _R.c.errors,
            _R.c.latency,
            _R.c.outputs,
            _R.c.labels,
        ).where(
            _R.c.project_id == project_id,
            _R.c.minute >= first_minute,
            _R.c.minute < end_minute,
            _R.c.volume > 0,
        )
        if model_id is not None:
            stmt = stmt.where(_R.c.model_id == model_id)
        if endpoint_id is not None:
            stmt = stmt.where(_R.c.endpoint_id == endpoint_id)
        if version is not None:
            stmt = stmt.where(_R.c.model_version == version)
        return [
            (
                int(minute),
                variant,
                int(model),
                int(ver),
                bool(shadow),
                Rollup.from_columns(volume, errors, latency, outputs, labels),
            )
            for minute, variant, model, ver, shadow, volume, errors, latency, outputs, labels in (
                self.conn.execute(stmt).all()
            )
        ]


def _rollup(row: Row[Any]) -> Rollup:
    return Rollup.from_columns(row.volume, row.errors, row.latency, row.outputs, row.labels)
