"""The REST API in-process (FastAPI's TestClient) on a real database: every route's happy
path, and an OpenAPI document that describes every route."""

from __future__ import annotations

import importlib
import json
import math
import pkgutil
import warnings
from typing import Any

import httpx
import pytest
from fastapi.openapi.models import OpenAPI
from fastapi.routing import APIRoute
from starlette.exceptions import StarletteDeprecationWarning

from cairn import __version__
from cairn.api import routes as routes_package
from cairn.domain.ids import new_ulid
from cairn.store.schema import head_revision

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

START = "2024-03-01T12:00:00Z"
TS0 = 1_709_294_400_000
API = "/api/v1"


def is_postgresql(client: TestClient) -> bool:
    return bool(client.app.state.db.dialect == "postgresql")  # type: ignore[attr-defined]


def post_json(client: TestClient, url: str, body: Any, **kw: Any) -> httpx.Response:
    """JSON the way the SDK sends it: NaN and infinities as the tokens Python writes."""
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return client.post(url, content=json.dumps(body), headers=headers, **kw)


def start_run(client: TestClient, project: str = "proj", **fields: Any) -> dict[str, Any]:
    body = {"id": new_ulid(), "project": project, "start_time": START, **fields}
    response = client.post(f"{API}/runs", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def columns(steps: list[int], values: list[Any]) -> dict[str, list[Any]]:
    return {"steps": steps, "timestamps": [TS0 + s for s in steps], "values": values}


# ---------------------------------------------------------------------------- health, projects


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": __version__,
        "schema_revision": head_revision(),
    }


def test_create_and_get_project(client: TestClient) -> None:
    response = client.post(
        f"{API}/projects",
        json={"name": "nlp", "description": "words"},
        headers={"X-Cairn-Actor": "ana"},
    )
    assert response.status_code == 201
    created = response.json()
    assert (created["name"], created["description"]) == ("nlp", "words")
    assert isinstance(created["id"], int)
    response = client.get(f"{API}/projects/nlp")
    assert response.status_code == 200
    assert response.json() == created


def test_list_projects(client: TestClient, request: pytest.FixtureRequest) -> None:
    client.post(f"{API}/projects", json={"name": "zeta"})
    start_run(client, "alpha")
    response = client.get(f"{API}/projects")
    assert response.status_code == 200
    body = response.json()
    assert [p["project"]["name"] for p in body] == ["alpha", "zeta"]
    assert (body[0]["run_count"], body[0]["running_count"]) == (1, 1)
    assert body[0]["last_activity"] is not None
    assert (body[1]["run_count"], body[1]["last_activity"]) == (0, None)


# ---------------------------------------------------------------------------- runs


def test_create_get_and_patch_run(client: TestClient) -> None:
    parent = start_run(client, "vision", name="sweep")
    run = start_run(
        client,
        "vision",
        name="trial",
        experiment="resnet",
        parent_id=parent["id"],
        author="ana",
        command="python train.py",
        notes="why",
        git={"commit": "abc"},
        git_diff="--- a\n+++ b\n",
        environment={"python": "3.11"},
    )
    assert run["status"] == "running"
    assert run["start_time"].startswith("2024-03-01T12:00:00")
    assert (run["name"], run["experiment"], run["parent_id"]) == ("trial", "resnet", parent["id"])
    assert run["environment"] == {"python": "3.11"}
    assert run["git"] == {"commit": "abc"}

    fetched = client.get(f"{API}/runs/{run['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == run

    # Starting again with the same id is harmless (a retried request).
    again = client.post(
        f"{API}/runs", json={"id": run["id"], "project": "vision", "start_time": START}
    )
    assert again.status_code == 201
    assert again.json()["name"] == "trial"

    patched = client.patch(
        f"{API}/runs/{run['id']}", json={"name": "renamed", "notes": "better notes"}
    )
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["notes"]) == ("renamed", "better notes")
    assert patched.json()["status"] == "running"

    ended = client.patch(f"{API}/runs/{run['id']}", json={"status": "failed", "error": "oom"})
    assert ended.status_code == 200
    body = ended.json()
    assert (body["status"], body["error"], body["name"]) == ("failed", "oom", "renamed")
    assert body["end_time"] is not None

    children = client.get(f"{API}/runs/{parent['id']}/children")
    assert children.status_code == 200
    assert children.json() == [run["id"]]
    assert client.get(f"{API}/runs/{run['id']}/children").json() == []

    diff = client.get(f"{API}/runs/{run['id']}/git-diff")
    assert diff.status_code == 200
    assert diff.text == "--- a\n+++ b\n"
    assert diff.headers["content-type"].startswith("text/x-diff")
    assert client.get(f"{API}/runs/{parent['id']}/git-diff").status_code == 204


