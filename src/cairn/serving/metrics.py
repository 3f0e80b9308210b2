"""Prometheus metrics in the text exposition format (0.0.4), with no dependency.

    requests = Counter("cairn_serve_requests_total", "Requests answered", ("model", "version"))
    requests.inc("iris", "3")
    text = Registry([requests]).render()   # what GET /metrics answers

Each metric keeps its series in a dict guarded by its own lock: an increment costs a dict
lookup, and a scrape copies the values under the lock before it formats them.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterator, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from 0.5 ms (a small scikit-learn model) to 10 s.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _check(self, labels: Labels) -> None:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[Labels, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._check(labels)
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        with self._lock:
            return self._values.get(labels, 0.0)

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]


class Gauge(_Metric):
    """Set by hand, or read from ``source`` at each scrape."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        source: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[Labels, float] = {}
        self._source = source

    def set(self, *labels: str, value: float) -> None:
        self._check(labels)
        with self._lock:
            self._values[labels] = value

    def remove(self, *labels: str) -> None:
        with self._lock:
            self._values.pop(labels, None)

    def lines(self) -> list[str]:
        if self._source is not None:
            return [f"{self.name} {_number(self._source())}"]
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(buckets))
        # Per series: a count per bucket (not cumulative), then the sum.
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, *labels: str, value: float) -> None:
        self._check(labels)
        slot = bisect.bisect_left(self.buckets, value)
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = ([0] * (len(self.buckets) + 1), [0.0])
            series[0][slot] += 1
            series[1][0] += value

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._series.items())
        out = []
        for labels, (counts, total) in items:
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                le = f'le="{_number(bound)}"'
                out.append(f"{self.name}_bucket{_labels(self.labelnames, labels, le)} {running}")
            out.append(f"{self.name}_sum{_labels(self.labelnames, labels)} {_number(total)}")
            out.append(f"{self.name}_count{_labels(self.labelnames, labels)} {running}")
        return out


class Registry:
    def __init__(self, metrics: Sequence[_Metric] = ()) -> None:
        self.metrics = list(metrics)

    def add(self, metric: _Metric) -> None:
        self.metrics.append(metric)

    def __iter__(self) -> Iterator[_Metric]:
        return iter(self.metrics)

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.metrics:
            lines.extend(metric.header())
            lines.extend(metric.lines())
        return "\n".join(lines) + "\n"


class ServingMetrics:
    """What ``cairn serve`` counts, labelled by model, version and variant."""

    def __init__(self) -> None:
        # Set by the prediction log once it exists; read at each scrape.
        self.queue_size: Callable[[], float] = lambda: 0.0
        by_version = ("model", "version", "variant")
        self.requests = Counter(
            "cairn_serve_requests_total", "Prediction requests answered or failed", by_version
        )
        self.errors = Counter(
            "cairn_serve_errors_total", "Prediction requests that failed", by_version
        )
        self.rows = Counter("cairn_serve_predictions_total", "Rows predicted", by_version)
        self.latency = Histogram(
            "cairn_serve_request_duration_seconds",
            "Time to answer a prediction request, in seconds",
            by_version,
        )
        self.shadow_requests = Counter(
            "cairn_serve_shadow_requests_total", "Copies of requests run by shadows", by_version
        )
        self.shadow_errors = Counter(
            "cairn_serve_shadow_errors_total", "Shadow runs that failed", by_version
        )
        self.shadow_skipped = Counter(
            "cairn_serve_shadow_skipped_total",
            "Requests not copied to a shadow (not loaded yet, or too many pending)",
            ("variant",),
        )
        self.model_info = Gauge(
            "cairn_serve_model_info",
            "The version each variant serves now (1)",
            ("model", "version", "semver", "variant"),
        )
        self.swaps = Counter(
            "cairn_serve_model_swaps_total", "Versions loaded and swapped in", ("variant",)
        )
        self.load_errors = Counter(
            "cairn_serve_model_load_errors_total", "Failed looks at the registry or loads", ()
        )
        self.log_sent = Counter(
            "cairn_serve_prediction_log_sent_total", "Predictions stored in Cairn", ()
        )
        self.log_dropped = Counter(
            "cairn_serve_prediction_log_dropped_total",
            "Predictions never stored: the queue was full (oldest dropped) or Cairn refused them",
            ("reason",),
        )
        self.log_failures = Counter(
            "cairn_serve_prediction_log_send_failures_total",
            "Batches that could not be sent (kept and retried)",
            (),
        )
        self.log_queue = Gauge(
            "cairn_serve_prediction_log_queue",
            "Predictions waiting to be sent",
            source=lambda: self.queue_size(),
        )
        self.registry = Registry(
            [
                self.requests,
                self.errors,
                self.rows,
                self.latency,
                self.shadow_requests,
                self.shadow_errors,
                self.shadow_skipped,
                self.model_info,
                self.swaps,
                self.load_errors,
                self.log_sent,
                self.log_dropped,
                self.log_failures,
                self.log_queue,
            ]
        )

    def render(self) -> str:
        return self.registry.render()
