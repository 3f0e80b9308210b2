"""Many rows through one statement, and many rows out of one, at the driver's speed.

SQLAlchemy's ``executemany`` builds parameters row by row in Python (a few µs a row);
a batch of thousands of runs spends more time there than in the database. Here the
statement is compiled once and the driver's own ``executemany`` gets plain tuples (SQLite)
or dicts (psycopg). Only for our column types, which need no conversion on the way in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


def executemany(
    conn: Connection,
    stmt: ClauseElement,
    rows: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]],
    columns: Sequence[str] | None = None,
) -> None:
    """Run ``stmt`` once per row: dicts keyed by column, or tuples in ``columns`` order."""
    if not rows:
        return
    keys = list(columns) if columns is not None else list(rows[0])
    compiled = cast(SQLCompiler, stmt.compile(dialect=conn.dialect, column_keys=keys))
    sql = str(compiled)
    params: Sequence[Any]
    if conn.dialect.paramstyle == "qmark":
        order = list(compiled.positiontup or [])
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
