"""Profiles of tabular data, and how two of them differ.

A profile summarises one table (a dataset version) in a few kilobytes, so that two
versions can be compared without reading either. ``cairn.client.profiling`` computes it
from data; this module defines it, checks it (the server receives it from clients) and
compares two of them. Everything here is plain Python: no numpy, no pandas.

The profile, format 1, a JSON object::

    {"format": 1, "rows": 178, "columns": [column, ...]}

Every column has::

    "name"      str, unique in the profile, at most 1,000 characters
    "dtype"     str, the pandas/numpy dtype name ("float64", "Int64", "bool", "str", ...)
    "kind"      "numeric" | "boolean" | "datetime" | "categorical"
    "count"     int, the non-null values (infinities included)
    "nulls"     int, the null values; count + nulls == rows

then, by kind::

    numeric     "min", "max", "mean", "std"   float, or None when there is no finite value;
                                              std is the population one (ddof=0)
                "quantiles"   the 0%, 1%, ..., 100% quantiles (linear interpolation):
                              101 non-decreasing floats, or None when no finite value
                "histogram"   {"edges": [21 floats], "counts": [20 ints]}: equal-width bins
                              from min to max, the last one closed; a constant column gets
                              one bin (edges [v, v]); None when no finite value
                "infinities"  int, only when the column holds +-inf; they count in "count"
                              but in none of the statistics above
    datetime    "min", "max"  ISO 8601 strings, or None when there is no value
    categorical "distinct"    int, how many different non-null values
    / boolean   "top"         [[value, count], ...]: at most 20 of the most frequent values
                              as strings, most frequent first, ties by value

There is no NaN anywhere: a profile always passes ``json.dumps(..., allow_nan=False)``.
A server checks what it receives with ``check_profile``, which also bounds the sizes: at
most 10,000 columns, histograms of at most 1,000 bins, at most 100 top values, names and
values of at most 1,000 characters.

The diff, ``diff_profiles(old, new)``::

    {"rows": {"old": 178, "new": 208, "change": 30},
     "schema": {"added": [name, ...], "removed": [name, ...],
                "changed": [{"column": name, "old_dtype": str, "new_dtype": str}, ...]},
     "columns": [{"column": name, "psi": float | None, "ks": float | None, "drifted": bool,
                  "null_rate": {"old": float | None, "new": float | None},
                  "mean": {"old": float | None, "new": float | None}},   # numeric only
                 ...]}

``columns`` holds the columns present on both sides, in ``new``'s order. ``null_rate`` is
nulls / rows (None for an empty table). ``mean`` is there when both sides are numeric.

- **PSI**, the population stability index, is sum((a - e) * ln(a / e)) over bins, where e
  and a are the old and new fractions, each floored at 1e-4. For numeric columns the bins
  are cut at the old deciles (equal edges merged, the outer bins open-ended) and each
  side's fraction in a bin is read off its own quantiles, taken as a piecewise-linear CDF
  (a run of equal quantiles is a point mass). For categorical and boolean columns the bins
  are the top values of either side plus ``(other)``; a value in one side's top but not
  the other's is given, on that other side, an even share of its ``(other)`` mass (capped
  by that side's least frequent top value), since it may be hidden there.
- **KS**, numeric only: the largest gap between the two CDFs above, looked at on both
  sides of every quantile point of either profile.
- ``drifted`` is ``psi >= psi_threshold or ks >= ks_threshold``. Where nothing can be
  compared, psi and ks are None: a datetime column (its profile holds no distribution) is
  then not drifted, while a column whose kind changed (say numeric to categorical) or that
  has values on one side only is. Two sides without values (all null) compare as equal.

Identical profiles give psi 0.0 and ks 0.0 exactly. When either side is None (a version
that is not a table), the diff is ``{"rows": {"old": n | None, "new": m | None,
"change": None}, "schema": None, "columns": []}``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from operator import sub
from typing import Any, NoReturn

from cairn.domain.errors import Invalid

FORMAT = 1
KINDS = ("numeric", "boolean", "datetime", "categorical")
QUANTILES = 101
HISTOGRAM_BINS = 20
TOP_VALUES = 20

MAX_COLUMNS = 10_000
MAX_HISTOGRAM_BINS = 1_000
MAX_TOP = 100
MAX_TEXT = 1_000
MAX_COUNT = 2**63 - 1

PSI_FLOOR = 1e-4

_BASE_KEYS = frozenset({"name", "dtype", "kind", "count", "nulls"})
_KEYS_BY_KIND: dict[str, frozenset[str]] = {
    "numeric": frozenset({"min", "max", "mean", "std", "quantiles", "histogram"}),
    "datetime": frozenset({"min", "max"}),
    "categorical": frozenset({"distinct", "top"}),
    "boolean": frozenset({"distinct", "top"}),
}
_OPTIONAL_BY_KIND: dict[str, frozenset[str]] = {"numeric": frozenset({"infinities"})}
_TOP_KINDS = frozenset({"categorical", "boolean"})


# ---------------------------------------------------------------------------------------
# checking


def check_profile(obj: object) -> dict[str, Any]:
    """Check a profile received from a client; return a clean copy of it.

    Raises ``Invalid`` (field ``profile``) naming the first thing that is wrong.

    >>> check_profile({"format": 1, "rows": 0, "columns": []})
    {'format': 1, 'rows': 0, 'columns': []}
    """
    if not isinstance(obj, dict):
        _fail(f"a profile must be an object, got {_type(obj)}")
    _check_keys(obj, {"format", "rows", "columns"}, frozenset(), "profile")
    fmt = obj["format"]
    if type(fmt) is not int or fmt != FORMAT:
        _fail(f"profile format must be {FORMAT}, got {fmt!r:.50}")
    rows = _count(obj["rows"], "profile rows")
    columns = obj["columns"]
    if not isinstance(columns, list):
        _fail(f"profile columns must be a list, got {_type(columns)}")
    if len(columns) > MAX_COLUMNS:
        _fail(f"a profile holds at most {MAX_COLUMNS:,} columns; this one has {len(columns):,}")
    clean: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, column in enumerate(columns):
        checked = _check_column(column, index, rows)
        if checked["name"] in names:
            _fail(f"profile column {index}: the name {checked['name']!r:.60} appears twice")
        names.add(checked["name"])
        clean.append(checked)
    return {"format": FORMAT, "rows": rows, "columns": clean}


def _check_column(column: object, index: int, rows: int) -> dict[str, Any]:
    where = f"profile column {index}"
    if not isinstance(column, dict):
        _fail(f"{where} must be an object, got {_type(column)}")
    name = column.get("name")
    if not isinstance(name, str):
        _fail(f"{where}: name must be a string, got {_type(name)}")
    if len(name) > MAX_TEXT:
        _fail(f"{where}: name is {len(name):,} characters; the limit is {MAX_TEXT:,}")
    where = f"{where} ({name!r:.60})"
    kind = column.get("kind")
    if kind not in KINDS:
        _fail(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r:.50}")
    _check_keys(column, _BASE_KEYS | _KEYS_BY_KIND[kind], _OPTIONAL_BY_KIND.get(kind), where)
    out: dict[str, Any] = {
        "name": name,
        "dtype": _text(column["dtype"], f"{where}: dtype"),
        "kind": kind,
        "count": _count(column["count"], f"{where}: count"),
        "nulls": _count(column["nulls"], f"{where}: nulls"),
    }
    if out["count"] + out["nulls"] != rows:
        _fail(f"{where}: count + nulls is {out['count'] + out['nulls']:,}, not rows ({rows:,})")
    if kind == "numeric":
        out.update(_check_numeric(column, where, out["count"]))
    elif kind == "datetime":
        for key in ("min", "max"):
            value = column[key]
            out[key] = None if value is None else _text(value, f"{where}: {key}")
    else:
        out["distinct"] = _count(column["distinct"], f"{where}: distinct")
        out["top"] = _check_top(column["top"], where, out["count"])
        if not len(out["top"]) <= out["distinct"] <= out["count"]:
            _fail(f"{where}: distinct must lie between the number of top values and count")
    return out


def _check_numeric(column: dict[str, Any], where: str, count: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        key: _number_or_none(column[key], f"{where}: {key}") for key in ("min", "max", "mean")
    }
    out["std"] = _number_or_none(column["std"], f"{where}: std")
    if out["std"] is not None and out["std"] < 0:
        _fail(f"{where}: std must not be negative")
    if out["min"] is not None and out["max"] is not None and out["min"] > out["max"]:
        _fail(f"{where}: min is greater than max")
    quantiles = column["quantiles"]
    if quantiles is None:
        out["quantiles"] = None
    else:
        out["quantiles"] = _numbers(quantiles, f"{where}: quantiles", QUANTILES, QUANTILES)
    histogram = column["histogram"]
    if histogram is None:
        out["histogram"] = None
    else:
        out["histogram"] = _check_histogram(histogram, where)
    if "infinities" in column:
        out["infinities"] = _count(column["infinities"], f"{where}: infinities")
        if out["infinities"] > count:
            _fail(f"{where}: infinities ({out['infinities']:,}) exceed count ({count:,})")
    return out


def _check_histogram(histogram: object, where: str) -> dict[str, Any]:
    where = f"{where}: histogram"
    if not isinstance(histogram, dict):
        _fail(f"{where} must be an object or null, got {_type(histogram)}")
    _check_keys(histogram, {"edges", "counts"}, frozenset(), where)
    counts = histogram["counts"]
    if not isinstance(counts, list) or not 1 <= len(counts) <= MAX_HISTOGRAM_BINS:
        _fail(f"{where} counts must be a list of 1 to {MAX_HISTOGRAM_BINS:,} integers")
    edges = _numbers(histogram["edges"], f"{where} edges", len(counts) + 1, len(counts) + 1)
    return {
        "edges": edges,
        "counts": [_count(n, f"{where} counts[{i}]") for i, n in enumerate(counts)],
    }


def _check_top(top: object, where: str, count: int) -> list[list[Any]]:
    where = f"{where}: top"
    if not isinstance(top, list):
        _fail(f"{where} must be a list, got {_type(top)}")
    if len(top) > MAX_TOP:
        _fail(f"{where} holds at most {MAX_TOP} values; this one has {len(top):,}")
    out: list[list[Any]] = []
    seen: set[str] = set()
    for i, entry in enumerate(top):
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            _fail(f"{where}[{i}] must be a [value, count] pair")
        value = _text(entry[0], f"{where}[{i}] value")
        if value in seen:
            _fail(f"{where}[{i}]: the value {value!r:.60} appears twice")
        seen.add(value)
        out.append([value, _count(entry[1], f"{where}[{i}] count")])
    total = sum(n for _, n in out)
    if total > count:
        _fail(f"{where}: the counts add up to {total:,}, more than count ({count:,})")
    return out


def _check_keys(
    obj: dict[Any, Any],
    required: set[str] | frozenset[str],
    optional: frozenset[str] | None,
    where: str,
) -> None:
    missing = sorted(required - obj.keys())
    if missing:
        _fail(f"{where}: missing {', '.join(missing)}")
    unknown = obj.keys() - required - (optional or frozenset())
    if unknown:
        shown = ", ".join(sorted(repr(k)[:60] for k in unknown)[:5])
        _fail(f"{where}: unknown key(s) {shown}")


def _count(value: object, where: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        _fail(f"{where} must be a non-negative integer, got {value!r:.50}")
    return value


def _number_or_none(value: object, where: str) -> float | None:
    return None if value is None else _number(value, where)


def _number(value: object, where: str) -> float:
    if type(value) is not float and type(value) is not int:
        _fail(f"{where} must be a number, got {_type(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        _fail(f"{where} must be a finite number, got {value!r:.50}")
    return number


def _numbers(values: object, where: str, least: int, most: int) -> list[float]:
    if not isinstance(values, list) or not least <= len(values) <= most:
        size = f"exactly {least:,}" if least == most else f"{least:,} to {most:,}"
        got = f"{len(values):,} items" if isinstance(values, list) else _type(values)
        _fail(f"{where} must be a list of {size} numbers, got {got}")
    numbers = [_number(v, f"{where}[{i}]") for i, v in enumerate(values)]
    for i in range(1, len(numbers)):
        if numbers[i] < numbers[i - 1]:
            _fail(f"{where} must not decrease, but item {i} is less than item {i - 1}")
    return numbers


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        _fail(f"{where} must be a string, got {_type(value)}")
    if len(value) > MAX_TEXT:
        _fail(f"{where} is {len(value):,} characters; the limit is {MAX_TEXT:,}")
    return value


def _type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _fail(message: str) -> NoReturn:
    raise Invalid(message, field="profile")


# ---------------------------------------------------------------------------------------
# comparing


def profile_columns(profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The columns of a profile by name, in the profile's order.

    >>> list(profile_columns({"format": 1, "rows": 0, "columns": [{"name": "a"}]}))
    ['a']
    """
    return {column["name"]: column for column in profile["columns"]}


