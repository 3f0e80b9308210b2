"""Model signatures: what a model takes and gives, as plain JSON.

A signature is ``{"inputs": SCHEMA, "outputs": SCHEMA | None}`` where a SCHEMA is either
named columns, ``[{"name": "age", "type": "int64"}, ...]`` (from a DataFrame or a list of
dicts), or a tensor, ``{"tensor": {"dtype": "float32", "shape": [-1, 4]}}`` (from an array;
the batch dimension is ``-1``). Type names come from a small fixed vocabulary (``bool``,
``int64``, ``float32``, ``string``, ``datetime``, ``category``, ``object``, ...) so that
equal examples give equal signatures whatever the pandas version: a changed signature
bumps a model's major version.

>>> infer_signature([{"a": 1, "b": "x"}])
{'inputs': [{'name': 'a', 'type': 'int64'}, {'name': 'b', 'type': 'string'}], 'outputs': None}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from cairn.domain.errors import Invalid
from cairn.flavors.base import is_dataframe, require


def infer_signature(input_example: Any, output_example: Any | None = None) -> dict[str, Any]:
    """The signature of a model that takes ``input_example`` (and gives ``output_example``).

    >>> infer_signature(np.zeros((2, 4), dtype="float32"), np.array([0, 1]))  # doctest: +SKIP
    {'inputs': {'tensor': {'dtype': 'float32', 'shape': [-1, 4]}},
     'outputs': {'tensor': {'dtype': 'int64', 'shape': [-1]}}}
    """
    return {
        "inputs": schema_of(input_example, "input_example"),
        "outputs": None if output_example is None else schema_of(output_example, "output_example"),
    }


def schema_of(example: Any, field: str) -> list[dict[str, str]] | dict[str, Any]:
    """Columns for a DataFrame or list of dicts, a tensor for anything array-like."""
    if is_dataframe(example):
        return [
            {"name": str(name), "type": _column_type(example[name])}
            for name in _unique_columns(example, field)
        ]
    if is_records(example):
        return _records_schema(example)
    array = _to_array(example, field)
    if array.ndim == 0:
        raise Invalid(f"{field} must have a batch dimension, got a scalar", field=field)
    return {"tensor": {"dtype": _array_type(array.dtype), "shape": [-1, *array.shape[1:]]}}


def is_records(data: Any) -> bool:
    """A non-empty list (or tuple) whose items are all mappings."""
    return (
        isinstance(data, list | tuple)
        and len(data) > 0
        and all(isinstance(row, Mapping) for row in data)
    )


def conform(data: Any, signature: Mapping[str, Any] | None) -> Any:
    """``data`` made ready for a model: records become a table, columns are put in the
    signature's order (extra ones dropped), and a mismatch is ``Invalid(field="data")``."""
    inputs = signature.get("inputs") if signature else None
    names = [str(col["name"]) for col in inputs] if isinstance(inputs, list) else None
    if is_records(data):
        return records_to_table(data, names or _record_keys(data))
    if is_dataframe(data):
        if names is None:
            if isinstance(inputs, Mapping) and "tensor" in inputs:
                _check_shape(tuple(data.shape), list(inputs["tensor"]["shape"]))
            return data
        by_name = {str(col): col for col in _unique_columns(data, "data")}
        _check_missing(names, by_name)
        return data[[by_name[name] for name in names]]
    if isinstance(data, Mapping):
        raise Invalid("data must be a list of rows (dicts), a DataFrame or an array", field="data")
    array = _to_array(data, "data")
    if names is not None and array.ndim == 2 and array.shape[1] != len(names):
        raise Invalid(
            f"data has {array.shape[1]} columns; the model takes {len(names)}: {names}",
            field="data",
        )
    if isinstance(inputs, Mapping) and "tensor" in inputs:
        _check_shape(tuple(array.shape), list(inputs["tensor"]["shape"]))
    return array


def records_to_table(records: Sequence[Mapping[str, Any]], names: list[str]) -> Any:
    """A DataFrame of the ``names`` columns (a 2-D array when pandas is not installed)."""
    _check_missing(names, {key: key for key in _record_keys(records)})
    rows = [[row.get(name) for name in names] for row in records]
    try:
        pandas = require("pandas", "pandas", "model")
    except Invalid:
        return require("numpy", "numpy", "model").asarray(rows)
    return pandas.DataFrame(rows, columns=names)


def _check_missing(names: list[str], present: Mapping[str, Any]) -> None:
    missing = [name for name in names if name not in present]
    if missing:
        raise Invalid(
            f"data lacks the column(s) the model takes: {', '.join(missing)}",
            field="data",
            details={"missing": missing},
        )


def _check_shape(have: tuple[int, ...], shape: list[int]) -> None:
    got = [-1, *have[1:]]
    if len(got) != len(shape) or any(w not in (-1, g) for w, g in zip(shape, got, strict=True)):
        raise Invalid(
            f"data has shape {list(have)}; the model takes {shape} (-1: any)",
            field="data",
        )


def _record_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for row in records:
        keys.update(dict.fromkeys(str(key) for key in row))
    return list(keys)


def _unique_columns(frame: Any, field: str) -> list[Any]:
    columns = list(frame.columns)
    if len({str(col) for col in columns}) != len(columns):
        raise Invalid(f"{field} has repeated column names", field=field)
    return columns


def _to_array(data: Any, field: str) -> Any:
    np = require("numpy", "numpy", "model")
    if hasattr(data, "detach") and hasattr(data, "numpy"):  # a torch tensor
        data = data.detach().cpu().numpy()
    try:
        return np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise Invalid(
            f"{field} must be a DataFrame, a list of dicts or array-like; "
            f"got {type(data).__name__}",
            field=field,
        ) from exc


def _array_type(dtype: Any) -> str:
    if dtype.kind in "US":
        return "string"
    if dtype.kind == "M":
        return "datetime"
    if dtype.kind == "m":
        return "timedelta"
    return str(dtype.name) if dtype.kind in "biuf" else "object"


def _column_type(column: Any) -> str:
    dtype = column.dtype
    name = str(dtype)
    if name in ("string", "str") or name.startswith("string["):
        return "string"
    if name == "category":
        return "category"
    if dtype.kind in "biufmM":
        return _array_type(getattr(dtype, "numpy_dtype", dtype))
    return _value_type(value for value in column.tolist() if _present(value))


def _records_schema(records: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [
        {"name": name, "type": _value_type(row[name] for row in records if _present(row.get(name)))}
        for name in _record_keys(records)
    ]


def _present(value: Any) -> bool:
    """Not a missing value: None, NaN, pandas' NA and NaT all count as missing."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return False
    return not (isinstance(value, float) and value != value)


def _value_type(values: Any) -> str:
    """One type name for Python values, the way pandas would type the column."""
    kinds = {_kind(value) for value in values}
    if not kinds:
        return "object"
    if len(kinds) == 1:
        return kinds.pop()
    return "float64" if kinds <= {"int64", "float64"} else "object"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "datetime"
    kind = getattr(getattr(value, "dtype", None), "kind", None)  # NumPy scalars
    if isinstance(kind, str) and kind in "biuf":
        return _array_type(value.dtype)
    return "object"
