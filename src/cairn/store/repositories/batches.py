from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cairn.domain.records import now_ms
from cairn.store.tables import BatchRow

_B = cast(Table, BatchRow.__table__)


class BatchRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def claim(self, key: str, runs: int, points: int) -> bool:
        """Record an idempotency key; False when it was applied before (a resend).

        On PostgreSQL a concurrent claim of the same key waits for the first to commit.
        """
        insert = pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(_B).values(key=key, applied_at=now_ms(), runs=runs, points=points)
        # RETURNING, not rowcount: psycopg reports -1 for ON CONFLICT DO NOTHING.
        claimed = stmt.on_conflict_do_nothing(index_elements=["key"]).returning(_B.c.key)
        return self.conn.execute(claimed).first() is not None
