"""The mergeable pieces of a prediction rollup: a histogram whose percentiles stay within
RELATIVE_ERROR, moments that merge exactly, and outputs that say when they lost classes."""

from __future__ import annotations

import math
import random

import pytest

from cairn.domain.rollups import (
    CLASS_CAP,
    RELATIVE_ERROR,
    LogSketch,
    Moments,
    Outputs,
    RollupIncomplete,
)
from cairn.domain.stats import percentile


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: r.lognormvariate(1, 2),
        lambda r: r.uniform(0.5, 8.0),
        lambda r: r.gauss(0, 10),  # negatives too
        lambda r: r.choice([0.0, 0.0, r.expovariate(1)]),  # many zeros
    ],
)
def test_sketch_percentiles_within_the_stated_error(draw: object) -> None:
    rng = random.Random(5)
    values = [draw(rng) for _ in range(5000)]  # type: ignore[operator]
    halves = LogSketch(), LogSketch()
    for i, v in enumerate(values):
        halves[i % 2].add(v)
    merged = LogSketch()
    for half in halves:
        merged.merge(half)
    again = LogSketch.from_json(merged.to_json())
    ordered = sorted(values)
    for q in (1, 25, 50, 95, 99, 100):
        exact = percentile(ordered, q)
        found = again.quantile(q, ordered[0], ordered[-1])
        # interpolation between two neighbours of opposite sign is bounded by the gap
        assert found == pytest.approx(exact, rel=RELATIVE_ERROR, abs=1e-9), q


def test_moments_merge_like_one_pass_over_all_values() -> None:
    rng = random.Random(6)
    values = [1e6 + rng.gauss(0, 0.01) for _ in range(3000)]  # a sum of squares would fail
    parts = [Moments.of(values[:1000]), Moments.of(values[1000:2999]), Moments()]
    parts[2].add(values[2999])
    total = Moments()
    for part in parts:
        total.merge(Moments.from_json(part.to_json()))
    whole = Moments.of(values)
    assert total.n == whole.n == 3000
    assert (total.low, total.high) == (min(values), max(values))
    assert total.mean == pytest.approx(whole.mean, rel=1e-12)
    assert math.sqrt(total.m2 / total.n) == pytest.approx(math.sqrt(whole.m2 / whole.n), rel=1e-6)


def test_outputs_with_too_many_classes_say_so() -> None:
    outputs = Outputs()
    for i in range(CLASS_CAP + 1):
        outputs.add(f"label {i}")
    assert outputs.classes is None
    with pytest.raises(RollupIncomplete):
        outputs.distribution("classification")
    few = Outputs()
    for v in [1, 1, 2, 0.5]:
        few.add(v)
    regression = few.distribution("regression")
    assert few.fractional and regression is not None and regression.numeric is not None
    assert few.distribution("classification") == type(regression)(
        classes={"1": 2, "0.5": 1, "2": 1}
    )
