"""The statistics monitoring and A/B analysis need, in plain Python (the stdlib only).

Distributions: the normal CDF (through ``math.erf``) and its inverse, Student's t CDF
(through the regularized incomplete beta function) and its inverse. Tests: the pooled
two-proportion z-test for rates, Welch's t-test for means, each with a confidence
interval of the difference. Intervals: Wilson's for a proportion, Student's for a mean.
Sample sizes: how many units each arm needs to see a given difference at a given
significance level and power. Percentiles interpolate linearly, as numpy's default.

>>> round(normal_cdf(1.959963984540054), 6)
0.975
>>> round(student_t_cdf(2.0, 10), 6)
0.963306
>>> test = two_proportion_test(50, 100, 65, 100)
>>> round(test.p_value, 4)
0.0319
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_STANDARD = NormalDist()
_EPS = 1e-15
_TINY = 1e-300


# ---------------------------------------------------------------------------------------
# distributions


def normal_cdf(x: float) -> float:
    """P(Z <= x) for a standard normal Z."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_ppf(p: float) -> float:
    """The x with P(Z <= x) = p, for 0 < p < 1."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"normal_ppf needs 0 < p < 1, got {p!r}")
    return _STANDARD.inv_cdf(p)


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1.

    Evaluated by its continued fraction (modified Lentz), on the side of the symmetry
    I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges fast.
    """
    if a <= 0 or b <= 0:
        raise ValueError("regularized_beta needs a > 0 and b > 0")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            step = d * c
            h *= step
        if abs(step - 1.0) < _EPS:
            break
    return h


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df > 0, not necessarily
    whole, as Welch's test gives)."""
    if df <= 0:
        raise ValueError("student_t_cdf needs df > 0")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    if math.isinf(df):
        return normal_cdf(t)
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def student_t_sf2(t: float, df: float) -> float:
    """The two-sided p-value P(|T| >= |t|), computed without cancellation."""
    if math.isinf(t):
        return 0.0
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    return regularized_beta(df / 2.0, 0.5, df / (df + t * t))


def student_t_ppf(p: float, df: float) -> float:
    """The t with P(T <= t) = p, for 0 < p < 1 (bisection on the CDF, to 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"student_t_ppf needs 0 < p < 1, got {p!r}")
    if math.isinf(df):
        return normal_ppf(p)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_ppf(1.0 - p, df)
    low, high = 0.0, max(1.0, normal_ppf(p))
    while student_t_cdf(high, df) < p:
        low, high = high, high * 2.0
        if high > 1e300:
            return math.inf
    for _ in range(200):
        mid = (low + high) / 2.0
        if student_t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


# ---------------------------------------------------------------------------------------
# summaries


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of values sorted ascending, interpolated linearly
    between neighbours (numpy's default). ``ordered`` must not be empty.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    """
    if not ordered:
        raise ValueError("percentile of no values")
    position = (len(ordered) - 1) * q / 100.0
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    t = position - below
    low, high = ordered[below], ordered[above]
    return low + (high - low) * t if t < 0.5 else high - (high - low) * (1.0 - t)


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, mean and sample standard deviation (ddof=1; 0.0 for fewer than 2 values)."""

    n: int
    mean: float
    sd: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Moments:
        n = len(values)
        if n == 0:
            return cls(0, math.nan, math.nan)
        mean = math.fsum(values) / n
        if n < 2:
            return cls(n, mean, 0.0)
        variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
        return cls(n, mean, math.sqrt(variance))


# ---------------------------------------------------------------------------------------
# intervals and tests


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """A comparison of arm B against arm A: ``difference`` is B - A."""

    difference: float
    interval: Interval  # of the difference
    statistic: float  # z or t
    p_value: float
    df: float | None = None  # Welch's degrees of freedom; None for the z-test


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson's score interval for a proportion: sound near 0 and 1 and for small n.

    >>> i = wilson_interval(8, 10)
    >>> round(i.low, 4), round(i.high, 4)
    (0.4902, 0.9433)
    """
    if n <= 0:
        raise ValueError("wilson_interval needs n > 0")
    z = normal_ppf(0.5 + confidence / 2.0)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(low, high)


