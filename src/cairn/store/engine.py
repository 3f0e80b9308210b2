"""Engines for the two supported databases, configured the way each needs.

SQLite: WAL (readers never block the writer), a busy timeout, foreign keys on, and
``BEGIN IMMEDIATE`` for write transactions so two writers queue on the busy timeout
instead of failing with "database is locked" when a read lock would be upgraded.
PostgreSQL: psycopg 3 with a pool sized for a threaded server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from cairn.domain.errors import Invalid

SQLITE_BUSY_TIMEOUT_S = 60.0
DB_FILENAME = "cairn.db"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Where metadata and artifacts live, resolved from what the user typed."""

    database_url: str
    artifacts: str | None  # a folder for the local blob store, when the store is a folder


def resolve_store(uri: str | os.PathLike[str]) -> StoreLocation:
    """A folder path, ``sqlite:///file.db`` or ``postgresql://…``.

    >>> resolve_store("/tmp/x").database_url
    'sqlite:////tmp/x/cairn.db'
    """
    text = os.fspath(uri)
    if text.startswith(("postgresql://", "postgres://")):
        return StoreLocation("postgresql+psycopg://" + text.split("://", 1)[1], None)
    if text.startswith("postgresql+"):
        return StoreLocation(text, None)
    if text.startswith("sqlite:"):
        path = make_url(text).database
        if not path or path == ":memory:":
            raise Invalid("an in-memory SQLite store is not supported; give a file", field="store")
        return StoreLocation(text, str(Path(path).resolve().parent / "artifacts"))
    if "://" in text:
        raise Invalid(
            f"store {text!r}: use a folder path, sqlite:///FILE or postgresql://…", field="store"
        )
    folder = Path(text).expanduser().resolve()
    return StoreLocation(f"sqlite:///{folder / DB_FILENAME}", str(folder / "artifacts"))


def _sqlite_connect_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("cairn_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        )
        _sqlite_connect_hooks(engine)
        return engine
    if url.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    raise Invalid(f"unsupported database {url.get_backend_name()!r}", field="store")


def store_exists(uri: str | os.PathLike[str]) -> bool:
    """Whether a SQLite store is already there (opening one that is not creates it).
    A server database (PostgreSQL) is taken to exist: connecting tells."""
    from sqlalchemy.engine import make_url

    url = resolve_store(uri).database_url
    if not url.startswith("sqlite"):
        return True
    path = make_url(url).database
    return not path or path == ":memory:" or Path(path).is_file()
