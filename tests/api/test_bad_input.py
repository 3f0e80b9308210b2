"""Bad input over HTTP: a clear 4xx that names the field, and not one row changed.

Each case sends one bad request against a store holding one run (param ``lr=0.1``, tag
``stage=a``, metric ``loss``) and then compares every row of every table with what was
there before, so "changes nothing" covers runs, params, tags, points, summaries, rollups,
idempotency keys and audit events alike.

A case refused before the store is touched (the wire schema or the batch rules) runs on
SQLite only; every case that reaches the store runs on both databases. The table runs as
subtests of one test per database.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.exceptions import StarletteDeprecationWarning

from cairn.domain.ids import new_ulid
from cairn.domain.validation import LIMITS
from cairn.store.database import Database
from cairn.store.tables import Base

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
START = "2024-03-01T12:00:00Z"
TS0 = 1_709_294_400_000


@pytest.fixture
def run_id(client: TestClient) -> str:
    run = new_ulid()
    response = client.post(
        f"{API}/batches",
        json={
            "idempotency_key": f"setup-{run}",
            "runs": [
                {
                    "run_id": run,
                    "start": {"id": run, "project": "proj", "start_time": START},
                    "params": {"lr": "0.1"},
                    "tags": {"stage": "a"},
                    "metrics": {
                        "loss": {"steps": [0, 1], "timestamps": [TS0, TS0 + 1], "values": [1, 2]}
                    },
                }
            ],
        },
    )
    assert response.status_code == 200, response.text
    return run


def everything(client: TestClient) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    with db.read() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
        }


def send_json(client: TestClient, method: str, url: str, body: Any) -> httpx.Response:
    return client.request(
        method, url, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )


# ---------------------------------------------------------------------------- cases


Send = Callable[[TestClient, str], httpx.Response]


@dataclass(frozen=True)
class Case:
    id: str
    send: Send
    field: str | None
    status: int = 400
    limits: dict[str, int] = field(default_factory=dict)
    store: bool = False  # refused by the store itself: run on both databases


def batch(*runs: dict[str, Any] | Callable[[str], dict[str, Any]], key: str | None = None) -> Send:
    """POST /batches; each run is a dict or a function of the fixture run's id."""

    def send(client: TestClient, run: str) -> httpx.Response:
        items = [r(run) if callable(r) else r for r in runs]
        return send_json(
            client, "POST", f"{API}/batches", {"idempotency_key": key or new_ulid(), "runs": items}
        )

    return send


def to_run(**parts: Any) -> Callable[[str], dict[str, Any]]:
    return lambda run: {"run_id": run, **parts}


def new_run(**start: Any) -> dict[str, Any]:
    run = new_ulid()
    return {"run_id": run, "start": {"id": run, "project": "proj", "start_time": START, **start}}


def series(
    steps: list[Any], timestamps: list[Any] | None = None, values: list[Any] | None = None
) -> dict[str, list[Any]]:
    return {
        "steps": steps,
        "timestamps": timestamps if timestamps is not None else [TS0] * len(steps),
        "values": values if values is not None else [1.0] * len(steps),
    }


BAD_KEYS = {
    "trailing-space": "a b ",
    "dot-dot": "../x",
    "empty": "",
    "too-long": "k" * (LIMITS["key_length"] + 1),
    "leading-slash": "/abs",
    "star": "a*b",
    "newline": "a\nb",
}

KEY_CASES = [
    Case(f"{kind}-key-{name}", batch(to_run(**{kind: {key: value}})), f"runs[0].{kind} key")
    for name, key in BAD_KEYS.items()
    for kind, value in (("params", "1"), ("tags", "x"), ("metrics", series([0])))
]