def diff_profiles(
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    *,
    psi_threshold: float = 0.2,
    ks_threshold: float = 0.1,
) -> dict[str, Any]:
    """How the table profiled in ``new`` differs from the one in ``old``.

    Both must be profiles that passed ``check_profile`` (or None for a version that is not
    a table). The format of the answer is in this module's docstring.

    >>> p = {"format": 1, "rows": 2, "columns": []}
    >>> diff_profiles(p, p)["rows"]
    {'old': 2, 'new': 2, 'change': 0}
    """
    if old is None or new is None:
        return {
            "rows": {
                "old": None if old is None else old["rows"],
                "new": None if new is None else new["rows"],
                "change": None,
            },
            "schema": None,
            "columns": [],
        }
    old_columns, new_columns = profile_columns(old), profile_columns(new)
    schema = {
        "added": [name for name in new_columns if name not in old_columns],
        "removed": [name for name in old_columns if name not in new_columns],
        "changed": [
            {"column": name, "old_dtype": old_columns[name]["dtype"], "new_dtype": c["dtype"]}
            for name, c in new_columns.items()
            if name in old_columns and old_columns[name]["dtype"] != c["dtype"]
        ],
    }
    columns = [
        _diff_column(
            old_columns[name], column, old["rows"], new["rows"], psi_threshold, ks_threshold
        )
        for name, column in new_columns.items()
        if name in old_columns
    ]
    return {
        "rows": {"old": old["rows"], "new": new["rows"], "change": new["rows"] - old["rows"]},
        "schema": schema,
        "columns": columns,
    }


