"""``/``: every project with its run counts and last activity."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cairn.domain.validation import check_project_name
from cairn.ui.render import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def projects_page(request: Request) -> HTMLResponse:
    summaries = request.app.state.tracking.list_projects()
    return render(
        request,
        "projects.html",
        project=None,
        summaries=summaries,
        crumbs=[],
        twin="/api/v1/projects",
    )


@router.get("/go")
def go_to_project(request: Request, project: str = "") -> Response:
    """The project picker's target: that project's runs (the projects page when blank)."""
    if not project.strip():
        return RedirectResponse("/", status_code=303)
    name = check_project_name(project.strip())
    request.app.state.tracking.get_project(name)  # a 404 page for an unknown name
    return RedirectResponse(f"/projects/{name}/runs", status_code=303)
