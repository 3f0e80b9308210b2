from __future__ import annotations

from fastapi import APIRouter

from cairn.api.deps import ActorDep, TrackingDep
from cairn.schemas.runs import BatchIn, BatchOut

router = APIRouter(tags=["runs"])


@router.post("/batches", response_model=BatchOut)
def log_batch(body: BatchIn, tracking: TrackingDep, actor: ActorDep) -> BatchOut:
    """Start, log to and end any number of runs in one transaction.

    The ``idempotency_key`` makes a resend harmless: a batch already applied is
    acknowledged again (``applied: false``) and nothing is stored twice.
    """
    return BatchOut.of(tracking.log_batch(body.to_domain(), actor))
