from __future__ import annotations

from fastapi import APIRouter, Request

from cairn._version import __version__
from cairn.api.route import ApiRoute
from cairn.auth import On, guard
from cairn.schemas.runs import HealthOut
from cairn.store.schema import head_revision

router = APIRouter(tags=["health"], route_class=ApiRoute)


@router.get("/healthz", response_model=HealthOut, dependencies=[guard(On.PUBLIC)])
def healthz(request: Request) -> HealthOut:
    """Alive and able to reach its store."""
    with request.app.state.db.read() as conn:
        conn.exec_driver_sql("SELECT 1")
    return HealthOut(status="ok", version=__version__, schema_revision=head_revision())
