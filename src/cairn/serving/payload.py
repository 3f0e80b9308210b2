"""What ``POST /predict`` carries, turned into what a model takes and what the log keeps.

    {"records": [{"a": 1, "b": 2}, ...]}        rows as objects
    {"columns": {"a": [1, ...], "b": [2, ...]}}  one list per column
    {"instances": [[1, 2], ...]}                  rows as lists (or objects)

Each row is logged as its own prediction; rows given as lists are logged as objects
when the model's signature names its columns, so monitoring sees feature names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cairn.domain.errors import Invalid
from cairn.domain.production import MAX_BATCH
from cairn.schemas.production import PredictIn


@dataclass(frozen=True, slots=True)
class Rows:
    data: Any  # what the model's predict() gets
    logged: list[Any]  # one JSON value per row, for the prediction log


def parse_rows(body: PredictIn, names: list[str] | None) -> Rows:
    given = [k for k in ("records", "columns", "instances") if getattr(body, k) is not None]
    if len(given) != 1:
        raise Invalid(
            "send the rows as exactly one of 'records', 'columns' or 'instances'"
            + (f" (got {', '.join(given)})" if given else ""),
            field="body",
        )
    if body.records is not None:
        rows = _records(body.records, "records")
    elif body.columns is not None:
        rows = _records(_columns(body.columns), "columns")
    else:
        assert body.instances is not None
        rows = _instances(body.instances, names)
    if len(rows.logged) > MAX_BATCH:
        raise Invalid(
            f"send at most {MAX_BATCH:,} rows per request; got {len(rows.logged):,}",
            field=given[0],
        )
    return rows


def _records(records: list[dict[str, Any]], field: str) -> Rows:
    if not records:
        raise Invalid(f"{field} holds no rows", field=field)
    return Rows(records, records)


def _columns(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if not columns:
        raise Invalid("columns holds no columns", field="columns")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise Invalid(f"columns differ in length: {lengths}", field="columns")
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _instances(instances: list[Any], names: list[str] | None) -> Rows:
    if not instances:
        raise Invalid("instances holds no rows", field="instances")
    if all(isinstance(row, dict) for row in instances):
        return Rows(instances, instances)
    if any(isinstance(row, dict) for row in instances):
        raise Invalid("instances mixes objects and lists", field="instances")
    if names and all(isinstance(row, list) and len(row) == len(names) for row in instances):
        return Rows(instances, [dict(zip(names, row, strict=True)) for row in instances])
    return Rows(instances, instances)


def input_names(signature: dict[str, Any] | None) -> list[str] | None:
    """The column names a model's signature gives its inputs, if it names them."""
    inputs = signature.get("inputs") if signature else None
    if isinstance(inputs, list) and all(isinstance(c, dict) and "name" in c for c in inputs):
        return [str(c["name"]) for c in inputs]
    return None


def row_ids(request_id: str, n: int) -> list[str]:
    """One id per row: the request's own for a single row, else ``<id>.<i>``."""
    return [request_id] if n == 1 else [f"{request_id}.{i}" for i in range(n)]
