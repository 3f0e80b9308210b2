"""The mergeable pieces of a prediction rollup: a histogram whose percentiles stay within
RELATIVE_ERROR, moments that merge exactly, and outputs that say when they lost classes."""

from __future__ import annotations

import math
import random

import pytest

from cairn.domain.prediction_stats import summarize_rollup
from cairn.domain.rollups import (
    CLASS_CAP,
    PAIR_CAP,
    RELATIVE_ERROR,
    Labels,
    LogSketch,
    Moments,
    Outputs,
    Rollup,
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


def test_labels_follow_feedback_that_is_replaced() -> None:
    decoded: dict[str, object] = {}
    labels = Labels()
    labels.add("[1]", "1", 3, decoded)
    labels.add("[2]", "1", 1, decoded)
    labels.add("[2]", "1", -1, decoded)  # that feedback was sent again with another value
    labels.add("[2]", "2", 1, decoded)
    assert labels.triples() == [("[1]", "1", 3), ("[2]", "2", 1)]
    assert (labels.numeric, labels.abs_errors, labels.squared_errors) == (4, 0.0, 0.0)
    again = Labels.from_json(labels.to_json())
    assert again.triples() == labels.triples() and again.numeric == 4
    assert Labels.from_json(Labels().to_json()).triples() == []


def test_labels_past_the_cap_keep_what_regression_needs() -> None:
    rng = random.Random(4)
    pairs = [(rng.gauss(10, 2), rng.gauss(10, 2)) for _ in range(PAIR_CAP + 50)]
    halves = Labels(), Labels()
    decoded: dict[str, object] = {}
    for i, (predicted, actual) in enumerate(pairs):
        halves[i % 2].add(f"[{predicted!r}]", repr(actual), 1, decoded)
    merged = Labels()
    for half in halves:
        merged.merge(half)
    assert merged.pairs is None and merged.fractional
    with pytest.raises(RollupIncomplete):
        merged.triples()
    rollup = Rollup(volume=len(pairs), labels=Labels.from_json(merged.to_json()))
    quality = summarize_rollup(rollup, model="m", version=1).quality
    assert quality is not None and quality.task == "regression"
    assert quality.labeled == len(pairs)
    errors = [p - a for p, a in pairs]
    assert quality.mae == pytest.approx(math.fsum(map(abs, errors)) / len(errors))
    assert quality.rmse == pytest.approx(math.sqrt(math.fsum(e * e for e in errors) / len(errors)))
    with pytest.raises(RollupIncomplete):  # as classes, the pairs are needed
        summarize_rollup(rollup, model="m", version=1, task="classification")
