"""Datasets, their versions with manifests, and runs' inputs."""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cairn.domain.datasets import (
    Dataset,
    DatasetFile,
    DatasetInput,
    DatasetKind,
    DatasetVersion,
)
from cairn.domain.records import ms_to_datetime, now_ms
from cairn.store.bulk import executemany
from cairn.store.named import ensure_named, find_named, lock_row
from cairn.store.tables import (
    DatasetFileRow,
    DatasetRow,
    DatasetVersionRow,
    ProjectRow,
    RunInputRow,
    RunRow,
)

_D = cast(Table, DatasetRow.__table__)
_V = cast(Table, DatasetVersionRow.__table__)
_F = cast(Table, DatasetFileRow.__table__)
_I = cast(Table, RunInputRow.__table__)
_P = cast(Table, ProjectRow.__table__)
_R = cast(Table, RunRow.__table__)


def _when(ms: int) -> Any:
    created = ms_to_datetime(ms)
    assert created is not None
    return created


def _version(row: Any, project: str, name: str, *, with_profile: bool = True) -> DatasetVersion:
    profile = json.loads(row.profile) if with_profile and row.profile else None
    return DatasetVersion(
        project=project,
        name=name,
        version=int(row.version),
        digest=row.digest,
        kind=DatasetKind(row.kind),
        file_count=int(row.file_count),
        size=int(row.size),
        created_at=_when(row.created_at),
        batch=row.batch,
        message=row.message,
        author=row.author,
        parent_version=row.parent_version,
        source=row.source,
        profile=profile,
    )


class DatasetRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert

    # -- datasets -----------------------------------------------------------------------

    def find_id(self, project_id: int, name: str) -> int | None:
        return find_named(self.conn, _D, project_id, name)

    def ensure(self, project_id: int, name: str) -> tuple[int, bool]:
        """The dataset's id, created when missing; True when this call created it."""
        return ensure_named(self.conn, _D, project_id, name)

    def lock(self, dataset_id: int) -> None:
        """Serialise version numbering of one dataset (PostgreSQL: a row lock)."""
        lock_row(self.conn, _D, dataset_id)

    def list_datasets(self, project_id: int, project: str) -> list[Dataset]:
        stats = (
            select(
                _V.c.dataset_id,
                func.max(_V.c.version).label("latest"),
                func.count().label("versions"),
            )
            .group_by(_V.c.dataset_id)
            .subquery()
        )
        stmt = (
            select(_D, stats.c.latest, stats.c.versions)
            .outerjoin(stats, stats.c.dataset_id == _D.c.id)
            .where(_D.c.project_id == project_id)
            .order_by(_D.c.name)
        )
        return [
            Dataset(
                project,
                row.name,
                row.description,
                _when(row.created_at),
                row.latest,
                int(row.versions or 0),
            )
            for row in self.conn.execute(stmt)
        ]

    # -- versions -----------------------------------------------------------------------

    def latest_version(self, dataset_id: int) -> int | None:
        stmt = select(func.max(_V.c.version)).where(_V.c.dataset_id == dataset_id)
        return cast(int | None, self.conn.execute(stmt).scalar())

    def version_pk(self, dataset_id: int, version: int) -> int | None:
        stmt = select(_V.c.pk).where(_V.c.dataset_id == dataset_id, _V.c.version == version)
        return cast(int | None, self.conn.execute(stmt).scalar())

    def by_digest(self, dataset_id: int, digest: str) -> int | None:
        """The lowest version number with this content, if any."""
        stmt = select(func.min(_V.c.version)).where(
            _V.c.dataset_id == dataset_id, _V.c.digest == digest
        )
        return cast(int | None, self.conn.execute(stmt).scalar())

    def by_batch(self, dataset_id: int, batch: str) -> int | None:
        """The newest version labelled ``batch``."""
        stmt = select(func.max(_V.c.version)).where(
            _V.c.dataset_id == dataset_id, _V.c.batch == batch
        )
        return cast(int | None, self.conn.execute(stmt).scalar())

    def add_version(
        self,
        dataset_id: int,
        version: int,
        *,
        digest: str,
        kind: DatasetKind,
        files: list[DatasetFile],
        batch: str | None,
        message: str | None,
        author: str | None,
        parent_version: int | None,
        source: str | None,
        profile: dict[str, Any] | None,
        run_pk: int | None = None,
    ) -> int:
        """Insert a version and its manifest; ``run_pk`` is the run that produced it."""
        values = {
            "dataset_id": dataset_id,
            "version": version,
            "digest": digest,
            "kind": kind.value,
            "file_count": len(files),
            "size": sum(f.size for f in files),
            "batch": batch,
            "message": message,
            "author": author,
            "parent_version": parent_version,
            "source": source,
            "profile": json.dumps(profile, allow_nan=False) if profile is not None else None,
            "run_pk": run_pk,
            "created_at": now_ms(),
        }
        pk = int(self.conn.execute(_V.insert().values(**values).returning(_V.c.pk)).scalar_one())
        executemany(
            self.conn,
            lambda: _F.insert(),
            [(pk, f.path, f.digest, f.size, f.etag) for f in files],
            ["version_pk", "path", "digest", "size", "etag"],
            name="dataset_files.insert",
        )
        return pk

    def get_version(
        self, dataset_id: int, version: int, project: str, name: str
    ) -> DatasetVersion | None:
        stmt = select(_V).where(_V.c.dataset_id == dataset_id, _V.c.version == version)
        row = self.conn.execute(stmt).first()
        return _version(row, project, name) if row else None

    def list_versions(self, dataset_id: int, project: str, name: str) -> list[DatasetVersion]:
        """Every version, newest first, without profiles (ask a version for its profile)."""
        stmt = select(_V).where(_V.c.dataset_id == dataset_id).order_by(_V.c.version.desc())
        return [_version(row, project, name, with_profile=False) for row in self.conn.execute(stmt)]

    def files(self, version_pk: int, prefix: str | None = None) -> list[DatasetFile]:
        stmt = select(_F.c.path, _F.c.digest, _F.c.size, _F.c.etag).where(
            _F.c.version_pk == version_pk
        )
        if prefix:
            stmt = stmt.where(
                (_F.c.path == prefix) | _F.c.path.startswith(prefix + "/", autoescape=True)
            )
        return [
            DatasetFile(row.path, row.digest, int(row.size), row.etag)
            for row in self.conn.execute(stmt.order_by(_F.c.path))
        ]

    # -- run inputs ---------------------------------------------------------------------

    def add_input(self, run_pk: int, version_pk: int, role: str) -> bool:
        """Record the use; False when the run already used this version in this role."""
        stmt = (
            self._insert(_I)
            .values(run_pk=run_pk, version_pk=version_pk, role=role, created_at=now_ms())
            .on_conflict_do_nothing(index_elements=["run_pk", "version_pk", "role"])
            .returning(_I.c.run_pk)
        )
        return self.conn.execute(stmt).first() is not None

    def inputs_of_run(self, run_pk: int, run_id: str) -> list[DatasetInput]:
        stmt = (
            select(
                _I.c.role,
                _I.c.created_at.label("used_at"),
                _V.c.version,
                _V.c.digest,
                _V.c.batch,
                _D.c.name,
                _P.c.name.label("project"),
            )
            .join(_V, _V.c.pk == _I.c.version_pk)
            .join(_D, _D.c.id == _V.c.dataset_id)
            .join(_P, _P.c.id == _D.c.project_id)
            .where(_I.c.run_pk == run_pk)
            .order_by(_I.c.created_at, _D.c.name, _V.c.version, _I.c.role)
        )
        return [
            DatasetInput(
                run_id,
                row.project,
                row.name,
                int(row.version),
                row.digest,
                row.role,
                row.batch,
                _when(row.used_at),
            )
            for row in self.conn.execute(stmt)
        ]

    def runs_using(self, version_pk: int) -> list[tuple[str, str]]:
        """(run id, role) of every run that used the version, oldest use first."""
        stmt = (
            select(_R.c.id, _I.c.role)
            .join(_R, _R.c.pk == _I.c.run_pk)
            .where(_I.c.version_pk == version_pk)
            .order_by(_I.c.created_at, _R.c.id)
        )
        return [(row.id, row.role) for row in self.conn.execute(stmt)]

    # -- garbage collection -------------------------------------------------------------

    def referenced_digests(self) -> set[str]:
        stmt = select(_F.c.digest).where(_F.c.digest.is_not(None)).distinct()
        return {row[0] for row in self.conn.execute(stmt)}
