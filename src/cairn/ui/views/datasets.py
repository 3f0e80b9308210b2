"""Datasets: ``/projects/{p}/datasets``, ``/projects/{p}/datasets/{name}`` (versions,
batches, a version's profile) and ``/projects/{p}/datasets/{name}/diff?old=&new=``
(files, schema, and per-column PSI/KS with the two distributions overlaid)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cairn.auth import On, guard
from cairn.domain.access import Role
from cairn.domain.datasets import DatasetVersion
from cairn.ui.render import PageRoute, render, url

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _ref(name: str, version: str) -> str:
    """``3`` → ``wine:3``; anything else (``wine@2024-11``, ``wine:2``) as typed."""
    version = version.strip()
    return f"{name}:{version}" if version.isdigit() else version


@router.get(
    "/projects/{project}/datasets",
    response_class=HTMLResponse,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def datasets_page(request: Request, project: str) -> HTMLResponse:
    datasets = request.app.state.data.list_datasets(project)
    return render(
        request,
        "datasets.html",
        project=project,
        crumbs=[(project, f"/projects/{project}/runs"), ("Datasets", None)],
        twin=f"/api/v1/projects/{project}/datasets",
        datasets=datasets,
    )


@router.get(
    "/projects/{project}/datasets/{name}",
    response_class=HTMLResponse,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def dataset_page(
    request: Request, project: str, name: str, version: int | None = None
) -> HTMLResponse:
    data = request.app.state.data
    versions: list[DatasetVersion] = data.list_versions(name, project)
    chosen: DatasetVersion | None = None
    if versions:
        ref = f"{name}:{version}" if version is not None else name
        chosen = data.resolve(ref, project)
    base = f"/projects/{project}/datasets/{name}"
    batches: dict[str, list[int]] = {}
    for v in sorted(versions, key=lambda v: v.version):
        if v.batch:
            batches.setdefault(v.batch, []).append(v.version)
    return render(
        request,
        "dataset.html",
        project=project,
        crumbs=[
            (project, f"/projects/{project}/runs"),
            ("Datasets", f"/projects/{project}/datasets"),
            (name, None),
        ],
        twin=f"/api/v1{base}/versions",
        name=name,
        versions=versions,
        chosen=chosen,
        batches=batches,
        base=base,
        profile=(chosen.profile if chosen else None) or None,
        version_twin=f"/api/v1{base}/versions/{chosen.version}" if chosen else None,
    )


@router.get(
    "/projects/{project}/datasets/{name}/diff",
    response_class=HTMLResponse,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def dataset_diff_page(
    request: Request, project: str, name: str, old: str = "", new: str = ""
) -> HTMLResponse:
    data = request.app.state.data
    versions: list[DatasetVersion] = data.list_versions(name, project)
    numbers = sorted(v.version for v in versions)
    new = new or (str(numbers[-1]) if numbers else "")
    old = old or (str(numbers[-2]) if len(numbers) > 1 else new)
    old_version = data.resolve(_ref(name, old), project)
    new_version = data.resolve(_ref(name, new), project)
    diff = data.diff(old_version.ref, new_version.ref, project)
    profiles: dict[str, Any] = {
        "old": _columns_by_name(old_version.profile),
        "new": _columns_by_name(new_version.profile),
    }
    base = f"/projects/{project}/datasets/{name}"
    return render(
        request,
        "dataset_diff.html",
        project=project,
        crumbs=[
            (project, f"/projects/{project}/runs"),
            ("Datasets", f"/projects/{project}/datasets"),
            (name, base),
            (f"{old_version.version} → {new_version.version}", None),
        ],
        twin=url(
            f"/api/v1/projects/{project}/dataset-diff", old=old_version.ref, new=new_version.ref
        ),
        name=name,
        base=base,
        versions=versions,
        old=old_version,
        new=new_version,
        diff=diff,
        profiles=profiles,
    )


def _columns_by_name(profile: dict[str, Any] | None) -> dict[str, Any]:
    if not profile:
        return {}
    return {c["name"]: c for c in profile.get("columns", [])}
