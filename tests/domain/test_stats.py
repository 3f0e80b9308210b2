"""The stdlib statistics against known values.

Expected numbers were computed once with SciPy 1.17 (``scipy.stats.t.cdf``,
``scipy.special.betainc``, ``scipy.stats.ttest_ind(..., equal_var=False)``, ``binomtest
(...).proportion_ci(method="wilson")``) and numpy's ``percentile``; they are written
here so the suite needs neither.
"""

from __future__ import annotations

import math
import random

import pytest

from cairn.domain.stats import (
    Moments,
    mean_interval,
    normal_cdf,
    normal_ppf,
    percentile,
    regularized_beta,
    sample_size_means,
    sample_size_proportions,
    student_t_cdf,
    student_t_ppf,
    student_t_sf2,
    two_proportion_test,
    welch_test,
    wilson_interval,
)

A = [12.1, 9.8, 11.4, 10.2, 10.9, 8.7, 11.8, 10.5, 9.9, 10.4]
B = [13.2, 12.5, 11.1, 14.8, 12.9, 13.6, 10.8, 12.2, 15.1, 13.0, 12.7, 11.9]


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (-3.0, 0.0013498980316300933),
        (-1.0, 0.15865525393145707),
        (0.0, 0.5),
        (0.5, 0.6914624612740131),
        (1.959963984540054, 0.975),
        (4.0, 0.9999683287581669),
    ],
)
def test_normal_cdf(x: float, expected: float) -> None:
    assert normal_cdf(x) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_normal_ppf_inverts_the_cdf() -> None:
    for p in (0.001, 0.025, 0.5, 0.8, 0.975, 0.999):
        assert normal_cdf(normal_ppf(p)) == pytest.approx(p, rel=1e-12)
    with pytest.raises(ValueError):
        normal_ppf(1.0)


@pytest.mark.parametrize(
    ("a", "b", "x", "expected"),
    [
        (0.5, 0.5, 0.3, 0.36901011956554536),
        (2, 3, 0.4, 0.5247999999999999),
        (10, 0.5, 0.9, 0.15164090963470994),
        (100, 200, 0.33, 0.45661816333399713),
        (1, 1, 0.7, 0.7),
        (5, 0.5, 0.999, 0.9222819921009667),
    ],
)
def test_regularized_incomplete_beta(a: float, b: float, x: float, expected: float) -> None:
    assert regularized_beta(a, b, x) == pytest.approx(expected, rel=1e-12)
    assert regularized_beta(a, b, 0.0) == 0.0
    assert regularized_beta(a, b, 1.0) == 1.0


@pytest.mark.parametrize(
    ("t", "df", "expected"),
    [
        (0.5, 1, 0.6475836176504333),
        (-1.3, 2.5, 0.15024339463535416),
        (2.0, 10, 0.9633059826146299),
        (3.5, 30, 0.9992615962811778),
        (-0.1, 100, 0.4602722655479256),
        (10.0, 3, 0.9989358004707929),
        (-4.0, 7.3, 0.002381183582163554),
        (1.0, 0.5, 0.698878389158678),
    ],
)
def test_student_t_cdf(t: float, df: float, expected: float) -> None:
    assert student_t_cdf(t, df) == pytest.approx(expected, rel=1e-12)
    assert student_t_sf2(t, df) == pytest.approx(2 * min(expected, 1 - expected), rel=1e-10)


def test_student_t_tends_to_the_normal() -> None:
    assert student_t_cdf(1.96, 1e7) == pytest.approx(normal_cdf(1.96), abs=1e-7)
    assert student_t_cdf(1.96, math.inf) == normal_cdf(1.96)
    assert student_t_cdf(math.inf, 3) == 1.0 and student_t_cdf(-math.inf, 3) == 0.0


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 1, 12.706204736174694),
        (0.975, 5, 2.5705818356363146),
        (0.975, 12.7, 2.165567731368725),
        (0.995, 30, 2.7499956535672254),
        (0.6, 2, 0.2886751345948128),
        (0.025, 9, -2.2621571627982053),
    ],
)
def test_student_t_ppf(p: float, df: float, expected: float) -> None:
    assert student_t_ppf(p, df) == pytest.approx(expected, rel=1e-9)


