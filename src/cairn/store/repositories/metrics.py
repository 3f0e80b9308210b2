"""Metric points: bulk appends, summaries and rollups kept per batch, downsampled reads.

A batch appends each series column-wise: points go in with one ``executemany`` (SQLite)
or ``COPY`` (PostgreSQL); the per-run-and-key summary and the rollups are merged once per
batch with upserts. Reads of a long series at low resolution read rollups, never points.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain, repeat
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, case, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import ClauseElement

from cairn.domain.records import MetricPoint, MetricSeries, MetricSummary
from cairn.store.bulk import executemany, fetchall, no_gc_pauses, rows_for
from cairn.store.database import KeyCache, Tx
from cairn.store.tables import MetricKeyRow, MetricPointRow, MetricRollupRow, MetricSummaryRow

_K = cast(Table, MetricKeyRow.__table__)
_PT = cast(Table, MetricPointRow.__table__)
_S = cast(Table, MetricSummaryRow.__table__)
_RU = cast(Table, MetricRollupRow.__table__)

# Rollup levels: (level, points per bucket), each 16 times the one below, so for any
# series some level has between N/2 and 8N buckets for a chart of N points.
LEVELS: tuple[tuple[int, int], ...] = ((1, 64), (2, 1024), (3, 16384), (4, 262144))
# A series is downsampled from its raw points up to this length; rollups start beyond
# it (the batch that crosses it backfills them), so short series cost no rollup rows.
ROLLUP_FROM = 4096
_POINT_COLUMNS = "run_pk, key_id, step, seq, ts, value"
_PG_RUN_LOCK = 0x43414952  # advisory lock class for "writing this run's metrics"


@dataclass(slots=True)
class _Extremes:
    """Min and max points of some stretch of a series (NaN never counts)."""

    count: int
    step_lo: int
    step_hi: int
    min_point: tuple[int, int, float] | None  # (step, ts, value)
    max_point: tuple[int, int, float] | None


def _extremes(
    steps: list[int],
    ts: list[int],
    values: list[float],
    careful: bool = True,
    lo: int = 0,
    hi: int | None = None,
    ordered: bool = False,
) -> _Extremes:
    """Extremes of ``values[lo:hi]``; ``ordered`` says the steps never decrease."""
    hi = len(values) if hi is None else hi
    part = values[lo:hi] if lo or hi != len(values) else values
    min_p = max_p = None
    if careful and math.isnan(sum(part)):  # a NaN (or inf - inf): leave NaNs out
        real = [i for i, v in enumerate(part) if v == v]
        if real:
            i_min = lo + min(real, key=part.__getitem__)
            i_max = lo + max(real, key=part.__getitem__)
            min_p = (steps[i_min], ts[i_min], values[i_min])
            max_p = (steps[i_max], ts[i_max], values[i_max])
    else:
        i_min = lo + part.index(min(part))
        i_max = lo + part.index(max(part))
        min_p = (steps[i_min], ts[i_min], values[i_min])
        max_p = (steps[i_max], ts[i_max], values[i_max])
    if ordered:
        return _Extremes(hi - lo, steps[lo], steps[hi - 1], min_p, max_p)
    span = steps[lo:hi]
    return _Extremes(hi - lo, min(span), max(span), min_p, max_p)


def _combine(parts: Sequence[_Extremes]) -> _Extremes:
    """The extremes of consecutive stretches, from their own extremes."""
    lows = [p.min_point for p in parts if p.min_point is not None]
    highs = [p.max_point for p in parts if p.max_point is not None]
    return _Extremes(
        sum(p.count for p in parts),
        min(p.step_lo for p in parts),
        max(p.step_hi for p in parts),
        min(lows, key=lambda p: p[2]) if lows else None,
        max(highs, key=lambda p: p[2]) if highs else None,
    )


def _nullable(value: float) -> float | None:
    return None if value != value else value


_SUMMARY_COLUMNS = (
    "run_pk", "key_id", "count", "last_value", "last_step", "last_ts", "min_value", "max_value",
)  # fmt: skip
_ROLLUP_COLUMNS = (
    "run_pk",
    "key_id",
    "level",
    "bucket",
    "count",
    "step_lo",
    "step_hi",
    "min_step",
    "min_ts",
    "min_value",
    "max_step",
    "max_ts",
    "max_value",
)


def _rollup_row(
    run_pk: int, key_id: int, level: int, bucket: int, ext: _Extremes
) -> tuple[Any, ...]:
    mn = ext.min_point or (None, None, None)
    mx = ext.max_point or (None, None, None)
    return (run_pk, key_id, level, bucket, ext.count, ext.step_lo, ext.step_hi, *mn, *mx)


_as_point = partial(tuple.__new__, MetricPoint)  # a C call per row, not namedtuple._make

_SeriesRows = tuple[int, int, int, list[int], list[int], list[float | None]]
_ROWS_PER_INSERT = 128  # rows per INSERT statement: binding, not SQLite, is the cost


def _sqlite_insert_series(
    cur: Any,
    run_pk: int,
    key_id: int,
    seq: int,
    steps: list[int],
    ts: list[int],
    values: list[float | None],
) -> None:
    """One series into SQLite, 128 rows per statement.

    run_pk and key_id are integers from our own tables, written into the SQL as literals
    so that each row binds four values instead of six.
    """
    n = len(values)
    flat = list(chain.from_iterable(zip(steps, range(seq, seq + n), ts, values, strict=True)))
    row = f"({run_pk},{key_id},?,?,?,?)"
    head = f"INSERT INTO metric_points ({_POINT_COLUMNS}) VALUES "
    width = 4 * _ROWS_PER_INSERT
    whole = len(flat) // width * width
    if whole:
        sql = head + ",".join([row] * _ROWS_PER_INSERT)
        cur.executemany(sql, (flat[i : i + width] for i in range(0, whole, width)))
    rest = len(flat) - whole
    if rest:
        cur.execute(head + ",".join([row] * (rest // 4)), flat[whole:])


class MetricRepository:
    def __init__(self, conn: Connection, keys: KeyCache) -> None:
        self.conn = conn
        self.cache = keys
        self.pg = conn.dialect.name == "postgresql"
        self._insert = pg_insert if self.pg else sqlite_insert

    # -- keys -----------------------------------------------------------------------

    def key_ids(self, names: Iterable[str], tx: Tx | None = None) -> dict[str, int]:
        """Ids of metric keys; with ``tx``, missing keys are created."""
        found: dict[str, int] = {}
        missing = []
        for name in set(names):
            key_id = self.cache.get(name)
            if key_id is None:
                missing.append(name)
            else:
                found[name] = key_id
        if not missing:
            return found
        if tx is not None:
            stmt = self._insert(_K).on_conflict_do_nothing(index_elements=["name"])
            self.conn.execute(stmt, [{"name": n} for n in missing])
        rows = self.conn.execute(select(_K.c.name, _K.c.id).where(_K.c.name.in_(missing)))
        fresh = {name: key_id for name, key_id in rows}
        if tx is not None:
            tx.on_commit.append(lambda: self.cache.add(fresh))
        else:
            self.cache.add(fresh)
        found.update(fresh)
        return found

    # -- writes ---------------------------------------------------------------------

    def append(
        self, tx: Tx, batches: list[tuple[int, dict[str, MetricSeries]]], new_runs: set[int]
    ) -> int:
        """Append series of several runs; ``new_runs`` were created in this transaction."""
        key_ids = self.key_ids((k for _, series in batches for k in series), tx)
        existing = sorted({pk for pk, _ in batches if pk not in new_runs})
        if self.pg and existing:
            # Serialise writers of one run, so each series' seq numbers stay dense (on
            # SQLite, BEGIN IMMEDIATE already admits one writer at a time).
            ids = func.unnest(sorted({pk % 2**31 for pk in existing}))
            locks = ids.table_valued("x").render_derived()
            self.conn.execute(select(func.pg_advisory_xact_lock(_PG_RUN_LOCK, locks.c.x)))
        counts = self._existing_counts(
            [(pk, key_ids[k]) for pk, series in batches if pk not in new_runs for k in series]
        )
        points: list[_SeriesRows] = []
        summaries: list[tuple[Any, ...]] = []
        rollups: list[tuple[Any, ...]] = []
        total = 0
        for run_pk, series_by_key in batches:
            for key in sorted(series_by_key):
                series = series_by_key[key]
                n = len(series.values)
                if not n:
                    continue
                key_id = key_ids[key]
                start = counts.get((run_pk, key_id), 0)
                steps, ts, values = series.steps, series.timestamps, series.values
                careful = math.isnan(sum(values))
                stored: list[float | None] = (
                    [_nullable(v) for v in values] if careful else list(values)
                )
                points.append((run_pk, key_id, start, steps, ts, stored))
                total += n
                summaries.append(self._summary_row(run_pk, key_id, steps, ts, values, careful))
                if start + n > ROLLUP_FROM:
                    if 0 < start <= ROLLUP_FROM:  # crossing the threshold: backfill
                        old = self.points_by_seq(run_pk, key_id, start)
                        steps = [p.step for p in old] + steps
                        ts = [p.timestamp for p in old] + ts
                        values = [p.value for p in old] + values
                        careful = careful or any(p.value != p.value for p in old)
                        start = 0
                    rollups.extend(
                        self._rollup_rows(run_pk, key_id, start, steps, ts, values, careful)
                    )
        self._insert_points(points)
        self._merge_summaries(summaries)
        self._merge_rollups(rollups)
        return total

    def _existing_counts(self, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], int]:
        counts: dict[tuple[int, int], int] = {}
        for i in range(0, len(pairs), 400):
            chunk = pairs[i : i + 400]
            run_pks = {pk for pk, _ in chunk}
            stmt = select(_S.c.run_pk, _S.c.key_id, _S.c.count).where(_S.c.run_pk.in_(run_pks))
            wanted = set(chunk)
            for pk, key_id, count in self.conn.execute(stmt):
                if (pk, key_id) in wanted:
                    counts[(pk, key_id)] = count
        return counts

    def _insert_points(self, series: list[_SeriesRows]) -> None:
        if not series:
            return
        dbapi = self.conn.connection.driver_connection
        assert dbapi is not None
        if self.pg:
            rows = chain.from_iterable(
                zip(
                    repeat(pk, len(v)),
                    repeat(key, len(v)),
                    steps,
                    range(seq, seq + len(v)),
                    ts,
                    v,
                    strict=True,
                )
                for pk, key, seq, steps, ts, v in series
            )
            with (
                dbapi.cursor() as cur,
                cur.copy(f"COPY metric_points ({_POINT_COLUMNS}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        cur = dbapi.cursor()
        short: list[tuple[Any, ...]] = []  # points of short series: one executemany for all
        try:
            for pk, key, seq, steps, ts, values in series:
                if len(values) >= _ROWS_PER_INSERT:
                    _sqlite_insert_series(cur, int(pk), int(key), seq, steps, ts, values)
                else:
                    n = len(values)
                    short.extend(
                        zip(
                            repeat(pk, n),
                            repeat(key, n),
                            steps,
                            range(seq, seq + n),
                            ts,
                            values,
                            strict=True,
                        )
                    )
            if short:
                cur.executemany(
                    f"INSERT INTO metric_points ({_POINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    short,
                )
        finally:
            cur.close()

    @staticmethod
    def _summary_row(
        run_pk: int,
        key_id: int,
        steps: list[int],
        ts: list[int],
        values: list[float],
        careful: bool,
    ) -> tuple[Any, ...]:
        """A row in ``_SUMMARY_COLUMNS`` order."""
        if len(values) == 1:  # the common case of a run logging one value per key
            value = values[0]
            finite = None if value != value else value
            return (run_pk, key_id, 1, finite, steps[0], ts[0], finite, finite)
        ext = _extremes(steps, ts, values, careful)
        last_step = ext.step_hi
        if steps[-1] == last_step:
            last = len(steps) - 1
        else:
            last = len(steps) - 1 - steps[::-1].index(last_step)
        return (
            run_pk,
            key_id,
            len(values),
            _nullable(values[last]),
            last_step,
            ts[last],
            ext.min_point[2] if ext.min_point else None,
            ext.max_point[2] if ext.max_point else None,
        )

    def _merge_summaries(self, rows: list[tuple[Any, ...]]) -> None:
        executemany(
            self.conn,
            self._summary_upsert,
            rows,
            _SUMMARY_COLUMNS,
            name="metric_summaries.merge",
        )

    def _summary_upsert(self) -> ClauseElement:
        stmt = self._insert(_S)
        new = stmt.excluded
        later = new.last_step >= _S.c.last_step
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_pk", "key_id"],
            set_={
                "count": _S.c.count + new.count,
                "last_value": case((later, new.last_value), else_=_S.c.last_value),
                "last_ts": case((later, new.last_ts), else_=_S.c.last_ts),
                "last_step": case((later, new.last_step), else_=_S.c.last_step),
                "min_value": case(
                    (or_(_S.c.min_value.is_(None), new.min_value < _S.c.min_value), new.min_value),
                    else_=_S.c.min_value,
                ),
                "max_value": case(
                    (or_(_S.c.max_value.is_(None), new.max_value > _S.c.max_value), new.max_value),
                    else_=_S.c.max_value,
                ),
            },
        )
        return stmt

    @staticmethod
    def _rollup_rows(
        run_pk: int,
        key_id: int,
        start: int,
        steps: list[int],
        ts: list[int],
        values: list[float],
        careful: bool,
    ) -> Iterable[tuple[Any, ...]]:
        """Rollup rows for points ``start ..`` of a series: level 1 from the points, each
        coarser level from the level below (its pieces nest inside the coarser buckets)."""
        n = len(values)
        (first_level, first_size), coarser = LEVELS[0], LEVELS[1:]
        pieces: list[tuple[int, _Extremes]] = []  # (first seq, extremes) per finest piece
        ordered = steps == sorted(steps)  # the usual case, and linear to check
        for bucket in range(start // first_size, (start + n - 1) // first_size + 1):
            lo = max(bucket * first_size, start) - start
            hi = min((bucket + 1) * first_size, start + n) - start
            pieces.append((start + lo, _extremes(steps, ts, values, careful, lo, hi, ordered)))
        for seq, ext in pieces:
            yield _rollup_row(run_pk, key_id, first_level, seq // first_size, ext)
        for level, size in coarser:
            groups: dict[int, list[_Extremes]] = {}
            for seq, ext in pieces:
                groups.setdefault(seq // size, []).append(ext)
            for bucket, parts in groups.items():
                yield _rollup_row(run_pk, key_id, level, bucket, _combine(parts))

    def _merge_rollups(self, rows: list[tuple[Any, ...]]) -> None:
        executemany(
            self.conn, self._rollup_upsert, rows, _ROLLUP_COLUMNS, name="metric_rollups.merge"
        )

    def _rollup_upsert(self) -> ClauseElement:
        stmt = self._insert(_RU)
        new = stmt.excluded
        lower = or_(_RU.c.min_value.is_(None), new.min_value < _RU.c.min_value)
        higher = or_(_RU.c.max_value.is_(None), new.max_value > _RU.c.max_value)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_pk", "key_id", "level", "bucket"],
            set_={
                "count": _RU.c.count + new.count,
                "step_lo": case((new.step_lo < _RU.c.step_lo, new.step_lo), else_=_RU.c.step_lo),
                "step_hi": case((new.step_hi > _RU.c.step_hi, new.step_hi), else_=_RU.c.step_hi),
                "min_step": case((lower, new.min_step), else_=_RU.c.min_step),
                "min_ts": case((lower, new.min_ts), else_=_RU.c.min_ts),
                "min_value": case((lower, new.min_value), else_=_RU.c.min_value),
                "max_step": case((higher, new.max_step), else_=_RU.c.max_step),
                "max_ts": case((higher, new.max_ts), else_=_RU.c.max_ts),
                "max_value": case((higher, new.max_value), else_=_RU.c.max_value),
            },
        )
        return stmt

    # -- reads ----------------------------------------------------------------------

    def summaries(self, run_pks: Sequence[int]) -> dict[int, dict[str, MetricSummary]]:
        out: dict[int, dict[str, MetricSummary]] = {pk: {} for pk in run_pks}
        names = self.cache.names
        columns = (
            _S.c.run_pk,
            _S.c.key_id,
            _S.c.count,
            _S.c.last_value,
            _S.c.last_step,
            _S.c.last_ts,
            _S.c.min_value,
            _S.c.max_value,
        )
        nan = math.nan
        rows = rows_for(self.conn, columns, _S.c.run_pk, run_pks)
        for pk, key_id, count, last, last_step, last_ts, low, high in rows:
            name = names.get(key_id) or self._name(key_id)
            out[pk][name] = MetricSummary(
                name, nan if last is None else last, last_step, last_ts, low, high, count
            )
        return out

    def _name(self, key_id: int) -> str:
        """A key another process created: refresh the cache from the table."""
        found = self.conn.execute(select(_K.c.name, _K.c.id)).all()
        self.cache.add({name: kid for name, kid in found})
        return self.cache.names[key_id]

    def summary_count(self, run_pk: int, key_id: int) -> int:
        stmt = select(_S.c.count).where(_S.c.run_pk == run_pk, _S.c.key_id == key_id)
        return int(self.conn.execute(stmt).scalar() or 0)

    def points(
        self,
        run_pk: int,
        key_id: int,
        min_step: int | None = None,
        max_step: int | None = None,
        seq_range: tuple[int, int] | None = None,
    ) -> list[MetricPoint]:
        conditions = [_PT.c.run_pk == run_pk, _PT.c.key_id == key_id]
        if min_step is not None:
            conditions.append(_PT.c.step >= min_step)
        if max_step is not None:
            conditions.append(_PT.c.step <= max_step)
        if seq_range is not None:
            conditions.append(_PT.c.seq.between(*seq_range))
        stmt = (
            select(_PT.c.step, _PT.c.ts, _PT.c.value)
            .where(and_(*conditions))
            .order_by(_PT.c.step, _PT.c.seq)
        )
        # The raw cursor: 100,000 rows as plain tuples, with no per-row Row objects.
        with no_gc_pauses():
            rows = fetchall(self.conn, stmt)
            if any(row[2] is None for row in rows):  # NULL stores NaN
                nan = math.nan
                rows = [(s, t, nan if v is None else v) for s, t, v in rows]
            return list(map(_as_point, rows))

    def points_by_seq(self, run_pk: int, key_id: int, below: int) -> list[MetricPoint]:
        """The first ``below`` points of a series in arrival order."""
        stmt = (
            select(_PT.c.step, _PT.c.ts, _PT.c.value)
            .where(_PT.c.run_pk == run_pk, _PT.c.key_id == key_id, _PT.c.seq < below)
            .order_by(_PT.c.seq)
        )
        rows = fetchall(self.conn, stmt)
        nan = math.nan
        return [MetricPoint(s, t, nan if v is None else v) for s, t, v in rows]

    def rollups(
        self, run_pk: int, key_id: int, level: int, min_step: int | None, max_step: int | None
    ) -> list[Any]:
        conditions = [_RU.c.run_pk == run_pk, _RU.c.key_id == key_id, _RU.c.level == level]
        if min_step is not None:
            conditions.append(_RU.c.step_hi >= min_step)
        if max_step is not None:
            conditions.append(_RU.c.step_lo <= max_step)
        stmt = select(_RU).where(and_(*conditions)).order_by(_RU.c.bucket)
        return list(self.conn.execute(stmt))
