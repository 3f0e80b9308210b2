"""Profile tabular data: row count, schema, per-column statistics and histograms.

The format is defined in ``cairn.domain.profiles``, which also compares two profiles. This
module computes one from a pandas DataFrame, a numpy array, or a CSV, TSV or Parquet file.

numpy and pandas are imported when a profile is made, not with the SDK: its base install
has neither, and a training job that logs metrics only should not pay for them. Without
them (or without pyarrow, for Parquet) the functions raise ``Invalid`` saying what to
install.

How a column's kind follows from its dtype: bool and nullable boolean are ``boolean``;
datetime64 (with or without a time zone) is ``datetime``; integer and float dtypes, numpy's
and pandas' nullable ones, are ``numeric``; everything else (strings, objects, categories,
timedeltas, complex numbers) is ``categorical``, its values counted by their text.

Why it is fast: each numeric column is sorted once, and min, max, the 101 quantiles and the
histogram counts are all read off the sorted values (the counts with one ``searchsorted``),
so a million rows by twenty columns profile in about a second or two.
"""

from __future__ import annotations

import heapq
import importlib
import math
import os
from pathlib import Path
from typing import Any

from cairn.domain.errors import Invalid
from cairn.domain.profiles import (
    FORMAT,
    HISTOGRAM_BINS,
    MAX_COLUMNS,
    MAX_TEXT,
    QUANTILES,
    TOP_VALUES,
)

TABULAR_SUFFIXES = frozenset({".csv", ".tsv", ".parquet"})


def is_tabular_file(path: str | os.PathLike[str]) -> bool:
    """True when ``profile_table_file`` can read the file: a .csv, .tsv or .parquet name.

    >>> is_tabular_file("data/train.CSV")
    True
    """
    return Path(path).suffix.lower() in TABULAR_SUFFIXES


