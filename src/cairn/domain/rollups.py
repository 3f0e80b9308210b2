"""Predictions pre-aggregated per minute, so a monitoring report reads a few thousand
rows instead of every prediction (1,440 rows for a day of one version, whatever the
traffic). Plain Python; the table is ``store/tables/production.py``.

A rollup holds what the report's statistics need and can be merged, so minutes add up
to windows: counts (exact), the latencies' moments and a log-scale histogram (their
percentiles within ``RELATIVE_ERROR``; mean and max exact up to float rounding), and the
outputs' class counts, moments and histogram (the distribution a report shows). Quality
is not here: feedback arrives later and is joined per row (``ProductionRepository``).

>>> sketch = LogSketch()
>>> for v in range(1, 101):
...     sketch.add(float(v))
>>> abs(sketch.quantile(50, 1.0, 100.0) - 50.5) / 50.5 <= RELATIVE_ERROR
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cairn.domain.monitoring import Latency, NumericSummary, OutputDistribution
from cairn.domain.prediction_stats import OTHER, class_label, decoded_value, is_number
from cairn.domain.profiles import TOP_VALUES

MINUTE_MS = 60_000
RELATIVE_ERROR = 0.01  # of a percentile read off a LogSketch
CLASS_CAP = 256  # distinct output labels one rollup row keeps; past it, none (see Outputs)
PAIR_CAP = 1024  # distinct (outputs, actual) pairs one rollup row keeps (see Labels)
_GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(_GAMMA)
_TINY = 1e-12  # magnitudes below this count as zero: no relative error means much there


class RollupIncomplete(Exception):
    """A report needs what the rollups dropped (the classes of many distinct outputs):
    it reads the predictions instead."""


class LogSketch:
    """Counts of values in buckets whose bounds grow by a factor ``_GAMMA``: any value
    comes back within ``RELATIVE_ERROR`` of itself, the buckets of two sketches add up,
    and a day of latencies between 0.5 and 8 ms takes about 140 buckets."""

    __slots__ = ("negative", "positive", "zeros")

    def __init__(self) -> None:
        self.positive: dict[int, int] = {}
        self.negative: dict[int, int] = {}  # by the bucket of the magnitude
        self.zeros = 0

    def add(self, value: float, times: int = 1) -> None:
        magnitude = abs(value)
        if magnitude < _TINY:
            self.zeros += times
            return
        index = math.ceil(math.log(magnitude) / _LOG_GAMMA)
        side = self.positive if value > 0 else self.negative
        side[index] = side.get(index, 0) + times

    def add_all(self, values: list[float]) -> None:
        """``add`` of each value (>= 0, as latencies are), a list at a time."""
        scale = 1.0 / _LOG_GAMMA
        log, ceil = math.log, math.ceil
        zeros = sum(1 for v in values if v < _TINY)
        self.zeros += zeros
        bins = self.positive
        for index in (ceil(log(v) * scale) for v in values if v >= _TINY):
            bins[index] = bins.get(index, 0) + 1

    def merge(self, other: LogSketch) -> None:
        for mine, theirs in ((self.positive, other.positive), (self.negative, other.negative)):
            for index, n in theirs.items():
                mine[index] = mine.get(index, 0) + n
        self.zeros += other.zeros

    @property
    def count(self) -> int:
        return self.zeros + sum(self.positive.values()) + sum(self.negative.values())

    def quantile(self, q: float, low: float, high: float) -> float:
        """The q-th percentile (0..100), interpolated between neighbours as
        ``domain.stats.percentile`` does, kept within the exact ``low`` and ``high``."""
        n = self.count
        if n == 0:
            raise ValueError("quantile of an empty sketch")
        position = (n - 1) * q / 100.0
        below = math.floor(position)
        first, second = self._values_at(below, min(below + 1, n - 1))
        value = first + (second - first) * (position - below)
        return min(max(value, low), high)

    def _values_at(self, first: int, second: int) -> tuple[float, float]:
        """The values of two ranks (0-based, ascending, first <= second)."""
        found: list[float] = []
        seen = 0
        for value, n in self._ascending():
            seen += n
            while len(found) < 2 and (first if not found else second) < seen:
                found.append(value)
            if len(found) == 2:
                break
        return found[0], found[1]

    def _ascending(self) -> Iterable[tuple[float, int]]:
        for index in sorted(self.negative, reverse=True):
            yield -_middle(index), self.negative[index]
        if self.zeros:
            yield 0.0, self.zeros
        for index in sorted(self.positive):
            yield _middle(index), self.positive[index]

    def to_json(self) -> dict[str, Any]:
        """Each side as [first index, its count, the next one's, …]: a list of numbers
        decodes several times faster than an object keyed by text."""
        out: dict[str, Any] = {"p": _dense(self.positive)}
        if self.negative:
            out["n"] = _dense(self.negative)
        if self.zeros:
            out["z"] = self.zeros
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogSketch:
        sketch = cls()
        sketch.positive = _sparse(data.get("p", []))
        sketch.negative = _sparse(data.get("n", []))
        sketch.zeros = int(data.get("z", 0))
        return sketch


def _dense(bins: dict[int, int]) -> list[int]:
    if not bins:
        return []
    first = min(bins)
    return [first, *(bins.get(i, 0) for i in range(first, max(bins) + 1))]


def _sparse(dense: list[int]) -> dict[int, int]:
    if not dense:
        return {}
    first = dense[0]
    return {first + i: n for i, n in enumerate(dense[1:]) if n}


def _middle(index: int) -> float:
    """The value that stands for bucket ``index``, (g^(i-1), g^i] with g = _GAMMA:
    within (g-1)/(g+1) = RELATIVE_ERROR of any value in it."""
    return 2.0 * _GAMMA**index / (_GAMMA + 1.0)


@dataclass(slots=True)
class Moments:
    """Count, mean, sum of squared deviations, min and max; two merge exactly (Chan et
    al.'s pairwise update), with none of the cancellation of a sum of squares."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float, times: int = 1) -> None:
        self.merge(Moments(times, value, 0.0, value, value))

    @classmethod
    def of(cls, values: list[float]) -> Moments:
        """The moments of values (not empty), in two passes: as exact as floats allow."""
        n = len(values)
        mean = math.fsum(values) / n
        m2 = math.fsum([(v - mean) * (v - mean) for v in values])
        return cls(n, mean, m2, min(values), max(values))

    def merge(self, other: Moments) -> None:
        if other.n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            self.low, self.high = other.low, other.high
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    def to_json(self) -> list[float]:
        return [self.n, self.mean, self.m2, self.low, self.high] if self.n else []

    @classmethod
    def from_json(cls, data: list[Any]) -> Moments:
        if not data:
            return cls()
        return cls(int(data[0]), float(data[1]), float(data[2]), float(data[3]), float(data[4]))


@dataclass(slots=True)
class Outputs:
    """The successful predictions' values (``prediction_value`` of their outputs): how
    many, whether any is fractional (``infer_task`` then says regression), the class
    counts (None once more than ``CLASS_CAP`` distinct labels: a regression's outputs),
    and the numeric ones' moments and histogram."""

    values: int = 0
    non_numeric: int = 0
    fractional: bool = False
    classes: dict[str, int] | None = field(default_factory=dict)
    numbers: Moments = field(default_factory=Moments)
    sketch: LogSketch = field(default_factory=LogSketch)

    def add(self, value: Any, times: int = 1) -> None:
        """A value (``prediction_value`` of an output) seen ``times`` times."""
        if value is None:
            return
        self.values += times
        self.fractional = self.fractional or isinstance(value, float)
        if self.classes is not None:
            text = class_label(value)
            self.classes[text] = self.classes.get(text, 0) + times
            if len(self.classes) > CLASS_CAP:
                self.classes = None
        if is_number(value):
            self.numbers.add(float(value), times)
            self.sketch.add(float(value), times)
        else:
            self.non_numeric += times

    def merge(self, other: Outputs) -> None:
        self.values += other.values
        self.non_numeric += other.non_numeric
        self.fractional = self.fractional or other.fractional
        if self.classes is not None and other.classes is not None:
            for text, n in other.classes.items():
                self.classes[text] = self.classes.get(text, 0) + n
        else:
            self.classes = None
        self.numbers.merge(other.numbers)
        self.sketch.merge(other.sketch)

    def distribution(self, task: str | None) -> OutputDistribution | None:
        """What ``prediction_stats`` shows for the same values; ``RollupIncomplete`` when
        it would show classes this rollup no longer counts."""
        if not self.values:
            return None
        if task == "regression" and not self.non_numeric:
            m = self.numbers
            return OutputDistribution(
                numeric=NumericSummary(
                    count=m.n,
                    mean=m.mean,
                    std=math.sqrt(max(0.0, m.m2) / m.n),
                    min=m.low,
                    p50=self.sketch.quantile(50, m.low, m.high),
                    max=m.high,
                )
            )
        if self.classes is None:
            raise RollupIncomplete(f"more than {CLASS_CAP} distinct outputs in a minute")
        top = sorted(self.classes.items(), key=lambda item: (-item[1], item[0]))
        classes = dict(top[:TOP_VALUES])
        rest = sum(n for _, n in top[TOP_VALUES:])
        if rest:
            classes[OTHER] = rest
        return OutputDistribution(classes=classes)

    def to_json(self) -> dict[str, Any]:
        return {
            "values": self.values,
            "non_numeric": self.non_numeric,
            "fractional": self.fractional,
            "classes": self.classes,
            "numbers": self.numbers.to_json(),
            "sketch": self.sketch.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outputs:
        classes = data.get("classes")
        return cls(
            values=int(data.get("values", 0)),
            non_numeric=int(data.get("non_numeric", 0)),
            fractional=bool(data.get("fractional", False)),
            classes=None if classes is None else {str(k): int(v) for k, v in classes.items()},
            numbers=Moments.from_json(data.get("numbers", [])),
            sketch=LogSketch.from_json(data.get("sketch", {})),
        )


@dataclass(slots=True)
class Labels:
    """The successful predictions whose feedback has arrived: how many of each (outputs,
    actual) pair, by their JSON texts (None past ``PAIR_CAP`` distinct pairs), and of
    the pairs that are both numbers, how many and their errors' sums (what MAE and RMSE
    need, whatever the number of pairs). Feedback sent again with another value takes
    its old pair out (``times`` -1), so counts follow the feedback as it stands."""

    pairs: dict[tuple[str, str], int] | None = field(default_factory=dict)
    numeric: int = 0
    abs_errors: float = 0.0
    squared_errors: float = 0.0
    fractional: bool = False  # an actual value was a fractional number

    def add(self, outputs: str, actual: str, times: int, decoded: dict[str, Any]) -> None:
        self._count({(outputs, actual): times})
        out, act = decoded_value(outputs, decoded), decoded_value(actual, decoded)
        self.fractional = self.fractional or isinstance(act, float)
        if is_number(out) and is_number(act):
            error = float(out) - float(act)
            self.numeric += times
            self.abs_errors += abs(error) * times
            self.squared_errors += error * error * times

    def merge(self, other: Labels) -> None:
        if other.pairs is None:
            self.pairs = None
        else:
            self._count(other.pairs)
        self.numeric += other.numeric
        self.abs_errors += other.abs_errors
        self.squared_errors += other.squared_errors
        self.fractional = self.fractional or other.fractional

    def _count(self, pairs: dict[tuple[str, str], int]) -> None:
        """Add to the pairs' counts (a count back to 0 is dropped), unless past the cap."""
        if self.pairs is None:
            return
        for pair, n in pairs.items():
            total = self.pairs.get(pair, 0) + n
            if total:
                self.pairs[pair] = total
            else:
                self.pairs.pop(pair, None)
        if len(self.pairs) > PAIR_CAP:
            self.pairs = None

    def triples(self) -> list[tuple[str, str, int]]:
        """(outputs JSON, actual JSON, how many); ``RollupIncomplete`` past the cap."""
        if self.pairs is None:
            raise RollupIncomplete(f"more than {PAIR_CAP} distinct labeled outputs in a minute")
        return [(o, a, n) for (o, a), n in self.pairs.items() if n > 0]

    def to_json(self) -> dict[str, Any]:
        if self.pairs is not None and not self.pairs and not self.numeric:
            return {}
        return {
            "pairs": None
            if self.pairs is None
            else [[o, a, n] for (o, a), n in self.pairs.items()],
            "numeric": [self.numeric, self.abs_errors, self.squared_errors],
            "fractional": self.fractional,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Labels:
        if not data:
            return cls()
        pairs = data.get("pairs")
        numeric, abs_errors, squared_errors = data.get("numeric") or (0, 0.0, 0.0)
        return cls(
            pairs=None if pairs is None else {(str(o), str(a)): int(n) for o, a, n in pairs},
            numeric=int(numeric),
            abs_errors=float(abs_errors),
            squared_errors=float(squared_errors),
            fractional=bool(data.get("fractional", False)),
        )


@dataclass(slots=True)
class Rollup:
    """One group's predictions (a version behind a variant) in one minute, or merged
    over many: volume, errors, latencies (of failed ones too) and successful outputs."""

    volume: int = 0
    errors: int = 0
    latency: Moments = field(default_factory=Moments)
    latency_sketch: LogSketch = field(default_factory=LogSketch)
    outputs: Outputs = field(default_factory=Outputs)
    labels: Labels = field(default_factory=Labels)

    def merge(self, other: Rollup) -> None:
        self.volume += other.volume
        self.errors += other.errors
        self.latency.merge(other.latency)
        self.latency_sketch.merge(other.latency_sketch)
        self.outputs.merge(other.outputs)
        self.labels.merge(other.labels)

    def latency_stats(self) -> Latency | None:
        m = self.latency
        if m.n == 0:
            return None
        sketch = self.latency_sketch
        return Latency(
            p50=sketch.quantile(50, m.low, m.high),
            p95=sketch.quantile(95, m.low, m.high),
            p99=sketch.quantile(99, m.low, m.high),
            mean=m.mean,
            max=m.high,
        )

    def latency_json(self) -> str:
        return json.dumps({"m": self.latency.to_json(), "s": self.latency_sketch.to_json()})

    def outputs_json(self) -> str:
        return json.dumps(self.outputs.to_json(), separators=(",", ":"))

    def labels_json(self) -> str:
        return json.dumps(self.labels.to_json(), separators=(",", ":"))

    @classmethod
    def from_columns(
        cls, volume: int, errors: int, latency: str, outputs: str, labels: str = "{}"
    ) -> Rollup:
        lat = json.loads(latency)
        return cls(
            volume=int(volume),
            errors=int(errors),
            latency=Moments.from_json(lat.get("m", [])),
            latency_sketch=LogSketch.from_json(lat.get("s", {})),
            outputs=Outputs.from_json(json.loads(outputs)),
            labels=Labels.from_json(json.loads(labels)),
        )


# (project id, model id, version, endpoint id or 0, variant, shadow, minute start in ms)
RollupKey = tuple[int, int, int, int, str, bool, int]
# A prediction as the rollups read it: the key's columns but the minute, then its time
# (ms), outputs (JSON), latency, error and request id; the order of ``ROLLUP_COLUMNS`` in
# the store. Where a key column is NULL-able (endpoint id) the rollup's is 0.
RollupSource = tuple[int, int, int, int | None, str, bool, int, str | None, float | None, Any, str]


def rollup_key(source: RollupSource) -> RollupKey:
    project, model, version, endpoint, variant, shadow, at = source[:7]
    return (project, model, version, endpoint or 0, variant, bool(shadow), at - at % MINUTE_MS)


def fold(
    rows: Iterable[RollupSource], actuals: Mapping[str, str] | None = None
) -> dict[RollupKey, Rollup]:
    """Predictions added up per group and minute, with the feedback that arrived before
    them (``actuals``: JSON by request id). Rows are only sorted into their groups here
    (latencies listed, outputs counted by their JSON text), then each group is summed at
    once: a batch of a classifier's outputs decodes a few distinct texts."""
    parts: dict[RollupKey, _Part] = {}
    for row in rows:
        key = rollup_key(row)
        part = parts.get(key)
        if part is None:
            part = parts[key] = _Part()
        outputs, latency, error = row[7], row[8], row[9]
        part.volume += 1
        if latency is not None:
            part.latencies.append(latency)
        if error is not None:
            part.errors += 1
        elif outputs is not None:
            part.outputs[outputs] = part.outputs.get(outputs, 0) + 1
            if actuals:
                actual = actuals.get(row[10])
                if actual is not None:
                    pair = (outputs, actual)
                    part.labeled[pair] = part.labeled.get(pair, 0) + 1
    decoded: dict[str, Any] = {}
    return {key: part.rollup(decoded) for key, part in parts.items()}


def fold_labels(
    changes: Iterable[tuple[RollupSource, str, int]],
) -> dict[RollupKey, Rollup]:
    """Feedback that arrived for stored successful predictions: (the prediction, the
    actual's JSON, +1 or -1 for a value it replaces) as rollups of labels alone."""
    found: dict[RollupKey, Rollup] = {}
    decoded: dict[str, Any] = {}
    for source, actual, times in changes:
        outputs = source[7]
        if source[9] is not None or outputs is None:
            continue
        key = rollup_key(source)
        rollup = found.get(key)
        if rollup is None:
            rollup = found[key] = Rollup()
        rollup.labels.add(outputs, actual, times, decoded)
    return found


@dataclass(slots=True)
class _Part:
    """One group's and minute's predictions of a batch, sorted but not yet summed."""

    volume: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    outputs: dict[str, int] = field(default_factory=dict)  # JSON text: how many
    labeled: dict[tuple[str, str], int] = field(default_factory=dict)  # (outputs, actual)

    def rollup(self, decoded: dict[str, Any]) -> Rollup:
        found = Rollup(volume=self.volume, errors=self.errors)
        if self.latencies:
            found.latency = Moments.of(self.latencies)
            found.latency_sketch.add_all(self.latencies)
        for text, n in self.outputs.items():
            found.outputs.add(decoded_value(text, decoded), n)
        for (outputs, actual), n in self.labeled.items():
            found.labels.add(outputs, actual, n, decoded)
        return found