def test_percentiles_interpolate_as_numpy() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (50, 95, 99)] == pytest.approx([50.5, 95.05, 99.01])
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0], 0) == 1.0 and percentile([1.0, 2.0], 100) == 2.0


def test_welch_t_test_matches_scipy() -> None:
    result = welch_test(Moments.of(A), Moments.of(B))
    assert result.statistic == pytest.approx(4.561139485412118, rel=1e-10)
    assert result.p_value == pytest.approx(0.00019053714615504004, rel=1e-8)
    assert result.df == pytest.approx(19.96339062267072, rel=1e-10)
    assert result.interval.low == pytest.approx(1.2190691619180034, rel=1e-9)
    assert result.interval.high == pytest.approx(3.2742641714153216, rel=1e-9)
    assert result.difference == pytest.approx(sum(B) / len(B) - sum(A) / len(A))


def test_welch_on_equal_constant_samples_is_not_significant() -> None:
    same = welch_test(Moments.of([1.0, 1.0, 1.0]), Moments.of([1.0, 1.0]))
    assert same.p_value == 1.0 and same.difference == 0.0
    apart = welch_test(Moments.of([1.0, 1.0]), Moments.of([2.0, 2.0]))
    assert apart.p_value == 0.0
    with pytest.raises(ValueError):
        welch_test(Moments.of([1.0]), Moments.of([1.0, 2.0]))


def test_two_proportion_z_test() -> None:
    result = two_proportion_test(420, 1000, 470, 1000)
    assert result.statistic == pytest.approx(2.2497202084475294, rel=1e-12)
    assert result.p_value == pytest.approx(0.02446671187449629, rel=1e-10)
    assert result.difference == pytest.approx(0.05)
    # the unpooled Wald interval of the difference
    se = math.sqrt(0.42 * 0.58 / 1000 + 0.47 * 0.53 / 1000)
    assert result.interval.low == pytest.approx(0.05 - 1.959963984540054 * se)
    assert two_proportion_test(0, 10, 0, 12).p_value == 1.0


def test_intervals() -> None:
    wilson = wilson_interval(8, 10)
    assert (wilson.low, wilson.high) == pytest.approx((0.4901624715366418, 0.9433178485456248))
    none = wilson_interval(0, 20)
    assert none.low == 0.0 and none.high == pytest.approx(0.16112515805281935)
    mean = mean_interval(Moments.of(A))
    assert mean is not None
    assert (mean.low, mean.high) == pytest.approx((9.840437266208696, 11.299562733791308))
    assert mean_interval(Moments.of([1.0])) is None


def test_moments() -> None:
    m = Moments.of(A)
    assert m.n == 10
    assert m.mean == pytest.approx(10.57)
    assert m.sd == pytest.approx(1.0198583779677997, rel=1e-12)  # sample sd, ddof=1
    assert Moments.of([]).n == 0 and Moments.of([2.0]).sd == 0.0


def test_sample_sizes() -> None:
    # The textbook cases: 0.5 -> 0.6 needs 388 per arm; a 0.5 sd shift needs 63.
    assert sample_size_proportions(0.5, 0.1) == 388
    assert sample_size_proportions(0.5, -0.1) == 388
    assert sample_size_means(1.0, 0.5) == 63
    assert sample_size_means(2.0, 1.0) == 63
    assert wilson_interval(20, 20).high == 1.0
    assert sample_size_proportions(0.98, 0.05) > 2  # near a bound it looks the other way
    with pytest.raises(ValueError):
        sample_size_means(1.0, 0.0)


def test_the_z_test_holds_its_level_and_sees_a_real_difference() -> None:
    """A small simulation: with equal rates about 5% of tests are significant; with
    0.5 vs 0.6 at the computed sample size, about 80% are."""
    rng = random.Random(7)
    n = sample_size_proportions(0.5, 0.1)

    def significant(rate_b: float) -> bool:
        a = sum(rng.random() < 0.5 for _ in range(n))
        b = sum(rng.random() < rate_b for _ in range(n))
        return two_proportion_test(a, n, b, n).p_value < 0.05

    trials = 300
    false_positive = sum(significant(0.5) for _ in range(trials)) / trials
    power = sum(significant(0.6) for _ in range(trials)) / trials
    assert false_positive < 0.1
    assert 0.7 < power < 0.9
