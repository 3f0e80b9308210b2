"""Monitoring reports, A/B reports and promotions on the wire.

Each ``...Out`` mirrors a record of ``domain/monitoring.py`` or ``domain/experiments.py``
field for field: ``of`` reads the record, ``to_domain`` gives it back to the SDK.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter

from cairn.domain.experiments import ABReport, Promotion
from cairn.domain.monitoring import MonitoringReport
from cairn.schemas.base import Wire


class _Out(Wire):
    model_config = ConfigDict(from_attributes=True)


class IntervalOut(_Out):
    low: float
    high: float


class LatencyOut(_Out):
    p50: float
    p95: float
    p99: float
    mean: float
    max: float


class NumericSummaryOut(_Out):
    count: int
    mean: float
    std: float
    min: float
    p50: float
    max: float


class OutputDistributionOut(_Out):
    classes: dict[str, int] | None = None
    numeric: NumericSummaryOut | None = None


class QualityOut(_Out):
    task: str
    labeled: int
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    mae: float | None = None
    rmse: float | None = None


class FeatureDriftOut(_Out):
    feature: str
    psi: float | None
    ks: float | None
    drifted: bool


class DriftOut(_Out):
    reference: str | None = Field(description="the training dataset version compared with")
    rows: int
    features: list[FeatureDriftOut] = []
    note: str | None = None
    drifted: list[str] = []


class GroupStatsOut(_Out):
    model: str
    version: int
    variant: str
    shadow: bool
    volume: int
    errors: int
    error_rate: float
    latency: LatencyOut | None
    task: str | None
    outputs: OutputDistributionOut | None
    quality: QualityOut | None
    drift: DriftOut | None


class WindowOut(_Out):
    start: datetime
    end: datetime
    groups: list[GroupStatsOut]
    truncated: bool = False


class AlertOut(_Out):
    metric: str
    value: float
    threshold: float
    bound: str
    window_start: datetime
    window_end: datetime
    model: str
    version: int
    variant: str = ""
    feature: str | None = None
    new: bool = False


class RollbackOut(_Out):
    model: str
    alias: str
    from_version: int
    to_version: int | None
    metric: str
    value: float
    threshold: float
    samples: int
    reason: str
    moved: bool


class MonitoringReportOut(_Out):
    project: str
    endpoint: str | None
    model: str | None
    since: datetime
    until: datetime
    window_s: float
    windows: list[WindowOut]
    alerts: list[AlertOut] = []
    rollbacks: list[RollbackOut] = []

    @classmethod
    def of(cls, report: MonitoringReport) -> MonitoringReportOut:
        return cls.model_validate(report)

    def to_domain(self) -> MonitoringReport:
        return _MONITORING.validate_python(_plain(self))


class VariantOutcomeOut(_Out):
    variant: str
    target: str | None
    weight: int | None
    shadow: bool
    versions: list[int]
    n: int
    value: float | None
    interval: IntervalOut | None
    successes: int | None = None
    sd: float | None = None
    difference: float | None = None
    difference_interval: IntervalOut | None = None
    statistic: float | None = None
    p_value: float | None = None
    significant: bool = False
    better: bool | None = None
    needed: int | None = None
    more_needed: int | None = None


class ABReportOut(_Out):
    project: str
    endpoint: str
    metric: str
    kind: str
    direction: str
    baseline: str
    since: datetime | None
    until: datetime | None
    alpha: float
    power: float
    mde: float | None
    variants: list[VariantOutcomeOut]
    winner: str | None
    summary: str
    truncated: bool = False

    @classmethod
    def of(cls, report: ABReport) -> ABReportOut:
        return cls.model_validate(report)

    def to_domain(self) -> ABReport:
        return _AB.validate_python(_plain(self))


class PromoteIn(Wire):
    variant: str = Field(description="the variant whose version the champion's alias moves to")
    reason: str | None = None
    metric: str = Field(default="accuracy", description="the A/B metric quoted in the reason")
    since: datetime | None = Field(default=None, description="A/B data from this time on")


class PromotionOut(_Out):
    endpoint: str
    variant: str
    model: str
    alias: str
    from_version: int | None
    to_version: int
    reason: str
    report: ABReportOut | None = None

    @classmethod
    def of(cls, promotion: Promotion) -> PromotionOut:
        return cls.model_validate(promotion)

    def to_domain(self) -> Promotion:
        return _PROMOTION.validate_python(_plain(self))


_MONITORING = TypeAdapter(MonitoringReport)
_AB = TypeAdapter(ABReport)
_PROMOTION = TypeAdapter(Promotion)


def _plain(model: _Out) -> dict[str, Any]:
    """The fields as the domain records declare them (derived ones, ``drifted``, left out)."""
    data = model.model_dump()
    for window in data.get("windows", []):
        for group in window["groups"]:
            if group.get("drift") is not None:
                group["drift"].pop("drifted", None)
    return data
