"""The audit log as people ask for it: entities by the references they type, actions by
pattern, times as ``1h`` or ISO 8601.

    parse_entity("models/iris", "p")       -> ("model", "p/iris")   (its versions too)
    parse_entity("models/iris:3", "p")     -> ("model_version", "p/iris:3")
    parse_entity("runs/01JD…", "p")        -> ("run", "01JD…")
    parse_since("1h", now)                 -> now - 1 hour

Entity ids are the shapes the services write: runs by id, projects by name, webhooks by
number, everything else ``project/name`` (``:N`` for a version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cairn.domain.errors import Invalid
from cairn.domain.ids import is_ulid
from cairn.domain.refs import RefKind, parse_ref

MAX_LIMIT = 10_000
MAX_ENTITY_ID_LENGTH = 250

# The plural people type -> the entity type events carry (and, for a name without a
# version, the type of its versions, whose events belong to it too).
_COLLECTIONS: dict[str, tuple[str, str | None]] = {
    "runs": ("run", None),
    "projects": ("project", None),
    "models": ("model", "model_version"),
    "datasets": ("dataset", "dataset_version"),
    "endpoints": ("endpoint", None),
    "webhooks": ("webhook", None),
}
ENTITY_TYPES = frozenset({t for pair in _COLLECTIONS.values() for t in pair if t is not None})
# A name's events include those of its versions: ("model", "p/iris") and every
# ("model_version", "p/iris:N").
VERSION_TYPES = {owner: version for owner, version in _COLLECTIONS.values() if version}

_ACTION = re.compile(r"^[A-Za-z0-9_.*]{1,100}$")
_NUMBER = re.compile(r"^[0-9]{1,18}$")
_RELATIVE = re.compile(r"^([0-9]{1,9})\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ENTITY_FORMS = (
    "runs/<id>, projects/<name>, models/<name>[:N], datasets/<name>[:N], "
    "endpoints/<name>, webhooks/<id>"
)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One change: who made it, when, to what, and the state before and after."""

    id: int
    at: datetime
    actor: str | None
    action: str
    entity_type: str
    entity_id: str
    project: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[AuditEvent]
    next_cursor: str | None  # pass it back for the next page; None: nothing more now


def parse_entity(text: object, project: str) -> tuple[str, str]:
    """``(entity_type, entity_id)`` of an entity reference; a bare name takes ``project``."""
    if not isinstance(text, str) or "/" not in text:
        raise Invalid(f"entity {text!r} is not one of {_ENTITY_FORMS}", field="entity")
    collection, _, rest = text.strip().partition("/")
    if collection not in _COLLECTIONS or not rest:
        raise Invalid(f"entity {text!r} is not one of {_ENTITY_FORMS}", field="entity")
    entity_type, version_type = _COLLECTIONS[collection]
    if entity_type == "run":
        if not is_ulid(rest.upper()):
            raise Invalid(f"entity {text!r}: {rest!r} is not a run id", field="entity")
        return entity_type, rest.upper()
    if entity_type == "webhook":
        if not _NUMBER.match(rest):
            raise Invalid(f"entity {text!r}: {rest!r} is not a webhook id", field="entity")
        return entity_type, str(int(rest))
    try:
        ref = parse_ref(rest)
    except Invalid:
        raise Invalid(f"entity {text!r} is not one of {_ENTITY_FORMS}", field="entity") from None
    if entity_type == "project":
        if ref.kind is not RefKind.NAME or ref.project:
            raise Invalid(f"entity {text!r}: name a project as projects/<name>", field="entity")
        return entity_type, ref.name
    owner = f"{ref.project or project}/{ref.name}"
    if ref.kind is RefKind.NAME:
        return entity_type, owner
    if ref.kind is RefKind.VERSION and version_type is not None:
        return version_type, f"{owner}:{ref.version}"
    raise Invalid(
        f"entity {text!r}: name a version by number ({collection}/{ref.name}:N); "
        "aliases and batch labels move, the audit log keeps numbers",
        field="entity",
    )


def check_entity(entity_type: object, entity_id: object) -> tuple[str | None, str | None]:
    if entity_type is None:
        if entity_id is not None:
            raise Invalid("entity_id needs an entity_type", field="entity_id")
        return None, None
    if entity_type not in ENTITY_TYPES:
        raise Invalid(
            f"entity_type {entity_type!r} is not one of {', '.join(sorted(ENTITY_TYPES))}",
            field="entity_type",
        )
    if entity_id is not None and (
        not isinstance(entity_id, str)
        or not entity_id
        or len(entity_id) > MAX_ENTITY_ID_LENGTH
        or not entity_id.isprintable()
    ):
        raise Invalid(
            f"entity_id must be printable text of 1 to {MAX_ENTITY_ID_LENGTH} characters",
            field="entity_id",
        )
    return str(entity_type), entity_id


def check_action(pattern: object) -> str | None:
    """An action or a pattern where ``*`` matches anything: ``model.*``, ``*.created``."""
    if pattern is None:
        return None
    if not isinstance(pattern, str) or not _ACTION.match(pattern):
        raise Invalid(
            f"action {pattern!r} must be an action such as model.alias_moved, or a pattern "
            "with * such as 'model.*' (letters, digits, '_', '.', '*'; at most 100)",
            field="action",
        )
    return pattern


def parse_since(value: object, now: datetime | None = None) -> datetime | None:
    """``1h``, ``30m``, ``7d``, ``2w``, ``90s`` before ``now``, or an ISO 8601 time (UTC
    when it names no zone)."""
    if value is None or isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and (match := _RELATIVE.match(value.strip())):
        amount, unit = match.groups()
        try:
            when = (now or datetime.now(tz=UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
        except OverflowError:
            raise Invalid(f"since {value!r} reaches before year 1", field="since") from None
    elif isinstance(value, str) and len(value) <= 40:
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise Invalid(
                f"since {value!r} is neither a duration (90s, 30m, 1h, 7d, 2w) nor an "
                "ISO 8601 time",
                field="since",
            ) from None
    else:
        raise Invalid("since must be a duration such as 1h or an ISO 8601 time", field="since")
    if when is None:
        return None
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"since {value!r} is out of range", field="since") from None


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit")
    return limit


def parse_cursor(cursor: object) -> int | None:
    """The id after which the next page starts (cursors are event ids)."""
    if cursor is None:
        return None
    if not isinstance(cursor, str) or not _NUMBER.match(cursor):
        raise Invalid(f"cursor {cursor!r} is not one this API gave", field="cursor")
    return int(cursor)