def test_run_batch_route(client: TestClient) -> None:
    run = start_run(client)
    body = {
        "idempotency_key": "run-batch-0001",
        "params": {"lr": 0.1, "layers": 3, "optimizer": "adam"},
        "tags": {"stage": "dev"},
        "metrics": {"loss": columns([0, 1, 2], [1.0, 0.5, 0.25])},
    }
    response = post_json(client, f"{API}/runs/{run['id']}/batch", body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "idempotency_key": "run-batch-0001",
        "applied": True,
        "runs": 1,
        "points": 3,
    }
    stored = client.get(f"{API}/runs/{run['id']}").json()
    assert stored["params"] == {"lr": "0.1", "layers": "3", "optimizer": "adam"}
    assert stored["tags"] == {"stage": "dev"}
    assert stored["metrics"]["loss"] == {
        "key": "loss",
        "last": 0.25,
        "last_step": 2,
        "last_timestamp": TS0 + 2,
        "min": 0.25,
        "max": 1.0,
        "count": 3,
    }


def test_run_batch_resent_is_stored_once(
    client: TestClient, request: pytest.FixtureRequest
) -> None:
    run = start_run(client)
    body = {
        "idempotency_key": "resend-0001",
        "params": {"lr": "0.1"},
        "metrics": {"loss": columns([0, 1], [1.0, 0.5])},
    }
    first = post_json(client, f"{API}/runs/{run['id']}/batch", body)
    second = post_json(client, f"{API}/runs/{run['id']}/batch", body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["applied"], second.json()["applied"]) == (True, False)
    assert second.json()["points"] == 2
    history = client.get(f"{API}/runs/{run['id']}/metrics/history", params={"key": "loss"})
    assert history.json()["steps"] == [0, 1]
    assert client.get(f"{API}/runs/{run['id']}").json()["metrics"]["loss"]["count"] == 2


def test_batches_route_starts_logs_and_ends_runs(client: TestClient) -> None:
    a, b = new_ulid(), new_ulid()
    body = {
        "idempotency_key": "batch-route-01",
        "runs": [
            {
                "run_id": a,
                "start": {"id": a, "project": "multi", "start_time": START, "name": "a"},
                "params": {"lr": "0.1"},
                "metrics": {"acc": columns([0, 1], [0.5, 0.75])},
            },
            {
                "run_id": b,
                "start": {"id": b, "project": "multi", "start_time": START},
                "tags": {"t": "x"},
                "notes": "note",
                "end": {"status": "finished", "end_time": "2024-03-01T12:05:00Z"},
            },
        ],
    }
    response = post_json(client, f"{API}/batches", body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "idempotency_key": "batch-route-01",
        "applied": True,
        "runs": 2,
        "points": 2,
    }
    run_a = client.get(f"{API}/runs/{a}").json()
    assert (run_a["project"], run_a["name"], run_a["params"]) == ("multi", "a", {"lr": "0.1"})
    assert run_a["metrics"]["acc"]["last"] == 0.75
    run_b = client.get(f"{API}/runs/{b}").json()
    assert (run_b["status"], run_b["tags"], run_b["notes"]) == ("finished", {"t": "x"}, "note")
    assert run_b["end_time"].startswith("2024-03-01T12:05:00")
    assert client.get(f"{API}/projects/multi").status_code == 200


