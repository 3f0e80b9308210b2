"""Monitoring's records and arithmetic: windows, per-version statistics, prediction
quality, the inputs' drift against the training data, and the thresholds behind alerts.
Plain Python; reading predictions and writing alerts is ``services/monitoring.py``.

An endpoint's ``settings`` (``EndpointService.update_settings``) tune it::

    {"task": "classification",          # or "regression"; inferred from the values if absent
     "alerts": {"max_error_rate": 0.05, "max_latency_p95_ms": 250, "min_accuracy": 0.8,
                "min_f1": 0.7, "max_mae": 3.0, "min_samples": 30},
     "drift": {"psi": 0.2, "ks": 0.1, "min_samples": 100},     # false turns drift off
     "rollback": {"alias": "production", "max_error_rate": 0.05, "min_accuracy": 0.8,
                  "min_samples": 100, "lookback": "24h"}}

Alert thresholds are ``max_`` or ``min_`` followed by a metric of ``THRESHOLD_METRICS``;
error and latency thresholds count every prediction of a window towards ``min_samples``,
quality thresholds only those whose feedback has arrived. Drift is looked at without
settings too (PSI 0.2, KS 0.1, 100 rows); a model monitored outside an endpoint uses
these defaults.

>>> parse_duration("1h30m")
datetime.timedelta(seconds=5400)
>>> MonitorConfig.parse({"alerts": {"min_accuracy": 0.8}}).alerts[0].metric
'accuracy'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cairn.domain.errors import Invalid

TASKS = ("classification", "regression")
# metric -> the number of samples it is computed from ("volume" or "labeled")
THRESHOLD_METRICS: dict[str, str] = {
    "error_rate": "volume",
    "latency_p50_ms": "volume",
    "latency_p95_ms": "volume",
    "latency_p99_ms": "volume",
    "accuracy": "labeled",
    "precision": "labeled",
    "recall": "labeled",
    "f1": "labeled",
    "mae": "labeled",
    "rmse": "labeled",
}
DEFAULT_PSI = 0.2
DEFAULT_KS = 0.1
DEFAULT_DRIFT_SAMPLES = 100
DEFAULT_ALERT_SAMPLES = 30
DEFAULT_ROLLBACK_SAMPLES = 100
DEFAULT_ROLLBACK_LOOKBACK = timedelta(hours=24)
MAX_WINDOWS = 1_000
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


# ---------------------------------------------------------------------------------------
# durations and windows


def parse_duration(text: str | float | timedelta, field: str = "window") -> timedelta:
    """``90s``, ``15m``, ``1h``, ``1h30m``, ``7d``, ``2w`` or a number of seconds."""
    if isinstance(text, timedelta):
        seconds = text.total_seconds()
    elif isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    elif isinstance(text, str) and _is_numeric_text(text.strip()):
        seconds = float(text.strip())
    elif isinstance(text, str) and re.fullmatch(rf"(?:\s*{_DURATION.pattern}\s*)+", text, re.I):
        seconds = sum(float(n) * _UNIT_S[u.lower()] for n, u in _DURATION.findall(text))
    else:
        raise Invalid(
            f"{field} {text!r:.50} is not a duration such as 90s, 15m, 1h, 1h30m, 7d",
            field=field,
        )
    if not math.isfinite(seconds) or not 0 < seconds <= 3650 * 86_400:
        raise Invalid(f"{field} must be more than 0 s and at most 10 years", field=field)
    return timedelta(seconds=seconds)


def _is_numeric_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_since(
    value: str | datetime | timedelta | None, now: datetime, field: str = "since"
) -> datetime | None:
    """A point in time: a datetime, an ISO 8601 text, or a duration back from ``now``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value, field)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return as_utc(parsed, field)
    try:
        return now - parse_duration(value, field)
    except Invalid:
        raise Invalid(
            f"{field} {value!r:.50} is neither an ISO 8601 time nor a duration such as 24h",
            field=field,
        ) from None


