"""Webhooks: HTTP callbacks on audit events, signed, retried with backoff.

hooks = WebhookService(db)
hook = hooks.create("https://ci.example/cairn", ["model.*"], project="nlp", actor="ana")
hook.secret                      # shown once: the receiver verifies signatures with it
hooks.deliver_due()              # the server calls this every ~0.5 s

Every event write queues one delivery per matching hook in its own transaction (see
``cairn.store.repositories.webhooks``). ``deliver_due`` claims due deliveries, commits,
then POSTs each outside any transaction and records the answer: a 2xx is ``delivered``;
anything else is retried after 2 s, 4 s, 8 s … (capped at 10 min) and ``failed`` after
the last attempt. A delivery may arrive more than once (a sender that dies after the
POST and before recording it); receivers dedupe on ``X-Cairn-Delivery``.

The receiver checks ``X-Cairn-Signature: sha256=<hex>``, an HMAC-SHA256 of the exact
body bytes keyed with the hook's secret (UTF-8)::

    expected = hmac.new(secret.encode(), body, "sha256").hexdigest()
    hmac.compare_digest(f"sha256={expected}", request.headers["X-Cairn-Signature"])
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import httpx

from cairn.domain.errors import Invalid, NotFound
from cairn.domain.records import now_ms
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository, NewEvent
from cairn.store.repositories.projects import ProjectRepository
from cairn.store.repositories.webhooks import (
    DELIVERED,
    DELIVERY_STATUSES,
    FAILED,
    PENDING,
    Claimed,
    Delivery,
    Webhook,
    WebhookRepository,
)

__all__ = ["Delivery", "DeliveryPolicy", "Webhook", "WebhookService"]

log = logging.getLogger("cairn.webhooks")

MAX_URL_LENGTH = 2000
MAX_PATTERNS = 50
MAX_PATTERN_LENGTH = 100  # an event's action is at most 100 characters
MAX_SECRET_LENGTH = 200
_ERROR_LENGTH = 500


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are sent and retried. ``from_env`` reads ``CAIRN_WEBHOOK_*``."""

    interval_s: float = 0.5  # how often the server looks for due deliveries (0: never)
    timeout_s: float = 5.0
    retry_base_s: float = 2.0
    retry_cap_s: float = 600.0
    max_attempts: int = 8
    lease_s: float = 300.0  # a claimed delivery is left alone this long by other senders
    senders: int = 8  # concurrent POSTs in one ``deliver_due``

    @classmethod
    def from_env(cls) -> DeliveryPolicy:
        return cls(
            interval_s=_env_float("CAIRN_WEBHOOK_INTERVAL", cls.interval_s),
            timeout_s=_env_float("CAIRN_WEBHOOK_TIMEOUT", cls.timeout_s),
            retry_base_s=_env_float("CAIRN_WEBHOOK_RETRY_BASE", cls.retry_base_s),
            max_attempts=int(_env_float("CAIRN_WEBHOOK_MAX_ATTEMPTS", cls.max_attempts)),
        )

    def retry_delay_ms(self, attempts: int) -> int:
        """The wait after the ``attempts``-th failed attempt: base, 2 base, 4 base … capped."""
        delay = min(self.retry_base_s * 2 ** min(attempts - 1, 60), self.retry_cap_s)
        return int(delay * 1000)


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivery_id: int
    attempts: int
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def sign(secret: str, body: bytes) -> str:
    """The ``X-Cairn-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _utf8(value: str, field: str) -> None:
    try:
        value.encode()
    except UnicodeEncodeError:
        raise Invalid(f"{field} is not valid UTF-8 text", field=field) from None
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise Invalid(f"{field} must not hold control characters", field=field)


def check_url(url: object) -> str:
    if not isinstance(url, str) or not url:
        raise Invalid("url must be a non-empty string", field="url")
    if len(url) > MAX_URL_LENGTH:
        raise Invalid(
            f"url is {len(url)} characters; the limit is {MAX_URL_LENGTH}",
            field="url",
            details={"max": MAX_URL_LENGTH},
        )
    _utf8(url, "url")
    try:
        parts = urlsplit(url)
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise Invalid(f"url {url!r} is not a valid URL", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise Invalid("url must be an http:// or https:// URL with a host", field="url")
    return url


def check_actions(actions: object) -> list[str]:
    if not isinstance(actions, list | tuple) or not actions:
        raise Invalid("actions must be a non-empty list of patterns", field="actions")
    if len(actions) > MAX_PATTERNS:
        raise Invalid(f"at most {MAX_PATTERNS} action patterns", field="actions")
    found: list[str] = []
    for pattern in actions:
        if not isinstance(pattern, str) or not pattern.strip():
            raise Invalid("each action pattern must be a non-empty string", field="actions")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise Invalid(
                f"an action pattern is at most {MAX_PATTERN_LENGTH} characters", field="actions"
            )
        _utf8(pattern, "actions")
        if pattern not in found:
            found.append(pattern)
    return found


def check_secret(secret: object) -> str:
    if not isinstance(secret, str) or not secret:
        raise Invalid("secret must be a non-empty string", field="secret")
    if len(secret) > MAX_SECRET_LENGTH:
        raise Invalid(f"secret is at most {MAX_SECRET_LENGTH} characters", field="secret")
    _utf8(secret, "secret")
    return secret


def _shown(url: str) -> str:
    """The URL for the audit log, without a password in it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