def profile_table_file(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The profile of a CSV, TSV or Parquet file; None for any other kind of file.

    >>> profile_table_file("train.csv")["rows"]              # doctest: +SKIP
    178
    """
    suffix = Path(path).suffix.lower()
    if suffix not in TABULAR_SUFFIXES:
        return None
    np, pd = _libraries()
    if suffix == ".parquet":
        _require("pyarrow", "reading Parquet files needs pyarrow: pip install pyarrow")
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", low_memory=False)
    except pd.errors.EmptyDataError:  # a CSV file with no bytes at all
        frame = pd.DataFrame()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (ValueError, OSError) as exc:
        # pandas' ParserError, UnicodeDecodeError and pyarrow's ArrowInvalid are
        # ValueErrors; pyarrow reports some damaged Parquet files as OSError.
        reason = str(exc)[:300]
        raise Invalid(
            f"cannot read {os.fspath(path)!r} as a table: {reason}", field="source"
        ) from exc
    return _profile_frame(np, pd, frame)


def profile_dataframe(df: Any) -> dict[str, Any]:
    """The profile of a pandas DataFrame (or Series); its format is in ``cairn.domain.profiles``.

    Column names become strings; a name met again gets ``.1``, ``.2``, ... as pandas gives
    repeated CSV headers, and one past 1,000 characters is cut.

    >>> import pandas as pd
    >>> profile = profile_dataframe(pd.DataFrame({"x": [1.0, 2.0, None]}))
    >>> profile["rows"], profile["columns"][0]["nulls"], profile["columns"][0]["mean"]
    (3, 1, 1.5)
    """
    np, pd = _libraries()
    if isinstance(df, pd.Series):
        df = df.to_frame(name="value" if df.name is None else df.name)
    if not isinstance(df, pd.DataFrame):
        raise Invalid(f"expected a pandas DataFrame, got {type(df).__name__}", field="source")
    return _profile_frame(np, pd, df)


def profile_array(arr: Any) -> dict[str, Any]:
    """The profile of a numpy array: 1-D is one column ``value``, 2-D columns ``0``, ``1``, ...,
    and a structured array one column per field.

    >>> import numpy as np
    >>> [c["name"] for c in profile_array(np.zeros((5, 2)))["columns"]]
    ['0', '1']
    """
    np, pd = _libraries()
    arr = np.asarray(arr)
    if arr.dtype.names is not None:
        if arr.ndim != 1 or any(arr[name].ndim != 1 for name in arr.dtype.names):
            raise Invalid("a structured array must be 1-D with scalar fields", field="source")
        frame = pd.DataFrame({name: arr[name] for name in arr.dtype.names})
    elif arr.ndim == 1:
        frame = pd.DataFrame({"value": arr})
    elif arr.ndim == 2:
        frame = pd.DataFrame(arr, columns=[str(i) for i in range(arr.shape[1])])
    else:
        raise Invalid(f"can profile 1-D and 2-D arrays, not {arr.ndim}-D", field="source")
    return _profile_frame(np, pd, frame)


def _libraries() -> tuple[Any, Any]:
    # Through importlib, typed Any: pandas ships no type information, and numpy's types
    # would only ever meet pandas' untyped values.
    numpy = _require("numpy", "profiling data needs numpy and pandas: pip install numpy pandas")
    pandas = _require("pandas", "profiling data needs numpy and pandas: pip install numpy pandas")
    return numpy, pandas


def _require(module: str, message: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Invalid(message, field="source") from exc


def _profile_frame(np: Any, pd: Any, frame: Any) -> dict[str, Any]:
    width = frame.shape[1]
    if width > MAX_COLUMNS:
        raise Invalid(
            f"a profile holds at most {MAX_COLUMNS:,} columns; this table has {width:,}",
            field="source",
        )
    names = _column_names([str(c) for c in frame.columns])
    columns = [_profile_column(np, pd, name, frame.iloc[:, i]) for i, name in enumerate(names)]
    return {"format": FORMAT, "rows": int(frame.shape[0]), "columns": columns}


def _column_names(raw: list[str]) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for name in raw:
        base = name[:MAX_TEXT]
        name, n = base, 0
        while name in seen:
            n += 1
            suffix = f".{n}"
            name = base[: MAX_TEXT - len(suffix)] + suffix
        seen.add(name)
        names.append(name)
    return names


def _kind(pd: Any, dtype: Any) -> str:
    types = pd.api.types
    if types.is_bool_dtype(dtype):
        return "boolean"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if types.is_numeric_dtype(dtype) and not types.is_complex_dtype(dtype):
        return "numeric"
    return "categorical"


def _profile_column(np: Any, pd: Any, name: str, series: Any) -> dict[str, Any]:
    kind = _kind(pd, series.dtype)
    column: dict[str, Any] = {"name": name, "dtype": str(series.dtype), "kind": kind}
    if kind == "numeric":
        column.update(_numeric(np, series))
    elif kind == "datetime":
        values = series.dropna()
        count = len(values)
        column.update(count=count, nulls=len(series) - count)
        column["min"] = values.min().isoformat() if count else None
        column["max"] = values.max().isoformat() if count else None
    else:
        column.update(_categorical(np, pd, series))
    return column


def _numeric(np: Any, series: Any) -> dict[str, Any]:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    nulls = int(np.count_nonzero(np.isnan(values)))
    finite = values[np.isfinite(values)]
    out: dict[str, Any] = {"count": len(values) - nulls, "nulls": nulls}
    infinities = out["count"] - len(finite)
    stats = dict.fromkeys(("min", "max", "mean", "std", "quantiles", "histogram"))
    if len(finite):
        ordered = np.sort(finite)
        with np.errstate(all="ignore"):
            stats.update(
                min=float(ordered[0]),
                max=float(ordered[-1]),
                mean=_finite(np.mean(ordered)),
                std=_finite(np.std(ordered)),
                quantiles=_quantiles(np, ordered),
                histogram=_histogram(np, ordered),
            )
    out.update(stats)
    if infinities:
        out["infinities"] = infinities
    return out


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _quantiles(np: Any, ordered: Any) -> list[float]:
    """numpy's default ("linear") quantiles, read off values already sorted."""
    position = np.linspace(0.0, 1.0, QUANTILES) * (len(ordered) - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, len(ordered) - 1)
    t = position - below
    low, high = ordered[below], ordered[above]
    diff = high - low
    # As numpy's lerp: exact at both ends, and equal neighbours give that value exactly.
    result = np.where(t >= 0.5, high - diff * (1 - t), low + diff * t)
    if not np.all(np.isfinite(result)):  # the difference overflowed
        result = low * (1 - t) + high * t
    # Rounding may not break the order the quantiles are checked for.
    return [float(v) for v in np.maximum.accumulate(np.clip(result, ordered[0], ordered[-1]))]


def _histogram(np: Any, ordered: Any) -> dict[str, list[Any]]:
    low, high = ordered[0], ordered[-1]
    if low == high:
        return {"edges": [float(low), float(high)], "counts": [len(ordered)]}
    if math.isfinite(high - low):
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    else:  # the range overflows a float: halve, space, double
        edges = np.linspace(low / 2, high / 2, HISTOGRAM_BINS + 1) * 2
        edges[0], edges[-1] = low, high
    # Bins hold low <= x < high, the last one also x == high, as np.histogram.
    starts = np.searchsorted(ordered, edges[:-1], side="left")
    counts = np.diff(np.append(starts, len(ordered)))
    return {"edges": [float(e) for e in edges], "counts": [int(n) for n in counts]}


def _categorical(np: Any, pd: Any, series: Any) -> dict[str, Any]:
    values = series.dropna()
    count = len(values)
    try:
        counts = values.value_counts(sort=False)
    except TypeError:  # unhashable cells (lists, dicts): count their text
        counts = values.astype(str).value_counts(sort=False)
    counts = counts[counts.to_numpy() > 0]  # a categorical dtype lists unused categories too
    keys = counts.index.astype(str)
    # Texts can repeat (1 and "1" in an object column, long values once cut): merge them.
    may_repeat = not isinstance(counts.index.dtype, pd.StringDtype)
    if len(keys) and keys.str.len().max() > MAX_TEXT:
        keys, may_repeat = keys.str.slice(0, MAX_TEXT), True
    by_text = pd.Series(counts.to_numpy(dtype="int64"), index=keys)
    if may_repeat and not by_text.index.is_unique:
        by_text = by_text.groupby(level=0, sort=False).sum()
    numbers = by_text.to_numpy(dtype="int64")
    texts = by_text.index.to_numpy(dtype=object)
    return {
        "count": count,
        "nulls": len(series) - count,
        "distinct": len(numbers),
        "top": _top(np, numbers, texts),
    }


def _top(np: Any, numbers: Any, texts: Any) -> list[list[Any]]:
    """The most frequent values, ties by value, without sorting every distinct value."""
    if len(numbers) <= TOP_VALUES:
        chosen = sorted(zip((-int(n) for n in numbers), texts.tolist(), strict=True))
    else:
        cutoff = int(np.partition(numbers, len(numbers) - TOP_VALUES)[len(numbers) - TOP_VALUES])
        above = numbers > cutoff
        chosen = sorted(zip((-int(n) for n in numbers[above]), texts[above].tolist(), strict=True))
        tied = heapq.nsmallest(TOP_VALUES - len(chosen), texts[numbers == cutoff].tolist())
        chosen += [(-cutoff, text) for text in tied]
    return [[str(text), -negated] for negated, text in chosen]