def test_list_and_search_runs(client: TestClient) -> None:
    runs = []
    for i in range(7):
        run = start_run(client, "search", name=f"r{i}")
        post_json(
            client,
            f"{API}/runs/{run['id']}/batch",
            {
                "idempotency_key": f"search-{i:04d}",
                "params": {"lr": str(i % 2)},
                "metrics": {"acc": columns([0], [i / 10])},
            },
        )
        runs.append(run["id"])
    start_run(client, "elsewhere")
    expected = [runs[i] for i in (6, 5, 4, 3, 2)]  # acc > 0.15, best first

    seen: list[str] = []
    params: dict[str, Any] = {
        "project": "search",
        "filter": "metrics.acc > 0.15",
        "order_by": "metrics.acc desc",
        "limit": 2,
    }
    for _ in range(10):
        response = client.get(f"{API}/runs", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["runs"]) <= 2
        seen.extend(r["id"] for r in page["runs"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == expected

    response = client.get(
        f"{API}/runs",
        params=[("project", "search"), ("order_by", "params.lr desc"), ("order_by", "name asc")],
    )
    assert [r["name"] for r in response.json()["runs"]] == [
        "r1",
        "r3",
        "r5",
        "r0",
        "r2",
        "r4",
        "r6",
    ]

    seen = []
    body: dict[str, Any] = {
        "project": "search",
        "filter": "metrics.acc > 0.15",
        "order_by": ["metrics.acc desc"],
        "limit": 3,
    }
    for _ in range(10):
        response = client.post(f"{API}/runs/search", json=body)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(r["id"] for r in page["runs"])
        if page["next_cursor"] is None:
            break
        body["cursor"] = page["next_cursor"]
    assert seen == expected
    assert page["runs"][-1]["metrics"]["acc"]["last"] == 0.2

    everything = client.post(f"{API}/runs/search", json={}).json()
    assert len(everything["runs"]) == 8
    assert everything["next_cursor"] is None


def test_metric_history_route(client: TestClient) -> None:
    run = start_run(client)
    n = 5_000
    values: list[float] = [math.cos(i / 100) for i in range(n)]
    values[3_210] = 1e9
    values[4] = math.nan
    values[5] = math.inf
    body = {"idempotency_key": "history-001", "metrics": {"loss": columns(list(range(n)), values)}}
    assert post_json(client, f"{API}/runs/{run['id']}/batch", body).status_code == 200

    url = f"{API}/runs/{run['id']}/metrics/history"
    raw = client.get(url, params={"key": "loss", "max_step": 6})
    assert raw.status_code == 200
    out = raw.json()
    assert out["steps"] == list(range(7))
    assert out["timestamps"] == [TS0 + s for s in range(7)]
    assert out["values"][4] == "NaN"
    assert out["values"][5] == "Infinity"
    assert out["values"][:4] == values[:4]
    assert (out["run_id"], out["key"], out["total_count"], out["downsampled"]) == (
        run["id"],
        "loss",
        7,
        False,
    )

    small = client.get(url, params={"key": "loss", "max_points": 40}).json()
    assert small["downsampled"] is True
    assert small["total_count"] == n
    assert len(small["steps"]) == len(small["values"]) <= 40
    assert dict(zip(small["steps"], small["values"], strict=True))[3_210] == 1e9

    ranged = client.get(
        url, params={"key": "loss", "max_points": 20, "min_step": 3_000, "max_step": 3_999}
    ).json()
    assert len(ranged["steps"]) <= 20
    assert all(3_000 <= s <= 3_999 for s in ranged["steps"])
    assert 3_210 in ranged["steps"]

    summary = client.get(f"{API}/runs/{run['id']}").json()["metrics"]["loss"]
    assert (summary["max"], summary["count"]) == ("Infinity", n)


def test_tags_put_and_delete(client: TestClient) -> None:
    run = start_run(client)
    url = f"{API}/runs/{run['id']}/tags"
    assert client.put(url, json={"key": "stage", "value": "dev"}).status_code == 204
    assert client.put(url, json={"key": "stage", "value": "prod"}).status_code == 204
    assert client.put(url, json={"key": "owner", "value": "ana"}).status_code == 204
    assert client.get(f"{API}/runs/{run['id']}").json()["tags"] == {"stage": "prod", "owner": "ana"}
    response = client.delete(url, params={"key": "stage"})
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"{API}/runs/{run['id']}").json()["tags"] == {"owner": "ana"}


# ---------------------------------------------------------------------------- OpenAPI


def test_openapi_is_valid_and_lists_every_route(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    OpenAPI.model_validate(spec)  # the document has the shape OpenAPI 3.1 prescribes
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["version"] == __version__

    routes = set()
    for info in pkgutil.iter_modules(routes_package.__path__):  # every route module, mounted
        router = importlib.import_module(f"{routes_package.__name__}.{info.name}").router
        prefix = "" if info.name == "health" else API
        routes |= {
            # OpenAPI writes a ``{name:path}`` parameter as ``{name}``
            (prefix + route.path.replace(":path}", "}"), method.lower())
            for route in router.routes
            if isinstance(route, APIRoute)
            for method in route.methods
        }
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert routes == documented
    assert {
        ("/healthz", "get"),
        (f"{API}/projects", "get"),
        (f"{API}/projects", "post"),
        (f"{API}/projects/{{name}}", "get"),
        (f"{API}/runs", "get"),
        (f"{API}/runs", "post"),
        (f"{API}/runs/search", "post"),
        (f"{API}/runs/{{run_id}}", "get"),
        (f"{API}/runs/{{run_id}}", "patch"),
        (f"{API}/runs/{{run_id}}/batch", "post"),
        (f"{API}/batches", "post"),
        (f"{API}/runs/{{run_id}}/metrics/history", "get"),
        (f"{API}/runs/{{run_id}}/tags", "put"),
        (f"{API}/runs/{{run_id}}/tags", "delete"),
        (f"{API}/runs/{{run_id}}/git-diff", "get"),
        (f"{API}/runs/{{run_id}}/children", "get"),
    } <= documented
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("responses"), (path, method)
            assert operation.get("operationId"), (path, method)
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "openapi.json" in docs.text
