"""The serving process's own parts, without a model: the Prometheus exposition (read back
by a strict parser) and the prediction log's queue (batches by size and by time, retries
while Cairn is away, a bound that drops the oldest and says so, refusals that sink only
the record refused, and a ``put`` that never waits for the network)."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest
from promtext import parse, total, value

from cairn.domain.errors import Invalid, NotFound, Unauthenticated, Unavailable
from cairn.domain.production import NewPrediction
from cairn.serving.metrics import Counter, Gauge, Histogram, Registry, ServingMetrics
from cairn.serving.prediction_log import PredictionLog

# -- metrics -----------------------------------------------------------------------------


def test_the_exposition_parses_and_counts() -> None:
    requests = Counter("t_requests_total", "Requests", ("model", "version"))
    latency = Histogram("t_seconds", "Latency", ("model",), buckets=(0.01, 0.1, 1.0))
    info = Gauge("t_info", "Info", ("note",))
    queue = Gauge("t_queue", "Queue", source=lambda: 7)
    requests.inc("iris", "1")
    requests.inc("iris", "1")
    requests.inc("iris", "2", amount=3)
    for seconds in (0.005, 0.01, 0.05, 0.5, 5.0):
        latency.observe("iris", value=seconds)
    info.set('a "quoted"\\back\nslash', value=1)
    types, samples = parse(Registry([requests, latency, info, queue]).render())

    assert types == {
        "t_requests_total": "counter",
        "t_seconds": "histogram",
        "t_info": "gauge",
        "t_queue": "gauge",
    }
    assert value(samples, "t_requests_total", model="iris", version="1") == 2
    assert value(samples, "t_requests_total", model="iris", version="2") == 3
    buckets = {le: value(samples, "t_seconds_bucket", model="iris", le=le) for le in
               ("0.01", "0.1", "1", "+Inf")}  # fmt: skip
    assert buckets == {"0.01": 2, "0.1": 3, "1": 4, "+Inf": 5}  # a bound is inclusive
    assert value(samples, "t_seconds_count", model="iris") == 5
    assert math.isclose(value(samples, "t_seconds_sum", model="iris"), 5.565)
    assert value(samples, "t_info", note='a "quoted"\\back\nslash') == 1
    assert value(samples, "t_queue") == 7
    info.remove('a "quoted"\\back\nslash')
    assert "t_info{" not in Registry([info]).render()


def test_labels_must_match_the_declared_names() -> None:
    with pytest.raises(ValueError, match="takes labels"):
        Counter("c", "c", ("model",)).inc("iris", "1")


def test_serving_metrics_render_every_family_even_when_empty() -> None:
    types, samples = parse(ServingMetrics().render())
    assert {"cairn_serve_requests_total", "cairn_serve_errors_total"} <= set(types)
    assert types["cairn_serve_request_duration_seconds"] == "histogram"
    assert value(samples, "cairn_serve_prediction_log_queue") == 0


# -- the prediction log --------------------------------------------------------------------


class Sink:
    """A fake Cairn: records what arrives; can be down, refuse some ids, or be slow."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None, list[str]]] = []
        self.down = False
        self.refuse: set[str] = set()
        self.gate: threading.Event | None = None
        self.lock = threading.Lock()

    def __call__(
        self, project: str, ref: str, endpoint: str | None, records: list[NewPrediction]
    ) -> int:
        if self.gate is not None:
            self.gate.wait(10)
        if self.down:
            raise Unavailable("cannot reach the Cairn server")
        bad = [r.request_id for r in records if r.request_id in self.refuse]
        if bad:
            raise Invalid(f"refused {bad}", field="records")
        with self.lock:
            self.calls.append((project, ref, endpoint, [r.request_id for r in records]))
        return len(records)

    def ids(self) -> list[str]:
        with self.lock:
            return [i for call in self.calls for i in call[3]]


def records(*ids: str) -> list[NewPrediction]:
    return [NewPrediction(request_id=i, inputs={"x": 1}, outputs=0) for i in ids]


def make_log(sink: Sink, **options: Any) -> tuple[PredictionLog, ServingMetrics]:
    metrics = ServingMetrics()
    log = PredictionLog(sink, metrics, **options)
    log.start()
    return log, metrics


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_batches_by_size_at_once_and_by_time_otherwise() -> None:
    sink = Sink()
    log, metrics = make_log(sink, interval_s=30.0, batch_size=100)
    log.put("p", "p/iris:1", None, records(*(f"r{i}" for i in range(250))))
    wait_for(lambda: len(sink.ids()) == 200)  # two full batches went without waiting
    assert [len(c[3]) for c in sink.calls] == [100, 100]
    assert log.flush(5)
    assert sink.ids() == [f"r{i}" for i in range(250)]
    assert value(parse(metrics.render())[1], "cairn_serve_prediction_log_sent_total") == 250
    log.close()

    sink = Sink()
    log, _ = make_log(sink, interval_s=0.05, batch_size=100)
    started = time.monotonic()
    log.put("p", "p/iris:1", None, records("a", "b"))
    wait_for(lambda: sink.ids() == ["a", "b"], timeout=2)
    assert time.monotonic() - started < 1.5
    log.close()


