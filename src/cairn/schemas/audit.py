"""The audit log on the wire: ``GET /api/v1/events``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from cairn.domain.audit import AuditEvent, EventPage
from cairn.schemas.base import Wire, as_utc


class EventOut(Wire):
    id: int
    at: datetime
    actor: str | None
    action: str = Field(description="e.g. model.alias_moved, dataset.version_created")
    entity_type: str = Field(description="run, project, model, model_version, dataset, …")
    entity_id: str = Field(description="a run id, a project name, or project/name[:N]")
    project: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, event: AuditEvent) -> EventOut:
        return cls(
            id=event.id,
            at=event.at,
            actor=event.actor,
            action=event.action,
            entity_type=event.entity_type,
            entity_id=event.entity_id,
            project=event.project,
            before=event.before,
            after=event.after,
        )

    def to_domain(self) -> AuditEvent:
        return AuditEvent(
            self.id,
            as_utc(self.at),
            self.actor,
            self.action,
            self.entity_type,
            self.entity_id,
            self.project,
            self.before,
            self.after,
        )


class EventPageOut(Wire):
    events: list[EventOut]
    next_cursor: str | None = Field(
        description="Pass it as ``cursor`` for the events after this page; null: none yet."
    )

    @classmethod
    def of(cls, page: EventPage) -> EventPageOut:
        return cls(events=[EventOut.of(e) for e in page.events], next_cursor=page.next_cursor)

    def to_domain(self) -> EventPage:
        return EventPage([e.to_domain() for e in self.events], self.next_cursor)
