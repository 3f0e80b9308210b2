"""Every error path of the API answers with one shape, ``{"error": {"code", "message",
"details"}}``, and the status that ``cairn.api.errors.STATUS_BY_CODE`` gives its code.
Invalid input names the field; a 500 never echoes internals.

The shape is made by the API layer, so a case refused before the store is touched runs on
SQLite only; every case whose answer comes from the store runs on both databases. The
table runs as subtests of one test per database.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from cairn.api.errors import STATUS_BY_CODE
from cairn.domain.errors import ERRORS_BY_CODE
from cairn.domain.ids import new_ulid
from cairn.domain.validation import LIMITS

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
START = "2024-03-01T12:00:00Z"
TS0 = 1_709_294_400_000


@pytest.fixture
def run_id(client: TestClient) -> str:
    """A running run with param lr=0.1 and a metric ``loss``."""
    run = new_ulid()
    body = {
        "idempotency_key": f"setup-{run}",
        "runs": [
            {
                "run_id": run,
                "start": {"id": run, "project": "proj", "start_time": START},
                "params": {"lr": "0.1"},
                "metrics": {
                    "loss": {"steps": [0, 1], "timestamps": [TS0, TS0 + 1], "values": [1, 2]}
                },
            }
        ],
    }
    assert client.post(f"{API}/batches", json=body).status_code == 200
    return run


def assert_envelope(
    response: httpx.Response, status: int, code: str, field: str | None = None
) -> dict[str, Any]:
    """The one error shape; returns its ``error`` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert code in ERRORS_BY_CODE or code == "rate_limited"
    if status != 405:  # see test_wrong_method: 405 borrows the code "invalid"
        assert STATUS_BY_CODE[code] == status
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["details"], dict)
    if field is not None:
        assert error["details"].get("field") == field, error
    return dict(error)


# ---------------------------------------------------------------------------- the table


Send = Callable[[TestClient, str], httpx.Response]


@dataclass(frozen=True)
class Case:
    id: str
    send: Send
    status: int
    code: str
    field: str | None = None
    details: dict[str, Any] | None = None
    store: bool = False  # the answer comes from the store: run on both databases


def _history(**params: Any) -> Send:
    return lambda c, r: c.get(f"{API}/runs/{r}/metrics/history", params=params)


def _runs(**params: Any) -> Send:
    return lambda c, r: c.get(f"{API}/runs", params=params)


def _batch(run_body: dict[str, Any]) -> Send:
    return lambda c, r: c.post(
        f"{API}/runs/{r}/batch", json={"idempotency_key": new_ulid(), **run_body}
    )


def _missing_run(method: str, tail: str = "", **kw: Any) -> Send:
    return lambda c, r: c.request(method, f"{API}/runs/{new_ulid()}{tail}", **kw)


