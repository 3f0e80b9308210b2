"""Monitoring reports, A/B reports of an endpoint's variants, and promoting a variant.

``since`` and ``until`` take an ISO 8601 time or a duration back from now (``24h``,
``7d``); ``window`` a duration (``1h``, ``15m``) or seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from cairn.api.deps import ActorDep, ExperimentsDep, MonitoringDep
from cairn.api.route import ApiRoute
from cairn.auth import On, PrincipalDep, guard, require_refs
from cairn.domain.access import Role
from cairn.domain.monitoring import parse_since
from cairn.schemas.monitoring import ABReportOut, MonitoringReportOut, PromoteIn, PromotionOut

router = APIRouter(tags=["monitoring"], route_class=ApiRoute)
_ENDPOINT = "/projects/{project}/endpoints/{name}"

When = Annotated[
    str | None,
    Query(max_length=100, description="ISO 8601 time, or a duration back from now: 24h, 7d"),
]
Name = Annotated[str | None, Query(max_length=600)]


@router.get(
    "/projects/{project}/monitoring",
    response_model=MonitoringReportOut,
    dependencies=[guard(On.PATH, Role.VIEWER)],
)
def monitoring_report(
    project: str,
    monitoring: MonitoringDep,
    actor: ActorDep,
    who: PrincipalDep,
    endpoint: Name = None,
    model: Annotated[
        str | None,
        Query(max_length=600, description="A model name (all versions) or one version"),
    ] = None,
    since: When = "24h",
    until: When = None,
    window: Annotated[str, Query(max_length=50, description="1h, 15m, 1d or seconds")] = "1h",
) -> MonitoringReportOut:
    """Per window and model version (and variant): volume, error rate, latency
    percentiles, the outputs' distribution, quality from feedback, and the inputs' drift
    from the training data. Thresholds crossed are recorded as ``monitoring.alert``
    events (once each), and an endpoint's rollback rule is applied."""
    require_refs(who, [model], project, Role.VIEWER)
    now = datetime.now(UTC)
    report = monitoring.report(
        project,
        endpoint=endpoint,
        model=model,
        since=parse_since(since, now, "since"),
        until=parse_since(until, now, "until"),
        window=window,
        actor=actor,
    )
    return MonitoringReportOut.of(report)


@router.get(
    _ENDPOINT + "/ab", response_model=ABReportOut, dependencies=[guard(On.PATH, Role.VIEWER)]
)
def ab_report(
    project: str,
    name: str,
    experiments: ExperimentsDep,
    metric: Annotated[str, Query(max_length=50)] = "accuracy",
    since: When = None,
    until: When = None,
    baseline: Annotated[str | None, Query(max_length=100)] = None,
    mde: Annotated[float | None, Query(description="the effect to detect, in metric units")] = None,
) -> ABReportOut:
    """Each variant's outcome with a 95% interval; against the baseline (``champion``)
    the difference, its p-value (z-test for rates, Welch's t-test for means) and the
    units per variant still needed to detect ``mde``."""
    now = datetime.now(UTC)
    report = experiments.ab_report(
        project,
        name,
        metric=metric,
        since=parse_since(since, now, "since"),
        until=parse_since(until, now, "until"),
        baseline=baseline,
        mde=mde,
    )
    return ABReportOut.of(report)


@router.post(
    _ENDPOINT + "/promote",
    response_model=PromotionOut,
    dependencies=[guard(On.PATH, Role.MAINTAINER)],
)
def promote(
    project: str, name: str, body: PromoteIn, experiments: ExperimentsDep, actor: ActorDep
) -> PromotionOut:
    """Move the alias the champion variant serves to the version ``variant`` serves;
    audited, the reason quoting the A/B result."""
    promotion = experiments.promote(
        project,
        name,
        body.variant,
        reason=body.reason,
        metric=body.metric,
        since=body.since,
        actor=actor,
    )
    return PromotionOut.of(promotion)
