"""The store's entry point: an engine, the schema check, and transactions.

Writes go through ``Database.write()``: one transaction, ``BEGIN IMMEDIATE`` on SQLite
(the writer queues instead of failing), committed before the caller returns, so an
acknowledged write is durable. Reads use ``Database.read()``.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, event
from sqlalchemy.pool import ConnectionPoolEntry

from cairn.store.engine import StoreLocation, make_engine, resolve_store
from cairn.store.schema import ensure_schema


@dataclass
class Tx:
    """A write transaction, with work to do only once it has committed."""

    conn: Connection
    on_commit: list[Callable[[], None]] = field(default_factory=list)


class KeyCache:
    """Metric key name -> id, for ids known to be committed. Immutable facts, so safe to share."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> int | None:
        return self._ids.get(name)

    def add(self, found: dict[str, int]) -> None:
        with self._lock:
            self._ids.update(found)
            self.names.update({key_id: name for name, key_id in found.items()})


_DATABASES: weakref.WeakSet[Database] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """Pooled connections belong to the parent: a forked child opens its own."""
    for db in list(_DATABASES):
        db.engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


class Database:
    def __init__(
        self,
        location: StoreLocation | str,
        *,
        auto_upgrade: bool = True,
        artifacts: str | None = None,
    ) -> None:
        self.location = location if isinstance(location, StoreLocation) else resolve_store(location)
        # Where artifact bytes go: a folder or s3:// URI given, else the store's own folder
        # (none for PostgreSQL, which then needs one given before artifacts are used).
        self.artifacts: str | None = artifacts or self.location.artifacts
        self.engine: Engine = make_engine(self.location.database_url)
        self.dialect = self.engine.dialect.name
        self.metric_keys = KeyCache()
        self.closed = False
        event.listen(self.engine, "checkin", self._on_checkin)
        try:
            ensure_schema(self.engine, auto_upgrade=auto_upgrade)
        except BaseException:
            self.engine.dispose()
            raise
        _DATABASES.add(self)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self.engine.connect().execution_options(cairn_write=True) as conn:
            tx = Tx(conn)
            with conn.begin():
                yield tx
            for callback in tx.on_commit:
                callback()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _on_checkin(self, dbapi_connection: object, record: ConnectionPoolEntry) -> None:
        """A connection still checked out when the database closed goes back to a pool
        that no one will use again: close it now rather than leave it to the garbage
        collector (which psycopg rightly reports as a leak). Should the database be used
        after all, the next checkout opens a fresh connection."""
        if self.closed and dbapi_connection is not None:
            record.invalidate()

    def close(self) -> None:
        self.closed = True
        self.engine.dispose()
