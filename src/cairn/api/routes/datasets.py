"""Datasets: versions (manifests of blobs sent first), files, diffs, runs' inputs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from cairn.api.deps import ActorDep, DataDep
from cairn.api.paths import version_ref
from cairn.api.route import ApiRoute
from cairn.api.streaming import RANGE_RESPONSES, blob_response
from cairn.auth import On, PrincipalDep, RunProjects, guard, require_refs
from cairn.domain.access import Role
from cairn.schemas.datasets import (
    DatasetDiffOut,
    DatasetFileOut,
    DatasetFilesOut,
    DatasetInputIn,
    DatasetInputOut,
    DatasetOut,
    DatasetVersionIn,
    DatasetVersionOut,
    RunUseOut,
)

router = APIRouter(tags=["datasets"], route_class=ApiRoute)


@router.get(
    "/projects/{project}/datasets",
    response_model=list[DatasetOut],
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def list_datasets(project: str, data: DataDep) -> list[DatasetOut]:
    return [DatasetOut.of(d) for d in data.list_datasets(project)]


@router.post(
    "/projects/{project}/datasets/{name}/versions",
    response_model=DatasetVersionOut,
    status_code=201,
    responses={200: {"description": "The content matches an existing version: that version."}},
    dependencies=[guard(On.PATH, Role.EDITOR)],
)
def log_dataset_version(
    project: str,
    name: str,
    body: DatasetVersionIn,
    response: Response,
    data: DataDep,
    actor: ActorDep,
) -> DatasetVersionOut:
    """A new version, or (200) the existing one when the content is unchanged. For
    ``kind=files`` every blob must be stored first (``POST /blobs/missing``, ``PUT /blobs``)."""
    version, created = data.log_version(
        project,
        name,
        [f.to_domain() for f in body.files],
        kind=body.kind,
        source=body.source,
        batch=body.batch,
        message=body.message,
        profile=body.profile,
        actor=actor,
        run_id=body.run_id,
    )
    if not created:
        response.status_code = 200
    return DatasetVersionOut.of(version, created)


@router.get(
    "/projects/{project}/datasets/{name}/versions",
    response_model=list[DatasetVersionOut],
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def list_dataset_versions(project: str, name: str, data: DataDep) -> list[DatasetVersionOut]:
    """Every version, newest first, without profiles."""
    return [DatasetVersionOut.of(v) for v in data.list_versions(name, project)]


@router.get(
    "/projects/{project}/datasets/{name}/versions/{version}",
    response_model=DatasetVersionOut,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def get_dataset_version(project: str, name: str, version: str, data: DataDep) -> DatasetVersionOut:
    """One version with its profile; ``version`` is a number, ``latest`` or ``@batch``."""
    return DatasetVersionOut.of(data.resolve(version_ref(name, version), project))


@router.get(
    "/projects/{project}/datasets/{name}/versions/{version}/files",
    response_model=DatasetFilesOut,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def list_dataset_files(
    project: str, name: str, version: str, data: DataDep, prefix: str | None = None
) -> DatasetFilesOut:
    found, files = data.list_files(version_ref(name, version), project, prefix)
    return DatasetFilesOut(
        version=DatasetVersionOut.of(found), files=[DatasetFileOut.of(f) for f in files]
    )


@router.get(
    "/projects/{project}/datasets/{name}/versions/{version}/files/{path:path}",
    response_class=StreamingResponse,
    responses=RANGE_RESPONSES,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def download_dataset_file(
    project: str, name: str, version: str, path: str, request: Request, data: DataDep
) -> Response:
    """A stored file's bytes, streamed (``Range`` supported)."""
    item = data.stored_file(version_ref(name, version), path, project)
    assert item.digest is not None
    return blob_response(
        request, data.blobs.store, item.digest, item.size, "application/octet-stream"
    )


@router.get(
    "/projects/{project}/datasets/{name}/versions/{version}/runs",
    response_model=list[RunUseOut],
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def dataset_version_runs(project: str, name: str, version: str, data: DataDep) -> list[RunUseOut]:
    """The runs that used this version, and in which role."""
    uses = data.runs_using(version_ref(name, version), project)
    return [RunUseOut(run_id=run_id, role=role) for run_id, role in uses]


@router.get(
    "/projects/{project}/dataset-diff",
    response_model=DatasetDiffOut,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def diff_datasets(
    project: str,
    old: Annotated[str, Query(description="A dataset reference such as wine:1")],
    new: Annotated[str, Query(description="A dataset reference such as wine:2")],
    data: DataDep,
    who: PrincipalDep,
) -> DatasetDiffOut:
    """Files added, removed and changed; schema changes; per-column PSI and KS."""
    require_refs(who, (old, new), project, Role.VIEWER)
    return DatasetDiffOut.of(data.diff(old, new, project))


@router.post(
    "/runs/{run_id}/inputs",
    response_model=DatasetInputOut,
    status_code=201,
    dependencies=[guard(On.RUN, Role.EDITOR)],
)
def use_dataset(
    run_id: str,
    body: DatasetInputIn,
    data: DataDep,
    actor: ActorDep,
    who: PrincipalDep,
    request: Request,
) -> DatasetInputOut:
    """Record that the run used a dataset version (a bare name: its project's latest)."""
    runs: RunProjects = request.app.state.run_projects
    require_refs(who, [body.dataset], runs.project(run_id), Role.VIEWER)
    return DatasetInputOut.of(data.use_dataset(run_id, body.dataset, body.role, actor=actor))


@router.get(
    "/runs/{run_id}/inputs",
    response_model=list[DatasetInputOut],
    dependencies=[guard(On.RUN, Role.VIEWER)],
)
def run_inputs(run_id: str, data: DataDep) -> list[DatasetInputOut]:
    return [DatasetInputOut.of(i) for i in data.run_inputs(run_id)]
