"""A/B analysis of an endpoint's variants: each variant's outcome with its confidence
interval, its difference from the baseline variant with a significance test, and the
sample size still needed to see a given effect. Plain Python over ``domain/stats.py``.

Outcome metrics: rates (a two-proportion z-test) and means (Welch's t-test)::

    accuracy        rate of predictions equal to their feedback      higher is better
    error_rate      rate of predictions that failed                  lower is better
    conversion      rate of feedback that is true (1, true, "yes")   higher is better
    latency         mean latency in ms                               lower is better
    absolute_error  mean |prediction - feedback| (regression)        lower is better
    squared_error   mean (prediction - feedback)^2 (regression)      lower is better
    outcome         mean numeric feedback (revenue, clicks, ...)      higher is better

The baseline is the variant named ``champion``, else the serving variant with the largest
weight. The minimum detectable effect (``mde``, in the metric's units) defaults to 10% of
the baseline's value (at least 0.005 for a rate).

>>> METRICS["latency"]
('mean', 'lower')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cairn.domain.errors import Invalid
from cairn.domain.prediction_stats import prediction_value
from cairn.domain.production import Endpoint, Prediction, Variant
from cairn.domain.stats import (
    Interval,
    Moments,
    mean_interval,
    sample_size_means,
    sample_size_proportions,
    two_proportion_test,
    welch_test,
    wilson_interval,
)

METRICS: dict[str, tuple[str, str]] = {
    "accuracy": ("rate", "higher"),
    "error_rate": ("rate", "lower"),
    "conversion": ("rate", "higher"),
    "latency": ("mean", "lower"),
    "absolute_error": ("mean", "lower"),
    "squared_error": ("mean", "lower"),
    "outcome": ("mean", "higher"),
}
_TRUE_TEXT = frozenset({"1", "true", "yes", "y", "t"})


@dataclass(frozen=True, slots=True)
class VariantOutcome:
    """One variant's outcome; the comparison fields are None for the baseline."""

    variant: str
    target: str | None  # None: a variant no longer on the endpoint
    weight: int | None
    shadow: bool
    versions: list[int]
    n: int  # the units the outcome is measured on
    value: float | None
    interval: Interval | None
    successes: int | None = None  # rates only
    sd: float | None = None  # means only
    difference: float | None = None  # value - the baseline's value
    difference_interval: Interval | None = None
    statistic: float | None = None  # z or t
    p_value: float | None = None
    significant: bool = False
    better: bool | None = None
    needed: int | None = None  # units per variant to detect ``mde``
    more_needed: int | None = None  # beyond what the smaller of the two has


@dataclass(frozen=True, slots=True)
class ABReport:
    project: str
    endpoint: str
    metric: str
    kind: str  # "rate" or "mean"
    direction: str  # "higher" or "lower" is better
    baseline: str
    since: datetime | None
    until: datetime | None
    alpha: float
    power: float
    mde: float | None
    variants: list[VariantOutcome]
    winner: str | None
    summary: str
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Promotion:
    endpoint: str
    variant: str
    model: str
    alias: str
    from_version: int | None
    to_version: int
    reason: str
    report: ABReport | None = field(default=None)


def check_metric(metric: object) -> str:
    if not isinstance(metric, str) or metric not in METRICS:
        raise Invalid(f"metric {metric!r:.50} is not one of {', '.join(METRICS)}", field="metric")
    return metric


def baseline_variant(endpoint: Endpoint) -> Variant:
    """The variant others are compared with: ``champion``, else the heaviest serving one."""
    for variant in endpoint.variants:
        if variant.name == "champion":
            return variant
    serving = endpoint.serving() or endpoint.variants
    return sorted(serving, key=lambda v: (-v.weight, v.name))[0]


def observations(predictions: Sequence[Prediction], metric: str) -> list[float]:
    """Each prediction's measurement under ``metric`` (0/1 for a rate); predictions that
    say nothing about it (no feedback yet, say) are left out."""
    out: list[float] = []
    for p in predictions:
        value = _observe(p, metric)
        if value is not None:
            out.append(value)
    return out


def _observe(p: Prediction, metric: str) -> float | None:
    if metric == "error_rate":
        return 1.0 if p.error is not None else 0.0
    if metric == "latency":
        return p.latency_ms
    if p.error is not None:
        return None
    actual = prediction_value(p.actual) if p.actual is not None else None
    if actual is None:
        return None
    if metric == "conversion":
        return 1.0 if _truthy(actual) else 0.0
    if metric == "outcome":
        return float(actual) if _number(actual) else None
    predicted = prediction_value(p.outputs)
    if metric == "accuracy":
        return 1.0 if predicted is not None and _same(predicted, actual) else 0.0
    if not (_number(predicted) and _number(actual)):
        return None
    error = float(predicted) - float(actual)
    return abs(error) if metric == "absolute_error" else error * error


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_TEXT
    return bool(value) if isinstance(value, bool | int | float) else False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b) or str(a) == str(b)


