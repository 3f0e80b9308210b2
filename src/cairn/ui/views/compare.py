"""``/compare?runs=a,b,c``: 2 to 50 runs side by side.

Params and last metric values in rows (differing rows marked), overlaid metric charts,
parallel coordinates from the varying params to a chosen metric, and a scatter of one
param against one metric. The charts' data is the runs' JSON, in the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from cairn.auth import On, guard, principal, require_projects
from cairn.domain.access import Role
from cairn.domain.errors import Invalid
from cairn.domain.query import Field as QueryField
from cairn.domain.query import InList, format_query
from cairn.domain.records import Run
from cairn.ui.columns import SYSTEM_PREFIX
from cairn.ui.render import PageRoute, render, split_list, url

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MIN_RUNS, MAX_RUNS = 2, 50


@dataclass(frozen=True)
class Row:
    key: str
    values: list[Any]
    differs: bool


def rows_of(values_by_run: list[dict[str, Any]]) -> list[Row]:
    """One row per key any run has; a row differs when the runs' values are not all equal."""
    keys = sorted({k for values in values_by_run for k in values})
    rows = []
    for key in keys:
        values = [v.get(key) for v in values_by_run]
        rows.append(Row(key, values, len({repr(v) for v in values}) > 1))
    return rows


@router.get("/compare", response_class=HTMLResponse, dependencies=[guard(On.HANDLER, Role.VIEWER)])
def compare_page(
    request: Request,
    runs: str = "",
    run: Annotated[list[str] | None, Query()] = None,
) -> HTMLResponse:
    ids = split_list([runs, *(run or [])])
    if not MIN_RUNS <= len(ids) <= MAX_RUNS:
        raise Invalid(
            f"compare takes {MIN_RUNS} to {MAX_RUNS} runs; {len(ids)} given. "
            "Select runs with the checkboxes of the runs table.",
            field="runs",
        )
    tracking = request.app.state.tracking
    found: list[Run] = [tracking.get_run(run_id) for run_id in ids]
    require_projects(principal(request), (r.project for r in found), Role.VIEWER)
    projects = sorted({r.project for r in found})
    project = projects[0] if len(projects) == 1 else None
    metric_keys = sorted({k for r in found for k in r.metrics})
    metric_keys.sort(key=lambda k: k.startswith(SYSTEM_PREFIX))
    chart_data = [
        {
            "id": r.id,
            "name": r.name or r.id[-8:],
            "params": r.params,
            "metrics": {k: m.last for k, m in r.metrics.items() if math.isfinite(m.last)},
        }
        for r in found
    ]
    param_rows = rows_of([r.params for r in found])
    filter_text = format_query(InList(QueryField("attribute", "id"), tuple(ids)))
    crumbs: list[tuple[str, str | None]] = []
    if project:
        crumbs.append((project, f"/projects/{project}/runs"))
    crumbs.append((f"Compare {len(found)} runs", None))
    return render(
        request,
        "compare.html",
        project=project,
        crumbs=crumbs,
        twin=url("/api/v1/runs", filter=filter_text, limit=MAX_RUNS),
        runs=found,
        param_rows=param_rows,
        default_param=next((r.key for r in param_rows if r.differs), None),
        metric_rows=rows_of([{k: m.last for k, m in r.metrics.items()} for r in found]),
        tag_rows=rows_of([r.tags for r in found]),
        metric_keys=metric_keys,
        chart_data=chart_data,
    )
