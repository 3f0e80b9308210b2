"""The model registry: ``/projects/{p}/models`` and ``/projects/{p}/models/{name}``
(versions, aliases and their history, a version's card, approve/reject), and
``/projects/{p}/models/{name}/compare?a=&b=``.

Approve and Reject are plain HTML forms that POST here with a CSRF token; the decision is
the registry's (``registry.approve``/``reject``), then the browser is sent back (303).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from cairn.auth import On, guard
from cairn.domain.access import Role
from cairn.domain.errors import Invalid
from cairn.domain.models import ModelVersion
from cairn.ui import csrf
from cairn.ui.render import PageRoute, render, url

router = APIRouter(route_class=PageRoute, include_in_schema=False)

DECISIONS = ("approve", "reject")


@router.get(
    "/projects/{project}/models",
    response_class=HTMLResponse,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def models_page(request: Request, project: str) -> HTMLResponse:
    models = request.app.state.registry.list_models(project)
    return render(
        request,
        "models.html",
        project=project,
        crumbs=[(project, f"/projects/{project}/runs"), ("Models", None)],
        twin=f"/api/v1/projects/{project}/models",
        models=models,
    )


@router.get(
    "/projects/{project}/models/{name}",
    response_class=HTMLResponse,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def model_page(
    request: Request, project: str, name: str, version: int | None = None, done: str = ""
) -> HTMLResponse:
    registry = request.app.state.registry
    model = registry.get_model(name, project)
    versions: list[ModelVersion] = registry.list_versions(name, project)
    history = request.app.state.aliases.history(name, project=project)
    chosen = version if version is not None else model.latest_version
    card = registry.model_card(f"{name}:{chosen}", project) if chosen is not None else None
    base = f"/projects/{project}/models/{name}"
    return render(
        request,
        "model.html",
        project=project,
        crumbs=[
            (project, f"/projects/{project}/runs"),
            ("Models", f"/projects/{project}/models"),
            (name, None),
        ],
        twin=f"/api/v1{base}",
        model=model,
        versions=sorted(versions, key=lambda v: v.version, reverse=True),
        history=list(reversed(history)),
        card=card,
        chosen=chosen,
        base=base,
        done=done if done in ("approved", "rejected") else "",
        card_twin=f"/api/v1{base}/versions/{chosen}/card" if chosen is not None else None,
    )


@router.post(
    "/projects/{project}/models/{name}/versions/{version}/{decision}",
    dependencies=[guard(On.PATH, Role.MAINTAINER)],
)
async def decide(
    request: Request, project: str, name: str, version: int, decision: str
) -> RedirectResponse:
    """Approve or reject a version from the model page's form."""
    if decision not in DECISIONS:
        raise Invalid(f"a decision is approve or reject, not {decision!r}", field="decision")
    form = await csrf.checked_form(request)
    comment = form.get("comment", "").strip() or None
    registry = request.app.state.registry
    act = registry.approve if decision == "approve" else registry.reject
    await run_in_threadpool(act, f"{name}:{version}", comment, project=project)
    done = "approved" if decision == "approve" else "rejected"
    target = url(f"/projects/{project}/models/{name}", version=version, done=done)
    return RedirectResponse(target + "#card", status_code=303)


@router.get(
    "/projects/{project}/models/{name}/compare",
    response_class=HTMLResponse,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def compare_versions_page(
    request: Request, project: str, name: str, a: int, b: int
) -> HTMLResponse:
    registry = request.app.state.registry
    comparison = registry.compare(f"{name}:{a}", f"{name}:{b}", project)
    base = f"/projects/{project}/models/{name}"
    return render(
        request,
        "model_compare.html",
        project=project,
        crumbs=[
            (project, f"/projects/{project}/runs"),
            ("Models", f"/projects/{project}/models"),
            (name, base),
            (f"{a} vs {b}", None),
        ],
        twin=url(f"/api/v1/projects/{project}/model-compare", a=f"{name}:{a}", b=f"{name}:{b}"),
        name=name,
        a=a,
        b=b,
        cmp=comparison,
        base=base,
    )