def as_utc(value: datetime, field: str = "since") -> datetime:
    """The time in UTC; a naive one is taken to be UTC already."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise Invalid(f"{field} {value.isoformat()} is out of range", field=field) from None


def window_bounds(since: datetime, until: datetime, window: timedelta) -> list[datetime]:
    """Window edges from ``since`` to ``until``, on multiples of ``window`` since the Unix
    epoch, so a window is the same whatever ``since`` a report starts from (and an alert
    raised for it is recognised by the next report)."""
    size_ms = max(1, round(window.total_seconds() * 1000))
    start_ms = math.floor(since.timestamp() * 1000 / size_ms) * size_ms
    end_ms = until.timestamp() * 1000
    count = max(1, math.ceil((end_ms - start_ms) / size_ms))
    if count > MAX_WINDOWS:
        raise Invalid(
            f"{count:,} windows of {window} from {since.isoformat()} to {until.isoformat()}; "
            f"at most {MAX_WINDOWS:,}: choose a larger window or a later since",
            field="window",
        )
    try:
        return [
            datetime.fromtimestamp((start_ms + i * size_ms) / 1000, UTC) for i in range(count + 1)
        ]
    except (OverflowError, ValueError, OSError):  # past the year 9999
        raise Invalid("the windows run past the year 9999", field="until") from None


# ---------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True, slots=True)
class Threshold:
    """``bound`` "max": alert above ``value``; "min": alert below it."""

    metric: str
    bound: str
    value: float

    @property
    def name(self) -> str:
        return f"{self.bound}_{self.metric}"

    def crossed(self, observed: float | None) -> bool:
        if observed is None:
            return False
        return observed > self.value if self.bound == "max" else observed < self.value


@dataclass(frozen=True, slots=True)
class DriftSettings:
    psi: float = DEFAULT_PSI
    ks: float = DEFAULT_KS
    min_samples: int = DEFAULT_DRIFT_SAMPLES


@dataclass(frozen=True, slots=True)
class RollbackRule:
    alias: str
    thresholds: list[Threshold]
    min_samples: int = DEFAULT_ROLLBACK_SAMPLES
    lookback: timedelta = DEFAULT_ROLLBACK_LOOKBACK


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    task: str | None = None
    alerts: list[Threshold] = field(default_factory=list)
    alert_min_samples: int = DEFAULT_ALERT_SAMPLES
    drift: DriftSettings | None = field(default_factory=DriftSettings)
    rollback: RollbackRule | None = None

    @classmethod
    def parse(cls, settings: Mapping[str, Any] | None) -> MonitorConfig:
        """Read an endpoint's settings; ``Invalid`` names the setting that is wrong."""
        settings = settings or {}
        task = settings.get("task")
        if task is not None and task not in TASKS:
            raise Invalid(f"settings.task must be one of {', '.join(TASKS)}", field="settings.task")
        alerts = _section(settings, "alerts")
        thresholds = _thresholds(alerts, "settings.alerts", {"min_samples"})
        alert_samples = _count(alerts.get("min_samples", DEFAULT_ALERT_SAMPLES), "alerts")
        return cls(
            task=task,
            alerts=thresholds,
            alert_min_samples=alert_samples,
            drift=_drift(settings.get("drift", {})),
            rollback=_rollback(settings.get("rollback")),
        )


def _section(settings: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = settings.get(key) or {}
    if not isinstance(value, Mapping):
        raise Invalid(f"settings.{key} must be an object", field=f"settings.{key}")
    return value


def _thresholds(section: Mapping[str, Any], where: str, other: set[str]) -> list[Threshold]:
    out = []
    for key, value in section.items():
        if key in other:
            continue
        bound, _, metric = str(key).partition("_")
        if bound not in ("min", "max") or metric not in THRESHOLD_METRICS:
            names = ", ".join(f"max_{m}/min_{m}" for m in THRESHOLD_METRICS)
            raise Invalid(
                f"{where}.{key} is not a threshold; use one of {names}", field=f"{where}.{key}"
            )
        out.append(Threshold(metric, bound, _number(value, f"{where}.{key}")))
    return out


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(f"{where} must be a finite number", field=where)
    return float(value)


def _count(value: Any, section: str) -> int:
    where = f"settings.{section}.min_samples"
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise Invalid(f"{where} must be a whole number >= 0", field=where)
    return value


def _drift(value: Any) -> DriftSettings | None:
    if value is False or value is None:
        return None
    if not isinstance(value, Mapping):
        raise Invalid("settings.drift must be an object or false", field="settings.drift")
    unknown = set(value) - {"psi", "ks", "min_samples"}
    if unknown:
        raise Invalid(
            f"settings.drift has unknown key(s) {sorted(unknown)}; use psi, ks, min_samples",
            field="settings.drift",
        )
    return DriftSettings(
        psi=_number(value.get("psi", DEFAULT_PSI), "settings.drift.psi"),
        ks=_number(value.get("ks", DEFAULT_KS), "settings.drift.ks"),
        min_samples=_count(value.get("min_samples", DEFAULT_DRIFT_SAMPLES), "drift"),
    )


def _rollback(value: Any) -> RollbackRule | None:
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        raise Invalid("settings.rollback must be an object", field="settings.rollback")
    alias = value.get("alias")
    if not isinstance(alias, str) or not alias:
        raise Invalid(
            "settings.rollback.alias must name the alias to move back", field="settings.rollback"
        )
    thresholds = _thresholds(value, "settings.rollback", {"alias", "min_samples", "lookback"})
    if not thresholds:
        raise Invalid(
            "settings.rollback needs a threshold, e.g. max_error_rate or min_accuracy",
            field="settings.rollback",
        )
    lookback = value.get("lookback")
    return RollbackRule(
        alias,
        thresholds,
        _count(value.get("min_samples", DEFAULT_ROLLBACK_SAMPLES), "rollback"),
        DEFAULT_ROLLBACK_LOOKBACK
        if lookback is None
        else parse_duration(lookback, "settings.rollback.lookback"),
    )


# ---------------------------------------------------------------------------------------
# the report's records


@dataclass(frozen=True, slots=True)
class Latency:
    p50: float
    p95: float
    p99: float
    mean: float
    max: float


@dataclass(frozen=True, slots=True)
class NumericSummary:
    count: int
    mean: float
    std: float  # population
    min: float
    p50: float
    max: float


@dataclass(frozen=True, slots=True)
class OutputDistribution:
    """Class counts (at most 20, the rest under ``(other)``) or a numeric summary."""

    classes: dict[str, int] | None = None
    numeric: NumericSummary | None = None


@dataclass(frozen=True, slots=True)
class Quality:
    task: str
    labeled: int  # predictions whose feedback has arrived (errors left out)
    accuracy: float | None = None
    precision: float | None = None  # macro averages over the classes seen
    recall: float | None = None
    f1: float | None = None
    mae: float | None = None
    rmse: float | None = None

    def metric(self, name: str) -> float | None:
        value = getattr(self, name, None)
        return value if isinstance(value, float) else None


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    feature: str
    psi: float | None
    ks: float | None
    drifted: bool


@dataclass(frozen=True, slots=True)
class Drift:
    reference: str | None  # the training dataset version compared against
    rows: int
    features: list[FeatureDrift] = field(default_factory=list)
    note: str | None = None

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]


