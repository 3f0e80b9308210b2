"""Many rows through one statement, and many rows out of one, at the driver's speed.

SQLAlchemy's ``executemany`` builds parameters row by row in Python (a few µs a row);
a batch of thousands of runs spends more time there than in the database. Here the
statement is compiled once and the driver's own ``executemany`` gets plain tuples (SQLite)
or dicts (psycopg). Only for our column types, which need no conversion on the way in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import Executable


def executemany(conn: Connection, stmt: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run ``stmt`` once per row; every row has the same keys, named as the columns."""
    if not rows:
        return
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))  # type: ignore[call-arg]
    sql = str(compiled)
    params: list[Any]
    if conn.dialect.paramstyle == "qmark":
        order = compiled.positiontup or []
        params = [tuple(row[name] for name in order) for row in rows]
    else:
        params = list(rows)
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.executemany(sql, params)
    finally:
        cursor.close()


def fetchall(conn: Connection, stmt: Executable) -> list[tuple[Any, ...]]:
    """All rows as the driver's plain tuples: no per-row Row objects on hot reads."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params: Any
    params = compiled.params  # a property that builds the dict: read it once
    if conn.dialect.paramstyle == "qmark":
        params = tuple(params[name] for name in compiled.positiontup or [])
    return list(conn.exec_driver_sql(str(compiled), params).cursor.fetchall())
