"""The model registry over HTTP, on SQLite and PostgreSQL: versions made from blobs sent
first and read back by every path form, approvals and alias moves with the caller's
name, the 409 of a protected alias, point-in-time aliases, cards and comparisons, and
the error envelope (404, 400 naming the field) on every refusal."""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Table, select
from starlette.exceptions import StarletteDeprecationWarning

from cairn.api.app import create_app
from cairn.domain.ids import new_ulid
from cairn.settings import Settings
from cairn.store.database import Database
from cairn.store.tables import Base, EventRow

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
START = "2024-03-01T12:00:00Z"
IRIS = f"{API}/projects/proj/models/iris"
SIGNATURE = {
    "inputs": {"tensor": {"dtype": "float64", "shape": [-1, 4]}},
    "outputs": {"tensor": {"dtype": "int64", "shape": [-1]}},
}


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on a fresh store of each database, with a blob folder (PostgreSQL has none)."""
    folder = str(tmp_path / "server-blobs")
    app = create_app(
        Settings(store=db_url, artifacts=folder), database=Database(db_url, artifacts=folder)
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_blob(api: TestClient, data: bytes) -> dict[str, Any]:
    digest = sha(data)
    response = api.put(f"{API}/blobs/{digest}", content=data)
    assert response.status_code == 201, response.text
    return {"digest": digest, "size": len(data)}


def as_actor(actor: str | None) -> dict[str, str]:
    return {"X-Cairn-Actor": actor} if actor else {}


def post_version(
    api: TestClient, body: dict[str, Any], url: str = IRIS, actor: str | None = None
) -> httpx.Response:
    response: httpx.Response = api.post(
        f"{url}/versions",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **as_actor(actor)},
    )
    return response


def register(
    api: TestClient,
    weights: bytes = b"weights-1",
    url: str = IRIS,
    actor: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Send the model's blobs, then register them as a new version."""
    files = [
        {"path": "model.pkl", **put_blob(api, weights)},
        {"path": "cairn-model.json", **put_blob(api, b'{"flavor": "sklearn"}')},
    ]
    body = {"files": files, "flavor": "sklearn", "signature": SIGNATURE, **fields}
    response = post_version(api, body, url, actor)
    assert response.status_code == 201, response.text
    return dict(response.json())


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


def actions(api: TestClient) -> list[tuple[str, str, str | None]]:
    """Every audit event: (action, entity, actor), oldest first."""
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


