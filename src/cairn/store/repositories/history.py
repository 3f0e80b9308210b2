"""Reading a metric series at the resolution a chart needs.

With ``max_points=N`` at most N points come back. When the series (or the requested
step range) holds more, it is cut into N/2 contiguous buckets and each bucket gives its
minimum and its maximum point, so a spike is never lost. Buckets are built from the
rollups kept as points arrive; only the partly covered buckets at the edges of a step
range read raw points. A chart of a 10-million-point series reads a few thousand rows.
"""

from __future__ import annotations

from typing import Any

from cairn.domain.records import MetricPoint
from cairn.store.repositories.metrics import LEVELS, ROLLUP_FROM, MetricRepository

# How many rollup buckets per output bucket we accept before moving to a coarser level.
_MAX_FAN_IN = 16

_Point = tuple[int, int, float]  # (step, ts, value)


def read_history(
    repo: MetricRepository,
    run_pk: int,
    key_id: int,
    total: int,
    max_points: int | None,
    min_step: int | None = None,
    max_step: int | None = None,
) -> tuple[list[MetricPoint], int, bool]:
    """(points, points in range, downsampled?)"""
    ranged = min_step is not None or max_step is not None
    if max_points is None or (not ranged and total <= max_points) or total <= ROLLUP_FROM:
        return _from_points(repo, run_pk, key_id, max_points, min_step, max_step)
    groups = max(1, max_points // 2)
    coarsest_level, _ = LEVELS[-1]
    estimate = sum(
        r.count for r in repo.rollups(run_pk, key_id, coarsest_level, min_step, max_step)
    )
    level, size = next(
        ((lv, sz) for lv, sz in LEVELS if estimate / sz <= groups * _MAX_FAN_IN), LEVELS[-1]
    )
    rows = repo.rollups(run_pk, key_id, level, min_step, max_step)
    if len(rows) < groups:  # coarser than asked for: the range is short, use its points
        return _from_points(repo, run_pk, key_id, max_points, min_step, max_step)
    buckets: list[tuple[_Point | None, _Point | None]] = []
    count = 0
    for row in rows:
        if _inside(row, min_step, max_step):
            buckets.append((_min_point(row), _max_point(row)))
            count += row.count
            continue
        seq_lo = row.bucket * size
        raw = repo.points(run_pk, key_id, min_step, max_step, (seq_lo, seq_lo + size - 1))
        count += len(raw)
        real = [p for p in raw if p.value == p.value]
        if real:
            lo = min(real, key=lambda p: p.value)
            hi = max(real, key=lambda p: p.value)
            buckets.append(((lo.step, lo.timestamp, lo.value), (hi.step, hi.timestamp, hi.value)))
    if count <= max_points:
        return _from_points(repo, run_pk, key_id, max_points, min_step, max_step)
    return _merge(buckets, groups), count, True


def _from_points(
    repo: MetricRepository,
    run_pk: int,
    key_id: int,
    max_points: int | None,
    min_step: int | None,
    max_step: int | None,
) -> tuple[list[MetricPoint], int, bool]:
    """The range's raw points, bucketed only when there are more than ``max_points``."""
    points = repo.points(run_pk, key_id, min_step, max_step)
    if max_points is None or len(points) <= max_points:
        return points, len(points), False
    return _merge([_one(p) for p in points], max(1, max_points // 2)), len(points), True


def _one(p: MetricPoint) -> tuple[_Point | None, _Point | None]:
    point = None if p.value != p.value else (p.step, p.timestamp, p.value)
    return point, point


def _inside(row: Any, min_step: int | None, max_step: int | None) -> bool:
    return (min_step is None or row.step_lo >= min_step) and (
        max_step is None or row.step_hi <= max_step
    )


def _min_point(row: Any) -> _Point | None:
    return None if row.min_step is None else (row.min_step, row.min_ts, row.min_value)


def _max_point(row: Any) -> _Point | None:
    return None if row.max_step is None else (row.max_step, row.max_ts, row.max_value)


def _merge(buckets: list[tuple[_Point | None, _Point | None]], groups: int) -> list[MetricPoint]:
    """Fold consecutive buckets into ``groups`` groups, keeping each group's min and max."""
    out: list[_Point] = []
    n = len(buckets)
    groups = min(groups, n)
    for g in range(groups):
        lo_i, hi_i = g * n // groups, (g + 1) * n // groups
        lows = [b[0] for b in buckets[lo_i:hi_i] if b[0] is not None]
        highs = [b[1] for b in buckets[lo_i:hi_i] if b[1] is not None]
        if not lows:
            continue
        low = min(lows, key=lambda p: p[2])
        high = max(highs, key=lambda p: p[2])
        if low == high:
            out.append(low)
        else:
            out.extend(sorted((low, high)))
    out.sort()
    return [MetricPoint(step, ts, value) for step, ts, value in out]
