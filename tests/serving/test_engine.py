"""The inference server in-process (its FastAPI app under TestClient), with a fake
registry whose models are plain objects: the three body shapes, answers stamped with the
version, every row logged, bad rows as 400s that are logged as errors, readiness, an
alias move swapped in while a request is in flight (which finishes on the old model),
endpoints with sticky weighted assignment, shadows that are logged but never returned
and never waited for, and which calls run on the event loop and which in the pool."""

from __future__ import annotations

import json
import math
import re
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from promtext import parse, value
from starlette.exceptions import StarletteDeprecationWarning

from cairn.domain.errors import Invalid, NotFound, Unavailable
from cairn.domain.models import Approval, ModelVersion
from cairn.domain.production import Endpoint, NewPrediction, Variant
from cairn.domain.refs import RefKind, parse_ref
from cairn.serving import InferenceServer, PredictionLog, ServingMetrics, create_serving_app
from cairn.serving.metrics import CONTENT_TYPE

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

SIGNATURE = {"inputs": [{"name": "x", "type": "float64"}, {"name": "y", "type": "float64"}]}


def model_version(n: int) -> ModelVersion:
    return ModelVersion(
        project="p",
        name="m",
        version=n,
        semver=f"1.0.{n - 1}",
        bump_reason="",
        run_id=None,
        flavor="fake",
        algorithm=None,
        signature=SIGNATURE,
        digest=f"digest-{n}",
        size=1,
        approval=Approval.APPROVED,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@dataclass
class FakeModel:
    """Predicts ``version * 100 + x + y`` per row; can wait on a gate, sleep or fail."""

    version: ModelVersion
    signature: dict[str, Any] = field(default_factory=lambda: SIGNATURE)
    gate: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)
    delay_s: float = 0.0
    fail: Exception | None = None
    threads: list[str] = field(default_factory=list)  # where each call ran

    def predict(self, data: Any) -> list[float]:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        rows = [(r["x"], r["y"]) if isinstance(r, dict) else tuple(r) for r in data]
        if any(not isinstance(v, int | float) for row in rows for v in row):
            raise ValueError("could not convert string to float")
        return [self.version.version * 100 + x + y for x, y in rows]


class FakeRegistry:
    def __init__(self, count: int = 3) -> None:
        self.models = {n: FakeModel(model_version(n)) for n in range(1, count + 1)}
        self.aliases = {"production": 1, "staging": 2}
        self.endpoint: Endpoint | None = None
        self.down = False
        self.load_gate: threading.Event | None = None
        self.loads: list[int] = []

    def get_model_version(self, ref: str, project: str | None = None) -> ModelVersion:
        if self.down:
            raise Unavailable("cannot reach the Cairn server")
        parsed = parse_ref(ref)
        if parsed.kind is RefKind.ALIAS:
            assert parsed.alias is not None
            return self.models[self.aliases[parsed.alias]].version
        assert parsed.kind is RefKind.VERSION and parsed.version is not None
        return self.models[parsed.version].version

    def load_model(self, ref: str, project: str | None = None) -> FakeModel:
        if self.load_gate is not None:
            assert self.load_gate.wait(10)
        found = self.get_model_version(ref, project)
        self.loads.append(found.version)
        return self.models[found.version]

    def get_endpoint(self, name: str, project: str | None = None) -> Endpoint:
        if self.endpoint is None or self.endpoint.name != name:
            raise NotFound(f"endpoint {name!r} does not exist")
        return self.endpoint

    def set_endpoint(self, variants: list[Variant]) -> None:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        self.endpoint = Endpoint("p", "churn", "", variants, {}, at, at)


