from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, Table, case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cairn.domain.errors import NotFound
from cairn.domain.records import Project, ProjectSummary, RunStatus, ms_to_datetime, now_ms
from cairn.domain.validation import is_project_name
from cairn.store.tables import ProjectRow, RunRow

_P = cast(Table, ProjectRow.__table__)
_R = cast(Table, RunRow.__table__)


def _project(row: object) -> Project:
    created = ms_to_datetime(row.created_at)  # type: ignore[attr-defined]
    assert created is not None
    return Project(row.id, row.name, row.description, created)  # type: ignore[attr-defined]


class ProjectRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def find(self, name: str) -> Project | None:
        if not is_project_name(name):
            return None  # e.g. a NUL in a URL: no such project, and no query for it
        row = self.conn.execute(select(_P).where(_P.c.name == name)).first()
        return _project(row) if row else None

    def get(self, name: str) -> Project:
        project = self.find(name)
        if project is None:
            raise NotFound(f"project {name!r} does not exist", details={"project": name})
        return project

    def name_of(self, project_id: int) -> str | None:
        return cast(
            str | None, self.conn.execute(select(_P.c.name).where(_P.c.id == project_id)).scalar()
        )

    def ensure(self, name: str, description: str = "") -> tuple[Project, bool]:
        """The project, created when missing; True when this call created it."""
        existing = self.find(name)
        if existing is not None:
            return existing, False
        insert = pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        values = insert(_P).values(name=name, description=description, created_at=now_ms())
        stmt = values.on_conflict_do_nothing(index_elements=["name"]).returning(_P.c.id)
        created = self.conn.execute(stmt).first() is not None
        return self.get(name), created

    def update(self, project_id: int, description: str) -> None:
        self.conn.execute(_P.update().where(_P.c.id == project_id).values(description=description))

    def list_summaries(self) -> list[ProjectSummary]:
        running = func.sum(case((_R.c.status == RunStatus.RUNNING.value, 1), else_=0))
        counts = (
            select(
                _R.c.project_id,
                func.count().label("runs"),
                running.label("running"),
                func.max(_R.c.updated_at).label("last"),
            )
            .group_by(_R.c.project_id)
            .subquery()
        )
        stmt = (
            select(_P, counts.c.runs, counts.c.running, counts.c.last)
            .outerjoin(counts, counts.c.project_id == _P.c.id)
            .order_by(_P.c.name)
        )
        return [
            ProjectSummary(
                _project(row),
                int(row.runs or 0),
                int(row.running or 0),
                ms_to_datetime(row.last),
            )
            for row in self.conn.execute(stmt)
        ]
