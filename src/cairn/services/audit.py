"""The audit log, read: every change to anything, who made it, when, before and after.

audit = AuditService(db)
audit.events(entity_type="model", entity_id="default/iris")      # and its versions' events
audit.events(action="model.*", since="1h", project="default")
page = audit.events(limit=100); audit.events(limit=100, cursor=page.next_cursor)

Events are written by the services, in the transaction of the change they record, and
are never updated or deleted: nothing here can, and the database refuses it (a trigger).
Pages are keyed by event id, oldest first, so a cursor also follows new events as
they arrive.
"""

from __future__ import annotations

from datetime import datetime

from cairn.domain.audit import (
    VERSION_TYPES,
    EventPage,
    check_action,
    check_entity,
    check_limit,
    parse_cursor,
    parse_since,
)
from cairn.domain.records import datetime_to_ms
from cairn.domain.validation import check_project_name
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository
from cairn.store.repositories.projects import ProjectRepository


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def events(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        project: str | None = None,
        since: str | datetime | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> EventPage:
        """Events matching every filter given, oldest first; ``next_cursor`` is set when
        the page is full (more may follow). A bad filter is ``Invalid`` naming it."""
        entity_type, entity_id = check_entity(entity_type, entity_id)
        action = check_action(action)
        if project is not None:
            check_project_name(project)
        when = parse_since(since)
        limit = check_limit(limit)
        after_id = parse_cursor(cursor)
        with self.db.read() as conn:
            project_id = ProjectRepository(conn).get(project).id if project is not None else None
            events = EventRepository(conn).search(
                entity_type=entity_type,
                entity_id=entity_id,
                version_type=VERSION_TYPES.get(entity_type) if entity_type else None,
                action=action,
                project_id=project_id,
                since_ms=datetime_to_ms(when),
                after_id=after_id,
                limit=limit,
            )
        next_cursor = str(events[-1].id) if len(events) == limit else None
        return EventPage(events, next_cursor)
