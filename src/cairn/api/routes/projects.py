from __future__ import annotations

from fastapi import APIRouter

from cairn.api.deps import ActorDep, TrackingDep
from cairn.api.route import ApiRoute
from cairn.auth import On, PrincipalDep, guard
from cairn.domain.access import Role
from cairn.schemas.runs import ProjectIn, ProjectOut, ProjectSummaryOut

router = APIRouter(tags=["projects"], route_class=ApiRoute)


@router.get("/projects", response_model=list[ProjectSummaryOut], dependencies=[guard(On.SIGNED_IN)])
def list_projects(tracking: TrackingDep, who: PrincipalDep) -> list[ProjectSummaryOut]:
    """The projects the caller holds a role on (every one, for an admin)."""
    return [
        ProjectSummaryOut.of(p)
        for p in tracking.list_projects()
        if who.may(p.project.name, Role.VIEWER)
    ]


@router.post(
    "/projects", response_model=ProjectOut, status_code=201, dependencies=[guard(On.ADMIN)]
)
def create_project(body: ProjectIn, tracking: TrackingDep, actor: ActorDep) -> ProjectOut:
    return ProjectOut.of(tracking.create_project(body.name, body.description, actor))


@router.get(
    "/projects/{name}", response_model=ProjectOut, dependencies=[guard(On.PATH, Role.VIEWER)]
)
def get_project(name: str, tracking: TrackingDep) -> ProjectOut:
    return ProjectOut.of(tracking.get_project(name))