@dataclass
class WebhookService:
    db: Database
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    # The seam for tests: an ``httpx.MockTransport`` instead of sockets.
    transport: httpx.BaseTransport | None = None

    # -- webhooks -----------------------------------------------------------------------

    def create(
        self,
        url: str,
        actions: list[str],
        project: str | None = None,
        secret: str | None = None,
        actor: str | None = None,
    ) -> Webhook:
        """A new active hook; the returned record carries its secret, shown only here.

        Example: ``hooks.create("https://ci.example/cairn", ["run.created", "model.*"])``.
        A hook whose patterns match ``webhook.created`` hears of its own creation: a ping.
        """
        url = check_url(url)
        actions = check_actions(actions)
        secret = secrets.token_urlsafe(32) if secret is None else check_secret(secret)
        with self.db.write() as tx:
            project_id = None
            if project is not None:
                project_id = ProjectRepository(tx.conn).get(project).id
            repo = WebhookRepository(tx.conn)
            webhook_id = repo.add(
                url=url,
                secret=secret,
                actions=actions,
                project_id=project_id,
                created_by=actor,
                created_at=now_ms(),
            )
            after = {"url": _shown(url), "actions": actions, "project": project}
            EventRepository(tx.conn).add_many(
                actor,
                [NewEvent("webhook.created", "webhook", str(webhook_id), project_id, None, after)],
            )
            created = repo.get(webhook_id)
        assert created is not None
        return replace(created, secret=secret)

    def list(self, project: str | None = None) -> builtins.list[Webhook]:
        """Active hooks (no secrets); with ``project``, those that fire for it."""
        with self.db.read() as conn:
            project_id = ProjectRepository(conn).get(project).id if project is not None else None
            return WebhookRepository(conn).list_active(project_id)

    def get(self, webhook_id: int) -> Webhook:
        with self.db.read() as conn:
            return self._get(WebhookRepository(conn), webhook_id)

    @staticmethod
    def _get(repo: WebhookRepository, webhook_id: int) -> Webhook:
        found = repo.get(webhook_id) if 0 < webhook_id < 2**63 else None
        if found is None:
            raise NotFound(
                f"webhook {webhook_id} does not exist", details={"webhook_id": webhook_id}
            )
        return found

    def delete(self, webhook_id: int, actor: str | None = None) -> None:
        """Turn the hook off (its deliveries stay listed). Deleting it again is a no-op."""
        with self.db.write() as tx:
            repo = WebhookRepository(tx.conn)
            hook = self._get(repo, webhook_id)
            if not hook.active:
                return
            repo.deactivate(webhook_id)
            project_id = ProjectRepository(tx.conn).get(hook.project).id if hook.project else None
            before = {"url": _shown(hook.url), "actions": hook.actions, "project": hook.project}
            EventRepository(tx.conn).add_many(
                actor, [NewEvent("webhook.deleted", "webhook", str(webhook_id), project_id, before)]
            )

    def deliveries(
        self, webhook_id: int, status: str | None = None, limit: int = 100
    ) -> builtins.list[Delivery]:
        """A hook's deliveries, newest first; ``status``: pending, delivered or failed."""
        if status is not None and status not in DELIVERY_STATUSES:
            raise Invalid(
                f"status must be one of {', '.join(DELIVERY_STATUSES)}, not {status!r}",
                field="status",
            )
        if not 1 <= limit <= 10_000:
            raise Invalid("limit must be between 1 and 10000", field="limit")
        with self.db.read() as conn:
            repo = WebhookRepository(conn)
            self._get(repo, webhook_id)
            return repo.deliveries(webhook_id, status, limit)

    # -- sending ------------------------------------------------------------------------

    def deliver_due(self, limit: int = 50, now: int | None = None) -> int:
        """Send what is due (at ``now``, ms; default the clock). Returns how many were sent.

        Claim, commit, send, record: no transaction is open during an HTTP call.
        """
        now = now_ms() if now is None else now
        with self.db.read() as conn:
            if not WebhookRepository(conn).any_due(now):
                return 0
        with self.db.write() as tx:
            claimed = WebhookRepository(tx.conn).claim_due(
                now, limit, int(self.policy.lease_s * 1000)
            )
        if not claimed:
            return 0
        outcomes = self._send_all(claimed)
        with self.db.write() as tx:
            repo = WebhookRepository(tx.conn)
            for outcome in outcomes:
                self._record(repo, outcome, now)
        return len(outcomes)

    def _record(self, repo: WebhookRepository, outcome: _Outcome, now: int) -> None:
        if outcome.ok:
            status, next_at, delivered_at = DELIVERED, now, now
        elif outcome.attempts >= self.policy.max_attempts:
            status, next_at, delivered_at = FAILED, now, None
        else:
            status, delivered_at = PENDING, None
            next_at = now + self.policy.retry_delay_ms(outcome.attempts)
        error = None if outcome.ok else outcome.error or f"HTTP {outcome.status}"
        repo.record(
            outcome.delivery_id,
            status=status,
            next_attempt_at=next_at,
            last_status=outcome.status,
            last_error=error,
            delivered_at=delivered_at,
        )

    def _send_all(self, claimed: builtins.list[Claimed]) -> builtins.list[_Outcome]:
        timeout = httpx.Timeout(self.policy.timeout_s)
        with httpx.Client(
            transport=self.transport, timeout=timeout, follow_redirects=False
        ) as http:
            if len(claimed) == 1:
                return [self._send(http, claimed[0])]
            workers = min(self.policy.senders, len(claimed))
            with ThreadPoolExecutor(workers, thread_name_prefix="cairn-webhook") as pool:
                return list(pool.map(lambda item: self._send(http, item), claimed))

    @staticmethod
    def _send(http: httpx.Client, item: Claimed) -> _Outcome:
        body = json.dumps({"id": item.id, "event": item.event}, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "cairn-webhooks",
            "X-Cairn-Event": item.event["action"],
            "X-Cairn-Delivery": str(item.id),
            "X-Cairn-Signature": sign(item.secret, body),
        }
        try:
            response = http.post(item.url, content=body, headers=headers)
        except Exception as exc:  # refused, timed out, bad TLS: all are a failed attempt
            error = f"{type(exc).__name__}: {exc}"[:_ERROR_LENGTH]
            log.info("cairn: webhook delivery %s failed: %s", item.id, error)
            return _Outcome(item.id, item.attempts, error=error)
        return _Outcome(item.id, item.attempts, status=response.status_code)
