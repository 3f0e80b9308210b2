"""``/``: every project with its run counts and last activity."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cairn.auth import On, guard, principal
from cairn.domain.access import Role
from cairn.domain.validation import check_project_name
from cairn.ui.render import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/", response_class=HTMLResponse, dependencies=[guard(On.SIGNED_IN)])
def projects_page(request: Request) -> HTMLResponse:
    who = principal(request)
    summaries = [
        s
        for s in request.app.state.tracking.list_projects()
        if who.may(s.project.name, Role.VIEWER)
    ]
    return render(
        request,
        "projects.html",
        project=None,
        summaries=summaries,
        crumbs=[],
        twin="/api/v1/projects",
    )


@router.get("/go", dependencies=[guard(On.SIGNED_IN)])
def go_to_project(request: Request, project: str = "") -> Response:
    """The project picker's target: that project's runs (the projects page when blank)."""
    if not project.strip():
        return RedirectResponse("/", status_code=303)
    name = check_project_name(project.strip())
    principal(request).require(name, Role.VIEWER)
    request.app.state.tracking.get_project(name)  # a 404 page for an unknown name
    return RedirectResponse(f"/projects/{name}/runs", status_code=303)
