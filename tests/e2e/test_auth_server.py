"""Accounts end to end: the first admin made with the CLI on the store, a real ``cairn
server`` that then requires sign-in, the SDK logging with ``CAIRN_TOKEN``, a role that
stops at its project, and a token revoked from the CLI refused by the running server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import cairn
from cairn.cli.main import cli
from conftest import start_server, stop_server

pytestmark = [pytest.mark.server, pytest.mark.timeout(120)]

API = "/api/v1"


def run_cli(*args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def make_token(store: str, user: str) -> tuple[str, str]:
    made = json.loads(run_cli("tokens", "create", "--user", user, "--store", store, "--json"))
    return made["token"], made["key"]


def test_accounts_tokens_and_roles_against_a_real_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(tmp_path / "store")
    run_cli("users", "create", "alice", "--admin", "--password-stdin", "--store", store,
            stdin="alice-password\n")  # fmt: skip
    run_cli("users", "create", "bob", "--no-password", "--store", store)
    alice, _ = make_token(store, "alice")
    bob, bob_key = make_token(store, "bob")
    assert "bob" in run_cli("users", "ls", "--store", store)

    proc, url = start_server(store)  # loopback, but the store has accounts: sign-in required
    try:
        assert httpx.get(f"{url}{API}/projects").status_code == 401
        assert httpx.get(f"{url}/healthz").status_code == 200
        admin = {"Authorization": f"Bearer {alice}"}
        for project in ("team", "secret"):
            created = httpx.post(f"{url}{API}/projects", json={"name": project}, headers=admin)
            assert created.status_code == 201, created.text
        run_cli("users", "grant", "bob", "team", "editor", "--store", store)

        monkeypatch.setenv("CAIRN_TOKEN", bob)
        client = cairn.Client(url, project="team")
        run = client.start_run("trained-by-bob", capture=False)
        for step in range(5):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.end()
        client.flush()
        stored = client.get_run(run.id)
        assert stored.metrics["loss"].last == pytest.approx(0.2)
        events = httpx.get(
            f"{url}{API}/events",
            params={"project": "team", "entity_type": "run", "entity_id": run.id},
            headers={"Authorization": f"Bearer {bob}"},
        ).json()["events"]
        assert {e["actor"] for e in events} == {"bob"}

        with pytest.raises(cairn.Forbidden):
            client.search_runs(project="secret")
        bob_sees = [p.project.name for p in client.list_projects()]
        assert bob_sees == ["team"]

        run_cli("tokens", "revoke", bob_key, "--store", store)
        with pytest.raises(cairn.Unauthenticated):
            client.get_run(run.id)
        client.close()
    finally:
        stop_server(proc)
