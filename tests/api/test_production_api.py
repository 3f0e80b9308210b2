"""Production over HTTP, on SQLite and PostgreSQL: endpoints with weighted variants (made,
read, re-weighted, their settings merged, each change audited with the caller's name),
predictions stamped with the version their model reference named when they arrived,
resends that store nothing twice, feedback joined by request id, the window and filter
of the listing, and the error envelope on every refusal (which changes nothing)."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Table, select
from starlette.exceptions import StarletteDeprecationWarning

from cairn.api.app import create_app
from cairn.settings import Settings
from cairn.store.database import Database
from cairn.store.tables import Base, EventRow

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
PROJECT = f"{API}/projects/proj"
IRIS = f"{PROJECT}/models/iris"
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture
def api(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app on a fresh store of each database, with a blob folder (PostgreSQL has none).

    No webhook sender: its worker thread can still hold a connection when the app closes
    the database, which then warns (ResourceWarning) in a later test."""
    monkeypatch.setenv("CAIRN_WEBHOOK_INTERVAL", "0")
    folder = str(tmp_path / "server-blobs")
    app = create_app(
        Settings(store=db_url, artifacts=folder), database=Database(db_url, artifacts=folder)
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def register(api: TestClient, weights: bytes) -> int:
    """A model version from blobs sent first (the bytes need not be a real model here)."""
    files = []
    for path, data in (("model.pkl", weights), ("cairn-model.json", b'{"flavor": "sklearn"}')):
        digest = hashlib.sha256(data).hexdigest()
        assert api.put(f"{API}/blobs/{digest}", content=data).status_code == 201
        files.append({"path": path, "digest": digest, "size": len(data)})
    response = api.post(f"{IRIS}/versions", json={"files": files, "flavor": "sklearn"})
    assert response.status_code == 201, response.text
    return int(response.json()["version"])


@pytest.fixture
def iris(api: TestClient) -> TestClient:
    """iris:1 and iris:2, with ``production`` on 1 and ``staging`` on 2."""
    assert register(api, b"weights-1") == 1
    assert register(api, b"weights-2") == 2
    for alias, version in (("production", 1), ("staging", 2)):
        response = api.put(f"{IRIS}/aliases/{alias}", json={"version": version})
        assert response.status_code == 200, response.text
    return api


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


def actions(api: TestClient) -> list[tuple[str, str, str | None]]:
    db: Database = api.app.state.db  # type: ignore[attr-defined]
    table = cast(Table, EventRow.__table__)
    with db.read() as conn:
        rows = conn.execute(select(table).order_by(table.c.id))
        return [(r.action, r.entity_id, r.actor) for r in rows]


def everything(api: TestClient) -> dict[str, list[tuple[Any, ...]]]:
    db: Database = api.app.state.db  # type: ignore[attr-defined]
    with db.read() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
        }


def variant(name: str, target: str, weight: int, shadow: bool = False) -> dict[str, Any]:
    return {"name": name, "target": target, "weight": weight, "shadow": shadow}


CHURN = {
    "name": "churn",
    "description": "retention model A/B",
    "variants": [
        variant("champion", "iris@production", 90),
        variant("challenger", "iris@staging", 10),
        variant("next", "iris:2", 0, shadow=True),
    ],
    "settings": {"psi_threshold": 0.2},
}


