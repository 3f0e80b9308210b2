"""Endpoints: ``/projects/{p}/endpoints`` (each with its variants) and
``/projects/{p}/endpoints/{name}``: volume, latency, error rate, quality and drift over
time per model version, the alerts, and the A/B result with confidence intervals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from cairn.auth import On, guard
from cairn.domain.access import Role
from cairn.domain.errors import CairnError
from cairn.domain.experiments import ABReport
from cairn.domain.monitoring import MonitoringReport, parse_since
from cairn.ui.render import PageRoute, render, url

router = APIRouter(route_class=PageRoute, include_in_schema=False)

RANGES = ["6h", "24h", "7d", "30d"]
WINDOWS = ["15m", "1h", "6h", "1d"]
AB_METRICS = ["accuracy", "error_rate", "latency"]


@router.get(
    "/projects/{project}/endpoints",
    response_class=HTMLResponse,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def endpoints_page(request: Request, project: str) -> HTMLResponse:
    endpoints = request.app.state.endpoints.list(project)
    return render(
        request,
        "endpoints.html",
        project=project,
        crumbs=[(project, f"/projects/{project}/runs"), ("Endpoints", None)],
        twin=f"/api/v1/projects/{project}/endpoints",
        endpoints=endpoints,
    )


def series(report: MonitoringReport) -> dict[str, Any]:
    """One trace per model version and variant for each chart: x (window starts) and y."""
    charts: dict[str, dict[str, dict[str, list[Any]]]] = {}

    def put(chart: str, group: str, x: str, y: float | None) -> None:
        trace = charts.setdefault(chart, {}).setdefault(group, {"x": [], "y": []})
        trace["x"].append(x)
        trace["y"].append(y)

    for window in report.windows:
        x = window.start.isoformat()
        for g in window.groups:
            name = f"{g.model}:{g.version}" + (f" ({g.variant})" if g.variant else "")
            put("volume", name, x, g.volume)
            put("error_rate", name, x, g.error_rate)
            if g.latency is not None:
                put("p50", name, x, g.latency.p50)
                put("p95", name, x, g.latency.p95)
                put("p99", name, x, g.latency.p99)
            if g.quality is not None:
                value = g.quality.accuracy if g.quality.accuracy is not None else g.quality.mae
                put("quality", name, x, value)
            if g.drift is not None and g.drift.features:
                psis = [f.psi for f in g.drift.features if f.psi is not None]
                put("drift", name, x, max(psis) if psis else None)
    return {c: [{"name": n, **t} for n, t in groups.items()] for c, groups in charts.items()}


def totals(report: MonitoringReport) -> dict[str, Any]:
    """The headline numbers over the whole range."""
    volume = errors = labeled = correct = 0
    p95: list[float] = []
    drifted: set[str] = set()
    for window in report.windows:
        for g in window.groups:
            volume += g.volume
            errors += g.errors
            if g.latency is not None:
                p95.append(g.latency.p95)
            if g.quality is not None and g.quality.accuracy is not None:
                labeled += g.quality.labeled
                correct += round(g.quality.accuracy * g.quality.labeled)
            if g.drift is not None:
                drifted.update(f.feature for f in g.drift.features if f.drifted)
    return {
        "volume": volume,
        "error_rate": errors / volume if volume else None,
        "p95": max(p95) if p95 else None,
        "accuracy": correct / labeled if labeled else None,
        "labeled": labeled,
        "drifted": sorted(drifted),
    }


def ab_chart(ab: ABReport) -> dict[str, list[Any]]:
    """Each variant's value and interval, for the error-bar chart."""
    shown = [v for v in ab.variants if v.value is not None]
    return {
        "variants": [v.variant for v in shown],
        "value": [v.value for v in shown],
        "low": [v.interval.low if v.interval else v.value for v in shown],
        "high": [v.interval.high if v.interval else v.value for v in shown],
    }


@router.get(
    "/projects/{project}/endpoints/{name}",
    response_class=HTMLResponse,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def endpoint_page(
    request: Request,
    project: str,
    name: str,
    since: Annotated[str, Query(max_length=50)] = "24h",
    window: Annotated[str, Query(max_length=50)] = "1h",
    metric: Annotated[str, Query(max_length=50)] = "accuracy",
) -> HTMLResponse:
    state = request.app.state
    endpoint = state.endpoints.get(name, project)
    now = datetime.now(UTC)
    start = parse_since(since, now, "since")
    report: MonitoringReport = state.monitoring.report(
        project, endpoint=name, since=start, window=window, record=False
    )
    ab: ABReport | None = None
    ab_error = None
    try:
        ab = state.experiments.ab_report(project, name, metric=metric, since=start)
    except CairnError as exc:  # too few variants or no outcomes yet: say so, keep the page
        ab_error = exc.message
    base = f"/projects/{project}/endpoints/{name}"
    return render(
        request,
        "endpoint.html",
        project=project,
        crumbs=[
            (project, f"/projects/{project}/runs"),
            ("Endpoints", f"/projects/{project}/endpoints"),
            (name, None),
        ],
        twin=url(
            f"/api/v1/projects/{project}/monitoring", endpoint=name, since=since, window=window
        ),
        ab_twin=url(f"/api/v1{base}/ab", metric=metric, since=since),
        endpoint=endpoint,
        report=report,
        ab=ab,
        ab_error=ab_error,
        charts=series(report),
        ab_chart=ab_chart(ab) if ab else None,
        totals=totals(report),
        since=since,
        window=window,
        metric=metric,
        ranges=RANGES,
        windows=WINDOWS,
        ab_metrics=AB_METRICS,
        base=base,
    )
