"""Every route in the OpenAPI document and every UI page, for every role, on the caller's
own project and on another: allowed or denied as the policy table below says.

The table is written out here, apart from the code, on purpose: a route added without
an entry fails ``test_the_policy_table_names_every_route``, and one whose guard differs
from the table fails the matrix.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from cairn.api.app import create_app
from cairn.domain.access import Role
from cairn.domain.ids import new_ulid
from cairn.settings import Settings
from cairn.store.database import Database

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

V, E, M = Role.VIEWER, Role.EDITOR, Role.MAINTAINER
PUBLIC, SIGNED_IN, ADMIN = "public", "signed_in", "admin"
SOMEWHERE = "somewhere"  # the role on any one project (content-addressed bytes)

# (method, path) -> PUBLIC | SIGNED_IN | ADMIN | (SOMEWHERE, role) | role on the project
POLICY: dict[tuple[str, str], Any] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/api/v1/projects"): SIGNED_IN,
    ("POST", "/api/v1/projects"): ADMIN,
    ("GET", "/api/v1/projects/{name}"): V,
    ("GET", "/api/v1/runs"): V,
    ("POST", "/api/v1/runs"): E,
    ("POST", "/api/v1/runs/search"): V,
    ("GET", "/api/v1/runs/{run_id}"): V,
    ("PATCH", "/api/v1/runs/{run_id}"): E,
    ("POST", "/api/v1/runs/{run_id}/batch"): E,
    ("GET", "/api/v1/runs/{run_id}/metrics/history"): V,
    ("PUT", "/api/v1/runs/{run_id}/tags"): E,
    ("DELETE", "/api/v1/runs/{run_id}/tags"): E,
    ("GET", "/api/v1/runs/{run_id}/git-diff"): V,
    ("GET", "/api/v1/runs/{run_id}/children"): V,
    ("POST", "/api/v1/batches"): E,
    ("GET", "/api/v1/runs/{run_id}/artifacts/{path}"): V,
    ("PUT", "/api/v1/runs/{run_id}/artifacts/{path}"): E,
    ("GET", "/api/v1/runs/{run_id}/artifacts"): V,
    ("POST", "/api/v1/runs/{run_id}/artifacts"): E,
    ("POST", "/api/v1/blobs/missing"): (SOMEWHERE, E),
    ("PUT", "/api/v1/blobs/{digest}"): (SOMEWHERE, E),
    ("POST", "/api/v1/blobs/bundle"): (SOMEWHERE, E),
    ("POST", "/api/v1/blobs/presigned-uploads"): (SOMEWHERE, E),
    ("POST", "/api/v1/blobs/presigned-uploads/{token}/complete"): (SOMEWHERE, E),
    ("POST", "/api/v1/uploads"): (SOMEWHERE, E),
    ("GET", "/api/v1/uploads/{upload_id}"): (SOMEWHERE, E),
    ("PATCH", "/api/v1/uploads/{upload_id}"): (SOMEWHERE, E),
    ("DELETE", "/api/v1/uploads/{upload_id}"): (SOMEWHERE, E),
    ("POST", "/api/v1/uploads/{upload_id}/complete"): (SOMEWHERE, E),
    ("GET", "/api/v1/projects/{project}/datasets"): V,
    ("GET", "/api/v1/projects/{project}/datasets/{name}/versions"): V,
    ("POST", "/api/v1/projects/{project}/datasets/{name}/versions"): E,
    ("GET", "/api/v1/projects/{project}/datasets/{name}/versions/{version}"): V,
    ("GET", "/api/v1/projects/{project}/datasets/{name}/versions/{version}/files"): V,
    ("GET", "/api/v1/projects/{project}/datasets/{name}/versions/{version}/files/{path}"): V,
    ("GET", "/api/v1/projects/{project}/datasets/{name}/versions/{version}/runs"): V,
    ("GET", "/api/v1/projects/{project}/dataset-diff"): V,
    ("GET", "/api/v1/runs/{run_id}/inputs"): V,
    ("POST", "/api/v1/runs/{run_id}/inputs"): E,
    ("GET", "/api/v1/projects/{project}/models"): V,
    ("GET", "/api/v1/projects/{project}/models/{name}"): V,
    ("GET", "/api/v1/projects/{project}/models/{name}/versions"): V,
    ("POST", "/api/v1/projects/{project}/models/{name}/versions"): E,
    ("GET", "/api/v1/projects/{project}/models/{name}/versions/{version}"): V,
    ("GET", "/api/v1/projects/{project}/models/{name}/versions/{version}/files"): V,
    ("GET", "/api/v1/projects/{project}/models/{name}/versions/{version}/files/{path}"): V,
    ("GET", "/api/v1/projects/{project}/models/{name}/versions/{version}/card"): V,
    ("POST", "/api/v1/projects/{project}/models/{name}/versions/{version}/approve"): M,
    ("POST", "/api/v1/projects/{project}/models/{name}/versions/{version}/reject"): M,
    ("GET", "/api/v1/projects/{project}/models/{name}/aliases/{alias}"): V,
    ("PUT", "/api/v1/projects/{project}/models/{name}/aliases/{alias}"): E,
    ("DELETE", "/api/v1/projects/{project}/models/{name}/aliases/{alias}"): E,
    ("GET", "/api/v1/projects/{project}/models/{name}/alias-history"): V,
    ("POST", "/api/v1/projects/{project}/models/{name}/aliases/{alias}/rollback"): E,
    ("PUT", "/api/v1/projects/{project}/models/{name}/protected-aliases/{alias}"): M,
    ("DELETE", "/api/v1/projects/{project}/models/{name}/protected-aliases/{alias}"): M,
    ("GET", "/api/v1/projects/{project}/model-compare"): V,
    ("POST", "/api/v1/runs/{run_id}/model-inputs"): E,
    ("GET", "/api/v1/webhooks"): M,
    ("POST", "/api/v1/webhooks"): M,
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): M,
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): M,
    ("GET", "/api/v1/lineage"): V,
    ("GET", "/api/v1/events"): V,
    ("GET", "/api/v1/projects/{project}/endpoints"): V,
    ("POST", "/api/v1/projects/{project}/endpoints"): M,
    ("GET", "/api/v1/projects/{project}/endpoints/{name}"): V,
    ("PUT", "/api/v1/projects/{project}/endpoints/{name}"): M,
    ("PATCH", "/api/v1/projects/{project}/endpoints/{name}/settings"): M,
    ("GET", "/api/v1/projects/{project}/predictions"): V,
    ("POST", "/api/v1/projects/{project}/predictions"): E,
    ("POST", "/api/v1/projects/{project}/feedback"): E,
    ("GET", "/api/v1/projects/{project}/monitoring"): V,
    ("GET", "/api/v1/projects/{project}/endpoints/{name}/ab"): V,
    ("POST", "/api/v1/projects/{project}/endpoints/{name}/promote"): M,
    ("GET", "/api/v1/whoami"): SIGNED_IN,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("GET", "/api/v1/tokens"): SIGNED_IN,
    ("POST", "/api/v1/tokens"): SIGNED_IN,
    ("DELETE", "/api/v1/tokens/{key}"): SIGNED_IN,  # one's own; anyone's: admins (below)
    ("GET", "/api/v1/projects/{project}/members"): V,
    ("PUT", "/api/v1/projects/{project}/members/{user}"): ADMIN,
    ("DELETE", "/api/v1/projects/{project}/members/{user}"): ADMIN,
}

# UI pages (GET) -> the same kinds of policy
PAGES: dict[str, Any] = {
    "/": SIGNED_IN,
    "/go?project={project}": V,
    "/projects/{project}/runs": V,
    "/runs/{run_id}": V,
    "/runs/{run_id}/diff": V,
    "/compare?runs={run_id},{run_id2}": V,
    "/projects/{project}/models": V,
    "/projects/{project}/models/{name}": V,
    "/projects/{project}/models/{name}/compare?a=1&b=1": V,
    "/projects/{project}/datasets": V,
    "/projects/{project}/datasets/{name}": V,
    "/projects/{project}/datasets/{name}/diff?old=1&new=1": V,
    "/lineage?ref=runs/{run_id}": V,
    "/projects/{project}/endpoints": V,
    "/projects/{project}/endpoints/{name}": V,
    "/tokens": SIGNED_IN,
    "/login": PUBLIC,
    "/ui/vendor/plotly.min.js": PUBLIC,
}

OWN, OTHER = "own", "other"
PEOPLE: dict[str, tuple[bool, Role | None]] = {  # name -> (admin, role on OWN)
    "root": (True, None),
    "vera": (False, V),
    "eddie": (False, E),
    "mona": (False, M),
    "otto": (False, None),  # signed in, no role anywhere
}


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str]
    runs: dict[str, tuple[str, str]]  # project -> two run ids
    hooks: dict[str, int]  # project -> a webhook id

    def headers(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}


def _seed(client: TestClient, token: str) -> tuple[dict[str, tuple[str, str]], dict[str, int]]:
    auth = {"Authorization": f"Bearer {token}"}
    runs: dict[str, tuple[str, str]] = {}
    hooks: dict[str, int] = {}
    for project in (OWN, OTHER):
        assert client.post("/api/v1/projects", json={"name": project}, headers=auth).is_success
        ids = (new_ulid(), new_ulid())
        for run_id in ids:
            body = {"id": run_id, "project": project, "start_time": "2026-01-01T00:00:00Z"}
            assert client.post("/api/v1/runs", json=body, headers=auth).status_code == 201
        runs[project] = ids
        hook = {"url": "https://example.invalid/hook", "actions": ["*"], "project": project}
        response = client.post("/api/v1/webhooks", json=hook, headers=auth)
        assert response.status_code == 201, response.text
        hooks[project] = response.json()["id"]
    return runs, hooks


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    folder = str(tmp_path / "blobs")
    settings = Settings(store=db_url, artifacts=folder, auth=True)
    app = create_app(settings, database=Database(db_url, artifacts=folder))
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        identities = app.state.identities
        tokens: dict[str, str] = {}
        for name, (admin, _role) in PEOPLE.items():
            identities.create_user(name, password=f"{name}-password", admin=admin, actor=None)
            tokens[name] = identities.create_token(name, actor=None).token
        runs, hooks = _seed(client, tokens["root"])
        for name, (_admin, role) in PEOPLE.items():
            if role is not None:
                identities.grant(OWN, name, role, actor=None)
        yield World(client, tokens, runs, hooks)


def allowed(policy: Any, who: str | None, project: str) -> bool:
    if policy == PUBLIC:
        return True
    if who is None:
        return False
    admin, role = PEOPLE[who]
    if admin or policy == SIGNED_IN:
        return True
    if policy == ADMIN:
        return False
    if isinstance(policy, tuple):  # (SOMEWHERE, role): any project will do
        return role is not None and role >= policy[1]
    return project == OWN and role is not None and role >= policy


def _fill(template: str, world: World, project: str) -> str:
    run_id, run_id2 = world.runs[project]
    values = {
        "project": project,
        "name": project if template.startswith("/api/v1/projects/{name}") else "thing",
        "run_id": run_id,
        "run_id2": run_id2,
        "path": "notes.txt",
        "version": "1",
        "alias": "production",
        "digest": hashlib.sha256(b"x").hexdigest(),
        "token": "no-such-token",
        "upload_id": "0" * 32,
        "webhook_id": str(world.hooks[project]),
        "key": "0" * 16,
        "user": "otto",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def _body(method: str, path: str, project: str, world: World) -> dict[str, Any] | None:
    """Bodies for the routes that find their project in the body: valid enough to reach it."""
    fresh = new_ulid()
    start = {"id": fresh, "project": project, "start_time": "2026-01-01T00:00:00Z"}
    return {
        ("POST", "/api/v1/runs"): start,
        ("POST", "/api/v1/runs/search"): {"project": project},
        ("POST", "/api/v1/batches"): {
            "idempotency_key": f"key-{fresh}",
            "runs": [{"run_id": world.runs[project][0], "params": {"a": "1"}}],
        },
        ("POST", "/api/v1/webhooks"): {
            "url": "https://example.invalid/x",
            "actions": ["*"],
            "project": project,
        },
    }.get((method, path))


def _request(world: World, method: str, template: str, who: str | None, project: str) -> Any:
    path = _fill(template, world, project)
    body = _body(method, template, project, world)
    query = {"project": project}
    if template == "/api/v1/lineage":
        query["ref"] = f"runs/{world.runs[project][0]}"
    kwargs: dict[str, Any] = {"params": query, "headers": world.headers(who)}
    if body is not None:
        kwargs["json"] = body
    elif method in ("POST", "PUT", "PATCH"):
        kwargs["content"] = b"{}"
        kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
    return world.client.request(method, path, **kwargs)


def operations(client: TestClient) -> set[tuple[str, str]]:
    document = client.get("/openapi.json").json()
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_the_policy_table_names_every_route(world: World) -> None:
    found = operations(world.client)
    assert found - POLICY.keys() == set(), "routes with no entry in POLICY"
    assert POLICY.keys() - found == set(), "POLICY names routes that no longer exist"


@pytest.mark.parametrize("who", [None, *PEOPLE])
def test_every_route_allows_or_denies_as_the_table_says(world: World, who: str | None) -> None:
    wrong: list[str] = []
    checked = 0
    for (method, template), policy in sorted(POLICY.items()):
        for project in (OWN, OTHER):
            response = _request(world, method, template, who, project)
            denied = response.status_code in (401, 403)
            expected = allowed(policy, who, project)
            if who is None and not expected and response.status_code != 401:
                wrong.append(f"{method} {template} anonymous: {response.status_code} not 401")
            elif expected == denied:
                want = "allowed" if expected else "denied"
                wrong.append(
                    f"{method} {template} on {project} as {who}: {response.status_code}, "
                    f"expected {want}: {response.text[:160]}"
                )
            checked += 1
    print(f"{checked} requests as {who or 'anonymous'}, {len(wrong)} wrong")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("who", [None, *PEOPLE])
def test_every_page_allows_or_denies_as_the_table_says(world: World, who: str | None) -> None:
    if who is not None:
        response = world.client.post(
            "/login",
            data={"csrf": _csrf(world), "name": who, "password": f"{who}-password"},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
    wrong: list[str] = []
    for template, policy in PAGES.items():
        for project in (OWN, OTHER):
            response = world.client.get(_fill(template, world, project), follow_redirects=False)
            to_login = response.status_code == 303 and response.headers["location"].startswith(
                "/login"
            )
            denied = to_login or response.status_code == 403
            expected = allowed(policy, who, project)
            if expected == denied or (who is None and denied and not to_login):
                wrong.append(f"{template} on {project} as {who}: {response.status_code}")
    assert not wrong, "\n".join(wrong)


def _csrf(world: World) -> str:
    world.client.get("/login")
    token = world.client.cookies.get("cairn_csrf")
    assert token
    return token


def _register_version(world: World) -> str:
    """One approved version of model ``clf`` in OWN, registered by its editor."""
    client, eddie = world.client, world.headers("eddie")
    files = []
    for path, data in (("model.pkl", b"weights"), ("cairn-model.json", b'{"flavor": "x"}')):
        digest = hashlib.sha256(data).hexdigest()
        put = client.put(f"/api/v1/blobs/{digest}", content=data, headers=eddie)
        assert put.status_code == 201, put.text
        files.append({"path": path, "digest": digest, "size": len(data)})
    base = f"/api/v1/projects/{OWN}/models/clf"
    made = client.post(f"{base}/versions", json={"files": files, "flavor": "pickle"}, headers=eddie)
    assert made.status_code == 201, made.text
    approve = client.post(f"{base}/versions/1/approve", json={}, headers=world.headers("mona"))
    assert approve.status_code == 200, approve.text
    return base


def test_a_protected_alias_is_moved_by_maintainers_only(world: World) -> None:
    client = world.client
    base = _register_version(world)
    eddie, mona = world.headers("eddie"), world.headers("mona")
    # Unprotected: an editor moves it.
    moved = client.put(f"{base}/aliases/staging", json={"version": 1}, headers=eddie)
    assert moved.status_code == 200, moved.text
    # An editor may not protect it; a maintainer may.
    assert client.put(f"{base}/protected-aliases/production", headers=eddie).status_code == 403
    assert client.put(f"{base}/protected-aliases/production", headers=mona).status_code == 200
    refused = client.put(f"{base}/aliases/production", json={"version": 1}, headers=eddie)
    assert refused.status_code == 403
    assert "maintainer" in refused.json()["error"]["message"]
    allowed = client.put(f"{base}/aliases/production", json={"version": 1}, headers=mona)
    assert allowed.status_code == 200, allowed.text
    assert client.delete(f"{base}/aliases/production", headers=eddie).status_code == 403
    rollback = client.post(f"{base}/aliases/production/rollback", json={}, headers=eddie)
    assert rollback.status_code == 403
    assert client.delete(f"{base}/aliases/staging", headers=eddie).status_code == 204


def test_an_admin_revokes_anyones_token_and_a_user_only_their_own(world: World) -> None:
    client = world.client
    key = world.tokens["vera"].split("_")[1]
    response = client.delete(f"/api/v1/tokens/{key}", headers=world.headers("eddie"))
    assert response.status_code == 403
    assert client.delete(f"/api/v1/tokens/{key}", headers=world.headers("root")).status_code == 204
    assert client.get("/api/v1/whoami", headers=world.headers("vera")).status_code == 401


def test_a_reference_into_another_project_needs_a_role_there(world: World) -> None:
    client = world.client
    vera, mona = world.headers("vera"), world.headers("mona")
    base = f"/api/v1/projects/{OWN}"
    attempts = [
        ("GET", f"{base}/dataset-diff", vera, {"params": {"old": "other/d:1", "new": "d:1"}}),
        ("GET", f"{base}/model-compare", vera, {"params": {"a": "m:1", "b": "other/m:1"}}),
        ("GET", f"{base}/monitoring", vera, {"params": {"model": "other/m"}}),
        (
            "POST",
            f"{base}/endpoints",
            mona,
            {
                "json": {
                    "name": "e",
                    "variants": [{"name": "a", "target": "other/m:1", "weight": 1}],
                }
            },
        ),
        (
            "POST",
            f"/api/v1/runs/{world.runs[OWN][0]}/inputs",
            mona,
            {"json": {"dataset": "other/d:1"}},
        ),
    ]
    for method, path, headers, kwargs in attempts:
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 403, (path, response.text)
        assert "'other'" in response.json()["error"]["message"]
