from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, or_, select

from cairn.domain.audit import AuditEvent
from cairn.domain.records import ms_to_datetime, now_ms
from cairn.store.bulk import executemany
from cairn.store.repositories.webhooks import WebhookRepository
from cairn.store.tables import EventRow, ProjectRow

_E = cast(Table, EventRow.__table__)
_P = cast(Table, ProjectRow.__table__)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    at: datetime
    actor: str | None
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class NewEvent:
    action: str
    entity_type: str
    entity_id: str
    project_id: int | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def project_created_event(name: str, project_id: int) -> NewEvent:
    """The event every path that makes a project on first use writes."""
    return NewEvent("project.created", "project", name, project_id, after={"name": name})


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str, allow_nan=True)


class EventRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_many(self, actor: str | None, events: list[NewEvent]) -> None:
        if not events:
            return
        at = now_ms()
        rows = [
            {
                "at": at,
                "actor": actor,
                "action": e.action,
                "entity_type": e.entity_type,
                "entity_id": e.entity_id,
                "project_id": e.project_id,
                "before": _dump(e.before),
                "after": _dump(e.after),
            }
            for e in events
        ]
        # The webhook outbox, in this transaction: one small SELECT of the active hooks;
        # only when some hook wants some event are the events' ids needed.
        hooks = WebhookRepository(self.conn)
        targets = hooks.targets(hooks.routes(), [(e.action, e.project_id) for e in events])
        if not any(targets):
            executemany(self.conn, _E.insert, rows, name="events.insert")
            return
        hooks.enqueue(list(zip(self._insert_returning_ids(rows), targets, strict=True)), at)

    def _insert_returning_ids(self, rows: list[dict[str, Any]]) -> Sequence[int]:
        if self.conn.dialect.name == "sqlite":
            # One writer holds the database, and SQLite gives a new row the largest rowid
            # plus one: the ids are the last one and the n - 1 before it.
            executemany(self.conn, _E.insert, rows, name="events.insert")
            last = int(self.conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
            return range(last - len(rows) + 1, last + 1)
        stmt = _E.insert().returning(_E.c.id, sort_by_parameter_order=True)
        return self.conn.execute(stmt, rows).scalars().all()

    def for_entity(self, entity_type: str, entity_id: str) -> list[Event]:
        stmt = (
            select(_E)
            .where(_E.c.entity_type == entity_type, _E.c.entity_id == entity_id)
            .order_by(_E.c.id)
        )
        return [
            Event(
                row.id,
                ms_to_datetime(row.at),  # type: ignore[arg-type]
                row.actor,
                row.action,
                row.entity_type,
                row.entity_id,
                json.loads(row.before) if row.before else None,
                json.loads(row.after) if row.after else None,
            )
            for row in self.conn.execute(stmt)
        ]

    # -- the audit log, read: nothing here or anywhere updates or deletes an event -------

    def search(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        version_type: str | None = None,
        action: str | None = None,
        project_id: int | None = None,
        since_ms: int | None = None,
        after_id: int | None = None,
        limit: int = 1000,
    ) -> list[AuditEvent]:
        """Events oldest first (by id, after ``after_id``). ``version_type`` adds the
        events of the entity's versions (``model_version`` ``p/iris:N`` for model
        ``p/iris``); ``*`` in ``action`` matches anything."""
        stmt = select(_E, _P.c.name.label("project")).outerjoin(_P, _P.c.id == _E.c.project_id)
        if entity_type is not None:
            entity = _E.c.entity_type == entity_type
            if entity_id is not None:
                entity = and_(entity, _E.c.entity_id == entity_id)
            if version_type is not None:
                versions = _E.c.entity_type == version_type
                if entity_id is not None:
                    prefix = _E.c.entity_id.startswith(f"{entity_id}:", autoescape=True)
                    versions = and_(versions, prefix)
                entity = or_(entity, versions)
            stmt = stmt.where(entity)
        if action is not None and "*" in action:
            escaped = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(_E.c.action.like(escaped.replace("*", "%"), escape="\\"))
        elif action is not None:
            stmt = stmt.where(_E.c.action == action)
        if project_id is not None:
            stmt = stmt.where(_E.c.project_id == project_id)
        if since_ms is not None:
            stmt = stmt.where(_E.c.at >= since_ms)
        if after_id is not None:
            stmt = stmt.where(_E.c.id > after_id)
        rows = self.conn.execute(stmt.order_by(_E.c.id).limit(limit))
        return [
            AuditEvent(
                int(row.id),
                ms_to_datetime(row.at),  # type: ignore[arg-type]
                row.actor,
                row.action,
                row.entity_type,
                row.entity_id,
                row.project,
                json.loads(row.before) if row.before else None,
                json.loads(row.after) if row.after else None,
            )
            for row in rows
        ]
