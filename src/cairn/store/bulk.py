"""Many rows through one statement, and many rows out of one, at the driver's speed.

SQLAlchemy's ``executemany`` builds parameters row by row in Python (a few µs a row);
a batch of thousands of runs spends more time there than in the database. Here the
statement is compiled once and the driver's own ``executemany`` gets plain tuples (SQLite)
or dicts (psycopg). Only for our column types, which need no conversion on the way in.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Column, Connection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_COMPILED: dict[tuple[str, str, tuple[str, ...]], tuple[str, list[str]]] = {}


def _compile(
    conn: Connection,
    stmt: ClauseElement | Callable[[], ClauseElement],
    keys: list[str],
    name: str | None,
) -> tuple[str, list[str]]:
    """SQL text and bind order; with a ``name``, compiled once per dialect and columns."""
    cache_key = (name or "", conn.dialect.name, tuple(keys))
    if name is not None and cache_key in _COMPILED:
        return _COMPILED[cache_key]
    clause = stmt() if callable(stmt) else stmt
    compiled = cast(SQLCompiler, clause.compile(dialect=conn.dialect, column_keys=keys))
    found = (str(compiled), list(compiled.positiontup or []))
    if name is not None:
        _COMPILED[cache_key] = found
    return found


def executemany(
    conn: Connection,
    stmt: ClauseElement | Callable[[], ClauseElement],
    rows: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]],
    columns: Sequence[str] | None = None,
    *,
    name: str | None = None,
) -> None:
    """Run ``stmt`` once per row: dicts keyed by column, or tuples in ``columns`` order.

    Give a statement that never changes as a factory with a ``name``: it is then built
    and compiled once per dialect, not on every call (a small write stays small).
    """
    if not rows:
        return
    keys = list(columns) if columns is not None else list(rows[0])
    sql, order = _compile(conn, stmt, keys, name)
    params: Sequence[Any]
    if conn.dialect.paramstyle == "qmark":
        if columns is not None and order == keys:
            params = rows
        else:
            index = {name: i for i, name in enumerate(keys)}
            pick = [index[name] for name in order]
            as_tuples = rows if columns is not None else [tuple(r.values()) for r in rows]  # type: ignore[union-attr]
            params = [tuple(row[i] for i in pick) for row in as_tuples]  # type: ignore[index]
    elif columns is not None:
        params = [dict(zip(keys, row, strict=True)) for row in rows]
    else:
        params = rows
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.executemany(sql, params)
    finally:
        cursor.close()


def fetchall(conn: Connection, stmt: ClauseElement) -> list[tuple[Any, ...]]:
    """All rows as the driver's plain tuples: no per-row Row objects on hot reads."""
    compiled = cast(
        SQLCompiler,
        stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True}),
    )
    params: Any
    params = compiled.params  # a property that builds the dict: read it once
    if conn.dialect.paramstyle == "qmark":
        params = tuple(params[name] for name in compiled.positiontup or [])
    return list(conn.exec_driver_sql(str(compiled), params).cursor.fetchall())


def rows_for(
    conn: Connection, columns: Sequence[Column[Any]], key: Column[Any], ids: Sequence[int]
) -> list[tuple[Any, ...]]:
    """``SELECT columns WHERE key IN (ids)`` for integer ids, in chunks.

    The ids are integers from our own tables, written into the SQL as literals: compiling
    an expanding IN of 1,000 binds costs SQLAlchemy about a millisecond per query, which a
    page of 1,000 runs pays four times over.
    """
    table = key.table.name
    names = ", ".join(column.name for column in columns)
    found: list[tuple[Any, ...]] = []
    for i in range(0, len(ids), 1000):
        literal = ",".join(str(int(pk)) for pk in ids[i : i + 1000])
        sql = f"SELECT {names} FROM {table} WHERE {key.name} IN ({literal})"
        found.extend(conn.exec_driver_sql(sql).cursor.fetchall())
    return found


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Hold the cyclic garbage collector while a read builds ~10^5 tuples.

    Tuples of numbers make no reference cycles, but allocating that many triggers a
    collection every 700 of them: a quarter of the time of reading a long series.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
