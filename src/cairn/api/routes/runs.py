from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Query, Response

from cairn.api.deps import ActorDep, TrackingDep
from cairn.api.route import ApiRoute
from cairn.auth import On, PrincipalDep, guard, require_project_or_admin
from cairn.domain.access import Role
from cairn.domain.errors import Invalid
from cairn.domain.records import Batch, MetricSeries, RunBatch, RunStatus
from cairn.schemas.runs import (
    BatchOut,
    MetricHistoryOut,
    RunBatchBody,
    RunOut,
    RunPageOut,
    RunSearchIn,
    RunStartIn,
    RunUpdateIn,
    TagIn,
)

router = APIRouter(tags=["runs"], route_class=ApiRoute)


@contextmanager
def fields_renamed(prefixes: dict[str, str]) -> Iterator[None]:
    """Name fields as this route's body does, when the service checked a one-run batch."""
    try:
        yield
    except Invalid as exc:
        field = exc.details.get("field")
        for old, new in prefixes.items():
            if isinstance(field, str) and field.startswith(old):
                exc.details["field"] = new + field[len(old) :]
                exc.message = exc.message.replace(old, new, 1)
                break
        raise


@router.post(
    "/runs", response_model=RunOut, status_code=201, dependencies=[guard(On.HANDLER, Role.EDITOR)]
)
def create_run(
    body: RunStartIn, tracking: TrackingDep, actor: ActorDep, who: PrincipalDep
) -> RunOut:
    """Start a run. The id is made by the caller (a ULID), so a retry is harmless."""
    who.require(body.project, Role.EDITOR)
    with fields_renamed({"runs[0].run_id": "id", "runs[0].start.": ""}):
        return RunOut.of(tracking.start_run(body.to_domain(), actor))


@router.get("/runs", response_model=RunPageOut, dependencies=[guard(On.HANDLER, Role.VIEWER)])
def list_runs(
    tracking: TrackingDep,
    who: PrincipalDep,
    project: str | None = None,
    filter: str | None = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    limit: int = 100,
    cursor: str | None = None,
) -> RunPageOut:
    """Search runs with the search language; ``next_cursor`` fetches the next page.
    Without ``project``, every project's runs: for admins."""
    require_project_or_admin(who, project, Role.VIEWER)
    page = tracking.search_runs(project, filter, order_by, limit=limit, cursor=cursor)
    return RunPageOut.of(page)


@router.post(
    "/runs/search", response_model=RunPageOut, dependencies=[guard(On.HANDLER, Role.VIEWER)]
)
def search_runs(body: RunSearchIn, tracking: TrackingDep, who: PrincipalDep) -> RunPageOut:
    require_project_or_admin(who, body.project, Role.VIEWER)
    page = tracking.search_runs(
        body.project, body.filter, body.order_by, limit=body.limit, cursor=body.cursor
    )
    return RunPageOut.of(page)


@router.get("/runs/{run_id}", response_model=RunOut, dependencies=[guard(On.RUN, Role.VIEWER)])
def get_run(run_id: str, tracking: TrackingDep) -> RunOut:
    return RunOut.of(tracking.get_run(run_id))


@router.patch("/runs/{run_id}", response_model=RunOut, dependencies=[guard(On.RUN, Role.EDITOR)])
def update_run(run_id: str, body: RunUpdateIn, tracking: TrackingDep, actor: ActorDep) -> RunOut:
    """Rename, regroup, replace notes, or end a run (``status`` finished/failed/killed)."""
    if body.name is not None or body.experiment is not None or body.notes is not None:
        tracking.update_run(
            run_id, name=body.name, experiment=body.experiment, notes=body.notes, actor=actor
        )
    if body.status is not None:
        if body.status is RunStatus.RUNNING:
            raise Invalid("a run cannot be set back to running", field="status")
        return RunOut.of(tracking.end_run(run_id, body.status, body.error, actor))
    if body.error is not None:
        raise Invalid("error is given together with a status", field="error")
    return RunOut.of(tracking.get_run(run_id))


@router.post(
    "/runs/{run_id}/batch", response_model=BatchOut, dependencies=[guard(On.RUN, Role.EDITOR)]
)
def log_run_batch(
    run_id: str, body: RunBatchBody, tracking: TrackingDep, actor: ActorDep
) -> BatchOut:
    """Log params, metrics and tags of one run in one request, idempotently."""
    item = RunBatch(
        run_id,
        params=dict(body.params),
        tags=dict(body.tags),
        metrics={k: MetricSeries(s.steps, s.timestamps, s.values) for k, s in body.metrics.items()},
    )
    with fields_renamed({"runs[0].": ""}):
        return BatchOut.of(tracking.log_batch(Batch(body.idempotency_key, [item]), actor))


@router.get(
    "/runs/{run_id}/metrics/history",
    response_model=MetricHistoryOut,
    dependencies=[guard(On.RUN, Role.VIEWER)],
)
def metric_history(
    run_id: str,
    key: str,
    tracking: TrackingDep,
    max_points: int | None = None,
    min_step: int | None = None,
    max_step: int | None = None,
) -> MetricHistoryOut:
    """A metric series; with ``max_points=N`` at most N points, each bucket's min and max kept."""
    history = tracking.metric_history(
        run_id, key, max_points=max_points, min_step=min_step, max_step=max_step
    )
    return MetricHistoryOut.of(history)


@router.put("/runs/{run_id}/tags", status_code=204, dependencies=[guard(On.RUN, Role.EDITOR)])
def set_tag(run_id: str, body: TagIn, tracking: TrackingDep, actor: ActorDep) -> Response:
    tracking.set_tag(run_id, body.key, body.value, actor)
    return Response(status_code=204)


@router.delete("/runs/{run_id}/tags", status_code=204, dependencies=[guard(On.RUN, Role.EDITOR)])
def delete_tag(run_id: str, key: str, tracking: TrackingDep, actor: ActorDep) -> Response:
    tracking.delete_tag(run_id, key, actor)
    return Response(status_code=204)


@router.get(
    "/runs/{run_id}/git-diff",
    response_class=Response,
    responses={
        200: {
            "content": {"text/x-diff": {"schema": {"type": "string"}}},
            "description": "The diff",
        },
        204: {"description": "The run was started from a clean tree, or without git capture"},
    },
    dependencies=[guard(On.RUN, Role.VIEWER)],
)
def git_diff(run_id: str, tracking: TrackingDep) -> Response:
    """The uncommitted diff captured when the run started (text), or 204 when none."""
    diff = tracking.get_git_diff(run_id)
    if diff is None:
        return Response(status_code=204)
    return Response(diff, media_type="text/x-diff; charset=utf-8")


@router.get(
    "/runs/{run_id}/children", response_model=list[str], dependencies=[guard(On.RUN, Role.VIEWER)]
)
def child_runs(run_id: str, tracking: TrackingDep) -> list[str]:
    return tracking.child_runs(run_id)
