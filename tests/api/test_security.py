"""Tokens, sessions, CSRF, sign-in rate limiting, paths that try to escape, and secrets
that must never show up in answers, events or logs. The access matrix is
``test_access_matrix.py``."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from sqlalchemy import text
from starlette.exceptions import StarletteDeprecationWarning

from cairn.api.app import create_app
from cairn.cli.server import _decide_auth
from cairn.domain.access import Role
from cairn.domain.ids import new_ulid
from cairn.settings import Settings
from cairn.store.database import Database

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"


@pytest.fixture
def app_and_client(db_url: str, tmp_path: Path) -> Iterator[tuple[Any, TestClient]]:
    folder = str(tmp_path / "blobs")
    settings = Settings(store=db_url, artifacts=folder, auth=True)
    app = create_app(settings, database=Database(db_url, artifacts=folder))
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        ids = app.state.identities
        ids.create_user("root", password="root-password", admin=True, actor=None)
        ids.create_user("mona", password="mona-password", actor=None)
        root = {"Authorization": f"Bearer {ids.create_token('root', actor=None).token}"}
        assert client.post(f"{API}/projects", json={"name": "p"}, headers=root).is_success
        ids.grant("p", "mona", Role.MAINTAINER, actor=None)
        yield app, client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: TestClient, name: str, password: str) -> Any:
    client.get("/login")
    return client.post(
        "/login",
        data={"csrf": client.cookies.get("cairn_csrf"), "name": name, "password": password},
        follow_redirects=False,
    )


def test_a_revoked_token_stops_working_at_once(app_and_client: Any) -> None:
    app, client = app_and_client
    made = app.state.identities.create_token("mona", "laptop", actor="root")
    assert client.get(f"{API}/whoami", headers=bearer(made.token)).json()["name"] == "mona"
    app.state.identities.revoke_token(made.info.key, actor="root")
    response = client.get(f"{API}/whoami", headers=bearer(made.token))
    assert response.status_code == 401
    assert made.token not in response.text
    listed = app.state.identities.tokens("mona")
    assert [t.revoked_at is not None for t in listed if t.key == made.info.key] == [True]


def test_an_expired_token_is_refused_with_a_clear_message(app_and_client: Any) -> None:
    app, client = app_and_client
    made = app.state.identities.create_token("mona", expires_in_days=1, actor=None)
    with app.state.db.write() as tx:
        tx.conn.execute(
            text("UPDATE api_tokens SET expires_at = 1 WHERE key = :k"), {"k": made.info.key}
        )
    response = client.get(f"{API}/whoami", headers=bearer(made.token))
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer cairn_0123456789abcdef_wrong", "Basic dXNlcjpwYXNz", "Bearer "],
)
def test_a_bad_credential_is_401_and_never_echoed(app_and_client: Any, header: str) -> None:
    _app, client = app_and_client
    response = client.get(f"{API}/projects", headers={"Authorization": header})
    assert response.status_code == 401
    secret = header.partition(" ")[2]
    assert not secret or secret not in response.text


def test_tokens_are_stored_hashed_and_passwords_with_scrypt(app_and_client: Any) -> None:
    app, _client = app_and_client
    made = app.state.identities.create_token("mona", actor=None)
    secret = made.token.split("_", 2)[2]  # cairn_<key>_<secret>; the secret may hold "_"
    with app.state.db.read() as conn:
        stored = conn.execute(text("SELECT secret_hash FROM api_tokens")).scalars().all()
        hashes = conn.execute(text("SELECT password_hash FROM users")).scalars().all()
        events = conn.execute(text("SELECT coalesce(after, '') FROM events")).scalars().all()
    assert hashlib.sha256(secret.encode()).hexdigest() in stored
    assert all(made.token not in s and secret not in s for s in stored)
    assert all(h.startswith("scrypt$") and "password" not in h for h in hashes)
    assert not any("mona-password" in e or secret in e or "scrypt$" in e for e in events)


def test_a_session_cookie_change_needs_the_csrf_header(app_and_client: Any) -> None:
    _app, client = app_and_client
    assert sign_in(client, "mona", "mona-password").status_code == 303
    body = {"name": "from the browser"}
    refused = client.post(f"{API}/tokens", json=body)
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["error"]["message"]
    wrong = client.post(f"{API}/tokens", json=body, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    assert client.get(f"{API}/whoami").json()["via"] == "session"  # reads need no token


def test_a_ui_form_without_its_csrf_token_is_refused(app_and_client: Any) -> None:
    app, client = app_and_client
    assert sign_in(client, "mona", "mona-password").status_code == 303
    assert client.post("/tokens", data={"name": "x"}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert app.state.identities.tokens("mona") == []
    made = client.post("/tokens", data={"name": "x", "csrf": client.cookies.get("cairn_csrf")})
    assert made.status_code == 200
    assert "cairn_" in made.text
    assert len(app.state.identities.tokens("mona")) == 1


def test_sign_in_forms_are_csrf_protected_too(app_and_client: Any) -> None:
    _app, client = app_and_client
    response = client.post("/login", data={"name": "mona", "password": "mona-password"})
    assert response.status_code == 403
    assert "cairn_session" not in client.cookies


def test_signing_out_ends_the_session(app_and_client: Any) -> None:
    _app, client = app_and_client
    assert sign_in(client, "mona", "mona-password").status_code == 303
    cookie = client.cookies.get("cairn_session")
    assert client.get(f"{API}/whoami").status_code == 200
    client.post("/logout", data={"csrf": client.cookies.get("cairn_csrf")})
    client.cookies.set("cairn_session", cookie or "")  # a copy kept by someone else
    assert client.get(f"{API}/whoami").status_code == 401


def test_the_session_cookie_is_secure_httponly_and_samesite(app_and_client: Any) -> None:
    _app, client = app_and_client
    response = sign_in(client, "mona", "mona-password")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie


def test_failed_sign_ins_are_rate_limited(app_and_client: Any) -> None:
    app, client = app_and_client
    limit = app.state.identities.sign_ins.limit
    for _ in range(limit):
        assert sign_in(client, "mona", "wrong-password").status_code == 401
    blocked = sign_in(client, "mona", "mona-password")
    assert blocked.status_code == 429
    assert "try again in" in blocked.text
    # Guessing tokens counts against the same address.
    response = client.get(f"{API}/whoami", headers=bearer("cairn_0123456789abcdef_guess"))
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0


def test_a_wrong_user_name_and_a_wrong_password_read_the_same(app_and_client: Any) -> None:
    _app, client = app_and_client
    nobody = sign_in(client, "nobody", "whatever-password")
    wrong = sign_in(client, "mona", "whatever-password")
    assert nobody.status_code == wrong.status_code == 401
    assert "wrong user name or password" in nobody.text
    assert "wrong user name or password" in wrong.text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_sign_in_never_sends_the_browser_to_another_site(app_and_client: Any, target: str) -> None:
    _app, client = app_and_client
    client.get("/login")
    response = client.post(
        "/login",
        data={
            "csrf": client.cookies.get("cairn_csrf"),
            "name": "mona",
            "password": "mona-password",
            "next": target,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_the_audit_actor_is_the_authenticated_user_not_a_header(app_and_client: Any) -> None:
    app, client = app_and_client
    token = app.state.identities.create_token("mona", actor=None).token
    run_id = new_ulid()
    body = {"id": run_id, "project": "p", "start_time": "2026-01-01T00:00:00Z"}
    headers = {**bearer(token), "X-Cairn-Actor": "someone-else"}
    assert client.post(f"{API}/runs", json=body, headers=headers).status_code == 201
    events = app.state.audit.events(entity_type="run", entity_id=run_id).events
    assert [e.actor for e in events] == ["mona"]


TRAVERSALS = ["../secret", "..%2Fsecret", "a/../../secret", "/etc/passwd", "C:/x", "a\\..\\b"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_escapes_through_any_endpoint_that_takes_one(
    app_and_client: Any, path: str, tmp_path: Path
) -> None:
    app, client = app_and_client
    token = app.state.identities.create_token("mona", actor=None).token
    run_id = new_ulid()
    body = {"id": run_id, "project": "p", "start_time": "2026-01-01T00:00:00Z"}
    assert client.post(f"{API}/runs", json=body, headers=bearer(token)).status_code == 201
    (tmp_path / "secret").write_text("do not read")
    urls = [
        ("PUT", f"{API}/runs/{run_id}/artifacts/{path}"),
        ("GET", f"{API}/runs/{run_id}/artifacts/{path}"),
        ("GET", f"{API}/projects/p/datasets/d/versions/1/files/{path}"),
        ("GET", f"{API}/projects/p/models/m/versions/1/files/{path}"),
    ]
    for method, url in urls:
        response = client.request(method, url, content=b"x", headers=bearer(token))
        assert response.status_code in (400, 404), (method, url, response.status_code)
        assert "do not read" not in response.text
    assert (tmp_path / "secret").read_text() == "do not read"


def test_log_records_hold_no_token_or_password(
    app_and_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, client = app_and_client
    token = app.state.identities.create_token("mona", actor=None).token
    with caplog.at_level(logging.DEBUG):
        client.get(f"{API}/whoami", headers=bearer(token))
        client.get(f"{API}/whoami", headers=bearer(token + "x"))
        sign_in(client, "mona", "wrong-password")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in logged and "wrong-password" not in logged


@pytest.mark.parametrize(
    ("host", "asked", "insecure", "has_users", "expected"),
    [
        ("127.0.0.1", None, False, False, False),  # one local user: open
        ("127.0.0.1", None, False, True, True),  # accounts exist: enforced
        ("127.0.0.1", False, False, True, False),  # asked for open on loopback
        ("0.0.0.0", None, False, True, True),  # any other address: enforced
        ("0.0.0.0", None, True, False, False),  # explicitly insecure (and warned)
        ("0.0.0.0", None, False, False, "refused"),  # no admin to sign in yet
        ("0.0.0.0", False, False, True, "refused"),  # --no-auth off loopback
    ],
)
def test_the_server_decides_on_authentication_safely(
    host: str, asked: bool | None, insecure: bool, has_users: bool, expected: Any
) -> None:
    if expected == "refused":
        with pytest.raises(click.UsageError) as caught:
            _decide_auth(host, "./store", asked, insecure, has_users)
        assert host in str(caught.value)
    else:
        assert _decide_auth(host, "./store", asked, insecure, has_users) is expected
