"""Lineage: the dataset versions, runs and model versions upstream or downstream of one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cairn.api.deps import LineageDep
from cairn.api.route import ApiRoute
from cairn.auth import On, PrincipalDep, guard, require_projects
from cairn.domain.access import Role
from cairn.domain.lineage import MAX_DEPTH, Direction
from cairn.schemas.lineage import LineageOut

router = APIRouter(tags=["lineage"], route_class=ApiRoute)


@router.get("/lineage", response_model=LineageOut, dependencies=[guard(On.HANDLER, Role.VIEWER)])
def lineage(
    ref: Annotated[
        str,
        Query(
            description="runs/<id>, models/iris@production, datasets/wine:3, or a bare "
            "iris@production / wine:3 (a model first, then a dataset)",
        ),
    ],
    service: LineageDep,
    who: PrincipalDep,
    direction: Direction = Direction.UP,
    depth: Annotated[
        int | None, Query(ge=0, le=MAX_DEPTH, description="Hops at most; none: no limit")
    ] = None,
    project: Annotated[
        str | None, Query(description="For a bare name (default: 'default')")
    ] = None,
) -> LineageOut:
    """``up``: what produced it (data, runs); ``down``: what it fed (runs, models);
    ``both``. Edges point the way data flows: dataset -> run (input), run -> dataset
    (output), run -> model (trained), model -> run (input), parent run -> child (step)."""
    found = service.lineage(ref, direction, depth, project)
    # The whole graph or nothing: each project it reaches must be the caller's to read.
    require_projects(who, (node.project for node in found.nodes), Role.VIEWER)
    return LineageOut.of(found)
