from __future__ import annotations

from fastapi import APIRouter

from cairn.api.deps import ActorDep, TrackingDep
from cairn.schemas.runs import ProjectIn, ProjectOut, ProjectSummaryOut

router = APIRouter(tags=["projects"])


@router.get("/projects", response_model=list[ProjectSummaryOut])
def list_projects(tracking: TrackingDep) -> list[ProjectSummaryOut]:
    return [ProjectSummaryOut.of(p) for p in tracking.list_projects()]


@router.post("/projects", response_model=ProjectOut, status_code=201)
def create_project(body: ProjectIn, tracking: TrackingDep, actor: ActorDep) -> ProjectOut:
    return ProjectOut.of(tracking.create_project(body.name, body.description, actor))


@router.get("/projects/{name}", response_model=ProjectOut)
def get_project(name: str, tracking: TrackingDep) -> ProjectOut:
    return ProjectOut.of(tracking.get_project(name))