def approve(api: TestClient, version: int | str, actor: str | None = None) -> dict[str, Any]:
    response = api.post(
        f"{IRIS}/versions/{version}/approve", json={"comment": None}, headers=as_actor(actor)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def set_alias(
    api: TestClient, alias: str, version: int | str, actor: str | None = None, **body: Any
) -> httpx.Response:
    response: httpx.Response = api.put(
        f"{IRIS}/aliases/{alias}", json={"version": version, **body}, headers=as_actor(actor)
    )
    return response


def start_run(api: TestClient, **fields: Any) -> str:
    run_id = new_ulid()
    body = {"id": run_id, "project": "proj", "start_time": START, **fields}
    assert api.post(f"{API}/runs", json=body).status_code == 201
    return run_id


def pause() -> None:
    time.sleep(0.005)  # moves stamped in different milliseconds


# ---------------------------------------------------------------------------- versions


def test_register_and_read_by_every_path_form(api: TestClient) -> None:
    first = register(api, actor="ana", description="baseline", tags={"team": "vision"})
    assert (first["ref"], first["semver"], first["bump_reason"]) == (
        "proj/iris:1",
        "1.0.0",
        "first version",
    )
    assert (first["approval"], first["author"], first["flavor"]) == ("pending", "ana", "sklearn")
    assert (first["description"], first["tags"], first["signature"]) == (
        "baseline",
        {"team": "vision"},
        SIGNATURE,
    )
    register(api, b"weights-2", algorithm="sklearn.ensemble.RandomForestClassifier")
    third = register(api, b"weights-3", semver="3.0.0", actor="bob")
    assert [(a, e) for a, e, _ in actions(api)] == [
        ("project.created", "proj"),
        ("model.created", "proj/iris"),
        ("model.version_created", "proj/iris:1"),
        ("model.version_created", "proj/iris:2"),
        ("model.version_created", "proj/iris:3"),
    ]
    assert set_alias(api, "production", 2).status_code == 200

    expected = {"latest": 3, "3": 3, "1": 1, "@production": 2, "@1.0.0": 1, "@1.1.0": 2}
    for segment, version in expected.items():
        response = api.get(f"{IRIS}/versions/{segment}")
        assert response.status_code == 200, (segment, response.text)
        assert response.json()["version"] == version, segment
    assert api.get(f"{IRIS}/versions/3").json() == third
    assert api.get(f"{IRIS}/versions/@production").json()["aliases"] == ["production"]

    listed = api.get(f"{IRIS}/versions/@production/files").json()
    assert listed["version"]["version"] == 2
    assert [f["path"] for f in listed["files"]] == ["cairn-model.json", "model.pkl"]
    download = api.get(f"{IRIS}/versions/@production/files/model.pkl")
    assert (download.status_code, download.content) == (200, b"weights-2")
    part = api.get(f"{IRIS}/versions/latest/files/model.pkl", headers={"Range": "bytes=0-6"})
    assert (part.status_code, part.content) == (206, b"weights")

    assert [v["version"] for v in api.get(f"{IRIS}/versions").json()] == [3, 2, 1]
    model = api.get(IRIS).json()
    assert (model["latest_version"], model["version_count"], model["aliases"]) == (
        3,
        3,
        {"production": 2},
    )
    assert [m["name"] for m in api.get(f"{API}/projects/proj/models").json()] == ["iris"]


def test_identical_bytes_are_one_blob(api: TestClient, tmp_path: Path) -> None:
    first = register(api)
    again = register(api)
    assert (again["version"], again["semver"], again["digest"]) == (2, "1.0.1", first["digest"])
    stored = [p for p in (tmp_path / "server-blobs").rglob("*") if p.is_file()]
    assert len([p for p in stored if len(p.name) >= 60]) == 2  # model.pkl and the json


def test_not_found_everywhere(api: TestClient) -> None:
    register(api)
    run_id = start_run(api)
    missing: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"{API}/projects/proj/models/nothing", None),
        ("GET", f"{API}/projects/proj/models/nothing/versions", None),
        ("GET", f"{API}/projects/nowhere/models", None),
        ("GET", f"{API}/projects/nowhere/models/iris/versions/1", None),
        ("GET", f"{IRIS}/versions/9", None),
        ("GET", f"{IRIS}/versions/@9.9.9", None),
        ("GET", f"{IRIS}/versions/@production", None),
        ("GET", f"{IRIS}/versions/9/files", None),
        ("GET", f"{IRIS}/versions/1/files/nothing.pkl", None),
        ("GET", f"{IRIS}/versions/9/card", None),
        ("POST", f"{IRIS}/versions/9/approve", {"comment": "x"}),
        ("POST", f"{IRIS}/versions/@production/reject", {"comment": "x"}),
        ("GET", f"{IRIS}/aliases/production", None),
        ("DELETE", f"{IRIS}/aliases/production", None),
        ("PUT", f"{IRIS}/aliases/production", {"version": 9}),
        ("PUT", f"{API}/projects/proj/models/nothing/aliases/production", {"version": 1}),
        ("GET", f"{API}/projects/proj/models/nothing/alias-history", None),
        ("POST", f"{API}/projects/proj/models/nothing/aliases/production/rollback", {}),
        ("PUT", f"{API}/projects/proj/models/nothing/protected-aliases/production", None),
        ("GET", f"{API}/projects/proj/model-compare?a=iris:1&b=iris:9", None),
        ("POST", f"{API}/runs/{new_ulid()}/model-inputs", {"model": "iris:1"}),
        ("POST", f"{API}/runs/{run_id}/model-inputs", {"model": "iris:9"}),
    ]
    before = everything(api)
    for method, url, body in missing:
        response = api.request(method, url, json=body)
        error = error_of(response, 404)
        assert error["code"] == "not_found", (method, url)
    assert everything(api) == before
    gone = error_of(api.get(f"{IRIS}/aliases/production"), 404)
    assert gone["details"] == {"model": "iris", "alias": "production"}


def _files(api: TestClient) -> list[dict[str, Any]]:
    return [{"path": "model.pkl", **put_blob(api, b"weights-1")}]


