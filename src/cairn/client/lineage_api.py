"""The SDK's lineage and audit log: what ``cairn.Client`` answers about where things
came from and who changed them.

    cairn.lineage("iris@production").datasets()           # the data behind production
    cairn.lineage("wine:3", direction="down").models()     # the versions wine:3 fed
    cairn.audit(entity="models/iris", since="7d")          # every change to iris, in order
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cairn.domain.audit import AuditEvent, check_limit, parse_entity
from cairn.domain.lineage import Direction, Lineage, check_depth, check_direction

if TYPE_CHECKING:
    from cairn.client.backend import Backend


class EventList(list[AuditEvent]):
    """Audit events, oldest first: a list, plus ``next_cursor`` for the page after."""

    next_cursor: str | None = None


class LineageApi:
    """Mixed into ``Client``: needs ``backend``, ``project``, ``_project`` and ``_settle``."""

    backend: Backend
    project: str | None

    def _project(self, project: str | None) -> str:
        raise NotImplementedError

    def _settle(self) -> None:
        raise NotImplementedError

    def lineage(
        self,
        ref: str,
        direction: Direction | str = Direction.UP,
        depth: int | None = None,
        project: str | None = None,
    ) -> Lineage:
        """The dataset versions, runs and model versions around ``ref``: ``up`` what
        produced it, ``down`` what it fed, ``both``; ``depth`` hops at most.

        ``ref`` is ``runs/<id>``, ``models/iris@production``, ``datasets/wine:3`` or a
        bare ``iris@production`` / ``wine:3`` (a model first, then a dataset).
        Example: ``[d.label for d in cairn.lineage("iris@production").datasets()]``.
        """
        chosen = check_direction(direction)
        self._settle()
        return self.backend.lineage(ref, chosen.value, check_depth(depth), self._project(project))

    def audit(
        self,
        entity: str | None = None,
        since: str | datetime | timedelta | None = None,
        action: str | None = None,
        project: str | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> EventList:
        """Audit events, oldest first, at most ``limit``; ``.next_cursor`` pages on.

        ``entity``: ``runs/<id>``, ``models/iris`` (with its versions), ``models/iris:3``,
        ``datasets/wine[:N]``, ``projects/p``. ``since``: ``"1h"``, ``"7d"``, an ISO time,
        a ``datetime`` or a ``timedelta``. ``action``: ``"model.alias_moved"`` or
        ``"model.*"``. Example: ``[e.action for e in cairn.audit("models/iris")]``.
        """
        entity_type, entity_id = (
            parse_entity(entity, self._project(project)) if entity is not None else (None, None)
        )
        if isinstance(since, timedelta):  # measured back from the server's clock
            seconds = max(0, int(since.total_seconds()))
            since = f"{seconds}s" if seconds < 10**9 else f"{seconds // 86400}d"
        elif isinstance(since, datetime):
            since = since.isoformat()
        self._settle()
        page = self.backend.events(
            entity_type=entity_type,
            entity_id=entity_id,
            action=action,
            # An entity names its own project; otherwise the client's project, if set.
            project=project if entity is not None else project or self.project,
            since=since,
            limit=check_limit(limit),
            cursor=cursor,
        )
        events = EventList(page.events)
        events.next_cursor = page.next_cursor
        return events