CASES = [
    *KEY_CASES,
    # empty
    Case("empty-body", lambda c, r: send_json(c, "POST", f"{API}/batches", {}), "idempotency_key"),
    Case("no-body", lambda c, r: c.post(f"{API}/batches"), "body"),
    Case(
        "empty-idempotency-key",
        lambda c, r: send_json(c, "POST", f"{API}/batches", {"idempotency_key": "", "runs": []}),
        "idempotency_key",
    ),
    Case(
        "runs-not-a-list",
        lambda c, r: send_json(
            c, "POST", f"{API}/batches", {"idempotency_key": new_ulid(), "runs": {"a": 1}}
        ),
        "runs",
    ),
    Case("empty-run-id", batch({"run_id": "", "params": {"a": "1"}}), "runs[0].run_id"),
    Case("empty-project", batch(new_run(project="")), "project"),
    Case(
        "empty-project-create",
        lambda c, r: send_json(c, "POST", f"{API}/projects", {"name": ""}),
        "project",
    ),
    # oversized
    Case(
        "long-idempotency-key", batch(to_run(params={"a": "1"}), key="k" * 101), "idempotency_key"
    ),
    Case(
        "param-value-too-long",
        batch(to_run(params={"big": "v" * (LIMITS["param_value_length"] + 1)})),
        "params.big",
    ),
    Case(
        "tag-value-too-long",
        batch(to_run(tags={"big": "v" * (LIMITS["tag_value_length"] + 1)})),
        "tags.big",
    ),
    Case(
        "run-name-too-long",
        batch(new_run(name="n" * (LIMITS["name_length"] + 1))),
        "runs[0].start.name",
    ),
    Case(
        "experiment-too-long",
        batch(new_run(experiment="e" * (LIMITS["name_length"] + 1))),
        "runs[0].start.experiment",
    ),
    Case("project-name-too-long", batch(new_run(project="p" * 101)), "project"),
    Case(
        "notes-too-long",
        batch(to_run(notes="n" * 11)),
        "runs[0].notes",
        limits={"notes_length": 10},
    ),
    Case(
        "too-many-points",
        batch(to_run(metrics={"loss": series([2, 3, 4, 5])})),
        "metric points",
        413,
        {"batch_points": 3},
    ),
    Case(
        "too-many-params",
        batch(to_run(params={"a": "1", "b": "2", "c": "3"})),
        "params",
        413,
        {"batch_params": 2},
    ),
    Case(
        "too-many-tags",
        batch(to_run(tags={"a": "1", "b": "2", "c": "3"})),
        "tags",
        413,
        {"batch_tags": 2},
    ),
    Case(
        "filter-too-long",
        lambda c, r: c.get(
            f"{API}/runs", params={"filter": "metrics.a > 1 and " * 600 + "metrics.a > 1"}
        ),
        "filter",
    ),
    Case(
        "patch-name-too-long",
        lambda c, r: send_json(
            c, "PATCH", f"{API}/runs/{r}", {"name": "n" * (LIMITS["name_length"] + 1)}
        ),
        "name",
    ),
    Case(
        "tag-put-value-too-long",
        lambda c, r: send_json(
            c,
            "PUT",
            f"{API}/runs/{r}/tags",
            {"key": "k", "value": "v" * (LIMITS["tag_value_length"] + 1)},
        ),
        "value",
    ),
    # invalid values
    Case(
        "metric-value-string",
        batch(to_run(metrics={"loss": series([5], values=["abc"])})),
        "runs.0.metrics.loss.values.0",
    ),
    Case(
        "metric-value-object",
        batch(to_run(metrics={"loss": series([5], values=[{}])})),
        "runs.0.metrics.loss.values.0",
    ),
    Case(
        "step-fraction",
        batch(to_run(metrics={"loss": series([1.5])})),
        "runs.0.metrics.loss.steps.0",
    ),
    Case(
        "step-string",
        batch(to_run(metrics={"loss": series(["two"])})),
        "runs.0.metrics.loss.steps.0",
    ),
    Case(
        "timestamp-fraction",
        batch(to_run(metrics={"loss": series([5], [0.5])})),
        "runs.0.metrics.loss.timestamps.0",
    ),
    Case(
        "series-lengths-differ",
        batch(to_run(metrics={"loss": series([5, 6], [0], [1.0])})),
        "metrics.loss",
    ),
    Case("param-value-object", batch(to_run(params={"lr": {"a": 1}})), "runs.0.params.lr"),
    Case("param-value-null", batch(to_run(params={"lr": None})), "runs.0.params.lr"),
    Case("run-id-not-ulid", batch({"run_id": "run-1", "params": {"a": "1"}}), "runs[0].run_id"),
    Case(
        "run-id-lowercase",
        lambda c, r: batch({"run_id": r.lower(), "params": {"a": "1"}})(c, r),
        "runs[0].run_id",
    ),
    Case(
        "start-id-differs",
        lambda c, r: batch({**new_run(), "run_id": new_ulid()})(c, r),
        "runs[0].start.id",
    ),
    Case("parent-not-ulid", batch(new_run(parent_id="parent")), "runs[0].start.parent_id"),
    Case(
        "start-time-missing",
        batch(
            {
                "run_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ",
                "start": {"id": "01HZZZZZZZZZZZZZZZZZZZZZZZ", "project": "proj"},
            }
        ),
        "runs.0.start.start_time",
    ),
    Case("project-bad-name", batch(new_run(project="a/b")), "project"),
    Case(
        "end-status-unknown",
        batch(to_run(end={"status": "done", "end_time": START})),
        "runs.0.end.status",
    ),
    Case(
        "param-twice-in-one-batch",
        batch(to_run(params={"p": "1"}), to_run(params={"p": "2"})),
        "params.p",
    ),
    Case(
        "started-twice-differently",
        lambda c, r: (
            lambda run: batch(run, {**run, "start": {**run["start"], "name": "other"}})(c, r)
        )(new_run()),
        "runs[1].start",
    ),
    Case(
        "tag-put-bad-key",
        lambda c, r: send_json(c, "PUT", f"{API}/runs/{r}/tags", {"key": "../x", "value": "v"}),
        "key",
    ),
    Case(
        "tag-put-missing-value",
        lambda c, r: send_json(c, "PUT", f"{API}/runs/{r}/tags", {"key": "k"}),
        "value",
    ),
    Case(
        "patch-status-running",
        lambda c, r: send_json(c, "PATCH", f"{API}/runs/{r}", {"status": "running"}),
        "status",
    ),
    # unknown run, changed param
    Case("unknown-run", batch({"run_id": new_ulid(), "params": {"a": "1"}}), None, 404, store=True),
    Case(
        "unknown-run-route",
        lambda c, r: send_json(
            c,
            "POST",
            f"{API}/runs/{new_ulid()}/batch",
            {"idempotency_key": new_ulid(), "tags": {"a": "1"}},
        ),
        None,
        404,
        store=True,
    ),
    Case(
        "unknown-run-patch",
        lambda c, r: send_json(c, "PATCH", f"{API}/runs/{new_ulid()}", {"status": "killed"}),
        None,
        404,
        store=True,
    ),
    Case(
        "changed-param",
        batch(
            new_run(),
            to_run(
                params={"lr": "0.2", "other": "1"},
                tags={"stage": "b"},
                metrics={"loss": series([2, 3]), "acc": series([0])},
                notes="x",
                end={"status": "finished", "end_time": START},
            ),
        ),
        "params.lr",
        409,
        store=True,
    ),
    Case(
        "changed-param-route",
        lambda c, r: send_json(
            c,
            "POST",
            f"{API}/runs/{r}/batch",
            {
                "idempotency_key": new_ulid(),
                "params": {"lr": 0.2},
                "tags": {"stage": "b"},
                "metrics": {"loss": series([9])},
            },
        ),
        "params.lr",
        409,
        store=True,
    ),
    Case(
        "run-moved-to-other-project",
        lambda c, r: send_json(
            c, "POST", f"{API}/runs", {"id": r, "project": "other", "start_time": START}
        ),
        None,
        409,
        store=True,
    ),
    # malformed searches
    Case(
        "search-bad-filter",
        lambda c, r: c.get(f"{API}/runs", params={"filter": "params.lr = "}),
        "filter",
    ),
    Case(
        "search-bad-field",
        lambda c, r: send_json(c, "POST", f"{API}/runs/search", {"filter": "colour = 'red'"}),
        "filter",
    ),
    Case(
        "search-bad-order",
        lambda c, r: send_json(
            c, "POST", f"{API}/runs/search", {"order_by": ["metrics.loss upward"]}
        ),
        "order_by",
    ),
    Case(
        "search-order-twice",
        lambda c, r: send_json(
            c,
            "POST",
            f"{API}/runs/search",
            {"filter": "metrics.loss > 1 order by name", "order_by": ["name"]},
        ),
        "order_by",
    ),
    Case(
        "search-bad-cursor", lambda c, r: c.get(f"{API}/runs", params={"cursor": "AAAA"}), "cursor"
    ),
    Case(
        "search-limit",
        lambda c, r: send_json(c, "POST", f"{API}/runs/search", {"limit": -1}),
        "limit",
    ),
    Case(
        "search-limit-type",
        lambda c, r: send_json(c, "POST", f"{API}/runs/search", {"limit": "all"}),
        "limit",
    ),
]


SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_bad_input_is_rejected_and_changes_nothing(
    client: TestClient, run_id: str, subtests: pytest.Subtests
) -> None:
    """The table, one subtest a case, on one app per database; each case compares the whole
    store before and after, so one case's failure does not hide in the next."""
    on_postgresql = client.app.state.db.dialect == "postgresql"  # type: ignore[attr-defined]
    for case in CASES:
        if on_postgresql and not case.store:
            continue
        with subtests.test(case.id), pytest.MonkeyPatch.context() as patch:
            for name, value in case.limits.items():
                patch.setitem(LIMITS, name, value)
            before = everything(client)
            response = case.send(client, run_id)
            assert response.status_code == case.status, response.text
            error = response.json()["error"]
            if case.field is not None:
                assert error["details"].get("field") == case.field, error
            assert everything(client) == before


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_cursor_of_another_order_is_rejected(client: TestClient, run_id: str) -> None:
    for _ in range(2):
        client.post(f"{API}/runs", json={"id": new_ulid(), "project": "proj", "start_time": START})
    page = client.get(f"{API}/runs", params={"order_by": "name", "limit": 1}).json()
    assert page["next_cursor"]
    response = client.get(
        f"{API}/runs", params={"order_by": "start_time", "limit": 1, "cursor": page["next_cursor"]}
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "cursor"


def test_good_keys_are_accepted(client: TestClient, run_id: str) -> None:
    """The control: what the key rule allows goes through on every kind."""
    keys = ["a b", "train/loss", "val.acc", "ns:key", "x-y_z", "k" * LIMITS["key_length"]]
    response = batch(
        to_run(
            params={k: "1" for k in keys},
            tags={k: "1" for k in keys},
            metrics={k: series([0]) for k in keys},
        )
    )(client, run_id)
    assert response.status_code == 200, response.text
    run = client.get(f"{API}/runs/{run_id}").json()
    assert set(keys) <= set(run["params"]) & set(run["tags"]) & set(run["metrics"])


@pytest.mark.parametrize("column", ["steps", "timestamps"])
def test_step_beyond_64_bits_is_invalid(client: TestClient, run_id: str, column: str) -> None:
    before = everything(client)
    one = series([7])
    one[column] = [2**63]
    response = batch(to_run(metrics={"loss": one}))(client, run_id)
    assert everything(client) == before
    assert response.status_code == 400, response.text
    assert "loss" in response.json()["error"]["details"]["field"]


def test_batch_cannot_end_a_run_as_running(client: TestClient, run_id: str) -> None:
    before = everything(client)
    response = batch(to_run(end={"status": "running", "end_time": START, "error": "x"}))(
        client, run_id
    )
    assert everything(client) == before
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"]["field"] == "runs[0].end.status"


@SQLITE_ONLY
def test_create_run_bad_id_names_the_id_field(client: TestClient, run_id: str) -> None:
    before = everything(client)
    response = client.post(
        f"{API}/runs", json={"id": "run-1", "project": "proj", "start_time": START}
    )
    assert response.status_code == 400
    assert everything(client) == before
    assert response.json()["error"]["details"]["field"] == "id"


@SQLITE_ONLY
def test_run_batch_bad_key_names_a_field_of_its_body(client: TestClient, run_id: str) -> None:
    before = everything(client)
    response = send_json(
        client,
        "POST",
        f"{API}/runs/{run_id}/batch",
        {"idempotency_key": new_ulid(), "params": {"a b ": "1"}},
    )
    assert response.status_code == 400
    assert everything(client) == before
    assert response.json()["error"]["details"]["field"].startswith("params")
