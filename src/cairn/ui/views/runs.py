"""``/projects/{p}/runs``: the runs table, one keyset page at a time.

Never counts or loads a project's runs: one ``search_runs`` call per page, whatever the
project's size. "Previous" works by carrying the cursors of the pages before (``back``),
so the way back is as cheap as the way forward.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from cairn.auth import On, guard
from cairn.domain.access import Role
from cairn.domain.errors import Invalid
from cairn.domain.query import Field, FieldKind, format_field
from cairn.domain.records import RunPage
from cairn.ui.columns import FIXED, Column, KeysSeen, cell, parse_columns, parse_order, sort_state
from cairn.ui.render import PageRoute, render, url

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZES = (25, 50, 100, 200)
MAX_BACK = 50  # cursors remembered for "Previous"; older pages are reached from the first


@router.get(
    "/projects/{project}/runs",
    response_class=HTMLResponse,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def runs_page(
    request: Request,
    project: str,
    filter: str = "",
    order: str = "",
    col: Annotated[list[str] | None, Query()] = None,
    cursor: str | None = None,
    back: Annotated[list[str] | None, Query()] = None,
    limit: int = 50,
) -> HTMLResponse:
    tracking = request.app.state.tracking
    limit = limit if limit in PAGE_SIZES else 50
    trail = back or []
    back = trail[-MAX_BACK:]
    error: Invalid | None = None
    columns: list[Column] | None = None
    order_key = None
    try:
        columns = parse_columns(col or []) if col else None
        order_key = parse_order(order)
    except Invalid as exc:
        error = exc
    page = RunPage([], None)
    if error is None:
        try:
            page = tracking.search_runs(
                project,
                filter or None,
                [order] if order.strip() else None,
                limit=limit,
                cursor=cursor,
            )
        except Invalid as exc:
            if exc.field not in ("filter", "order_by", "cursor"):
                raise
            error = exc
    if error is not None:
        tracking.get_project(project)  # an unknown project is a 404 whatever the filter
    seen = KeysSeen.of(page.runs)
    shown = columns if columns is not None else seen.defaults()
    state: dict[str, Any] = {
        "filter": filter,
        "order": order,
        "col": [c.name for c in columns] if columns is not None else None,
        "limit": limit if limit != 50 else None,
    }
    base = f"/projects/{project}/runs"
    return render(
        request,
        "runs.html",
        project=project,
        crumbs=[(project, base), ("Runs", None)],
        twin=url("/api/v1/runs", project=project, filter=filter, order_by=order, limit=limit),
        runs=page.runs,
        columns=shown,
        fixed=[(label, format_field(f), sort_state(f, order_key)) for label, f in FIXED],
        sorts={c.name: sort_state(c.field, order_key) for c in shown},
        cell=cell,
        picker=_picker(seen, shown),
        extra=_extra(seen, shown),
        state=state,
        base=base,
        error=error,
        error_where=_error_where(error, filter, order),
        page_sizes=PAGE_SIZES,
        first_index=len(back) * limit + 1 if len(trail) <= MAX_BACK else None,
        next_url=url(base, state, cursor=page.next_cursor, back=[*back, cursor or ""])
        if page.next_cursor
        else None,
        prev_url=_prev_url(base, state, cursor, back),
    )


def _picker(seen: KeysSeen, shown: list[Column]) -> list[tuple[str, list[tuple[str, str, bool]]]]:
    """The column picker's checkboxes: (group, [(column name, key, checked)])."""
    chosen = {c.name for c in shown}
    groups: list[tuple[str, FieldKind, list[str]]] = [
        ("Params", "param", seen.params),
        ("Metrics", "metric", seen.metrics),
        ("Tags", "tag", seen.tags),
    ]
    out = []
    for label, kind, keys in groups:
        names = [(format_field(Field(kind, key)), key) for key in keys]
        out.append((label, [(name, key, name in chosen) for name, key in names]))
    return out


def _extra(seen: KeysSeen, shown: list[Column]) -> list[str]:
    """Chosen columns the picker does not list (another aggregate, a key not on this page)."""
    listed = {n for _, options in _picker(seen, []) for n, _, _ in options}
    return [c.name for c in shown if c.name not in listed]


def _prev_url(base: str, state: dict[str, Any], cursor: str | None, back: list[str]) -> str | None:
    if cursor is None:
        return None
    if not back:
        return url(base, state)
    previous = back[-1] or None
    return url(base, state, cursor=previous, back=back[:-1])


def _error_where(error: Invalid | None, filter: str, order: str) -> dict[str, Any] | None:
    """Where in the text the error points, split so the template can mark the token."""
    if error is None or not isinstance(error.details.get("column"), int):
        return None
    text = {"filter": filter, "order_by": order}.get(error.field or "")
    if text is None:
        return None
    start = max(0, min(int(error.details["column"]) - 1, len(text)))
    width = max(1, len(str(error.details.get("token") or "")))
    return {
        "field": error.field,
        "before": text[:start],
        "token": text[start : start + width],
        "after": text[start + width :],
        "column": start + 1,
    }
