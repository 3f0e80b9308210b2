"""Webhooks and their deliveries: an outbox that event writes fill and the sender drains.

``EventRepository.add_many`` calls ``routes()`` (one small SELECT of the active hooks)
and, when some match, ``enqueue()`` in the same transaction as the events, so a delivery
exists exactly when its event does. ``claim_due()`` hands due deliveries to one sender
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer) and leases them, so
another server process does not send them too while the HTTP call is in flight.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, cast

from sqlalchemy import Connection, Table, select

from cairn.domain.records import ms_to_datetime
from cairn.store.bulk import executemany
from cairn.store.tables import EventRow, ProjectRow, WebhookDeliveryRow, WebhookRow

_W = cast(Table, WebhookRow.__table__)
_D = cast(Table, WebhookDeliveryRow.__table__)
_E = cast(Table, EventRow.__table__)
_P = cast(Table, ProjectRow.__table__)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED)


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    url: str
    actions: list[str]
    project: str | None  # None: every project
    active: bool
    created_by: str | None
    created_at: datetime
    secret: str | None = None  # only on the record that ``create`` returns


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: int
    event_id: int
    action: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased to this sender, with what sending it needs."""

    id: int
    url: str
    secret: str
    attempts: int  # this attempt included
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Route:
    webhook_id: int
    project_id: int | None
    patterns: tuple[str, ...]

    def wants(self, action: str, project_id: int | None) -> bool:
        if self.project_id is not None and self.project_id != project_id:
            return False
        return action_matches(self.patterns, action)


def action_matches(patterns: Sequence[str], action: str) -> bool:
    """Shell-style patterns, case-sensitive: ``model.*``, ``run.created``, ``*``."""
    return any(fnmatchcase(action, pattern) for pattern in patterns)


def _when(ms: int) -> datetime:
    value = ms_to_datetime(ms)
    assert value is not None
    return value


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


class WebhookRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- webhooks -----------------------------------------------------------------------

    def add(
        self,
        *,
        url: str,
        secret: str,
        actions: list[str],
        project_id: int | None,
        created_by: str | None,
        created_at: int,
    ) -> int:
        stmt = (
            _W.insert()
            .values(
                project_id=project_id,
                url=url,
                secret=secret,
                actions=json.dumps(actions),
                active=True,
                created_by=created_by,
                created_at=created_at,
            )
            .returning(_W.c.id)
        )
        return int(self.conn.execute(stmt).scalar_one())

    def _select(self) -> Any:
        return select(_W, _P.c.name.label("project")).outerjoin(_P, _P.c.id == _W.c.project_id)

    @staticmethod
    def _webhook(row: Any) -> Webhook:
        return Webhook(
            id=int(row.id),
            url=row.url,
            actions=list(json.loads(row.actions)),
            project=row.project,
            active=bool(row.active),
            created_by=row.created_by,
            created_at=_when(row.created_at),
        )

    def get(self, webhook_id: int) -> Webhook | None:
        row = self.conn.execute(self._select().where(_W.c.id == webhook_id)).first()
        return self._webhook(row) if row else None

    def list_active(self, project_id: int | None = None) -> list[Webhook]:
        """Active hooks; with a project, those that fire for it (its own and global ones)."""
        stmt = self._select().where(_W.c.active.is_(True)).order_by(_W.c.id)
        if project_id is not None:
            stmt = stmt.where((_W.c.project_id == project_id) | _W.c.project_id.is_(None))
        return [self._webhook(row) for row in self.conn.execute(stmt)]

    def deactivate(self, webhook_id: int) -> None:
        """Turn a hook off; what it still had to send is marked failed."""
        self.conn.execute(_W.update().where(_W.c.id == webhook_id).values(active=False))
        self.conn.execute(
            _D.update()
            .where(_D.c.webhook_id == webhook_id, _D.c.status == PENDING)
            .values(status=FAILED, last_error="webhook deleted")
        )

    def deliveries(self, webhook_id: int, status: str | None, limit: int) -> list[Delivery]:
        """Newest first."""
        stmt = (
            select(_D, _E.c.action)
            .join(_E, _E.c.id == _D.c.event_id)
            .where(_D.c.webhook_id == webhook_id)
            .order_by(_D.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(_D.c.status == status)
        return [
            Delivery(
                id=int(row.id),
                webhook_id=int(row.webhook_id),
                event_id=int(row.event_id),
                action=row.action,
                status=row.status,
                attempts=int(row.attempts),
                next_attempt_at=_when(row.next_attempt_at),
                last_status=row.last_status,
                last_error=row.last_error,
                delivered_at=ms_to_datetime(row.delivered_at),
            )
            for row in self.conn.execute(stmt)
        ]

    # -- the outbox ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """The active hooks and their patterns: one small SELECT on every event write, so
        it skips SQLAlchemy and goes straight to the driver (~5 µs on SQLite)."""
        dbapi = self.conn.connection.driver_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        try:
            cursor.execute("SELECT id, project_id, actions FROM webhooks WHERE active")
            found = cursor.fetchall()
        finally:
            cursor.close()
        return [Route(int(i), project_id, tuple(json.loads(a))) for i, project_id, a in found]

    @staticmethod
    def targets(
        routes: Sequence[Route], events: Sequence[tuple[str, int | None]]
    ) -> list[list[int]]:
        """For each (action, project id), the ids of the hooks that want it."""
        memo: dict[tuple[str, int | None], list[int]] = {}
        found = []
        for key in events:
            if key not in memo:
                memo[key] = [r.webhook_id for r in routes if r.wants(*key)]
            found.append(memo[key])
        return found

    def enqueue(self, targets: Sequence[tuple[int, Sequence[int]]], now: int) -> None:
        """One pending delivery per (event id, hook id) in ``targets``."""
        rows = [
            (webhook_id, event_id, PENDING, 0, now)
            for event_id, webhook_ids in targets
            for webhook_id in webhook_ids
        ]
        executemany(
            self.conn,
            _D.insert,
            rows,
            ("webhook_id", "event_id", "status", "attempts", "next_attempt_at"),
            name="webhook_deliveries.insert",
        )

    def any_due(self, now: int) -> bool:
        """Cheap, outside any write: is there anything to claim?"""
        stmt = select(_D.c.id).where(_D.c.status == PENDING, _D.c.next_attempt_at <= now).limit(1)
        return self.conn.execute(stmt).first() is not None

    def claim_due(self, now: int, limit: int, lease_ms: int) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries to the caller: each attempt is counted and
        the next one pushed ``lease_ms`` away, so a sender that dies mid-call is retried
        later and a second sender leaves them alone. Hooks turned off are marked failed."""
        stmt = (
            select(
                _D.c.id,
                _D.c.attempts,
                _W.c.url,
                _W.c.secret,
                _W.c.active,
                _E.c.id.label("event_id"),
                _E.c.at,
                _E.c.actor,
                _E.c.action,
                _E.c.entity_type,
                _E.c.entity_id,
                _P.c.name.label("project"),
                _E.c.before,
                _E.c.after,
            )
            .join(_W, _W.c.id == _D.c.webhook_id)
            .join(_E, _E.c.id == _D.c.event_id)
            .outerjoin(_P, _P.c.id == _E.c.project_id)
            .where(_D.c.status == PENDING, _D.c.next_attempt_at <= now)
            .order_by(_D.c.next_attempt_at, _D.c.id)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=_D, skip_locked=True)
        rows = list(self.conn.execute(stmt))
        gone = [int(row.id) for row in rows if not row.active]
        if gone:
            self.conn.execute(
                _D.update()
                .where(_D.c.id.in_(gone))
                .values(status=FAILED, last_error="webhook deleted")
            )
        live = [row for row in rows if row.active]
        if live:
            self.conn.execute(
                _D.update()
                .where(_D.c.id.in_([int(row.id) for row in live]))
                .values(attempts=_D.c.attempts + 1, next_attempt_at=now + lease_ms)
            )
        return [
            Claimed(
                id=int(row.id),
                url=row.url,
                secret=row.secret,
                attempts=int(row.attempts) + 1,
                event={
                    "id": int(row.event_id),
                    "at": _when(row.at).isoformat(),
                    "actor": row.actor,
                    "action": row.action,
                    "entity_type": row.entity_type,
                    "entity_id": row.entity_id,
                    "project": row.project,
                    "before": _json(row.before),
                    "after": _json(row.after),
                },
            )
            for row in live
        ]

    def record(
        self,
        delivery_id: int,
        *,
        status: str,
        next_attempt_at: int,
        last_status: int | None,
        last_error: str | None,
        delivered_at: int | None,
    ) -> None:
        self.conn.execute(
            _D.update()
            .where(_D.c.id == delivery_id)
            .values(
                status=status,
                next_attempt_at=next_attempt_at,
                last_status=last_status,
                last_error=last_error,
                delivered_at=delivered_at,
            )
        )
