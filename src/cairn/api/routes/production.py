"""Production: endpoints with weighted variants, served predictions, and feedback.

Predictions are stamped with the model version that made them: ``model`` is resolved
when the batch arrives, so send ``iris:3`` rather than an alias when the batch was
served a while ago.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from cairn.api.deps import ActorDep, EndpointsDep, PredictionsDep
from cairn.api.route import ApiRoute
from cairn.auth import On, PrincipalDep, guard, require_refs
from cairn.domain.access import Role
from cairn.domain.errors import Invalid
from cairn.domain.refs import RefKind, parse_ref
from cairn.schemas.production import (
    EndpointIn,
    EndpointOut,
    FeedbackIn,
    PredictionOut,
    PredictionsIn,
    SettingsIn,
    StoredOut,
    Text,
    VariantsIn,
)

router = APIRouter(tags=["production"], route_class=ApiRoute)
_PROJECT = "/projects/{project}"
_ENDPOINT = _PROJECT + "/endpoints/{name}"


@router.post(
    _PROJECT + "/endpoints",
    response_model=EndpointOut,
    status_code=201,
    dependencies=[guard(On.PATH, Role.MAINTAINER)],
)
def create_endpoint(
    project: str, body: EndpointIn, endpoints: EndpointsDep, actor: ActorDep, who: PrincipalDep
) -> EndpointOut:
    """An endpoint serving its variants by weight; every target must resolve now."""
    require_refs(who, (v.target for v in body.variants), project, Role.VIEWER)
    created = endpoints.create(
        project,
        body.name,
        [v.to_domain() for v in body.variants],
        description=body.description,
        settings=body.settings,
        actor=actor,
    )
    return EndpointOut.of(created)


@router.get(
    _PROJECT + "/endpoints",
    response_model=list[EndpointOut],
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def list_endpoints(project: str, endpoints: EndpointsDep) -> list[EndpointOut]:
    return [EndpointOut.of(e) for e in endpoints.list(project)]


@router.get(_ENDPOINT, response_model=EndpointOut, dependencies=[guard(On.PATH, Role.VIEWER)])
def get_endpoint(project: str, name: str, endpoints: EndpointsDep) -> EndpointOut:
    return EndpointOut.of(endpoints.get(name, project))


@router.put(_ENDPOINT, response_model=EndpointOut, dependencies=[guard(On.PATH, Role.MAINTAINER)])
def set_variants(
    project: str,
    name: str,
    body: VariantsIn,
    endpoints: EndpointsDep,
    actor: ActorDep,
    who: PrincipalDep,
) -> EndpointOut:
    """Replace the variants (new weights, a new challenger); audited with before and after."""
    require_refs(who, (v.target for v in body.variants), project, Role.VIEWER)
    changed = endpoints.set_variants(
        project, name, [v.to_domain() for v in body.variants], actor=actor
    )
    return EndpointOut.of(changed)


@router.patch(
    _ENDPOINT + "/settings",
    response_model=EndpointOut,
    dependencies=[guard(On.PATH, Role.MAINTAINER)],
)
def update_settings(
    project: str, name: str, body: SettingsIn, endpoints: EndpointsDep, actor: ActorDep
) -> EndpointOut:
    """Set some settings (alert thresholds, the rollback rule); the others stay."""
    return EndpointOut.of(endpoints.update_settings(project, name, body.settings, actor=actor))


@router.post(
    _PROJECT + "/predictions", response_model=StoredOut, dependencies=[guard(On.PATH, Role.EDITOR)]
)
def log_predictions(
    project: str, body: PredictionsIn, predictions: PredictionsDep, who: PrincipalDep
) -> StoredOut:
    """Record served predictions of one model version; a resent request id is skipped."""
    require_refs(who, [body.model], project, Role.VIEWER)
    stored = predictions.log_predictions(project, body.model, body.records, endpoint=body.endpoint)
    return StoredOut(stored=stored)


@router.post(
    _PROJECT + "/feedback", response_model=StoredOut, dependencies=[guard(On.PATH, Role.EDITOR)]
)
def log_feedback(project: str, body: FeedbackIn, predictions: PredictionsDep) -> StoredOut:
    """Ground truth that arrived later, by request id."""
    return StoredOut(stored=predictions.log_feedback(project, body.actuals))


@router.get(
    _PROJECT + "/predictions",
    response_model=list[PredictionOut],
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def list_predictions(
    project: str,
    predictions: PredictionsDep,
    model: Annotated[Text | None, Query(description="A model name: all its versions")] = None,
    endpoint: Annotated[Text | None, Query(description="An endpoint name")] = None,
    since: Annotated[datetime | None, Query(description="From this time (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1_000,
) -> list[PredictionOut]:
    """Predictions in a window, oldest first, each with its model version and feedback."""
    if model is not None:
        ref = parse_ref(model)
        if ref.kind is not RefKind.NAME or ref.project not in (None, project):
            raise Invalid(
                f"model {model!r} must be a model name of project {project!r}; every version "
                "is listed",
                field="model",
            )
        model = ref.name
    found = predictions.predictions(
        project, model=model, endpoint=endpoint, since=since, until=until, limit=limit
    )
    return [PredictionOut.of(p) for p in found]
