"""Rows named within a project (datasets, registered models): find, or create once.

Concurrent first uses are safe: the insert does nothing on the unique (project, name)
conflict and the row the other writer made is read back.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cairn.domain.records import now_ms


def find_named(conn: Connection, table: Table, project_id: int, name: str) -> int | None:
    stmt = select(table.c.id).where(table.c.project_id == project_id, table.c.name == name)
    return cast(int | None, conn.execute(stmt).scalar())


def ensure_named(conn: Connection, table: Table, project_id: int, name: str) -> tuple[int, bool]:
    """The row's id, created when missing; True when this call created it."""
    existing = find_named(conn, table, project_id, name)
    if existing is not None:
        return existing, False
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(table)
        .values(project_id=project_id, name=name, description="", created_at=now_ms())
        .on_conflict_do_nothing(index_elements=["project_id", "name"])
        .returning(table.c.id)
    )
    created = conn.execute(stmt).scalar()
    if created is not None:
        return int(created), True
    found = find_named(conn, table, project_id, name)
    assert found is not None
    return found, False


def lock_row(conn: Connection, table: Table, row_id: int) -> None:
    """Serialise writers of one row's children (PostgreSQL; SQLite has one writer)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(table.c.id).where(table.c.id == row_id).with_for_update())