def post_predictions(api: TestClient, body: dict[str, Any]) -> httpx.Response:
    response: httpx.Response = api.post(
        f"{PROJECT}/predictions",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    return response


def record(request_id: str, output: Any = 0, **fields: Any) -> dict[str, Any]:
    return {"request_id": request_id, "inputs": ROW, "outputs": output, **fields}


# -- endpoints ---------------------------------------------------------------------------


def test_an_endpoint_is_made_reweighted_and_configured(iris: TestClient) -> None:
    api = iris
    me = {"X-Cairn-Actor": "ana"}
    created = api.post(f"{PROJECT}/endpoints", json=CHURN, headers=me)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["project"] == "proj" and body["name"] == "churn"
    assert body["description"] == "retention model A/B"
    assert body["settings"] == {"psi_threshold": 0.2}
    by_name = {v["name"]: v for v in body["variants"]}
    assert by_name == {v["name"]: v for v in CHURN["variants"]}  # type: ignore[union-attr]

    assert api.get(f"{PROJECT}/endpoints/churn").json() == body
    assert [e["name"] for e in api.get(f"{PROJECT}/endpoints").json()] == ["churn"]

    reweighted = api.put(
        f"{PROJECT}/endpoints/churn",
        json={"variants": [variant("champion", "iris:1", 50), variant("challenger", "iris:2", 50)]},
        headers=me,
    )
    assert reweighted.status_code == 200, reweighted.text
    assert {v["name"]: v["weight"] for v in reweighted.json()["variants"]} == {
        "champion": 50,
        "challenger": 50,
    }
    merged = api.patch(
        f"{PROJECT}/endpoints/churn/settings",
        json={"settings": {"error_rate": 0.05}},
        headers=me,
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["settings"] == {"psi_threshold": 0.2, "error_rate": 0.05}
    assert api.get(f"{PROJECT}/endpoints/churn").json()["settings"] == merged.json()["settings"]

    changes = [a for a in actions(api) if a[0].startswith("endpoint.")]
    assert changes == [
        ("endpoint.created", "proj/churn", "ana"),
        ("endpoint.variants_changed", "proj/churn", "ana"),
        ("endpoint.settings_changed", "proj/churn", "ana"),
    ]


def test_endpoint_refusals_name_the_field_and_change_nothing(iris: TestClient) -> None:
    api = iris
    assert api.post(f"{PROJECT}/endpoints", json=CHURN).status_code == 201
    before = everything(api)

    def refused(method: str, url: str, body: Any, status: int) -> dict[str, Any]:
        return error_of(api.request(method, url, json=body), status)

    endpoints = f"{PROJECT}/endpoints"
    one = [variant("a", "iris:1", 1)]
    assert refused("POST", endpoints, CHURN, 409)["code"] == "already_exists"
    unknown = refused(
        "POST", endpoints, {"name": "x", "variants": [variant("a", "iris:9", 1)]}, 400
    )
    assert unknown["details"]["field"] == "variants[0].target"
    assert "iris:9" in unknown["message"]
    bad_ref = refused("POST", endpoints, {"name": "x", "variants": [variant("a", "::", 1)]}, 400)
    assert bad_ref["details"]["field"] == "variants[0].target"
    twice = refused("POST", endpoints, {"name": "x", "variants": one + one}, 400)
    assert twice["details"]["field"] == "variants[1].name"
    shadows_only = [variant("a", "iris:1", 5, shadow=True)]
    assert refused("POST", endpoints, {"name": "x", "variants": shadows_only}, 400)
    weight = refused(
        "POST", endpoints, {"name": "x", "variants": [variant("a", "iris:1", -1)]}, 400
    )
    assert weight["details"]["field"] == "variants.0.weight"
    assert refused("POST", endpoints, {"name": "x", "variants": []}, 400)
    assert refused("POST", endpoints, {"name": "bad name!", "variants": one}, 400)
    nul = refused(
        "POST", endpoints, {"name": "x", "variants": [variant("a\x00", "iris:1", 1)]}, 400
    )
    assert nul["details"]["field"] == "variants.0.name"
    assert refused("GET", f"{endpoints}/nope", None, 404)["details"]["endpoint"] == "nope"
    assert refused("PUT", f"{endpoints}/nope", {"variants": one}, 404)
    assert refused("PATCH", f"{endpoints}/nope/settings", {"settings": {}}, 404)
    assert refused("PATCH", f"{endpoints}/churn/settings", {"thresholds": {}}, 400)
    assert refused("GET", f"{API}/projects/nope/endpoints", None, 404)
    assert everything(api) == before


def test_non_finite_settings_are_refused(iris: TestClient) -> None:
    response = iris.post(
        f"{PROJECT}/endpoints",
        content=b'{"name": "x", "variants": [{"name": "a", "target": "iris:1", "weight": 1}],'
        b' "settings": {"psi": NaN}}',
        headers={"Content-Type": "application/json"},
    )
    assert error_of(response, 400)["details"]["field"] == "settings"


# -- predictions and feedback --------------------------------------------------------------


def test_predictions_are_stamped_with_the_version_the_alias_named(iris: TestClient) -> None:
    api = iris
    first = post_predictions(
        api,
        {
            "model": "iris@production",
            "records": [
                record("r1", 0, unit_id="u1", latency_ms=1.5, at="2026-03-01T12:00:00Z"),
                record("r2", 1, at="2026-03-01T12:00:01+01:00"),
            ],
        },
    )
    assert first.status_code == 200, first.text
    assert api.put(f"{IRIS}/aliases/production", json={"version": 2}).status_code == 200
    # The same request id again: kept once, still stamped version 1.
    resent = post_predictions(api, {"model": "iris@production", "records": [record("r1")]})
    assert resent.status_code == 200, resent.text
    later = post_predictions(
        api,
        {"model": "iris@production", "records": [record("r3", 2, error=None)]},
    )
    assert later.status_code == 200, later.text

    listed = api.get(f"{PROJECT}/predictions", params={"model": "iris"}).json()
    assert [(p["request_id"], p["version"]) for p in listed] == [
        ("r2", 1),  # 11:00:01 UTC, before r1
        ("r1", 1),
        ("r3", 2),
    ]
    r1 = listed[1]
    assert r1["model"] == "iris" and r1["project"] == "proj"
    assert r1["inputs"] == ROW and r1["outputs"] == 0
    assert r1["unit_id"] == "u1" and r1["latency_ms"] == 1.5
    assert r1["at"].startswith("2026-03-01T12:00:00")
    assert r1["variant"] == "" and r1["shadow"] is False and r1["actual"] is None

    feedback = api.post(f"{PROJECT}/feedback", json={"actuals": {"r1": 0, "r3": 1}})
    assert feedback.status_code == 200 and feedback.json() == {"stored": 2}
    again = api.post(f"{PROJECT}/feedback", json={"actuals": {"r3": 2}})
    assert again.json() == {"stored": 1}
    actual = {p["request_id"]: p["actual"] for p in api.get(f"{PROJECT}/predictions").json()}
    assert actual == {"r1": 0, "r2": None, "r3": 2}


def test_stored_counts_only_the_new_predictions(iris: TestClient) -> None:
    body = {"model": "iris:1", "records": [record("a"), record("b")]}
    assert post_predictions(iris, body).json() == {"stored": 2}
    body = {"model": "iris:1", "records": [record("b"), record("c")]}
    assert post_predictions(iris, body).json() == {"stored": 1}


def test_the_listing_filters_by_window_endpoint_and_limit(iris: TestClient) -> None:
    api = iris
    assert api.post(f"{PROJECT}/endpoints", json=CHURN).status_code == 201
    times = ["2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z", "2026-03-01T12:00:00Z"]
    body = {
        "model": "iris:2",
        "endpoint": "churn",
        "records": [record(f"e{i}", i, at=at, variant="challenger") for i, at in enumerate(times)]
        + [record("e0", 9, at=times[0], variant="next", shadow=True)],
    }
    assert post_predictions(api, body).status_code == 200
    assert post_predictions(api, {"model": "iris:1", "records": [record("x")]}).status_code == 200

    def ids(**params: Any) -> list[tuple[str, str]]:
        response = api.get(f"{PROJECT}/predictions", params=params)
        assert response.status_code == 200, response.text
        return [(p["request_id"], p["variant"]) for p in response.json()]

    by_endpoint = api.get(f"{PROJECT}/predictions", params={"endpoint": "churn"}).json()
    assert all(p["endpoint"] == "churn" and p["version"] == 2 for p in by_endpoint)
    assert sorted(ids(endpoint="churn")) == sorted(
        [("e0", "challenger"), ("e0", "next"), ("e1", "challenger"), ("e2", "challenger")]
    )
    shadow = [p for p in by_endpoint if p["variant"] == "next"]
    assert shadow[0]["shadow"] is True and shadow[0]["outputs"] == 9
    window = ids(endpoint="churn", since=times[1], until=times[2])
    assert window == [("e1", "challenger")]
    assert len(ids(model="iris", limit=2)) == 2
    assert len(ids(model="proj/iris")) == 5
    assert len(ids()) == 5


def test_prediction_refusals_name_the_field_and_store_nothing(iris: TestClient) -> None:
    api = iris
    before = everything(api)

    def refused(body: dict[str, Any], status: int) -> dict[str, Any]:
        return error_of(post_predictions(api, body), status)

    good = record("ok")
    assert refused({"model": "iris:7", "records": [good]}, 404)["code"] == "not_found"
    assert refused({"model": "nope@production", "records": [good]}, 404)
    assert refused({"model": "iris:1", "endpoint": "nope", "records": [good]}, 404)
    assert (
        refused({"model": "iris:1", "records": [good, {"outputs": 1}]}, 400)["details"]["field"]
        == "records.1.inputs"
    )
    latency = refused({"model": "iris:1", "records": [record("a", latency_ms=-1)]}, 400)
    assert latency["details"]["field"] == "records.0.latency_ms"
    nul = refused({"model": "iris:1", "records": [record("a\x00b")]}, 400)
    assert nul["details"]["field"] == "records.0.request_id"
    long_id = refused({"model": "iris:1", "records": [record("r" * 101)]}, 400)
    assert long_id["details"]["field"] == "records.0.request_id"
    huge = refused({"model": "iris:1", "records": [good, record("big", "x" * 300_000)]}, 413)
    assert huge["code"] == "too_large"
    assert refused({"model": "iris:1", "records": [good], "extra": 1}, 400)
    nan = post_predictions(api, {"model": "iris:1", "records": [good]})
    assert nan.status_code == 200  # the good one alone goes in
    not_finite = api.post(
        f"{PROJECT}/predictions",
        content=b'{"model": "iris:1", "records": [{"request_id": "n", "inputs": {"a": NaN}}]}',
        headers={"Content-Type": "application/json"},
    )
    assert error_of(not_finite, 400)["details"]["field"] == "records[0].inputs"
    after = everything(api)
    assert len(after["predictions"]) == len(before["predictions"]) + 1

    def listing(params: dict[str, Any], status: int) -> dict[str, Any]:
        return error_of(api.get(f"{PROJECT}/predictions", params=params), status)

    assert listing({"model": "iris:1"}, 400)["details"]["field"] == "model"
    assert listing({"model": "other/iris"}, 400)["details"]["field"] == "model"
    assert listing({"model": "nope"}, 404)
    assert listing({"endpoint": "nope"}, 404)
    assert listing({"limit": 0}, 400)["details"]["field"] == "limit"
    assert listing({"since": "yesterday"}, 400)["details"]["field"] == "since"
    assert error_of(api.get(f"{API}/projects/nope/predictions"), 404)

    feedback = api.post(f"{PROJECT}/feedback", json={"actuals": {"": 1}})
    assert error_of(feedback, 400)["details"]["field"] == "request_ids"
    assert error_of(api.post(f"{PROJECT}/feedback", json={"actuals": [1]}), 400)