@dataclass(frozen=True, slots=True)
class GroupStats:
    """One model version (behind one variant, for an endpoint) in one window."""

    model: str
    version: int
    variant: str
    shadow: bool
    volume: int
    errors: int
    error_rate: float
    latency: Latency | None
    task: str | None
    outputs: OutputDistribution | None
    quality: Quality | None
    drift: Drift | None

    def metric(self, name: str) -> float | None:
        if name == "error_rate":
            return self.error_rate
        if name.startswith("latency_"):
            if self.latency is None:
                return None
            value: float = getattr(self.latency, name[len("latency_") : -len("_ms")])
            return value
        return self.quality.metric(name) if self.quality is not None else None

    def samples(self, metric: str) -> int:
        if THRESHOLD_METRICS[metric] == "volume":
            return self.volume
        return self.quality.labeled if self.quality is not None else 0


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    groups: list[GroupStats]
    truncated: bool = False  # more predictions than one report reads per window


@dataclass(frozen=True, slots=True)
class Alert:
    metric: str  # a THRESHOLD_METRICS name; "psi", "ks" or "kind" (changed) for a feature
    value: float
    threshold: float
    bound: str  # "max" or "min"
    window_start: datetime
    window_end: datetime
    model: str
    version: int
    variant: str = ""
    feature: str | None = None
    new: bool = False  # recorded by this report (an earlier one may have recorded it)

    @property
    def key(self) -> str:
        """What makes an alert the same alert: once per window, metric and version."""
        return "|".join(
            [
                self.metric,
                self.feature or "",
                self.window_start.isoformat(),
                self.window_end.isoformat(),
                self.model,
                str(self.version),
                self.variant,
            ]
        )


@dataclass(frozen=True, slots=True)
class Rollback:
    """What the rollback rule did (or could not do) to an alias."""

    model: str
    alias: str
    from_version: int
    to_version: int | None  # None: the alias had no earlier target
    metric: str
    value: float
    threshold: float
    samples: int
    reason: str
    moved: bool


@dataclass(frozen=True, slots=True)
class MonitoringReport:
    project: str
    endpoint: str | None
    model: str | None
    since: datetime
    until: datetime
    window_s: float
    windows: list[Window]
    alerts: list[Alert] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# thresholds


def crossings(stats: GroupStats, config: MonitorConfig, window: Window) -> list[Alert]:
    """The alerts a group raises in its window under ``config``."""
    alerts = []
    for threshold in config.alerts:
        value = stats.metric(threshold.metric)
        if stats.samples(threshold.metric) >= config.alert_min_samples and threshold.crossed(value):
            assert value is not None
            alerts.append(_alert(stats, window, threshold.metric, value, threshold))
    drift = stats.drift
    if config.drift is not None and drift is not None and drift.rows >= config.drift.min_samples:
        for feature in drift.features:
            if not feature.drifted:
                continue
            if feature.psi is not None and feature.psi >= config.drift.psi:
                metric, value, limit = "psi", feature.psi, config.drift.psi
            elif feature.ks is not None and feature.ks >= config.drift.ks:
                metric, value, limit = "ks", feature.ks, config.drift.ks
            else:  # the column changed kind, or has values on one side only
                metric, value, limit = "kind", 1.0, 0.0
            alerts.append(
                _alert(
                    stats, window, metric, value, Threshold(metric, "max", limit), feature.feature
                )
            )
    return alerts


def _alert(
    stats: GroupStats,
    window: Window,
    metric: str,
    value: float,
    threshold: Threshold,
    feature: str | None = None,
) -> Alert:
    return Alert(
        metric=metric,
        value=value,
        threshold=threshold.value,
        bound=threshold.bound,
        window_start=window.start,
        window_end=window.end,
        model=stats.model,
        version=stats.version,
        variant=stats.variant,
        feature=feature,
    )