def _diff_column(
    old: dict[str, Any],
    new: dict[str, Any],
    old_rows: int,
    new_rows: int,
    psi_threshold: float,
    ks_threshold: float,
) -> dict[str, Any]:
    psi: float | None = None
    ks: float | None = None
    comparable = True
    if old["kind"] == "numeric" and new["kind"] == "numeric":
        old_q, new_q = old["quantiles"], new["quantiles"]
        if old_q is not None and new_q is not None:
            psi, ks = numeric_psi(old_q, new_q), numeric_ks(old_q, new_q)
        elif old_q is None and new_q is None:
            psi, ks = 0.0, 0.0
        else:
            comparable = False
    elif old["kind"] in _TOP_KINDS and new["kind"] in _TOP_KINDS:
        if old["count"] and new["count"]:
            psi = categorical_psi(old, new)
        elif not old["count"] and not new["count"]:
            psi = 0.0
        else:
            comparable = False
    elif old["kind"] != new["kind"]:
        comparable = False
    drifted = not comparable or (psi is not None and psi >= psi_threshold)
    drifted = drifted or (ks is not None and ks >= ks_threshold)
    out: dict[str, Any] = {
        "column": new["name"],
        "psi": psi,
        "ks": ks,
        "drifted": drifted,
        "null_rate": {
            "old": old["nulls"] / old_rows if old_rows else None,
            "new": new["nulls"] / new_rows if new_rows else None,
        },
    }
    if old["kind"] == "numeric" and new["kind"] == "numeric":
        out["mean"] = {"old": old["mean"], "new": new["mean"]}
    return out


