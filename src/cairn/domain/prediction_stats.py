"""One version's predictions in one window, summarised: volume, errors, latency
percentiles, the distribution of its outputs, quality against the feedback that arrived,
and its inputs' drift from the training data. Plain Python, so a server without numpy or
pandas computes it: the inputs' profile has the format of ``domain/profiles.py`` (the
one ``client/profiling.py`` makes with pandas) and is compared with ``diff_profiles``.

>>> prediction_value({"prediction": 2, "proba": [0.1, 0.2, 0.7]})
2
>>> quality([(1, 1), (0, 1), (1, 1), (0, 0)], "classification").accuracy
0.75
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.domain.monitoring import (
    Drift,
    DriftSettings,
    FeatureDrift,
    GroupStats,
    Latency,
    NumericSummary,
    OutputDistribution,
    Quality,
)
from cairn.domain.production import Prediction
from cairn.domain.profiles import FORMAT, HISTOGRAM_BINS, QUANTILES, TOP_VALUES, diff_profiles
from cairn.domain.stats import percentile

if TYPE_CHECKING:
    from cairn.domain.rollups import Rollup

OTHER = "(other)"
DRIFT_SAMPLE = 10_000  # input rows profiled per version and window, at most
_OUTPUT_KEYS = ("prediction", "label", "predicted", "output", "value", "y", "class")


@dataclass(frozen=True, slots=True)
class Reference:
    """What a version's inputs are compared against: its training data's profile."""

    ref: str | None
    profile: dict[str, Any] | None
    input_names: list[str] = field(default_factory=list)
    note: str | None = None


def summarize(
    predictions: Sequence[Prediction],
    *,
    model: str,
    version: int,
    variant: str = "",
    task: str | None = None,
    reference: Reference | None = None,
    drift: DriftSettings | None = None,
) -> GroupStats:
    """The statistics of one version's predictions (one window, one variant)."""
    volume = len(predictions)
    ok = [p for p in predictions if p.error is None]
    errors = volume - len(ok)
    latencies = sorted(p.latency_ms for p in predictions if p.latency_ms is not None)
    outputs = [prediction_value(p.outputs) for p in ok]
    labeled = [(o, prediction_value(p.actual)) for o, p in zip(outputs, ok, strict=True)]
    labeled = [(o, a) for o, a in labeled if a is not None and o is not None]
    task = task or infer_task([o for o in outputs if o is not None] + [a for _, a in labeled])
    return GroupStats(
        model=model,
        version=version,
        variant=variant,
        shadow=any(p.shadow for p in predictions),
        volume=volume,
        errors=errors,
        error_rate=errors / volume if volume else 0.0,
        latency=_latency(latencies),
        task=task,
        outputs=_distribution(outputs, task),
        quality=quality(labeled, task) if labeled and task else None,
        drift=None if drift is None or reference is None else _drift_of(ok, reference, drift),
    )


@dataclass(frozen=True, slots=True)
class Counted:
    """One version's predictions in one window as the database counted them: no row is
    read whole (see ``ProductionRepository.outcome_counts``)."""

    volume: int
    errors: int
    shadow: bool
    latencies: list[float]  # ascending
    outcomes: list[tuple[Any, Any, int]]  # (outputs, actual, how many) of successful ones
    inputs: list[Any] = field(default_factory=list)  # a sample of the successful ones'


def summarize_counted(
    counted: Counted,
    *,
    model: str,
    version: int,
    variant: str = "",
    task: str | None = None,
    reference: Reference | None = None,
    drift: DriftSettings | None = None,
) -> GroupStats:
    """``summarize`` of predictions already counted by outcome (the same statistics)."""
    ok = counted.volume - counted.errors
    outcomes = [(prediction_value(o), prediction_value(a), n) for o, a, n in counted.outcomes]
    labeled = [(o, a, n) for o, a, n in outcomes if a is not None and o is not None]
    task = task or infer_task(
        [o for o, _, _ in outcomes if o is not None] + [a for _, a, _ in labeled]
    )
    found = sampled_drift(counted.inputs, ok, reference, drift)
    volume = counted.volume
    return GroupStats(
        model=model,
        version=version,
        variant=variant,
        shadow=counted.shadow,
        volume=volume,
        errors=counted.errors,
        error_rate=counted.errors / volume if volume else 0.0,
        latency=_latency(counted.latencies),
        task=task,
        outputs=_weighted_distribution([(o, n) for o, _, n in outcomes], task),
        quality=weighted_quality(labeled, task) if labeled and task else None,
        drift=found,
    )