WEIGHTS = sha(b"weights-1")
BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"extra": 1}, "extra"),
    ({"flavor": 42}, "flavor"),
    ({"flavor": None}, "flavor"),
    ({"flavor": ""}, "flavor"),
    ({"flavor": "f" * 51}, "flavor"),
    ({"signature": "x"}, "signature"),
    ({"tags": ["a"]}, "tags"),
    ({"requirements": {"numpy": ["2"]}}, "requirements.numpy"),
    ({"files": [{"path": "m.pkl", "digest": "a" * 64, "size": 1}]}, "files[0].digest"),
    ({"files": [{"path": "../m.pkl", "digest": WEIGHTS, "size": 9}]}, "files[0].path"),
    ({"files": [{"path": "/m.pkl", "digest": WEIGHTS, "size": 9}]}, "files[0].path"),
    ({"files": [{"path": "m.pkl", "digest": WEIGHTS, "size": 3}]}, "files[0].size"),
    ({"files": [{"path": "m.pkl", "digest": WEIGHTS, "size": -1}]}, "files.0.size"),
    ({"files": [{"path": "m.pkl", "size": 9}]}, "files.0.digest"),
    ({"files": []}, "files"),
    ({"files": None}, "files"),
    ({"bump": "huge"}, "bump"),
    ({"bump": "minor", "semver": "3.0.0"}, "bump"),
    ({"semver": "v3"}, "semver"),
    ({"run_id": 7}, "run_id"),
]


def test_bad_bodies_are_400_naming_the_field(api: TestClient) -> None:
    files = _files(api)
    before = everything(api)
    for change, field in BAD_BODIES:
        error = error_of(post_version(api, {"files": files, "flavor": "sklearn", **change}), 400)
        assert error["code"] == "invalid"
        assert error["details"]["field"] == field, (change, error)
    assert everything(api) == before  # and nothing was made: no model, version or event