def mean_interval(moments: Moments, confidence: float = 0.95) -> Interval | None:
    """Student's interval for a mean; None for fewer than 2 values."""
    if moments.n < 2:
        return None
    half = student_t_ppf(0.5 + confidence / 2.0, moments.n - 1) * moments.sd / math.sqrt(moments.n)
    return Interval(moments.mean - half, moments.mean + half)


def two_proportion_test(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = 0.95
) -> Comparison:
    """The pooled two-proportion z-test (two-sided) of B against A, with the Wald interval
    of the difference of the rates."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError("two_proportion_test needs both samples non-empty")
    p_a, p_b = successes_a / n_a, successes_b / n_b
    difference = p_b - p_a
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z_stat, p_value = _z(difference, se_pooled)
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    half = normal_ppf(0.5 + confidence / 2.0) * se
    return Comparison(difference, Interval(difference - half, difference + half), z_stat, p_value)


def _z(difference: float, se: float) -> tuple[float, float]:
    if se == 0.0:  # both samples all-or-nothing: no evidence unless they differ
        return (0.0, 1.0) if difference == 0 else (math.copysign(math.inf, difference), 0.0)
    z_stat = difference / se
    return z_stat, math.erfc(abs(z_stat) / math.sqrt(2.0))


def welch_test(a: Moments, b: Moments, confidence: float = 0.95) -> Comparison:
    """Welch's t-test (two-sided, unequal variances) of B's mean against A's, with the
    interval of the difference. Each sample needs at least 2 values."""
    if a.n < 2 or b.n < 2:
        raise ValueError("welch_test needs at least 2 values in each sample")
    difference = b.mean - a.mean
    va, vb = a.sd**2 / a.n, b.sd**2 / b.n
    se = math.sqrt(va + vb)
    if se == 0.0:
        z_stat, p_value = _z(difference, 0.0)
        return Comparison(difference, Interval(difference, difference), z_stat, p_value, None)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    t_stat = difference / se
    half = student_t_ppf(0.5 + confidence / 2.0, df) * se
    return Comparison(
        difference,
        Interval(difference - half, difference + half),
        t_stat,
        student_t_sf2(t_stat, df),
        df,
    )


# ---------------------------------------------------------------------------------------
# sample sizes


def sample_size_proportions(
    baseline: float, effect: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Units per arm for a two-sided two-proportion test to detect a rate moving from
    ``baseline`` by ``effect`` (absolute, either sign).

    >>> sample_size_proportions(0.5, 0.1)
    388
    """
    if effect == 0:
        raise ValueError("the effect to detect must not be 0")
    p1 = min(max(baseline, 0.0), 1.0)
    p2 = p1 + effect
    if not 0.0 <= p2 <= 1.0:
        p2 = p1 - effect  # a rate near a bound can only move the other way
    p2 = min(max(p2, 0.0), 1.0)
    mean = (p1 + p2) / 2.0
    z_alpha, z_power = normal_ppf(1.0 - alpha / 2.0), normal_ppf(power)
    root = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return max(2, math.ceil(root * root / (p2 - p1) ** 2))


def sample_size_means(sd: float, effect: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Units per arm for a two-sided two-sample test of means to detect a shift of
    ``effect`` when each arm's standard deviation is ``sd`` (normal approximation).

    >>> sample_size_means(1.0, 0.5)
    63
    """
    if effect == 0:
        raise ValueError("the effect to detect must not be 0")
    z = normal_ppf(1.0 - alpha / 2.0) + normal_ppf(power)
    return max(2, math.ceil(2.0 * (sd * z / effect) ** 2))