def summarize_rollup(
    rollup: Rollup,
    *,
    model: str,
    version: int,
    variant: str = "",
    shadow: bool = False,
    task: str | None = None,
    drift: Drift | None = None,
) -> GroupStats:
    """``summarize`` of predictions added up in a rollup (``domain/rollups.py``), quality
    from the feedback it counted, drift as ``sampled_drift`` found it. Counts are exact,
    percentiles within the sketch's error."""
    labels = rollup.labels
    found: Quality | None = None
    if labels.pairs is not None or task == "classification":
        decoded: dict[str, Any] = {}
        pairs = [
            (decoded_value(o, decoded), decoded_value(a, decoded), n)
            for o, a, n in labels.triples()
        ]
        pairs = [(o, a, n) for o, a, n in pairs if a is not None and o is not None]
        if task is None and (rollup.outputs.values or pairs):
            fractional = rollup.outputs.fractional or any(isinstance(a, float) for _, a, _ in pairs)
            task = "regression" if fractional else "classification"
        found = weighted_quality(pairs, task) if pairs and task else None
    else:  # too many distinct pairs to keep: a regression's, whose sums are enough
        if task is None:
            fractional = rollup.outputs.fractional or labels.fractional
            task = "regression" if fractional else "classification"
        if task != "regression":
            labels.triples()  # raises RollupIncomplete: the report reads the predictions
        n = labels.numeric
        found = Quality(task, n)
        if n > 0:
            found = Quality(
                task,
                n,
                mae=labels.abs_errors / n,
                rmse=math.sqrt(max(0.0, labels.squared_errors) / n),
            )
    return GroupStats(
        model=model,
        version=version,
        variant=variant,
        shadow=shadow,
        volume=rollup.volume,
        errors=rollup.errors,
        error_rate=rollup.errors / rollup.volume if rollup.volume else 0.0,
        latency=rollup.latency_stats(),
        task=task,
        outputs=rollup.outputs.distribution(task),
        quality=found,
        drift=drift,
    )


def decoded_value(text: str, decoded: dict[str, Any]) -> Any:
    """``prediction_value`` of a JSON text, decoded once per ``decoded`` (a batch or a
    report meets few distinct outputs and actuals)."""
    if text not in decoded:
        decoded[text] = prediction_value(json.loads(text))
    return decoded[text]


def sampled_drift(
    inputs: Sequence[Any],
    ok: int,
    reference: Reference | None,
    settings: DriftSettings | None,
    how: str = "",
) -> Drift | None:
    """Drift of a sample of ``ok`` successful predictions' inputs; the note says when
    it was a sample (``how`` says how it was drawn)."""
    if settings is None or reference is None:
        return None
    if reference.profile is None:
        return Drift(reference.ref, ok, note=reference.note)
    note = None
    if len(inputs) < ok:
        note = f"a sample of {len(inputs):,} of {ok:,} predictions{how}"
    return _drift_from(inputs, reference, settings, note)


def _latency(ordered: list[float]) -> Latency | None:
    if not ordered:
        return None
    return Latency(
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        mean=math.fsum(ordered) / len(ordered),
        max=ordered[-1],
    )


def prediction_value(value: Any) -> Any:
    """The scalar inside an output or a feedback value: ``[1]`` is 1, and so is
    ``{"prediction": 1, "proba": [...]}`` (also ``label``, ``value``, ``y``, …)."""
    for _ in range(3):
        if isinstance(value, list | tuple) and len(value) == 1:
            value = value[0]
        elif isinstance(value, Mapping):
            key = next((k for k in _OUTPUT_KEYS if k in value), None)
            if key is None and len(value) == 1:
                key = next(iter(value))
            if key is None:
                break
            value = value[key]
        else:
            break
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list | tuple | Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def infer_task(values: Sequence[Any]) -> str | None:
    """Regression when any value is a fractional number, classification otherwise (labels
    as text, booleans or whole numbers); None with nothing to go on."""
    if not values:
        return None
    if any(isinstance(v, float) for v in values):  # whole floats were made ints
        return "regression"
    return "classification"


def quality(pairs: Sequence[tuple[Any, Any]], task: str) -> Quality:
    """Accuracy and macro precision, recall and F1 (as scikit-learn's, zero_division=0)
    for classification; MAE and RMSE for regression. ``pairs``: (predicted, actual)."""
    return weighted_quality([(p, a, 1) for p, a in pairs], task)