def test_other_bad_input_is_400(api: TestClient) -> None:
    register(api)
    run_id = start_run(api)
    not_json = api.post(
        f"{IRIS}/versions", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert error_of(not_json, 400)["details"]["field"] == "body"
    cases: list[tuple[str, str, Any, str]] = [
        ("PUT", f"{IRIS}/aliases/1abc", {"version": 1}, "alias"),
        ("PUT", f"{IRIS}/aliases/latest", {"version": 1}, "alias"),
        ("PUT", f"{IRIS}/aliases/a%20b", {"version": 1}, "alias"),
        ("PUT", f"{IRIS}/aliases/production", {}, "version"),
        ("PUT", f"{IRIS}/aliases/production", {"version": "iris:0"}, "ref"),
        ("PUT", f"{IRIS}/aliases/production", {"version": 1, "why": "x"}, "why"),
        ("GET", f"{IRIS}/aliases/production?at=yesterday", None, "at"),
        ("GET", f"{IRIS}/alias-history?alias=a%20b", None, "alias"),
        ("GET", f"{IRIS}/versions/abc", None, "ref"),
        ("GET", f"{IRIS}/versions/0", None, "ref"),
        ("GET", f"{IRIS}/versions/1/files/..%2Fx", None, "path"),
        ("POST", f"{IRIS}/versions/1/approve", {"comment": 5}, "comment"),
        ("POST", f"{API}/runs/{run_id}/model-inputs", {"model": "iris:1", "role": "a b"}, "role"),
    ]
    before = everything(api)
    for method, url, body, field in cases:
        error = error_of(api.request(method, url, json=body), 400)
        assert error["details"]["field"] == field, (url, error)
    assert everything(api) == before


def test_an_unknown_flavor_is_refused(api: TestClient) -> None:
    body = {"files": _files(api), "flavor": "nonsense"}
    assert error_of(post_version(api, body), 400)["details"]["field"] == "flavor"


def test_a_huge_version_number_is_not_a_500(api: TestClient) -> None:
    register(api)
    for number in ("3000000000", "99999999999999999999"):
        read = api.get(f"{IRIS}/versions/{number}")
        assert read.status_code in (400, 404), (number, read.text)
        moved = set_alias(api, "production", int(number))
        assert moved.status_code in (400, 404), (number, moved.text)


# ---------------------------------------------------------------------------- approvals


def test_approvals_carry_the_callers_name(api: TestClient) -> None:
    register(api)
    register(api, b"weights-2")
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = api.post(
        f"{IRIS}/versions/@1.0.0/approve",
        json={"comment": "holdout 0.97"},
        headers={"X-Cairn-Actor": "lee"},
    )
    assert response.status_code == 200, response.text
    approved = response.json()
    assert (approved["approval"], approved["approval_comment"], approved["approval_actor"]) == (
        "approved",
        "holdout 0.97",
        "lee",
    )
    when = datetime.fromisoformat(approved["approval_at"].replace("Z", "+00:00"))
    assert before <= when <= datetime.now(UTC) + timedelta(seconds=1)
    rejected = api.post(
        f"{IRIS}/versions/latest/reject", json={"comment": "overfits"}, headers=as_actor("kim")
    ).json()
    assert (rejected["version"], rejected["approval"], rejected["approval_actor"]) == (
        2,
        "rejected",
        "kim",
    )
    assert api.get(f"{IRIS}/versions/1").json()["approval_comment"] == "holdout 0.97"
    assert actions(api)[-2:] == [
        ("model.version_approved", "proj/iris:1", "lee"),
        ("model.version_rejected", "proj/iris:2", "kim"),
    ]


def test_a_protected_alias_is_a_409(api: TestClient) -> None:
    register(api)
    protected = api.put(f"{IRIS}/protected-aliases/production", headers=as_actor("lee"))
    assert protected.status_code == 200 and protected.json()["protected_aliases"] == ["production"]
    before = everything(api)
    error = error_of(set_alias(api, "production", 1), 409)
    assert error["code"] == "conflict"
    assert "'production'" in error["message"] and "pending" in error["message"]
    assert error["details"] == {"alias": "production", "version": 1, "approval": "pending"}
    assert everything(api) == before

    approve(api, 1)
    moved = set_alias(api, "production", 1, actor="lee", reason="first release")
    assert moved.status_code == 200 and moved.json()["aliases"] == ["production"]
    refused = error_of(api.post(f"{IRIS}/versions/1/reject", json={"comment": "no"}), 409)
    assert refused["details"] == {"aliases": ["production"], "version": 1}
    assert api.get(f"{IRIS}/versions/1").json()["approval"] == "approved"

    unprotected = api.delete(f"{IRIS}/protected-aliases/production")
    assert unprotected.json()["protected_aliases"] == []
    assert [a for a, _, _ in actions(api)][-3:] == [
        "model.version_approved",
        "model.alias_moved",
        "model.alias_unprotected",
    ]
    assert ("model.alias_protected", "proj/iris", "lee") in actions(api)


# ---------------------------------------------------------------------------- aliases


def test_alias_history_point_in_time_and_rollback(api: TestClient) -> None:
    for n in (1, 2, 3):
        register(api, f"weights-{n}".encode())
    assert set_alias(api, "staging", 1, actor="ana", reason="first").status_code == 200
    pause()
    assert set_alias(api, "staging", "iris@1.0.1", actor="bob").status_code == 200
    pause()
    assert set_alias(api, "staging", "3").status_code == 200
    pause()
    assert api.delete(f"{IRIS}/aliases/staging?reason=retired").status_code == 204

    history = api.get(f"{IRIS}/alias-history", params={"alias": "staging"}).json()
    assert [(m["from_version"], m["to_version"], m["actor"], m["reason"]) for m in history] == [
        (None, 1, "ana", "first"),
        (1, 2, "bob", None),
        (2, 3, None, None),
        (3, None, None, "retired"),
    ]
    times = [datetime.fromisoformat(m["at"].replace("Z", "+00:00")) for m in history]
    ms = timedelta(milliseconds=1)

    def at(when: datetime) -> httpx.Response:
        response: httpx.Response = api.get(
            f"{IRIS}/aliases/staging", params={"at": when.isoformat()}
        )
        return response

    early = error_of(at(times[0] - ms), 404)  # before the alias existed
    assert early["details"] == {"model": "iris", "alias": "staging"}
    assert at(times[0]).json()["version"] == 1
    assert at(times[1] - ms).json()["version"] == 1
    assert at(times[1]).json()["version"] == 2
    assert at(times[3] - ms).json()["version"] == 3
    error_of(at(times[3]), 404)  # deleted then
    error_of(api.get(f"{IRIS}/aliases/staging"), 404)  # and now

    rolled = api.post(f"{IRIS}/aliases/staging/rollback", json={}, headers=as_actor("lee"))
    assert rolled.status_code == 200 and rolled.json()["version"] == 3  # the delete undone
    assert set_alias(api, "production", 1).status_code == 200
    pause()
    assert set_alias(api, "production", 2).status_code == 200
    pause()
    back = api.post(
        f"{IRIS}/aliases/production/rollback",
        json={"reason": "v2 drops accuracy"},
        headers=as_actor("lee"),
    )
    assert back.status_code == 200 and back.json()["version"] == 1
    last = api.get(f"{IRIS}/alias-history", params={"alias": "production"}).json()[-1]
    assert (last["from_version"], last["to_version"], last["actor"], last["reason"]) == (
        2,
        1,
        "lee",
        "v2 drops accuracy",
    )
    assert len(api.get(f"{IRIS}/alias-history").json()) == 8
    no_earlier = error_of(api.post(f"{IRIS}/aliases/canary/rollback", json={}), 409)
    assert no_earlier["details"] == {"model": "iris", "alias": "canary"}
    moves = [a for a, _, _ in actions(api) if a.startswith("model.alias")]
    assert moves == ["model.alias_moved"] * 3 + ["model.alias_deleted"] + ["model.alias_moved"] * 4


def test_an_alias_of_another_models_version_is_refused(api: TestClient) -> None:
    register(api)
    register(api, url=f"{API}/projects/proj/models/wine")
    before = everything(api)
    refused = error_of(set_alias(api, "production", "wine:1"), 409)
    assert "another model" in refused["message"]
    assert everything(api) == before


# ---------------------------------------------------------------------------- cards


def test_card_compare_and_model_inputs(api: TestClient) -> None:
    git = {"commit": "c" * 40, "branch": "main", "dirty": False}
    data = put_blob(api, b"x\n1\n")
    made = api.post(
        f"{API}/projects/proj/datasets/d/versions",
        json={"files": [{"path": "d.csv", **data}], "batch": "2024-03"},
    )
    assert made.status_code == 201, made.text
    runs = []
    for lr, acc in (("0.1", 0.91), ("0.2", 0.95)):
        run_id = start_run(api, git=git)
        batch = {
            "idempotency_key": f"key-{run_id}",
            "params": {"lr": lr, "epochs": 10},
            "metrics": {"acc": {"steps": [0], "timestamps": [0], "values": [acc]}},
        }
        assert api.post(f"{API}/runs/{run_id}/batch", json=batch).status_code == 200
        used = api.post(f"{API}/runs/{run_id}/inputs", json={"dataset": "d:1", "role": "train"})
        assert used.status_code == 201, used.text
        runs.append(run_id)
    first = register(api, run_id=runs[0])
    assert (first["run_id"], first["training_data"]) == (runs[0], ["proj/d:1"])
    register(api, b"weights-2", run_id=runs[1])

    card = api.get(f"{IRIS}/versions/1/card").json()
    assert (card["version"], card["semver"], card["signature"]) == (1, "1.0.0", SIGNATURE)
    assert card["run"]["params"] == {"lr": "0.1", "epochs": "10"}
    assert (card["run"]["metrics"], card["run"]["git"]) == ({"acc": 0.91}, git)
    assert [(d["dataset"], d["role"], d["batch"]) for d in card["training_data"]] == [
        ("proj/d:1", "train", "2024-03")
    ]
    assert [f["path"] for f in card["files"]] == ["cairn-model.json", "model.pkl"]
    assert api.get(f"{IRIS}/versions/@1.0.1/card").json()["version"] == 2

    diff = api.get(f"{API}/projects/proj/model-compare", params={"a": "iris:1", "b": "iris@1.0.1"})
    assert diff.status_code == 200, diff.text
    body = diff.json()
    assert body["params"]["lr"] == {"a": "0.1", "b": "0.2", "differs": True}
    assert body["params"]["epochs"] == {"a": "10", "b": "10", "differs": False}
    assert body["metrics"]["acc"] == {"a": 0.91, "b": 0.95, "differs": True}
    assert body["signature"]["differs"] is False

    assert set_alias(api, "staging", 2).status_code == 200
    used = api.post(f"{API}/runs/{runs[0]}/model-inputs", json={"model": "iris@staging"})
    assert used.status_code == 201 and used.json()["version"] == 2
    again = api.post(f"{API}/runs/{runs[0]}/model-inputs", json={"model": "iris:2"})
    assert again.status_code == 201
    assert [a for a, _, _ in actions(api)].count("run.model_input_added") == 1
