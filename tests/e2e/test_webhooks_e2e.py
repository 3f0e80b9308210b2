"""Webhooks end to end: a real ``cairn server`` POSTs to a real HTTP receiver.

The receiver answers 500 to the first delivery and 204 after; the server must retry
(with a short backoff set through ``CAIRN_WEBHOOK_RETRY_BASE``), sign both attempts so
that ``hmac.compare_digest`` accepts them, and end with the delivery ``delivered`` after
two attempts. The ``cairn webhooks`` commands are run against that server and against a
store in this process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from cairn.cli.main import cli
from cairn.cli.output import EXIT_CODES
from conftest import start_server, stop_server

API = "/api/v1"


class Received:
    def __init__(self) -> None:
        self.calls: list[tuple[int, dict[str, str], bytes]] = []  # (answer, headers, body)
        self.lock = threading.Lock()


def _receiver(received: Received) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with received.lock:
                answer = 500 if not received.calls else 204
                received.calls.append((answer, dict(self.headers.items()), body))
            self.send_response(answer)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:  # keep the test output quiet
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    received = Received()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _receiver(received))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/cairn-hook", received
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def _signed(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Cairn-Signature"])


@pytest.mark.server
def test_server_retries_a_failed_delivery_and_signs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: tuple[str, Received]
) -> None:
    url, received = receiver
    monkeypatch.setenv("CAIRN_WEBHOOK_INTERVAL", "0.1")
    monkeypatch.setenv("CAIRN_WEBHOOK_RETRY_BASE", "0.3")
    proc, server = start_server(str(tmp_path / "store"))
    try:
        with httpx.Client(base_url=server + API, timeout=10) as http:
            made = http.post("/webhooks", json={"url": url, "actions": ["project.*"]})
            assert made.status_code == 201, made.text
            hook = made.json()
            assert http.post("/projects", json={"name": "hooked"}).status_code == 201

            def deliveries() -> list[dict[str, Any]]:
                found: list[dict[str, Any]] = http.get(f"/webhooks/{hook['id']}/deliveries").json()
                return found

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and [d["status"] for d in deliveries()] != [
                "delivered"
            ]:
                time.sleep(0.05)
            [delivery] = deliveries()
            listed = http.get("/webhooks").json()

        assert [answer for answer, _, _ in received.calls] == [500, 204]
        (_, first, body), (_, second, again) = received.calls
        assert body == again and _signed(hook["secret"], first, body)
        assert _signed(hook["secret"], second, again)
        assert not _signed("another secret", second, again)
        assert first["X-Cairn-Event"] == "project.created" and first["Content-Type"] == (
            "application/json"
        )
        assert first["X-Cairn-Delivery"] == second["X-Cairn-Delivery"] == str(delivery["id"])
        payload = json.loads(body)
        assert payload["id"] == delivery["id"]
        assert payload["event"]["action"] == "project.created"
        assert payload["event"]["project"] == "hooked"
        assert payload["event"]["after"] == {"name": "hooked"}
        assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
        assert delivery["last_status"] == 204 and delivery["delivered_at"] is not None
        assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]

        _cli_against(server, hook["id"])
    finally:
        stop_server(proc)


def _cli_against(uri: str, hook_id: int) -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["webhooks", "ls", "--uri", uri, "--json"])
    assert shown.exit_code == 0, shown.output
    assert [h["id"] for h in json.loads(shown.output)] == [hook_id]
    table = runner.invoke(cli, ["webhooks", "deliveries", str(hook_id), "--uri", uri])
    assert table.exit_code == 0 and "project.created" in table.output, table.output
    assert "delivered" in table.output
    removed = runner.invoke(cli, ["webhooks", "rm", str(hook_id), "--uri", uri])
    assert removed.exit_code == 0, removed.output
    assert "no webhooks" in runner.invoke(cli, ["webhooks", "ls", "--uri", uri]).output
    missing = runner.invoke(cli, ["webhooks", "deliveries", "424242", "--uri", uri])
    assert missing.exit_code == EXIT_CODES["not_found"], missing.output


def test_cli_on_a_local_store(tmp_path: Path) -> None:
    runner = CliRunner()
    uri = str(tmp_path / "store")
    assert (
        runner.invoke(cli, ["webhooks", "ls", "--uri", uri]).exit_code == EXIT_CODES["not_found"]
    )  # no store there: said, not made
    from cairn.store.database import Database

    Database(uri).close()
    made = runner.invoke(
        cli,
        ["webhooks", "create", "https://ci.example/h", "--action", "model.*", "--action",
         "run.created", "--uri", uri],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "secret:" in made.output and "model.*, run.created" in made.output
    listed = runner.invoke(cli, ["webhooks", "ls", "--uri", uri])
    assert "https://ci.example/h" in listed.output and "secret" not in listed.output
    bad = runner.invoke(cli, ["webhooks", "create", "ftp://x", "--action", "*", "--uri", uri])
    assert bad.exit_code == EXIT_CODES["invalid"] and "url" in bad.output
    unknown = runner.invoke(
        cli,
        ["webhooks", "create", "https://x.org", "--action", "*", "--project", "no", "--uri", uri],
    )
    assert unknown.exit_code == EXIT_CODES["not_found"], unknown.output
    hook_id = json.loads(runner.invoke(cli, ["webhooks", "ls", "--uri", uri, "--json"]).output)[0]
    assert runner.invoke(cli, ["webhooks", "deliveries", str(hook_id["id"]), "--uri", uri]).output
    assert runner.invoke(cli, ["webhooks", "rm", str(hook_id["id"]), "--uri", uri]).exit_code == 0