CASES = [
    # not found
    Case("run-not-found", _missing_run("GET"), 404, "not_found", store=True),
    Case(
        "run-not-found-patch",
        _missing_run("PATCH", json={"name": "x"}),
        404,
        "not_found",
        store=True,
    ),
    Case(
        "run-not-found-end",
        _missing_run("PATCH", json={"status": "finished"}),
        404,
        "not_found",
        store=True,
    ),
    Case(
        "run-not-found-batch",
        _missing_run("POST", "/batch", json={"idempotency_key": new_ulid(), "params": {"a": "1"}}),
        404,
        "not_found",
        store=True,
    ),
    Case("run-not-found-children", _missing_run("GET", "/children"), 404, "not_found", store=True),
    Case("run-not-found-git-diff", _missing_run("GET", "/git-diff"), 404, "not_found", store=True),
    Case(
        "run-not-found-tag",
        _missing_run("PUT", "/tags", json={"key": "k", "value": "v"}),
        404,
        "not_found",
        store=True,
    ),
    Case(
        "run-not-found-history",
        _missing_run("GET", "/metrics/history", params={"key": "loss"}),
        404,
        "not_found",
        store=True,
    ),
    Case(
        "run-id-not-a-ulid",
        lambda c, r: c.get(f"{API}/runs/not-a-run"),
        404,
        "not_found",
        store=True,
    ),
    Case(
        "project-not-found",
        lambda c, r: c.get(f"{API}/projects/nope"),
        404,
        "not_found",
        store=True,
    ),
    Case("project-not-found-search", _runs(project="nope"), 404, "not_found", store=True),
    Case("metric-not-found", _history(key="nope"), 404, "not_found", store=True),
    Case(
        "tag-not-found",
        lambda c, r: c.delete(f"{API}/runs/{r}/tags", params={"key": "no"}),
        404,
        "not_found",
        store=True,
    ),
    Case("unknown-route", lambda c, r: c.get(f"{API}/nothing-here"), 404, "not_found"),
    Case("unknown-route-root", lambda c, r: c.get("/nothing-here"), 404, "not_found"),
    # invalid bodies
    Case("missing-field", lambda c, r: c.post(f"{API}/projects", json={}), 400, "invalid", "name"),
    Case(
        "missing-nested-field",
        lambda c, r: c.post(
            f"{API}/batches", json={"idempotency_key": new_ulid(), "runs": [{"params": {}}]}
        ),
        400,
        "invalid",
        "runs.0.run_id",
    ),
    Case("missing-body", lambda c, r: c.post(f"{API}/projects"), 400, "invalid", "body"),
    Case(
        "body-not-an-object",
        lambda c, r: c.post(f"{API}/projects", json=[1]),
        400,
        "invalid",
        "body",
    ),
    Case(
        "wrong-type",
        lambda c, r: c.post(f"{API}/projects", json={"name": 5}),
        400,
        "invalid",
        "name",
    ),
    Case(
        "wrong-type-status",
        lambda c, r: c.patch(f"{API}/runs/{r}", json={"status": "done"}),
        400,
        "invalid",
        "status",
    ),
    Case(
        "wrong-type-time",
        lambda c, r: c.post(
            f"{API}/runs", json={"id": new_ulid(), "project": "p", "start_time": "yesterday"}
        ),
        400,
        "invalid",
        "start_time",
    ),
    Case(
        "unknown-field",
        lambda c, r: c.post(f"{API}/projects", json={"name": "x", "colour": 1}),
        400,
        "invalid",
        "colour",
    ),
    Case(
        "unknown-field-patch",
        lambda c, r: c.patch(f"{API}/runs/{r}", json={"nmae": "x"}),
        400,
        "invalid",
        "nmae",
    ),
    Case(
        "unknown-field-nested",
        _batch(
            {"metrics": {"loss": {"steps": [0], "timestamps": [0], "values": [1], "colour": "red"}}}
        ),
        400,
        "invalid",
        "metrics.loss.colour",
    ),
    Case(
        "short-idempotency-key",
        lambda c, r: c.post(f"{API}/runs/{r}/batch", json={"idempotency_key": "k"}),
        400,
        "invalid",
        "idempotency_key",
    ),
    Case(
        "bad-project-name",
        lambda c, r: c.post(f"{API}/projects", json={"name": "a b"}),
        400,
        "invalid",
        "project",
    ),
    Case(
        "patch-back-to-running",
        lambda c, r: c.patch(f"{API}/runs/{r}", json={"status": "running"}),
        400,
        "invalid",
        "status",
    ),
    Case(
        "patch-error-without-status",
        lambda c, r: c.patch(f"{API}/runs/{r}", json={"error": "x"}),
        400,
        "invalid",
        "error",
    ),
    # invalid queries
    Case(
        "malformed-filter",
        _runs(filter="metrics.acc >"),
        400,
        "invalid",
        "filter",
        {"column": 14, "token": ""},
    ),
    Case(
        "malformed-filter-token",
        _runs(filter="metrics.acc > 1 and bogus.x = 2"),
        400,
        "invalid",
        "filter",
        {"column": 21, "token": "bogus.x"},
    ),
    Case(
        "malformed-filter-search",
        lambda c, r: c.post(f"{API}/runs/search", json={"filter": "metrics.acc >> 1"}),
        400,
        "invalid",
        "filter",
        {"column": 14, "token": ">"},
    ),
    Case(
        "malformed-order-by",
        _runs(order_by="metrics.acc sideways"),
        400,
        "invalid",
        "order_by",
        {"column": 13, "token": "sideways"},
    ),
    Case("bad-cursor", _runs(cursor="not-a-cursor"), 400, "invalid", "cursor"),
    Case(
        "bad-cursor-search",
        lambda c, r: c.post(f"{API}/runs/search", json={"cursor": "eyJhIjoxfQ"}),
        400,
        "invalid",
        "cursor",
    ),
    Case("limit-zero", _runs(limit=0), 400, "invalid", "limit"),
    Case("limit-too-big", _runs(limit=LIMITS["page_size"] + 1), 400, "invalid", "limit"),
    Case("limit-not-a-number", _runs(limit="ten"), 400, "invalid", "limit"),
    Case(
        "limit-zero-search",
        lambda c, r: c.post(f"{API}/runs/search", json={"limit": 0}),
        400,
        "invalid",
        "limit",
    ),
    Case("max-points-one", _history(key="loss", max_points=1), 400, "invalid", "max_points"),
    Case("max-points-huge", _history(key="loss", max_points=10**7), 400, "invalid", "max_points"),
    Case(
        "max-points-not-a-number",
        _history(key="loss", max_points="many"),
        400,
        "invalid",
        "max_points",
    ),
    Case("history-key-missing", _history(), 400, "invalid", "key"),
    Case("min-step-not-a-number", _history(key="loss", min_step="x"), 400, "invalid", "min_step"),
    # conflicts
    Case(
        "param-conflict",
        _batch({"params": {"lr": "0.2"}}),
        409,
        "conflict",
        "params.lr",
        {"old": "0.1", "new": "0.2"},
        store=True,
    ),
    Case(
        "project-already-exists",
        lambda c, r: c.post(f"{API}/projects", json={"name": "proj"}),
        409,
        "already_exists",
        None,
        {"project": "proj"},
        store=True,
    ),
    Case(
        "run-in-another-project",
        lambda c, r: c.post(f"{API}/runs", json={"id": r, "project": "other", "start_time": START}),
        409,
        "conflict",
        store=True,
    ),
]


SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_error_envelope(client: TestClient, run_id: str, subtests: pytest.Subtests) -> None:
    """The table, one subtest a case, on one app per database (an app a case costs more
    than the whole table)."""
    on_postgresql = client.app.state.db.dialect == "postgresql"  # type: ignore[attr-defined]
    for case in CASES:
        if on_postgresql and not case.store:
            continue
        with subtests.test(case.id):
            error = assert_envelope(case.send(client, run_id), case.status, case.code, case.field)
            for key, value in (case.details or {}).items():
                assert error["details"][key] == value, (key, error)


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_error_code_has_a_status() -> None:
    for code in ERRORS_BY_CODE:
        assert code in STATUS_BY_CODE, code
    assert STATUS_BY_CODE["invalid"] == 400
    assert STATUS_BY_CODE["internal"] == 500


@SQLITE_ONLY
def test_too_large_batch(client: TestClient, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LIMITS, "batch_points", 3)
    monkeypatch.setitem(LIMITS, "batch_params", 2)
    monkeypatch.setitem(LIMITS, "batch_tags", 2)
    monkeypatch.setitem(LIMITS, "batch_runs", 1)
    points = {"loss": {"steps": [5, 6, 7, 8], "timestamps": [0] * 4, "values": [0.0] * 4}}
    response = _batch({"metrics": points})(client, run_id)
    error = assert_envelope(response, 413, "too_large")
    assert error["details"] == {"limit": "batch_points", "max": 3, "field": "metric points"}
    error = assert_envelope(
        _batch({"params": {"a": "1", "b": "2", "c": "3"}})(client, run_id), 413, "too_large"
    )
    assert error["details"]["limit"] == "batch_params"
    error = assert_envelope(
        _batch({"tags": {"a": "1", "b": "2", "c": "3"}})(client, run_id), 413, "too_large"
    )
    assert error["details"]["limit"] == "batch_tags"
    two = {"idempotency_key": new_ulid(), "runs": [{"run_id": run_id}, {"run_id": new_ulid()}]}
    error = assert_envelope(client.post(f"{API}/batches", json=two), 413, "too_large")
    assert error["details"]["limit"] == "batch_runs"