def analyse(
    project: str,
    endpoint: Endpoint,
    predictions: Sequence[Prediction],
    metric: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    baseline: str | None = None,
    mde: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    truncated: bool = False,
) -> ABReport:
    """The A/B report of an endpoint's predictions (all variants, shadows included)."""
    check_metric(metric)
    kind, direction = METRICS[metric]
    if mde is not None and (not math.isfinite(mde) or mde <= 0):
        raise Invalid("mde must be a number above 0, in the metric's units", field="mde")
    if not (0 < alpha < 0.5 and 0.5 <= power < 1):
        raise Invalid("alpha must lie in (0, 0.5) and power in [0.5, 1)", field="alpha")
    by_variant: dict[str, list[Prediction]] = {v.name: [] for v in endpoint.variants}
    for p in predictions:
        by_variant.setdefault(p.variant, []).append(p)
    declared = {v.name: v for v in endpoint.variants}
    base_name = baseline or baseline_variant(endpoint).name
    if base_name not in by_variant:
        raise Invalid(
            f"baseline {base_name!r} is not a variant of endpoint {endpoint.name!r}",
            field="baseline",
        )
    samples = {name: observations(preds, metric) for name, preds in by_variant.items()}
    base = samples[base_name]
    base_value = _value(base)
    effect = mde if mde is not None else _default_mde(kind, base, base_value)
    outcomes = []
    for name, preds in by_variant.items():
        variant = declared.get(name)
        outcome = _outcome(name, variant, preds, samples[name], kind)
        if name != base_name:
            outcome = _compare(outcome, samples[name], base, kind, direction, effect, alpha, power)
        outcomes.append(outcome)
    outcomes.sort(key=lambda o: (o.variant != base_name, o.variant))
    winner = _winner(outcomes, direction)
    return ABReport(
        project=project,
        endpoint=endpoint.name,
        metric=metric,
        kind=kind,
        direction=direction,
        baseline=base_name,
        since=since,
        until=until,
        alpha=alpha,
        power=power,
        mde=effect,
        variants=outcomes,
        winner=winner,
        summary=_summary(outcomes, base_name, metric, alpha, winner),
        truncated=truncated,
    )


def _value(sample: Sequence[float]) -> float | None:
    return math.fsum(sample) / len(sample) if sample else None


def _default_mde(kind: str, base: Sequence[float], value: float | None) -> float | None:
    if value is None:
        return None
    if kind == "rate":
        return max(0.005, 0.1 * value)
    if value != 0:
        return 0.1 * abs(value)
    sd = Moments.of(base).sd
    return 0.1 * sd if sd and math.isfinite(sd) and sd > 0 else None


def _outcome(
    name: str, variant: Variant | None, preds: Sequence[Prediction], sample: list[float], kind: str
) -> VariantOutcome:
    n = len(sample)
    value = _value(sample)
    successes, sd, interval = None, None, None
    if kind == "rate":
        successes = round(math.fsum(sample))
        interval = wilson_interval(successes, n) if n else None
    else:
        moments = Moments.of(sample)
        sd = moments.sd if n else None
        interval = mean_interval(moments)
    return VariantOutcome(
        variant=name,
        target=variant.target if variant else None,
        weight=variant.weight if variant else None,
        shadow=variant.shadow if variant else any(p.shadow for p in preds),
        versions=sorted({p.version for p in preds}),
        n=n,
        value=value,
        interval=interval,
        successes=successes,
        sd=sd,
    )


def _compare(
    outcome: VariantOutcome,
    sample: Sequence[float],
    base: Sequence[float],
    kind: str,
    direction: str,
    effect: float | None,
    alpha: float,
    power: float,
) -> VariantOutcome:
    needed = _needed(kind, base, sample, effect, alpha, power)
    more = max(0, needed - min(len(base), len(sample))) if needed is not None else None
    result = None
    if kind == "rate" and sample and base:
        result = two_proportion_test(
            round(math.fsum(base)), len(base), outcome.successes or 0, len(sample)
        )
    elif kind == "mean" and len(sample) >= 2 and len(base) >= 2:
        result = welch_test(Moments.of(base), Moments.of(sample))
    if result is None:
        return replace(outcome, needed=needed, more_needed=more)
    significant = result.p_value < alpha
    better = None
    if result.difference != 0:
        better = (result.difference > 0) == (direction == "higher")
    return replace(
        outcome,
        difference=result.difference,
        difference_interval=result.interval,
        statistic=_finite(result.statistic),
        p_value=result.p_value,
        significant=significant,
        better=better,
        needed=needed,
        more_needed=more,
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _needed(
    kind: str,
    base: Sequence[float],
    sample: Sequence[float],
    effect: float | None,
    alpha: float,
    power: float,
) -> int | None:
    if effect is None or not base:
        return None
    if kind == "rate":
        return sample_size_proportions(_value(base) or 0.0, effect, alpha=alpha, power=power)
    sds = [m.sd for m in (Moments.of(base), Moments.of(sample)) if m.n >= 2]
    if not sds:
        return None
    sd = math.sqrt(math.fsum(s * s for s in sds) / len(sds))
    return sample_size_means(sd, effect, alpha=alpha, power=power) if sd > 0 else 2


def _winner(outcomes: Sequence[VariantOutcome], direction: str) -> str | None:
    winners = [o for o in outcomes if o.significant and o.better and o.value is not None]
    if not winners:
        return None
    best = max if direction == "higher" else min
    return best(winners, key=lambda o: o.value or 0.0).variant


def _summary(
    outcomes: Sequence[VariantOutcome], base: str, metric: str, alpha: float, winner: str | None
) -> str:
    parts = []
    for o in outcomes:
        if o.value is None:
            parts.append(f"{o.variant}: no data")
            continue
        text = f"{o.variant}: {metric} {_fmt(o.value)}"
        if o.interval is not None:
            text += f" [{_fmt(o.interval.low)}, {_fmt(o.interval.high)}]"
        text += f" (n={o.n})"
        if o.p_value is not None and o.difference is not None:
            verdict = "significant" if o.significant else "not significant"
            text += f", {_signed(o.difference)} vs {base}, p={o.p_value:.3g} ({verdict})"
        parts.append(text)
    head = f"winner: {winner}" if winner else f"no variant beats {base} at alpha {alpha:g}"
    return f"{head}; " + "; ".join(parts)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _signed(value: float) -> str:
    return f"{value:+.4g}"