class Logged:
    """A fake Cairn behind the real prediction log."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str | None, NewPrediction]] = []
        self.lock = threading.Lock()

    def __call__(
        self, project: str, ref: str, endpoint: str | None, records: list[NewPrediction]
    ) -> int:
        with self.lock:
            self.rows.extend((ref, endpoint, r) for r in records)
        return len(records)


@dataclass
class Setup:
    registry: FakeRegistry
    server: InferenceServer
    http: TestClient
    logged: Logged
    log: PredictionLog

    def flushed(self) -> list[tuple[str, str | None, NewPrediction]]:
        assert self.log.flush(5)
        return list(self.logged.rows)

    def metrics(self) -> dict[Any, float]:
        response = self.http.get("/metrics")
        assert response.headers["content-type"] == CONTENT_TYPE
        return parse(response.text)[1]


def serving(
    registry: FakeRegistry, wait: bool = True, loop_budget_s: float = 0.02, **options: Any
) -> Iterator[Setup]:
    """The app around a server on ``registry``; the poller is left idle (tests call
    ``refresh()`` where it would have looked)."""
    logged = Logged()
    metrics = ServingMetrics()
    log = PredictionLog(logged, metrics, interval_s=0.02)
    server = InferenceServer(
        registry, project="p", log=log, metrics=metrics, poll_interval_s=3600, **options
    )
    app = create_serving_app(server, max_body_bytes=4096, loop_budget_s=loop_budget_s)
    with TestClient(app, raise_server_exceptions=False) as http:
        deadline = time.monotonic() + 5
        while wait and not server.ready() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield Setup(registry, server, http, logged, log)


@pytest.fixture
def model() -> Iterator[Setup]:
    yield from serving(FakeRegistry(), model_ref="m@production")


@pytest.fixture
def endpoint() -> Iterator[Setup]:
    registry = FakeRegistry()
    registry.set_endpoint(
        [
            Variant("champion", "m@production", 90),
            Variant("challenger", "m:2", 10),
            Variant("shadow", "m:3", 0, shadow=True),
        ]
    )
    yield from serving(registry, endpoint="churn")


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


# -- one model ---------------------------------------------------------------------------


def test_every_body_shape_is_answered_and_stamped(model: Setup) -> None:
    http = model.http
    by_records = http.post("/predict", json={"records": [{"x": 1, "y": 2}], "unit_id": "u1"})
    assert by_records.status_code == 200, by_records.text
    answer = by_records.json()
    assert answer["predictions"] == [103]
    assert (answer["model"], answer["version"], answer["semver"]) == ("m", 1, "1.0.0")
    assert answer["variant"] is None
    assert len(answer["request_id"]) == 26 and answer["request_ids"] == [answer["request_id"]]

    by_columns = http.post(
        "/predict", json={"columns": {"y": [1, 2], "x": [10, 20]}, "request_id": "req-7"}
    ).json()
    assert by_columns["predictions"] == [111, 122]
    assert by_columns["request_id"] == "req-7"
    assert by_columns["request_ids"] == ["req-7.0", "req-7.1"]
    by_lists = http.post("/predict", json={"instances": [[1, 1], [2, 2]]}).json()
    assert by_lists["predictions"] == [102, 104]
    by_objects = http.post("/predict", json={"instances": [{"x": 0, "y": 5}]}).json()
    assert by_objects["predictions"] == [105]

    logged = {r.request_id: (ref, ep, r) for ref, ep, r in model.flushed()}
    assert len(logged) == 6
    ref, endpoint, first = logged[answer["request_id"]]
    assert (ref, endpoint) == ("p/m:1", None)
    assert first.inputs == {"x": 1, "y": 2} and first.outputs == 103
    assert first.unit_id == "u1" and first.variant == "" and first.shadow is False
    assert first.latency_ms is not None and first.latency_ms >= 0 and first.error is None
    assert first.at is not None and abs((datetime.now(UTC) - first.at).total_seconds()) < 10
    assert logged["req-7.1"][2].inputs == {"y": 2, "x": 20}
    # Rows sent as lists are logged with the column names the signature gives them.
    lists = [r for _, _, r in logged.values() if r.outputs == 104]
    assert lists[0].inputs == {"x": 2, "y": 2}

    samples = model.metrics()
    labels = {"model": "m", "version": "1", "variant": ""}
    assert value(samples, "cairn_serve_requests_total", **labels) == 4
    assert value(samples, "cairn_serve_predictions_total", **labels) == 6
    assert value(samples, "cairn_serve_request_duration_seconds_count", **labels) == 4
    assert value(samples, "cairn_serve_errors_total", **labels) == 0
    info = {"model": "m", "version": "1", "semver": "1.0.0", "variant": ""}
    assert value(samples, "cairn_serve_model_info", **info) == 1
    assert value(samples, "cairn_serve_prediction_log_sent_total") == 6


def test_bad_requests_are_400_naming_the_field(model: Setup) -> None:
    http = model.http

    def refused(body: Any, status: int = 400) -> dict[str, Any]:
        return error_of(http.post("/predict", json=body), status)

    assert refused({})["details"]["field"] == "body"
    both = refused({"records": [{"x": 1, "y": 1}], "instances": [[1, 1]]})
    assert "got records, instances" in both["message"]
    assert refused({"records": []})["details"]["field"] == "records"
    assert refused({"columns": {"x": [1, 2], "y": [1]}})["details"]["field"] == "columns"
    assert refused({"columns": {}})["details"]["field"] == "columns"
    assert refused({"instances": [[1, 2], {"x": 1}]})["details"]["field"] == "instances"
    assert refused({"records": [{"x": 1}], "rows": 1})["details"]["field"] == "rows"
    assert refused({"records": [1]})["details"]["field"] == "records.0"
    assert refused({"records": [{"x": 1}], "unit_id": "u" * 251})["details"]["field"] == "unit_id"
    assert refused({"records": [{"x": 1}], "request_id": "a\x00b"})["details"]["field"] == (
        "request_id"
    )
    not_json = http.post("/predict", content=b"{", headers={"content-type": "application/json"})
    assert error_of(not_json, 400)["details"]["field"] == "body"
    too_large = http.post("/predict", json={"records": [{"x": 1, "y": "z" * 5000}]})
    assert error_of(too_large, 413)["code"] == "too_large"
    chunked = http.post("/predict", content=iter([b'{"records": [', b"1," * 3000, b"1]}"]))
    assert error_of(chunked, 413)["code"] == "too_large"
    by_get = http.get("/predict")
    assert error_of(by_get, 405)["code"] == "method_not_allowed"
    assert by_get.headers["allow"] == "POST"
    assert error_of(http.post("/predict/"), 404)["code"] == "not_found"

    strings = refused({"records": [{"x": "a", "y": 1}], "request_id": "bad-row"})
    assert "could not convert string to float" in strings["message"]
    logged = [r for _, _, r in model.flushed()]
    assert [(r.request_id, r.outputs) for r in logged] == [("bad-row", None)]
    assert logged[0].error is not None and "could not convert" in logged[0].error
    labels = {"model": "m", "version": "1", "variant": ""}
    samples = model.metrics()
    assert value(samples, "cairn_serve_errors_total", **labels) == 7  # reached the model's turn
    refused = {"model": "m@production", "version": "", "variant": ""}  # refused by the schema
    assert value(samples, "cairn_serve_errors_total", **refused) == 5
    assert value(samples, "cairn_serve_requests_total", **refused) == 5


def test_a_model_that_crashes_is_a_500_that_echoes_nothing(
    model: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    crashing = model.registry.models[1]
    for timed in (False, True):  # in the pool, then (once timed) on the loop: one answer
        if timed:
            crashing.fail = None
            assert model.http.post("/predict", json={"instances": [[1, 2]]}).status_code == 200
        crashing.fail = RuntimeError("secret internals")
        body = error_of(model.http.post("/predict", json={"instances": [[1, 2]]}), 500)
        assert body["code"] == "internal" and "secret" not in body["message"]
        assert len(body["details"]["incident"]) == 12
        assert body["details"]["incident"] in caplog.text  # the log finds it
    assert crashing.threads[0].startswith("cairn-predict")
    assert not crashing.threads[-1].startswith("cairn-predict")
    assert "RuntimeError: secret internals" in (model.flushed()[0][2].error or "")


def test_health_and_readiness() -> None:
    registry = FakeRegistry()
    registry.load_gate = threading.Event()
    for setup in serving(registry, wait=False, model_ref="m@production"):
        http = setup.http
        assert http.get("/healthz").json()["status"] == "ok"
        not_ready = error_of(http.get("/readyz"), 503)
        assert not_ready["details"]["variants"][0] == {
            "variant": None,
            "target": "m@production",
            "loaded": False,
        }
        assert error_of(http.post("/predict", json={"instances": [[1, 1]]}), 503)["code"] == (
            "unavailable"
        )
        registry.load_gate.set()
        deadline = time.monotonic() + 5
        while http.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        ready = http.get("/readyz").json()
        assert ready["status"] == "ready"
        assert ready["variants"][0]["ref"] == "p/m:1"
        samples = setup.metrics()
        assert value(samples, "cairn_serve_errors_total", model="m@production", version="",
                     variant="") == 1  # fmt: skip


def test_an_alias_move_swaps_models_while_requests_run(model: Setup) -> None:
    http, registry = model.http, model.registry
    gate = registry.models[1].gate = threading.Event()
    slow: dict[str, Any] = {}
    in_flight = threading.Thread(
        target=lambda: slow.update(http.post("/predict", json={"instances": [[1, 1]]}).json())
    )
    in_flight.start()
    assert registry.models[1].entered.wait(5)

    registry.aliases["production"] = 2
    model.server.refresh()  # what the poller does every interval
    fast = http.post("/predict", json={"instances": [[1, 1]]}).json()
    assert (fast["version"], fast["semver"], fast["predictions"]) == (2, "1.0.1", [202])
    gate.set()
    in_flight.join(5)
    assert (slow["version"], slow["predictions"]) == (1, [102])  # finished on the old model

    versions = {r.request_id: ref for ref, _, r in model.flushed()}
    assert versions == {slow["request_id"]: "p/m:1", fast["request_id"]: "p/m:2"}
    samples = model.metrics()
    assert value(samples, "cairn_serve_model_swaps_total", variant="") == 2  # load, move
    assert value(samples, "cairn_serve_model_info", model="m", version="2", semver="1.0.1",
                 variant="") == 1  # fmt: skip
    assert ("cairn_serve_model_info", frozenset({("model", "m"), ("version", "1"),
            ("semver", "1.0.0"), ("variant", "")})) not in samples  # fmt: skip
    model.server.refresh()
    assert registry.loads == [1, 2]  # nothing reloaded when nothing moved


def test_a_registry_that_is_away_leaves_the_model_serving(model: Setup) -> None:
    model.registry.down = True
    model.server.refresh()
    answer = model.http.post("/predict", json={"instances": [[1, 1]]})
    assert answer.status_code == 200 and answer.json()["version"] == 1
    assert value(model.metrics(), "cairn_serve_model_load_errors_total") == 1


def test_model_and_endpoint_are_one_or_the_other() -> None:
    with pytest.raises(Invalid):
        InferenceServer(FakeRegistry(), project="p")
    with pytest.raises(Invalid):
        InferenceServer(FakeRegistry(), project="p", model_ref="m:1", endpoint="churn")


# -- endpoints ---------------------------------------------------------------------------


def test_assignment_is_sticky_per_unit_and_follows_the_weights(endpoint: Setup) -> None:
    http = endpoint.http

    def ask(unit: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"instances": [[1, 1]]}
        if unit is not None:
            body["unit_id"] = unit
        response = http.post("/predict", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    first = {f"user-{i}": ask(f"user-{i}")["variant"] for i in range(300)}
    for unit in list(first)[:30]:
        assert ask(unit)["variant"] == first[unit]  # sticky
    shares = Counter(first.values())
    assert set(shares) == {"champion", "challenger"}  # never the shadow
    assert 0.8 < shares["champion"] / 300 < 0.97
    anonymous = Counter(ask(None)["variant"] for _ in range(60))
    assert set(anonymous) <= {"champion", "challenger"}

    answer = ask("user-1")
    expected = {"champion": (1, 102), "challenger": (2, 202)}[answer["variant"]]
    assert (answer["version"], answer["predictions"][0]) == expected
    ready = http.get("/readyz").json()["variants"]
    assert {v["variant"]: (v["version"], v["shadow"]) for v in ready} == {
        "champion": (1, False),
        "challenger": (2, False),
        "shadow": (3, True),
    }


def test_shadows_are_logged_never_returned_never_waited_for(endpoint: Setup) -> None:
    http, registry = endpoint.http, endpoint.registry
    registry.models[3].delay_s = 0.5  # a slow shadow
    started = time.perf_counter()
    answers = [
        http.post("/predict", json={"instances": [[i, 0], [0, i]], "unit_id": f"u{i}"}).json()
        for i in range(4)
    ]
    assert time.perf_counter() - started < 1.5  # 4 requests, each with a 0.5 s shadow
    assert all(a["variant"] != "shadow" and a["version"] != 3 for a in answers)
    assert all(p < 300 for a in answers for p in a["predictions"])

    deadline = time.monotonic() + 10
    while len(endpoint.flushed()) < 16:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    rows = endpoint.flushed()
    shadows = [(ref, ep, r) for ref, ep, r in rows if r.shadow]
    served = [(ref, ep, r) for ref, ep, r in rows if not r.shadow]
    ids = sorted(i for a in answers for i in a["request_ids"])
    assert sorted(r.request_id for _, _, r in shadows) == ids
    assert sorted(r.request_id for _, _, r in served) == ids
    assert {(ref, ep, r.variant) for ref, ep, r in shadows} == {("p/m:3", "churn", "shadow")}
    assert all(r.outputs >= 300 for _, _, r in shadows)
    by_id = {r.request_id: r for _, _, r in served}
    for answer in answers:
        for rid, prediction in zip(answer["request_ids"], answer["predictions"], strict=True):
            assert by_id[rid].outputs == prediction and by_id[rid].variant == answer["variant"]
    samples = endpoint.metrics()
    assert value(samples, "cairn_serve_shadow_requests_total", model="m", version="3",
                 variant="shadow") == 4  # fmt: skip


def test_a_failing_shadow_changes_no_answer(endpoint: Setup) -> None:
    endpoint.registry.models[3].fail = RuntimeError("shadow broke")
    answer = endpoint.http.post("/predict", json={"instances": [[1, 1]], "unit_id": "u"})
    assert answer.status_code == 200
    deadline = time.monotonic() + 5
    while not any(r.shadow for _, _, r in endpoint.flushed()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    shadow = next(r for _, _, r in endpoint.flushed() if r.shadow)
    assert shadow.outputs is None and "shadow broke" in (shadow.error or "")
    samples = endpoint.metrics()
    assert value(samples, "cairn_serve_shadow_errors_total", model="m", version="3",
                 variant="shadow") == 1  # fmt: skip


def test_new_variants_are_loaded_before_they_take_traffic(endpoint: Setup) -> None:
    registry = endpoint.registry
    registry.set_endpoint([Variant("only", "m@staging", 1)])
    endpoint.server.refresh()
    answers = {
        endpoint.http.post("/predict", json={"instances": [[0, 0]], "unit_id": f"u{i}"}).json()[
            "version"
        ]
        for i in range(20)
    }
    assert answers == {2}
    registry.set_endpoint([Variant("gone", "m:9", 1)])  # cannot load: the old variants stay
    endpoint.server.refresh()
    answer = endpoint.http.post("/predict", json={"instances": [[0, 0]]}).json()
    assert answer["variant"] == "only"


def test_the_openapi_document_describes_predict(model: Setup) -> None:
    """``/predict`` is a plain route (see serving/app.py); its entry is written by hand and
    every schema it names is in the document."""
    document = model.http.get("/openapi.json").json()
    post = document["paths"]["/predict"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PredictIn"}
    assert set(post["responses"]) == {"200", "400", "413", "500", "503"}
    schemas = document["components"]["schemas"]
    assert {"instances", "records", "columns"} <= set(schemas["PredictIn"]["properties"])
    assert {"predictions", "model", "version"} <= set(schemas["PredictOut"]["properties"])
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert refs and refs <= set(schemas)
    assert model.http.get("/openapi.json").json() == document  # added once, not again


# -- where calls run ----------------------------------------------------------------------


def test_short_calls_run_on_the_loop_once_the_model_is_known_fast(model: Setup) -> None:
    http, fast = model.http, model.registry.models[1]
    assert model.server.expected_s() == math.inf  # nothing answered yet
    for _ in range(3):
        assert http.post("/predict", json={"instances": [[1, 1]]}).status_code == 200
    assert fast.threads[0].startswith("cairn-predict")  # unknown: the pool
    assert not any(name.startswith("cairn-predict") for name in fast.threads[1:])
    assert 0 < model.server.expected_s() < 0.02

    slow = model.registry.models[2]
    slow.delay_s = 0.05  # over the 20 ms budget
    model.registry.aliases["production"] = 2
    model.server.refresh()
    assert model.server.expected_s() == math.inf  # a new version is timed afresh
    for _ in range(3):
        assert http.post("/predict", json={"instances": [[1, 1]]}).json()["version"] == 2
    assert all(name.startswith("cairn-predict") for name in slow.threads)
    assert model.server.expected_s() >= 0.05


def test_a_probe_answers_at_once_while_a_slow_model_predicts(model: Setup) -> None:
    http, slow = model.http, model.registry.models[1]
    slow.delay_s = 0.05
    http.post("/predict", json={"instances": [[1, 1]]})  # timed: too slow for the loop
    slow.delay_s, slow.gate = 0.0, threading.Event()
    slow.entered.clear()
    answered: dict[str, Any] = {}
    busy = threading.Thread(
        target=lambda: answered.update(http.post("/predict", json={"instances": [[1, 1]]}).json())
    )
    busy.start()
    assert slow.entered.wait(5)
    started = time.perf_counter()
    assert http.get("/healthz").status_code == 200  # the gate is still shut
    assert http.get("/metrics").status_code == 200
    assert time.perf_counter() - started < 1.0
    slow.gate.set()
    busy.join(5)
    assert answered["predictions"] == [102]


def test_calls_run_in_the_pool_when_the_loop_budget_is_off() -> None:
    for setup in serving(FakeRegistry(), model_ref="m@production", loop_budget_s=0.0):
        for _ in range(3):
            assert setup.http.post("/predict", json={"instances": [[1, 1]]}).status_code == 200
        assert all(n.startswith("cairn-predict") for n in setup.registry.models[1].threads)


def test_an_endpoint_is_timed_by_its_slowest_answering_variant(endpoint: Setup) -> None:
    server, registry = endpoint.server, endpoint.registry
    registry.models[3].delay_s = 0.2  # the shadow: never on the loop anyway
    for i in range(40):
        endpoint.http.post("/predict", json={"instances": [[1, 1]], "unit_id": f"u{i}"})
    assert 0 < server.expected_s() < 0.02
    registry.models[2].delay_s = 0.1  # the challenger slows down
    variants = Counter(
        endpoint.http.post("/predict", json={"instances": [[1, 1]], "unit_id": f"u{i}"}).json()[
            "variant"
        ]
        for i in range(60)
    )
    assert variants["challenger"] >= 2
    assert server.expected_s() > 0.02