def test_one_call_per_model_version_and_endpoint() -> None:
    sink = Sink()
    log, _ = make_log(sink, interval_s=30.0)
    log.put("p", "p/iris:1", "churn", records("a"))
    log.put("p", "p/iris:2", "churn", records("b"))
    log.put("p", "p/iris:1", "churn", records("c"))
    log.put("q", "q/iris:1", None, records("d"))
    assert log.flush(5)
    assert sorted(sink.calls) == [
        ("p", "p/iris:1", "churn", ["a", "c"]),
        ("p", "p/iris:2", "churn", ["b"]),
        ("q", "q/iris:1", None, ["d"]),
    ]
    log.close()


def test_kept_and_retried_while_cairn_is_away() -> None:
    sink = Sink()
    sink.down = True
    log, metrics = make_log(sink, interval_s=0.02, batch_size=10, max_backoff_s=0.05)
    log.put("p", "p/iris:1", None, records(*(f"r{i}" for i in range(25))))
    wait_for(lambda: metrics.log_failures.value() >= 3)
    assert sink.ids() == [] and len(log) == 25
    sink.down = False
    assert log.flush(5)
    assert sorted(sink.ids()) == sorted(f"r{i}" for i in range(25))  # each once
    log.close()


def test_a_full_queue_drops_the_oldest_and_counts_them() -> None:
    sink = Sink()
    sink.down = True
    log, metrics = make_log(sink, interval_s=0.01, batch_size=10, capacity=50, max_backoff_s=0.02)
    for start in range(0, 200, 20):
        log.put("p", "p/iris:1", None, records(*(f"r{i:03}" for i in range(start, start + 20))))
    assert len(log) <= 50
    sink.down = False
    assert log.flush(5)
    kept = sorted(sink.ids())
    assert len(kept) == 50 and kept == [f"r{i:03}" for i in range(150, 200)]  # the newest
    samples = parse(metrics.render())[1]
    assert value(samples, "cairn_serve_prediction_log_dropped_total", reason="queue_full") == 150
    log.close()


def test_a_refused_record_sinks_alone() -> None:
    sink = Sink()
    sink.refuse = {"bad"}
    log, metrics = make_log(sink, interval_s=30.0)
    log.put("p", "p/iris:1", None, records("a", "bad", "c"))
    assert log.flush(5)
    assert sorted(sink.ids()) == ["a", "c"]
    samples = parse(metrics.render())[1]
    assert value(samples, "cairn_serve_prediction_log_dropped_total", reason="refused") == 1
    assert total(samples, "cairn_serve_prediction_log_sent_total") == 2
    log.close()


def test_put_never_waits_for_cairn() -> None:
    sink = Sink()
    sink.gate = threading.Event()  # every send hangs until released
    log, _ = make_log(sink, interval_s=0.01, batch_size=5)
    started = time.perf_counter()
    for i in range(200):
        log.put("p", "p/iris:1", None, records(f"r{i}"))
    assert time.perf_counter() - started < 0.5
    sink.gate.set()
    assert log.flush(5)
    assert len(sink.ids()) == 200
    log.close()


def test_close_sends_what_is_queued() -> None:
    sink = Sink()
    log, _ = make_log(sink, interval_s=30.0)
    log.put("p", "p/iris:1", None, records("a", "b"))
    log.close(timeout=5)
    assert sink.ids() == ["a", "b"]


def test_unexpected_errors_are_retried_and_not_found_is_a_refusal() -> None:
    calls: list[int] = []

    def flaky(project: str, ref: str, endpoint: str | None, batch: list[NewPrediction]) -> int:
        calls.append(len(batch))
        if len(calls) == 1:
            raise OSError("database is locked")
        if endpoint == "gone":
            raise NotFound("endpoint 'gone' does not exist")
        return len(batch)

    metrics = ServingMetrics()
    log = PredictionLog(flaky, metrics, interval_s=0.01, max_backoff_s=0.02)
    log.start()
    log.put("p", "p/iris:1", None, records("a"))
    log.put("p", "p/iris:1", "gone", records("b"))
    assert log.flush(5)
    samples = parse(metrics.render())[1]
    assert value(samples, "cairn_serve_prediction_log_sent_total") == 1
    assert value(samples, "cairn_serve_prediction_log_dropped_total", reason="refused") == 1
    log.close()


def test_a_refused_token_keeps_the_predictions_queued_not_dropped() -> None:
    """Every record of a batch would be refused alike: kept (bounded) and retried."""
    refusing = [True]

    def guarded(project: str, ref: str, endpoint: str | None, batch: list[NewPrediction]) -> int:
        if refusing[0]:
            raise Unauthenticated("the API token is not valid or has been revoked")
        return len(batch)

    metrics = ServingMetrics()
    log = PredictionLog(guarded, metrics, interval_s=0.01, max_backoff_s=0.02)
    log.start()
    log.put("p", "p/iris:1", None, records("a", "b", "c"))
    wait_for(
        lambda: (
            value(parse(metrics.render())[1], "cairn_serve_prediction_log_send_failures_total") >= 2
        )
    )
    assert len(log) == 3
    refusing[0] = False
    assert log.flush(5)
    samples = parse(metrics.render())[1]
    assert value(samples, "cairn_serve_prediction_log_sent_total") == 3
    assert value(samples, "cairn_serve_prediction_log_dropped_total", reason="refused") == 0
    log.close()
