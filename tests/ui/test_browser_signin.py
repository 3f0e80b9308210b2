"""Signing in, making and revoking a token, and signing out, in a real headless Chromium
against a real ``cairn server`` whose store has accounts (so it requires sign-in)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from browser_kit import Console, browser, page, shot, visit

from cairn.domain.access import Role
from cairn.services.identities import IdentityService
from cairn.store.database import Database
from conftest import start_server, stop_server

pytestmark = pytest.mark.server

PROJECT = "team"


@pytest.fixture(scope="module")
def guarded_site(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[str]:
    store = str(tmp_path_factory.mktemp("signin-store"))
    db = Database(store)
    try:
        identities = IdentityService(db)
        identities.create_user("alice", password="alice-password", admin=True, actor=None)
        identities.create_user("vera", password="vera-password", actor=None)
        admin = identities.create_token("alice", actor=None).token
    finally:
        db.close()
    proc, url = start_server(store)
    try:
        auth = {"Authorization": f"Bearer {admin}"}
        assert httpx.post(f"{url}/api/v1/projects", json={"name": PROJECT}, headers=auth).is_success
        assert httpx.post(
            f"{url}/api/v1/projects", json={"name": "hidden"}, headers=auth
        ).is_success
        member = httpx.put(
            f"{url}/api/v1/projects/{PROJECT}/members/vera", json={"role": "viewer"}, headers=auth
        )
        assert member.status_code == 204, member.text
        yield url
    finally:
        stop_server(proc)


def sign_in(tab: Any, name: str, password: str) -> None:
    tab.get_by_label("User name").fill(name)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_load_state("load")


def test_sign_in_tokens_and_sign_out_by_clicking(
    guarded_site: str, page: tuple[Any, Console]
) -> None:
    url = guarded_site
    tab, console = page
    visit(tab, f"{url}/projects/{PROJECT}/runs")
    assert tab.url.startswith(f"{url}/login?next=")  # sent to sign in, and back after
    shot(tab, "signin")

    sign_in(tab, "vera", "not-her-password")
    assert "wrong user name or password" in tab.locator(".alert-error").inner_text()

    sign_in(tab, "vera", "vera-password")
    assert tab.url == f"{url}/projects/{PROJECT}/runs"
    assert tab.locator(".whoami").inner_text() == "vera"

    visit(tab, f"{url}/")
    projects = tab.locator("main").inner_text()
    assert PROJECT in projects and "hidden" not in projects  # only what she may see
    denied = tab.goto(f"{url}/projects/hidden/runs")
    assert denied is not None and denied.status == 403
    console.errors.clear()  # the browser reports that 403 itself

    visit(tab, f"{url}/tokens")
    tab.get_by_label("What it is for").fill("laptop")
    tab.get_by_role("button", name="Create token").click()
    tab.wait_for_load_state("load")
    token = tab.locator("#new-token").inner_text()
    assert token.startswith("cairn_")
    whoami = httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert whoami.json()["name"] == "vera"
    shot(tab, "tokens")

    visit(tab, f"{url}/tokens")
    assert tab.locator("#new-token").count() == 0  # shown once, never again
    tab.get_by_role("button", name="Revoke token").first.click()
    tab.wait_for_load_state("load")
    assert tab.locator("text=revoked").count() == 1
    refused = httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401

    tab.get_by_role("button", name="Sign out").click()
    tab.wait_for_load_state("load")
    assert tab.url.startswith(f"{url}/login")
    visit(tab, f"{url}/")
    assert tab.url.startswith(f"{url}/login")
    assert console.errors == [], console.errors
