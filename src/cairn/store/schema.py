"""Schema lifecycle: create a new store at head, upgrade an old one, or refuse to serve it.

Every schema change is an Alembic revision under ``migrations/versions``. Embedded mode
(one user) upgrades an old store on open; the server refuses to start on one and says
to run ``cairn db upgrade``, because other processes may still be using the old schema.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from cairn.domain.errors import SchemaOutdated

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 0x6361_6972_6E  # "cairn": serialises concurrent schema work on PostgreSQL


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return _head_of(str(_MIGRATIONS))


@functools.lru_cache(maxsize=4)
def _head_of(migrations: str) -> str:
    """Reading the scripts costs ~1 ms; health checks ask often."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _is_empty(connection: Connection) -> bool:
    names = set(inspect(connection).get_table_names()) - {"alembic_version"}
    return not names


def check_known(current: str | None, *, empty: bool = True) -> None:
    """Refuse a store this Cairn cannot upgrade: from a newer Cairn, or not from Cairn."""
    head = head_revision()
    if current is None:
        if not empty:
            raise SchemaOutdated(
                "the store has tables but no schema revision: it was not made by Cairn, "
                "or its alembic_version table was lost; restore it from a backup",
                details={"current": None, "head": head},
            )
        return
    script = ScriptDirectory.from_config(alembic_config())
    if current not in {rev.revision for rev in script.walk_revisions()}:
        raise SchemaOutdated(
            f"the store is at schema revision {current}, which this version of Cairn "
            "does not know: it was written by a newer Cairn; upgrade Cairn",
            details={"current": current, "head": head},
        )


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the store to ``revision``; returns (from, to). Safe with concurrent callers."""
    with engine.connect().execution_options(cairn_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        before = current_revision(conn)
        check_known(before, empty=_is_empty(conn))
        command.upgrade(alembic_config(conn), revision)
        after = current_revision(conn)
    assert after is not None
    return before, after


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """Make the store usable: create it when empty, upgrade it or refuse when it is old."""
    head = head_revision()
    with engine.connect() as conn:
        current = current_revision(conn)
        empty = current is None and _is_empty(conn)
        conn.rollback()
    if current == head:
        return
    check_known(current, empty=empty)
    if empty or auto_upgrade:
        upgrade(engine)
        return
    raise SchemaOutdated(
        f"the store is at schema revision {current or 'none'} and this Cairn needs "
        f"{head}: run `cairn db upgrade` (back up the store first)",
        details={"current": current, "head": head},
    )
