"""Run artifact manifests: one entry per (run, path); logging a path again replaces it."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cairn.domain.records import ArtifactEntry, ms_to_datetime, now_ms
from cairn.store.tables import ArtifactRow

_A = cast(Table, ArtifactRow.__table__)


def _entry(row: Any) -> ArtifactEntry:
    created = ms_to_datetime(row.created_at)
    assert created is not None
    return ArtifactEntry(row.path, row.digest, int(row.size), row.media_type, created)


class ArtifactRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert

    def put(self, run_pk: int, path: str, digest: str, size: int, media_type: str) -> ArtifactEntry:
        """Record ``path`` of a run; an existing entry becomes the new version of the file."""
        values = {
            "run_pk": run_pk,
            "path": path,
            "digest": digest,
            "size": size,
            "media_type": media_type,
            "created_at": now_ms(),
        }
        stmt = self._insert(_A).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_pk", "path"],
            set_={k: stmt.excluded[k] for k in ("digest", "size", "media_type", "created_at")},
        )
        self.conn.execute(stmt)
        entry = self.get(run_pk, path)
        assert entry is not None
        return entry

    def get(self, run_pk: int, path: str) -> ArtifactEntry | None:
        stmt = select(_A).where(_A.c.run_pk == run_pk, _A.c.path == path)
        row = self.conn.execute(stmt).first()
        return _entry(row) if row else None

    def list(self, run_pk: int, prefix: str | None = None) -> list[ArtifactEntry]:
        """Entries of a run by path; with ``prefix``, the file it names or those under it."""
        stmt = select(_A).where(_A.c.run_pk == run_pk)
        if prefix:
            stmt = stmt.where(
                (_A.c.path == prefix) | _A.c.path.startswith(prefix + "/", autoescape=True)
            )
        return [_entry(row) for row in self.conn.execute(stmt.order_by(_A.c.path))]

    def referenced_digests(self) -> set[str]:
        """Every digest any run's manifest names (garbage collection keeps these)."""
        return {row[0] for row in self.conn.execute(select(_A.c.digest).distinct())}
