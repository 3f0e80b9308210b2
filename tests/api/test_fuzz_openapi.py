"""schemathesis against ``/openapi.json``: every operation, in-process on the ASGI app.

The app runs on a fresh SQLite store made for the test session and seeded through the
batch endpoint with a project and a few runs (params, metrics, tags, a child run, a
git diff). Generated path and query parameters are sometimes swapped for those seeded
values, so the fuzzer also reaches runs, metrics and tags that exist instead of only
ever meeting 404.

Every response must hold: no 5xx, the documented schema for a documented status, and
on any 4xx the one error envelope ``{"error": {"code", "message", "details"}}``. A
status the schema does not document is counted and printed (and pinned, as known gaps,
by ``test_error_statuses_are_documented``). The closing line gives the cases run and
the failures.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.failures import FailureGroup
from starlette.exceptions import StarletteDeprecationWarning

from cairn.api.app import create_app
from cairn.domain.ids import new_ulid
from cairn.settings import Settings
from cairn.store.database import Database

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
MAX_EXAMPLES = 30
CHECKS = [not_a_server_error, response_schema_conformance]
TS0 = 1_709_294_400_000

# What the seed made; the hooks below draw from it. Filled by ``seeded``.
SEEDED: dict[str, list[str]] = {"runs": [], "projects": [], "keys": [], "tags": []}


class Tally:
    """Cases run and failures, per operation, and the statuses seen."""

    def __init__(self) -> None:
        self.cases: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.undocumented: Counter[tuple[str, int]] = Counter()

    def summary(self) -> str:
        gaps = ", ".join(
            f"{op} -> {status} x{n}" for (op, status), n in sorted(self.undocumented.items())
        )
        by_class = Counter(f"{status // 100}xx" for (_, status) in self.statuses.elements())
        ok = {op for (op, status) in self.statuses if status < 300}
        return (
            f"[schemathesis] operations={len(self.cases)} cases={sum(self.cases.values())} "
            f"answers={dict(sorted(by_class.items()))} failures={sum(self.failures.values())} "
            f"(in {len(self.failures)} operations: {sorted(self.failures) or 'none'}); "
            f"never answered 2xx: {sorted(set(self.cases) - ok) or 'none'}; "
            f"undocumented statuses: {gaps or 'none'}"
        )


TALLY = Tally()


# ---------------------------------------------------------------------------- the app


def _seed(client: TestClient) -> None:
    """A project and three runs, written through the batch endpoint."""
    assert client.post(f"{API}/projects", json={"name": "fuzz"}).status_code == 201
    parent, child, failed = new_ulid(), new_ulid(), new_ulid()
    series = {
        "steps": list(range(50)),
        "timestamps": [TS0 + i for i in range(50)],
        "values": [1 / (i + 1) for i in range(50)],
    }

    def start(run_id: str, **extra: Any) -> dict[str, Any]:
        return {"id": run_id, "project": "fuzz", "start_time": "2024-03-01T12:00:00Z", **extra}

    body = {
        "idempotency_key": f"seed-{parent}",
        "runs": [
            {
                "run_id": parent,
                "start": start(parent, name="parent", git_diff="--- a\n+++ b\n"),
                "params": {"lr": "0.1", "layers": "3"},
                "tags": {"team": "nlp"},
                "metrics": {"loss": series, "acc": series},
            },
            {
                "run_id": child,
                "start": start(child, parent_id=parent, experiment="sweep"),
                "params": {"lr": "0.2"},
                "metrics": {"loss": series},
                "end": {"status": "finished", "end_time": "2024-03-01T13:00:00Z"},
            },
            {
                "run_id": failed,
                "start": start(failed),
                "end": {"status": "failed", "end_time": "2024-03-01T13:00:00Z", "error": "x"},
            },
        ],
    }
    response = client.post(f"{API}/batches", json=body)
    assert response.status_code == 200, response.text
    SEEDED.update(
        runs=[parent, child, failed],
        projects=["fuzz"],
        keys=["loss", "acc"],
        tags=["team"],
    )


# The store is made when pytest imports this module (once per session) and removed at
# exit: schemathesis reads the operations from the app while collecting, before any
# fixture runs (its fixture-based loader, ``schemathesis.pytest.from_fixture``, fails on
# pytest 9.2: it reads ``request.node._nodeid``, which pytest no longer has).
_STORE = tempfile.TemporaryDirectory(prefix="cairn-fuzz-")
APP = create_app(Settings(store=_STORE.name), database=Database(_STORE.name))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def seeded() -> None:
    _seed(TestClient(APP))  # no lifespan: the store stays open for schemathesis


def _mostly(value: dict[str, Any], name: str, choices: st.SearchStrategy[Any]) -> Any:
    """Three times in four ``value`` with ``name`` drawn from ``choices``, else as made."""
    if not isinstance(value, dict) or name not in value:
        return st.just(value)
    replaced = choices.map(lambda c: {**value, name: c})
    return st.one_of(replaced, replaced, replaced, st.just(value))


def _seeded(kind: str) -> st.SearchStrategy[str]:
    return st.sampled_from(SEEDED[kind])


# What the schema cannot say (ids are ULIDs, names and keys have a pattern), the hooks
# supply, so that generated requests also get past validation and reach the store.
_ULIDS = st.from_regex(r"\A0[0-9A-HJKMNP-TV-Z]{25}\Z")
_NAMES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,30}\Z")


@schema.hooks.hook("flatmap_path_parameters")
def _existing_path(_ctx: Any, params: dict[str, Any]) -> Any:
    if params and "run_id" in params:
        return _mostly(params, "run_id", _seeded("runs"))
    return _mostly(params, "name", _seeded("projects"))


@schema.hooks.hook("flatmap_query")
def _existing_query(_ctx: Any, query: dict[str, Any]) -> Any:
    if query and "key" in query:
        return _mostly(query, "key", st.sampled_from(SEEDED["keys"] + SEEDED["tags"]))
    return _mostly(query, "project", _seeded("projects"))


@schema.hooks.hook("flatmap_body")
def _plausible_body(_ctx: Any, body: Any) -> Any:
    if isinstance(body, dict) and {"id", "project", "start_time"} <= set(body):  # RunStartIn
        return _mostly(body, "id", _ULIDS).flatmap(
            lambda b: _mostly(b, "project", _seeded("projects"))
        )
    if isinstance(body, dict) and "name" in body and set(body) <= {"name", "description"}:
        return _mostly(body, "name", _NAMES)  # ProjectIn
    if isinstance(body, dict) and set(body) == {"key", "value"}:  # TagIn
        return _mostly(body, "key", _seeded("tags") | st.just("stage"))
    return st.just(body)


# ---------------------------------------------------------------------------- the fuzz


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    line = TALLY.summary()
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():  # shown with or without -s
        reporter.write_line("")
        reporter.write_line(line)


def _documented(case: Any, status: int) -> bool:
    responses = case.operation.definition.raw.get("responses", {})
    return str(status) in responses or f"{str(status)[0]}XX" in responses or "default" in responses


def assert_envelope(response: Any) -> None:
    """The one error shape, on a schemathesis or an httpx response."""
    types = {k.lower(): v for k, v in response.headers.items()}.get("content-type", "")
    assert "".join(types).startswith("application/json"), response.headers
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    assert isinstance(error["details"], dict), error


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms(case: Any) -> None:
    label = case.operation.label
    TALLY.cases[label] += 1
    try:
        response = case.call()
        TALLY.statuses[(label, response.status_code)] += 1
        if not _documented(case, response.status_code):
            TALLY.undocumented[(label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)
        if 400 <= response.status_code < 500:
            assert_envelope(response)
    except BaseException:
        TALLY.failures[label] += 1
        raise


# ---------------------------------------------------------------------------- documented errors


def test_seed_is_reachable() -> None:
    """The values the hooks draw from really exist, so fuzzed cases can reach them."""
    client = TestClient(APP)
    run = SEEDED["runs"][0]
    assert client.get(f"{API}/runs/{run}").json()["params"] == {"lr": "0.1", "layers": "3"}
    history = client.get(f"{API}/runs/{run}/metrics/history", params={"key": "loss"}).json()
    assert history["steps"] == list(range(50))
    assert client.get(f"{API}/runs/{run}/children").json() == [SEEDED["runs"][1]]


def _probes(client: TestClient) -> list[tuple[str, str, int]]:
    """(method, path template, status) for answers every client meets: errors, no diff."""
    run, no_diff = SEEDED["runs"][0], SEEDED["runs"][1]
    missing = new_ulid()
    calls = [
        ("GET", "/api/v1/runs/{run_id}", client.get(f"{API}/runs/{missing}")),
        ("POST", "/api/v1/runs", client.post(f"{API}/runs", json={"id": "x"})),
        ("GET", "/api/v1/projects/{name}", client.get(f"{API}/projects/nope")),
        ("POST", "/api/v1/projects", client.post(f"{API}/projects", json={"name": "fuzz"})),
        ("PATCH", "/api/v1/runs/{run_id}", client.patch(f"{API}/runs/{run}", json={})),
        (
            "GET",
            "/api/v1/runs/{run_id}/metrics/history",
            client.get(f"{API}/runs/{run}/metrics/history", params={"key": "nope"}),
        ),
        ("GET", "/api/v1/runs", client.get(f"{API}/runs", params={"filter": "((("})),
        ("GET", "/api/v1/runs/{run_id}/git-diff", client.get(f"{API}/runs/{no_diff}/git-diff")),
    ]
    return [(method, path, response.status_code) for method, path, response in calls]


def test_error_statuses_are_documented() -> None:
    client = TestClient(APP)
    spec = client.get("/openapi.json").json()
    undocumented = []
    for method, path, status in _probes(client):
        responses = spec["paths"][path][method.lower()]["responses"]
        if str(status) not in responses:
            undocumented.append(f"{method} {path} -> {status} (documented: {sorted(responses)})")
    never_sent = [
        f"{method.upper()} {path}"
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if "422" in op.get("responses", {})
    ]
    assert not undocumented and not never_sent, (undocumented, never_sent)


# ---------------------------------------------------------------------------- explicit examples


@dataclass(frozen=True)
class Example:
    """One request the fuzzer rarely or never makes, and where it is known to fail."""

    name: str
    method: str
    path: str  # the operation's template; {run_id} is a run with NaN and inf logged
    url: str  # what is sent, {run} filled in
    body: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    fails_on: tuple[str, ...] = ()  # "sqlite", "postgresql"
    reason: str = ""  # starts "5xx:" (a server error) or "schema:" (a response off-schema)


_HISTORY = "/api/v1/runs/{run_id}/metrics/history"
_OFFSET_DATE = "0001-01-01T00:00:00+01:00"  # in UTC, a day before year 1
EXAMPLES = [
    Example("run-with-nan", "GET", "/api/v1/runs/{run_id}", "/api/v1/runs/{run}",
            reason="schema: NaN/inf metric summaries are sent as the strings 'NaN'/'Infinity'; "
            "MetricSummaryOut.last/min/max are documented as number"),
    Example("history-with-nan", "GET", _HISTORY, "/api/v1/runs/{run}/metrics/history",
            params={"key": "loss"},
            reason="schema: MetricHistoryOut.values sends 'NaN'/'Infinity', documented as number"),
    Example("search-with-nan", "POST", "/api/v1/runs/search", "/api/v1/runs/search",
            body={"project": "nan"},
            reason="schema: RunPageOut carries the same NaN/inf summaries"),
    Example("history-step-beyond-int64", "GET", _HISTORY, "/api/v1/runs/{run}/metrics/history",
            params={"key": "loss", "min_step": 2**70},
            reason="5xx: min_step/max_step are not bounded to int64: OverflowError (SQLite), "
            "NumericValueOutOfRange (PostgreSQL) -> 500"),
    Example("history-steps-in-int64", "GET", _HISTORY, "/api/v1/runs/{run}/metrics/history",
            params={"key": "acc", "min_step": -(2**63), "max_step": 2**63 - 1}),
    Example("start-time-out-of-range", "POST", "/api/v1/runs", "/api/v1/runs",
            body={"id": "{new}", "project": "nan", "start_time": _OFFSET_DATE},
            reason="5xx: schemas.runs._aware: astimezone(UTC) raises OverflowError -> 500"),
    Example("end-time-out-of-range", "POST", "/api/v1/batches", "/api/v1/batches",
            body={"idempotency_key": "end-out-of-range", "runs": [{"run_id": "{run}", "end": {
                "status": "finished", "end_time": "9999-12-31T23:59:59-01:00"}}]},
            reason="5xx: RunEndIn.to_domain: astimezone(UTC) raises OverflowError -> 500"),
    Example("lone-surrogate-in-param", "POST", "/api/v1/runs/{run_id}/batch",
            "/api/v1/runs/{run}/batch",
            body={"idempotency_key": "surrogate-1", "params": {"b": "\ud800"}},
            reason="5xx: a lone surrogate (valid JSON \\ud800) reaches the driver: "
            "UnicodeEncodeError -> 500"),
    Example("nul-in-param", "POST", "/api/v1/runs/{run_id}/batch", "/api/v1/runs/{run}/batch",
            body={"idempotency_key": "nul-param-1", "params": {"a": "x\x00y"}},
            reason="5xx: PostgreSQL text cannot hold NUL: psycopg DataError -> 500"),
    Example("nul-in-run-id", "GET", "/api/v1/runs/{run_id}", "/api/v1/runs/a%00b",
            reason="5xx: a NUL in a looked-up id reaches PostgreSQL: DataError -> 500"),
    Example("nul-in-metric-key", "GET", _HISTORY, "/api/v1/runs/{run}/metrics/history",
            params={"key": "lo\x00ss"},
            reason="5xx: a NUL in a looked-up metric key reaches PostgreSQL: DataError -> 500"),
    Example("nul-in-project-name", "GET", "/api/v1/projects/{name}", "/api/v1/projects/a%00b",
            reason="5xx: a NUL in a looked-up project name reaches PostgreSQL: DataError -> 500"),
]  # fmt: skip


@pytest.fixture
def nan_run(client: TestClient) -> str:
    """A run in project ``nan``: metric ``loss`` holds 1.0, inf and NaN, ``acc`` is finite."""
    run = new_ulid()
    body = {
        "idempotency_key": f"nan-{run}",
        "runs": [
            {
                "run_id": run,
                "start": {"id": run, "project": "nan", "start_time": "2024-03-01T12:00:00Z"},
                "metrics": {
                    "loss": {"steps": [0, 1, 2], "timestamps": [TS0] * 3, "values": [1.0]},
                    "acc": {"steps": [0, 1, 2], "timestamps": [TS0] * 3, "values": [0.5] * 3},
                },
            }
        ],
    }
    body["runs"][0]["metrics"]["loss"]["values"] += [math.inf, math.nan]  # type: ignore[index]
    response = client.post(
        f"{API}/batches", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    return run


def _fill(value: Any, run: str) -> Any:
    if isinstance(value, str):
        return value.replace("{run}", run).replace("{new}", new_ulid())
    if isinstance(value, dict):
        return {k: _fill(v, run) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, run) for v in value]
    return value


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_explicit_example(
    example: Example,
    client: TestClient,
    nan_run: str,
    db_url: str,
    request: pytest.FixtureRequest,
) -> None:
    """No 5xx, the envelope on a 4xx, the documented schema otherwise; on both databases."""
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    if backend in example.fails_on:
        raises = AssertionError if example.reason.startswith("5xx") else FailureGroup
        request.applymarker(
            pytest.mark.xfail(strict=True, raises=raises, reason=f"finding: {example.reason}")
        )
    body = _fill(example.body, nan_run) if example.body is not None else None
    response = client.request(
        example.method,
        _fill(example.url, nan_run),
        params=example.params,
        content=json.dumps(body) if body is not None else None,
        headers={"content-type": "application/json"} if body is not None else None,
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_envelope(response)
    names = re.findall(r"{(\w+)}", example.path)
    case = schema[example.path][example.method].Case(path_parameters=dict.fromkeys(names, "x"))
    case.validate_response(response, checks=CHECKS)