@SQLITE_ONLY
def test_wrong_method(client: TestClient) -> None:
    """405 keeps its status and Allow header, with its own code."""
    response = client.delete(f"{API}/projects")
    error = assert_envelope(response, 405, "method_not_allowed")
    # Starlette names the methods of the first route that matched the path, so only GET.
    assert "GET" in response.headers["allow"]
    assert error["details"] == {}
    assert_envelope(client.put(f"{API}/runs/{new_ulid()}"), 405, "method_not_allowed")


@SQLITE_ONLY
def test_malformed_json_names_the_body(client: TestClient) -> None:
    response = client.post(
        f"{API}/projects", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_envelope(response, 400, "invalid", "body")


@SQLITE_ONLY
def test_unexpected_exception_is_a_500_without_internals(
    client: TestClient,
    run_id: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret-internals at /srv/cairn/db password=hunter2")

    monkeypatch.setattr(client.app.state.tracking, "get_run", boom)  # type: ignore[attr-defined]
    monkeypatch.setattr(client.app.state.tracking, "log_batch", boom)  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="cairn.api"):
        responses = [
            client.get(f"{API}/runs/{run_id}"),
            client.post(f"{API}/runs/{run_id}/batch", json={"idempotency_key": new_ulid()}),
        ]
    for response in responses:
        error = assert_envelope(response, 500, "internal")
        assert "secret" not in response.text
        assert "hunter2" not in response.text
        assert "RuntimeError" not in response.text
        assert "Traceback" not in response.text
        assert error["message"] == "internal error"
        assert set(error["details"]) == {"incident"}
        # The incident id leads from the response to the full story in the server's log.
        assert any(
            error["details"]["incident"] in r.getMessage() and r.exc_info for r in caplog.records
        )


@SQLITE_ONLY
def test_error_bodies_are_plain_json(client: TestClient) -> None:
    """No NaN tokens or HTML in any error, so every client can parse it."""
    for response in (
        client.get("/nothing"),
        client.get(f"{API}/runs/{new_ulid()}"),
        client.post(f"{API}/projects", json={}),
    ):
        json.loads(response.text, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))


def test_oversized_body_is_refused_with_413(db_url: str) -> None:
    """Over ``max_request_bytes``, by Content-Length and while streaming a chunked body."""
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    from cairn.api.app import create_app
    from cairn.settings import Settings
    from cairn.store.database import Database

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient

    settings = Settings(store=db_url, max_request_bytes=1000)
    with TestClient(create_app(settings, database=Database(db_url))) as small:
        body = {"name": "p" * 50, "description": "x" * 2000}
        error = assert_envelope(small.post(f"{API}/projects", json=body), 413, "too_large")
        assert error["details"]["max"] == 1000

        def chunks() -> Iterator[bytes]:
            yield b'{"name": "p", "description": "'
            for _ in range(10):
                yield b"x" * 200
            yield b'"}'

        streamed = small.post(
            f"{API}/projects", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert_envelope(streamed, 413, "too_large")
        assert small.get(f"{API}/projects").json() == []
