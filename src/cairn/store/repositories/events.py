from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, select

from cairn.domain.records import ms_to_datetime, now_ms
from cairn.store.bulk import executemany
from cairn.store.tables import EventRow

_E = cast(Table, EventRow.__table__)


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


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str, allow_nan=True)


class EventRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_many(self, actor: str | None, events: list[NewEvent]) -> None:
        if not events:
            return
        at = now_ms()
        executemany(
            self.conn,
            _E.insert,
            [
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
            ],
            name="events.insert",
        )

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