def weighted_quality(triples: Sequence[tuple[Any, Any, int]], task: str) -> Quality:
    """``quality`` of (predicted, actual, how many times) triples."""
    if task == "regression":
        numeric = [(float(p) - float(a), n) for p, a, n in triples if is_number(p) and is_number(a)]
        count = sum(n for _, n in numeric)
        if not count:
            return Quality(task, 0)
        return Quality(
            task,
            count,
            mae=math.fsum(abs(e) * n for e, n in numeric) / count,
            rmse=math.sqrt(math.fsum(e * e * n for e, n in numeric) / count),
        )
    labels: set[str] = set()
    predicted: Counter[str] = Counter()
    actual: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    n = 0
    for p_value, a_value, times in triples:
        p_label, a_label = class_label(p_value), class_label(a_value)
        labels.update((p_label, a_label))
        predicted[p_label] += times
        actual[a_label] += times
        if p_label == a_label:
            hits[p_label] += times
        n += times
    precision, recall, f1 = [], [], []
    for label in labels:
        p = hits[label] / predicted[label] if predicted[label] else 0.0
        r = hits[label] / actual[label] if actual[label] else 0.0
        precision.append(p)
        recall.append(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    return Quality(
        task,
        n,
        accuracy=sum(hits.values()) / n,
        precision=math.fsum(precision) / len(labels),
        recall=math.fsum(recall) / len(labels),
        f1=math.fsum(f1) / len(labels),
    )


def class_label(value: Any) -> str:
    """A class label as text, as JSON writes it (1 and "1" are the same class)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # json.dumps' text for a number, faster
    return json.dumps(value, default=str)


def _distribution(outputs: Sequence[Any], task: str | None) -> OutputDistribution | None:
    return _weighted_distribution([(o, 1) for o in outputs], task)


def _weighted_distribution(
    outputs: Sequence[tuple[Any, int]], task: str | None
) -> OutputDistribution | None:
    values = [(o, n) for o, n in outputs if o is not None]
    if not values:
        return None
    if task == "regression" and all(is_number(v) for v, _ in values):
        numbers = [float(v) for v, n in values for _ in range(n)]
        numbers.sort()
        mean = math.fsum(numbers) / len(numbers)
        return OutputDistribution(
            numeric=NumericSummary(
                count=len(numbers),
                mean=mean,
                std=math.sqrt(math.fsum((v - mean) ** 2 for v in numbers) / len(numbers)),
                min=numbers[0],
                p50=percentile(numbers, 50),
                max=numbers[-1],
            )
        )
    counts: Counter[str] = Counter()
    for v, n in values:
        counts[class_label(v)] += n
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    classes = dict(top[:TOP_VALUES])
    rest = sum(n for _, n in top[TOP_VALUES:])
    if rest:
        classes[OTHER] = rest
    return OutputDistribution(classes=classes)


# ---------------------------------------------------------------------------------------
# drift


def _drift_of(ok: Sequence[Prediction], reference: Reference, settings: DriftSettings) -> Drift:
    if reference.profile is None:
        return Drift(reference.ref, len(ok), note=reference.note)
    note = None
    if len(ok) > DRIFT_SAMPLE:
        # PSI and KS of 10,000 rows are as good as of all of them (KS's noise is about
        # 1/sqrt(n)), and profiling in plain Python is the slow part of a report. The
        # sample is the same for the same predictions, so a report can be made again.
        note = f"a random sample of {DRIFT_SAMPLE:,} of {len(ok):,} predictions"
        ok = random.Random(len(ok)).sample(list(ok), DRIFT_SAMPLE)
    return _drift_from([p.inputs for p in ok], reference, settings, note)


def _drift_from(
    inputs: Sequence[Any], reference: Reference, settings: DriftSettings, note: str | None
) -> Drift:
    assert reference.profile is not None
    if not inputs:
        return Drift(reference.ref, 0)
    columns = _list_columns(inputs, reference.input_names)
    if columns is not None:
        profile = profile_columns(columns, len(inputs))
    else:
        profile = profile_records([input_record(i, reference.input_names) for i in inputs])
    diff = diff_profiles(
        reference.profile,
        profile,
        psi_threshold=settings.psi,
        ks_threshold=settings.ks,
    )
    features = [
        FeatureDrift(c["column"], c["psi"], c["ks"], bool(c["drifted"])) for c in diff["columns"]
    ]
    if not features:
        note = f"no input column matches a column of {reference.ref}"
    return Drift(reference.ref, len(inputs), features, note)


def _list_columns(inputs: Sequence[Any], names: Sequence[str]) -> dict[str, list[Any]] | None:
    """Inputs that are all lists of one length (two or more), as ``input_record`` names
    them, transposed at C speed; None for any other shape."""
    if any(type(i) is not list for i in inputs):
        return None
    lengths = {len(i) for i in inputs}
    if len(lengths) != 1 or min(lengths) < 2:
        return None
    return {
        (names[i] if i < len(names) else str(i)): list(column)
        for i, column in enumerate(zip(*inputs, strict=True))
    }


def input_record(inputs: Any, names: Sequence[str] = ()) -> dict[str, Any]:
    """One prediction's inputs as a record: a mapping as it is, a list of values by
    position (named by ``names``, the signature's columns, else "0", "1", …), a batch of
    one unwrapped, anything else as the column ``value``."""
    for _ in range(3):
        if not (isinstance(inputs, list | tuple) and len(inputs) == 1):
            break
        if not isinstance(inputs[0], list | tuple | Mapping):
            break
        inputs = inputs[0]
    if isinstance(inputs, Mapping):
        return {str(k): v for k, v in inputs.items()}
    if isinstance(inputs, list | tuple):
        return {(names[i] if i < len(names) else str(i)): v for i, v in enumerate(inputs)}
    return {"value": inputs}


def profile_records(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The profile (``domain/profiles.py``, format 1) of records, in plain Python: what
    ``client/profiling.py`` gives for the same table, so the two compare."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return profile_columns({name: [row.get(name) for row in rows] for name in names}, len(rows))


def profile_columns(columns: Mapping[str, list[Any]], rows: int) -> dict[str, Any]:
    """``profile_records`` of a table given by columns (``rows`` values each)."""
    found = [_column(name, values) for name, values in columns.items()]
    return {"format": FORMAT, "rows": rows, "columns": found}


def _column(name: str, values: list[Any]) -> dict[str, Any]:
    types = set(map(type, values))
    if types and types <= {int, float}:  # the common case, at C speed where it can be
        present = [v for v in values if v == v]  # NaN is the one value unequal to itself
        whole = float not in types or all(type(v) is int for v in present)
        return {
            "name": name,
            "count": len(present),
            "nulls": len(values) - len(present),
            "dtype": "int64" if whole else "float64",
            "kind": "numeric",
            **_numeric(present),
        }
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    base: dict[str, Any] = {
        "name": name,
        "count": len(present),
        "nulls": len(values) - len(present),
    }
    if present and all(isinstance(v, bool) for v in present):
        return {**base, "dtype": "bool", "kind": "boolean", **_top(present)}
    if all(is_number(v) for v in present):
        dtype = "int64" if all(isinstance(v, int) for v in present) else "float64"
        return {**base, "dtype": dtype, "kind": "numeric", **_numeric(present)}
    return {**base, "dtype": "object", "kind": "categorical", **_top(present)}


def _top(values: list[Any]) -> dict[str, Any]:
    counts = Counter(_text(v) for v in values)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {"distinct": len(counts), "top": [[v, n] for v, n in ordered[:TOP_VALUES]]}


def _text(value: Any) -> str:
    """A value as pandas writes it for a profile's top values."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    return json.dumps(value, default=str)


def _numeric(values: list[Any]) -> dict[str, Any]:
    finite = sorted(map(float, filter(math.isfinite, values)))
    out: dict[str, Any] = dict.fromkeys(("min", "max", "mean", "std", "quantiles", "histogram"))
    if len(finite) < len(values):
        out["infinities"] = len(values) - len(finite)
    if not finite:
        return out
    mean = math.fsum(finite) / len(finite)
    quantiles = [percentile(finite, 100 * i / (QUANTILES - 1)) for i in range(QUANTILES)]
    for i in range(1, QUANTILES):  # rounding may not break their order
        quantiles[i] = min(max(quantiles[i], quantiles[i - 1]), finite[-1])
    out.update(
        min=finite[0],
        max=finite[-1],
        mean=mean,
        std=math.sqrt(math.fsum([(v - mean) ** 2 for v in finite]) / len(finite)),
        quantiles=quantiles,
        histogram=_histogram(finite),
    )
    return out


def _histogram(ordered: list[float]) -> dict[str, list[Any]]:
    low, high = ordered[0], ordered[-1]
    if low == high:
        return {"edges": [low, high], "counts": [len(ordered)]}
    step = (high - low) / HISTOGRAM_BINS
    edges = [low + step * i for i in range(HISTOGRAM_BINS)] + [high]
    starts = [bisect_left(ordered, e) for e in edges[:-1]] + [len(ordered)]
    return {"edges": edges, "counts": [starts[i + 1] - starts[i] for i in range(HISTOGRAM_BINS)]}