def _psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, PSI_FLOOR), max(a, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def numeric_psi(old_quantiles: Sequence[float], new_quantiles: Sequence[float]) -> float:
    """PSI over bins cut at the old deciles, each side's fractions from its own quantiles.

    >>> q = [float(i) for i in range(101)]
    >>> numeric_psi(q, q)
    0.0
    """
    step = (len(old_quantiles) - 1) // 10
    edges = sorted({old_quantiles[step * k] for k in range(1, 10)})
    return _psi(_bin_fractions(old_quantiles, edges), _bin_fractions(new_quantiles, edges))


def _bin_fractions(quantiles: Sequence[float], edges: Sequence[float]) -> list[float]:
    cdf = [0.0, *(_cdf(quantiles, edge) for edge in edges), 1.0]
    return [cdf[i + 1] - cdf[i] for i in range(len(cdf) - 1)]


def numeric_ks(old_quantiles: Sequence[float], new_quantiles: Sequence[float]) -> float:
    """The largest gap between the two piecewise-linear CDFs (point masses included),
    read at every quantile of either side, just at and just below it.

    >>> numeric_ks([0.0] * 101, [1.0] * 101)
    1.0
    """
    points = sorted({*old_quantiles, *new_quantiles})
    old_at, old_below = _cdfs(old_quantiles, points)
    new_at, new_below = _cdfs(new_quantiles, points)
    gap: float = max(
        0.0,
        max(map(abs, map(sub, old_at, new_at))),
        max(map(abs, map(sub, old_below, new_below))),
    )
    return gap


def _cdf(quantiles: Sequence[float], x: float) -> float:
    """P(X <= x) on the piecewise-linear CDF through (quantiles[i], i / (n - 1))."""
    last = len(quantiles) - 1
    i = bisect_right(quantiles, x) - 1
    if i < 0:
        return 0.0
    if i == last:
        return 1.0
    if quantiles[i] == x:
        return i / last
    return (i + _between(quantiles[i], quantiles[i + 1], x)) / last


def _cdfs(quantiles: Sequence[float], points: list[float]) -> tuple[list[float], list[float]]:
    """P(X <= x) as ``_cdf`` gives it, and P(X < x) (they differ where a run of equal
    quantiles sits at x), at each of the ascending points: one walk along both lists."""
    last = len(quantiles) - 1
    at: list[float] = []
    below: list[float] = []
    upto = under = 0  # how many quantiles are <= x, and < x
    for x in points:
        while upto <= last and quantiles[upto] <= x:
            upto += 1
        while under <= last and quantiles[under] < x:
            under += 1
        i = upto - 1
        if i < 0:
            at.append(0.0)
        elif i == last:
            at.append(1.0)
        elif quantiles[i] == x:
            at.append(i / last)
        else:
            at.append((i + _fraction(quantiles[i], quantiles[i + 1], x)) / last)
        if under == 0:
            below.append(0.0)
        elif under > last:
            below.append(1.0)
        elif quantiles[under] == x:
            below.append(under / last)
        else:
            below.append((under - 1 + _fraction(quantiles[under - 1], quantiles[under], x)) / last)
    return at, below


def _fraction(low: float, high: float, x: float) -> float:
    """``_between``, quicker where the span is finite (all but values near the float
    limit)."""
    span = high - low
    if span < math.inf:
        t = (x - low) / span
        return t if t < 1.0 else 1.0
    return _between(low, high, x)


def _between(low: float, high: float, x: float) -> float:
    """Where x sits from low (0.0) to high (1.0); low < x < high."""
    span = high - low
    if math.isinf(span):  # values near the float limit: halve them first
        return min(1.0, (x / 2 - low / 2) / (high / 2 - low / 2))
    return min(1.0, (x - low) / span)


def categorical_psi(old: dict[str, Any], new: dict[str, Any]) -> float:
    """PSI over the top values of either side plus ``(other)``; counts must be positive."""
    old_top, new_top = dict(old["top"]), dict(new["top"])
    values = list(old_top) + [v for v in new_top if v not in old_top]
    return _psi(_top_fractions(old, old_top, values), _top_fractions(new, new_top, values))


def _top_fractions(column: dict[str, Any], top: dict[str, int], values: list[str]) -> list[float]:
    count: int = column["count"]
    other = count - sum(top.values())
    hidden = [v for v in values if v not in top]
    share = 0.0
    if hidden and other > 0 and column["distinct"] > len(top):
        share = other / (column["distinct"] - len(top))
        if top:
            share = min(share, float(min(top.values())))
        share = min(share, other / len(hidden))
    masses = [float(top[v]) if v in top else share for v in values]
    masses.append(other - share * len(hidden))
    return [max(mass, 0.0) / count for mass in masses]
