"""The audit log, read only: no route updates or deletes an event."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cairn.api.deps import AuditDep
from cairn.api.route import ApiRoute
from cairn.auth import On, PrincipalDep, guard, require_project_or_admin
from cairn.domain.access import Role
from cairn.domain.audit import MAX_LIMIT
from cairn.schemas.audit import EventPageOut

router = APIRouter(tags=["audit"], route_class=ApiRoute)


@router.get("/events", response_model=EventPageOut, dependencies=[guard(On.HANDLER, Role.VIEWER)])
def list_events(
    audit: AuditDep,
    who: PrincipalDep,
    entity_type: Annotated[
        str | None, Query(description="run, project, model, model_version, dataset, …")
    ] = None,
    entity_id: Annotated[
        str | None,
        Query(
            description="A run id, a project name, or project/name[:N]; a model's or "
            "dataset's events include its versions'"
        ),
    ] = None,
    action: Annotated[
        str | None, Query(description="An action, or a pattern such as model.*")
    ] = None,
    project: str | None = None,
    since: Annotated[
        str | None, Query(description="A duration back from now (90s, 30m, 1h, 7d) or ISO 8601")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> EventPageOut:
    """Events oldest first, one page; ``next_cursor`` is set when the page is full.
    A project's events are for its viewers; without ``project``, for admins."""
    require_project_or_admin(who, project, Role.VIEWER)
    page = audit.events(
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        project=project,
        since=since,
        limit=limit,
        cursor=cursor,
    )
    return EventPageOut.of(page)
