from __future__ import annotations

from fastapi import APIRouter, Request

from cairn.api.deps import ActorDep, TrackingDep
from cairn.api.route import ApiRoute
from cairn.auth import On, PrincipalDep, RunProjects, guard, require_projects
from cairn.domain.access import Role
from cairn.schemas.runs import BatchIn, BatchOut

router = APIRouter(tags=["runs"], route_class=ApiRoute)


@router.post("/batches", response_model=BatchOut, dependencies=[guard(On.HANDLER, Role.EDITOR)])
def log_batch(
    body: BatchIn, tracking: TrackingDep, actor: ActorDep, who: PrincipalDep, request: Request
) -> BatchOut:
    """Start, log to and end any number of runs in one transaction.

    The ``idempotency_key`` makes a resend harmless: a batch already applied is
    acknowledged again (``applied: false``) and nothing is stored twice.
    """
    if not who.admin:
        runs: RunProjects = request.app.state.run_projects
        existing = runs.of(r.run_id for r in body.runs)
        # A run that exists stays in its project, whatever a start in the batch claims.
        claimed = [r.start.project for r in body.runs if r.start and r.run_id not in existing]
        require_projects(who, [*existing.values(), *claimed], Role.EDITOR)
    return BatchOut.of(tracking.log_batch(body.to_domain(), actor))
