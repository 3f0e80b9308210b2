"""Webhooks on a real database (SQLite, and PostgreSQL when configured).

The outbox (a delivery per matching hook, written with its event), the rules of creating
and deleting hooks, and the sender: body, headers and signature, the retry schedule,
``failed`` after the last attempt, and claims that never overlap. HTTP goes through
``httpx.MockTransport``; ``tests/e2e/test_webhooks_e2e.py`` uses real sockets. The REST
routes are checked at the end, in-process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
import warnings
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.exceptions import StarletteDeprecationWarning

from cairn.domain.errors import Invalid, NotFound
from cairn.domain.ids import new_ulid
from cairn.domain.records import Batch, RunBatch, RunStart, now_ms
from cairn.services.tracking import TrackingService
from cairn.services.webhooks import DeliveryPolicy, WebhookService
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository, NewEvent
from cairn.store.tables import EventRow, WebhookDeliveryRow

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

REFUSED = "http://127.0.0.1:9/hook"  # the discard port: nothing listens, nothing is sent
T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


# ---------------------------------------------------------------------------- helpers


class Receiver:
    """An ``httpx.MockTransport`` that records requests and answers from a script."""

    def __init__(self, *answers: int | type[Exception]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()
        self.delay_s = 0.0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        time.sleep(self.delay_s)
        if isinstance(answer, type):
            raise answer("scripted failure")
        return httpx.Response(answer)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def service(db: Database, receiver: Receiver | None = None, **policy: Any) -> WebhookService:
    transport = receiver.transport if receiver else None
    return WebhookService(db, DeliveryPolicy(**policy), transport=transport)


def write_events(db: Database, *events: tuple[str, int | None], actor: str = "ana") -> list[int]:
    """Audit events with the given (action, project id), as a service writes them; their ids."""
    with db.write() as tx:
        before = tx.conn.execute(select(func.coalesce(func.max(EventRow.id), 0))).scalar_one()
        EventRepository(tx.conn).add_many(
            actor,
            [
                NewEvent(action, "thing", f"t{i}", project_id)
                for i, (action, project_id) in enumerate(events)
            ],
        )
        ids = tx.conn.execute(
            select(EventRow.id).where(EventRow.id > before).order_by(EventRow.id)
        ).scalars()
        return list(ids)


def queued(db: Database) -> Counter[tuple[int, int]]:
    """(webhook id, event id) of every delivery row."""
    with db.read() as conn:
        rows = conn.execute(select(WebhookDeliveryRow.webhook_id, WebhookDeliveryRow.event_id))
        return Counter((int(w), int(e)) for w, e in rows)


def project_ids(db: Database, *names: str) -> list[int]:
    tracking = TrackingService(db)
    return [tracking.create_project(name).id for name in names]


# ---------------------------------------------------------------------------- the outbox


def test_patterns_and_projects_pick_the_hooks(database: Database) -> None:
    a, b = project_ids(database, "a", "b")
    hooks = service(database)
    gone = hooks.create(REFUSED, ["*"])
    hooks.delete(gone.id)
    models = hooks.create(REFUSED, ["model.*"])  # every project
    a_runs = hooks.create(REFUSED, ["run.created"], project="a")
    a_all = hooks.create(REFUSED, ["*"], project="a")
    model_a, run_b, run_a, unscoped = write_events(
        database,
        ("model.version_created", a),
        ("run.created", b),
        ("run.created", a),
        ("project.created", None),
    )
    mine = {model_a, run_b, run_a, unscoped}
    got = Counter({k: n for k, n in queued(database).items() if k[1] in mine})
    assert got == Counter(
        {
            (models.id, model_a): 1,
            (a_runs.id, run_a): 1,
            (a_all.id, model_a): 1,
            (a_all.id, run_a): 1,
        }
    )
    # A hook hears of its own creation when its patterns match ``webhook.created``: a ping.
    [(own, status)] = [(d.action, d.status) for d in hooks.deliveries(gone.id)]
    assert (own, status) == ("webhook.created", "failed")  # dropped when it was deleted


def test_patterns_are_shell_style_and_case_sensitive(database: Database) -> None:
    hooks = service(database)
    hook = hooks.create(REFUSED, ["run.*", "run.created", "model.version_?reated"])  # overlap
    ids = write_events(
        database,
        ("run.created", None),
        ("run.ended", None),
        ("Run.created", None),
        ("model.version_created", None),
        ("model.version", None),
        ("runs.created", None),
    )
    got = {event for (w, event) in queued(database) if w == hook.id}
    assert got == {ids[0], ids[1], ids[3]}
    assert all(n == 1 for n in queued(database).values())  # one per hook, however many patterns


def test_no_hooks_no_deliveries_and_batches_queue_one_per_event(database: Database) -> None:
    tracking = TrackingService(database)
    starts = [RunStart(new_ulid(), "p", T0) for _ in range(3)]
    tracking.log_batch(Batch(new_ulid(), [RunBatch(s.id, start=s) for s in starts]))
    assert not queued(database)  # no hook: the events' fast path, nothing queued
    hook = service(database).create(REFUSED, ["run.*", "project.*"])
    more = [RunStart(new_ulid(), "q", T0) for _ in range(50)]
    tracking.log_batch(Batch(new_ulid(), [RunBatch(s.id, start=s) for s in more]))
    with database.read() as conn:
        events = conn.execute(
            select(EventRow.id, EventRow.action, EventRow.entity_id).where(
                EventRow.action.in_(["run.created", "project.created"]),
                EventRow.entity_id.in_([s.id for s in more] + ["q"]),
            )
        ).all()
    assert len(events) == 51  # 50 runs and project q
    assert {e for (w, e) in queued(database) if w == hook.id} == {e.id for e in events}


# ---------------------------------------------------------------------------- hooks


def test_create_shows_the_secret_once_and_audits_without_it(database: Database) -> None:
    project_ids(database, "nlp")
    hooks = service(database)
    hook = hooks.create("https://ci.example/cairn", ["model.*"], project="nlp", actor="ana")
    assert hook.secret and len(hook.secret) >= 40
    assert hook.project == "nlp" and hook.actions == ["model.*"] and hook.created_by == "ana"
    given = hooks.create("https://u:pw@ci.example/x", ["*"], secret="s3cret-value")
    assert given.secret == "s3cret-value"
    listed = hooks.list()
    assert [h.id for h in listed] == [hook.id, given.id]
    assert all(h.secret is None for h in listed) and hooks.get(hook.id).secret is None
    with database.read() as conn:
        events = EventRepository(conn).for_entity("webhook", str(hook.id))
        events += EventRepository(conn).for_entity("webhook", str(given.id))
    assert [e.action for e in events] == ["webhook.created", "webhook.created"]
    assert events[0].actor == "ana" and events[0].after == {
        "url": "https://ci.example/cairn",
        "actions": ["model.*"],
        "project": "nlp",
    }
    text = json.dumps([e.after for e in events])
    assert hook.secret not in text and "s3cret-value" not in text and "pw@" not in text


def test_list_by_project_gives_its_own_and_global_hooks(database: Database) -> None:
    project_ids(database, "a", "b")
    hooks = service(database)
    everywhere = hooks.create(REFUSED, ["*"])
    in_a = hooks.create(REFUSED, ["*"], project="a")
    hooks.create(REFUSED, ["*"], project="b")
    assert [h.id for h in hooks.list("a")] == [everywhere.id, in_a.id]
    assert len(hooks.list()) == 3
    with pytest.raises(NotFound):
        hooks.list("nope")


def test_delete_turns_off_drops_pending_and_is_audited_once(database: Database) -> None:
    hooks = service(database)
    hook = hooks.create(REFUSED, ["thing.*"])
    write_events(database, ("thing.made", None))
    hooks.delete(hook.id, actor="bo")
    hooks.delete(hook.id, actor="bo")  # again: nothing more happens
    assert hooks.list() == []
    assert not hooks.get(hook.id).active
    [delivery] = hooks.deliveries(hook.id)
    assert delivery.status == "failed" and delivery.last_error == "webhook deleted"
    write_events(database, ("thing.made", None))
    assert len(hooks.deliveries(hook.id)) == 1
    with database.read() as conn:
        actions = [e.action for e in EventRepository(conn).for_entity("webhook", str(hook.id))]
    assert actions == ["webhook.created", "webhook.deleted"]
    with pytest.raises(NotFound):
        hooks.delete(10**9)
    with pytest.raises(NotFound):
        hooks.deliveries(10**9)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "example.com/hook"}, "url"),
        ({"url": "https://example.com/" + "a" * 2000}, "url"),
        ({"url": "https://exa mple.com/"}, "url"),
        ({"url": "https://example.com/\x00"}, "url"),
        ({"url": "https://example.com/\ud800"}, "url"),
        ({"url": "http://[::1/"}, "url"),
        ({"actions": []}, "actions"),
        ({"actions": [""]}, "actions"),
        ({"actions": ["  "]}, "actions"),
        ({"actions": "model.*"}, "actions"),
        ({"actions": ["x" * 101]}, "actions"),
        ({"actions": [3]}, "actions"),
        ({"secret": ""}, "secret"),
        ({"secret": "s" * 201}, "secret"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    database: Database, fields: dict[str, Any], field: str
) -> None:
    hooks = service(database)
    args: dict[str, Any] = {"url": "https://example.com/hook", "actions": ["*"], **fields}
    with pytest.raises(Invalid) as caught:
        hooks.create(**args)
    assert caught.value.field == field
    assert hooks.list() == []


def test_unknown_project_and_bad_status(database: Database) -> None:
    hooks = service(database)
    with pytest.raises(NotFound):
        hooks.create(REFUSED, ["*"], project="nope")
    hook = hooks.create(REFUSED, ["*"])
    with pytest.raises(Invalid) as caught:
        hooks.deliveries(hook.id, status="lost")
    assert caught.value.field == "status"


# ---------------------------------------------------------------------------- sending


def test_a_delivery_is_signed_json_with_the_event(database: Database) -> None:
    (a,) = project_ids(database, "nlp")
    receiver = Receiver(204)
    hooks = service(database, receiver)
    hook = hooks.create("https://ci.example/hook", ["model.*"])
    with database.write() as tx:
        EventRepository(tx.conn).add_many(
            "ana",
            [NewEvent("model.version_created", "model_version", "m:1", a, None, {"v": 1})],
        )
    assert hooks.deliver_due() == 1
    [request] = receiver.requests
    body = request.content
    assert request.method == "POST" and str(request.url) == "https://ci.example/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-cairn-event"] == "model.version_created"
    assert hook.secret is not None
    expected = "sha256=" + hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-cairn-signature"], expected)
    payload = json.loads(body)
    [delivery] = hooks.deliveries(hook.id)
    assert payload["id"] == delivery.id == int(request.headers["x-cairn-delivery"])
    event = payload["event"]
    assert event["id"] == delivery.event_id
    assert {k: event[k] for k in ("actor", "action", "entity_type", "entity_id", "project")} == {
        "actor": "ana",
        "action": "model.version_created",
        "entity_type": "model_version",
        "entity_id": "m:1",
        "project": "nlp",
    }
    assert event["before"] is None and event["after"] == {"v": 1} and event["at"].endswith("+00:00")
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert delivery.last_status == 204 and delivery.delivered_at is not None
    assert hooks.deliver_due() == 0  # nothing left


def test_failures_back_off_then_fail_after_the_last_attempt(database: Database) -> None:
    receiver = Receiver(500)
    hooks = service(database, receiver, retry_base_s=2.0, max_attempts=8)
    hook = hooks.create(REFUSED, ["thing.*"])
    write_events(database, ("thing.made", None))
    now = now_ms() + 1
    waits = []
    for attempt in range(1, 9):
        assert hooks.deliver_due(now=now) == 1
        [delivery] = hooks.deliveries(hook.id)
        assert delivery.attempts == attempt and delivery.last_status == 500
        assert delivery.last_error == "HTTP 500"
        if attempt == 8:
            assert delivery.status == "failed"
            break
        assert delivery.status == "pending"
        due = int(delivery.next_attempt_at.timestamp() * 1000)
        waits.append(due - now)
        assert hooks.deliver_due(now=due - 1) == 0  # not yet
        now = due
    assert waits == [2000, 4000, 8000, 16000, 32000, 64000, 128000]
    assert hooks.deliver_due(now=now + 10**9) == 0  # failed is final
    assert len(receiver.requests) == 8


def test_the_backoff_is_capped() -> None:
    policy = DeliveryPolicy(retry_base_s=2.0, retry_cap_s=600.0)
    assert [policy.retry_delay_ms(n) // 1000 for n in range(1, 13)] == [
        2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600,
    ]  # fmt: skip
    assert policy.retry_delay_ms(10_000) == 600_000


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout])
def test_network_errors_are_retried_then_success_delivers(
    database: Database, error: type[Exception]
) -> None:
    receiver = Receiver(error, 200)
    hooks = service(database, receiver, retry_base_s=2.0)
    hook = hooks.create(REFUSED, ["thing.*"])
    write_events(database, ("thing.made", None))
    now = now_ms() + 1
    assert hooks.deliver_due(now=now) == 1
    [delivery] = hooks.deliveries(hook.id)
    assert delivery.status == "pending" and delivery.last_status is None
    assert delivery.last_error is not None and error.__name__ in delivery.last_error
    assert hooks.deliver_due(now=now + 2000) == 1
    [delivery] = hooks.deliveries(hook.id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 2, 200)
    assert delivery.last_error is None
    assert hooks.deliveries(hook.id, status="pending") == []
    first, second = receiver.requests
    assert first.content == second.content  # the same bytes, so the same signature


def test_a_real_timeout_is_a_failed_attempt(database: Database) -> None:
    with socket.socket() as silent:  # listens, never accepts: the request is never answered
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hooks = service(database, timeout_s=0.2)
        hook = hooks.create(f"http://127.0.0.1:{silent.getsockname()[1]}/", ["thing.*"])
        write_events(database, ("thing.made", None))
        start = time.monotonic()
        assert hooks.deliver_due() == 1
        assert time.monotonic() - start < 3
    [delivery] = hooks.deliveries(hook.id)
    assert delivery.status == "pending" and "Timeout" in (delivery.last_error or "")


def test_concurrent_senders_never_send_a_delivery_twice(database: Database) -> None:
    receiver = Receiver(200)
    receiver.delay_s = 0.05
    hook = service(database).create(REFUSED, ["thing.*"])
    write_events(database, *[("thing.made", None)] * 30)
    senders = [service(database, receiver, senders=2) for _ in range(3)]
    counts: list[int] = []

    def drain(hooks: WebhookService) -> None:
        while sent := hooks.deliver_due(limit=4):
            counts.append(sent)

    threads = [threading.Thread(target=drain, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ids = Counter(r.headers["x-cairn-delivery"] for r in receiver.requests)
    assert len(ids) == 30 and set(ids.values()) == {1} and sum(counts) == 30
    assert {d.status for d in service(database).deliveries(hook.id)} == {"delivered"}


def test_the_outbox_costs_one_small_select_per_event_write(database: Database) -> None:
    """Measured, not asserted tightly: the per-write overhead with and without hooks."""
    timings = {}
    for label in ("no hooks", "one hook"):
        if label == "one hook":
            service(database).create(REFUSED, ["nothing.matches"])
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            write_events(database, *[("run.logged", None)] * 200)
            best = min(best, time.perf_counter() - start)
        timings[label] = best
    print(f"\n[webhooks] 200 events per write, best of 5: {timings}")
    assert not queued(database)


# ---------------------------------------------------------------------------- REST


def test_rest_create_list_deliveries_and_delete(client: TestClient) -> None:
    assert client.post("/api/v1/projects", json={"name": "nlp"}).status_code == 201
    made = client.post(
        "/api/v1/webhooks",
        json={"url": REFUSED, "actions": ["run.*"], "project": "nlp"},
        headers={"X-Cairn-Actor": "ana"},
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["secret"] and hook["created_by"] == "ana" and hook["project"] == "nlp"
    listed = client.get("/api/v1/webhooks", params={"project": "nlp"}).json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    assert client.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json() == []
    assert client.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    assert client.get("/api/v1/webhooks").json() == []


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "field"),
    [
        ("POST", "/api/v1/webhooks", {"url": "ftp://x.org", "actions": ["*"]}, 400, "url"),
        ("POST", "/api/v1/webhooks", {"url": REFUSED, "actions": []}, 400, "actions"),
        ("POST", "/api/v1/webhooks", {"url": REFUSED}, 400, "actions"),
        ("POST", "/api/v1/webhooks", {"url": REFUSED, "actions": ["*"], "x": 1}, 400, "x"),
        (
            "POST",
            "/api/v1/webhooks",
            {"url": REFUSED, "actions": ["*"], "project": "no"},
            404,
            None,
        ),
        ("GET", "/api/v1/webhooks?project=nope", None, 404, None),
        ("DELETE", "/api/v1/webhooks/12345", None, 404, None),
        ("DELETE", f"/api/v1/webhooks/{2**70}", None, 400, "webhook_id"),
        ("GET", "/api/v1/webhooks/0/deliveries", None, 400, "webhook_id"),
        ("GET", "/api/v1/webhooks/7/deliveries?status=lost", None, 400, "status"),
    ],
)
def test_rest_errors_use_the_envelope(
    client: TestClient,
    method: str,
    url: str,
    body: dict[str, Any] | None,
    status: int,
    field: str | None,
) -> None:
    response = client.request(method, url, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if field is not None:
        assert error["details"]["field"] == field
