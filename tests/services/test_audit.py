"""The audit log, read through the audit service on SQLite and PostgreSQL: filters by
entity (a model's events include its versions'), action pattern, project and time;
keyset pages; bad filters named; and a log that the database itself keeps append-only."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cairn.blobs import LocalBlobStore
from cairn.domain.audit import AuditEvent, parse_entity, parse_since
from cairn.domain.datasets import DatasetFile
from cairn.domain.errors import Invalid, NotFound
from cairn.domain.ids import new_ulid
from cairn.domain.models import ModelFile
from cairn.domain.records import RunStart
from cairn.services.aliases import AliasService
from cairn.services.audit import AuditService
from cairn.services.blobs import BlobService
from cairn.services.data import DataService
from cairn.services.registry import RegistryService
from cairn.services.tracking import TrackingService
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Story:
    """What ``story`` did: two projects, a run, a dataset, a model with a moved alias."""

    run_id: str
    other_run: str
    middle: datetime  # between the first half of the changes and the second


@pytest.fixture
def audit(database: Database) -> AuditService:
    return AuditService(database)


@pytest.fixture
def story(database: Database, tmp_path: Path) -> Story:
    store = LocalBlobStore(tmp_path / "blobs")
    blobs = BlobService(database, store)
    tracking = TrackingService(database)
    data = DataService(database, blobs)
    registry = RegistryService(database, blobs, tracking.get_run)
    aliases = AliasService(database, registry)

    def model_files(content: bytes) -> list[ModelFile]:
        meta = json.dumps({"flavor": "sklearn"}).encode()
        return [
            ModelFile(p, store.put_bytes(b).digest, len(b))
            for p, b in (("model.pkl", content), ("cairn-model.json", meta))
        ]

    run_id, other_run = new_ulid(), new_ulid()
    tracking.start_run(RunStart(run_id, "a", T0, name="train"), actor="ana")
    tracking.start_run(RunStart(other_run, "b", T0), actor="bo")
    content = b"x,y\n1,2\n"
    wine = [DatasetFile("wine.csv", store.put_bytes(content).digest, len(content))]
    data.log_version("a", "wine", wine, actor="ana")
    data.use_dataset(run_id, "wine:1", "train", actor="ana")
    registry.register_version("a", "iris", model_files(b"1"), flavor="sklearn", actor="ana")
    time.sleep(0.01)
    middle = datetime.now(tz=UTC)
    time.sleep(0.01)
    registry.register_version("a", "iris", model_files(b"2"), flavor="sklearn", actor="lee")
    registry.approve("a/iris:2", "ok", actor="lee")
    aliases.set_alias("iris", "production", 2, project="a", actor="lee")
    registry.register_version("a", "iris_x", model_files(b"3"), flavor="sklearn", actor="lee")
    registry.register_version("b", "iris", model_files(b"4"), flavor="sklearn", actor="bo")
    return Story(run_id, other_run, middle)


def brief(events: list[AuditEvent]) -> list[tuple[str, str, str]]:
    return [(e.action, e.entity_type, e.entity_id) for e in events]


def test_a_model_s_events_include_its_versions(audit: AuditService, story: Story) -> None:
    page = audit.events(entity_type="model", entity_id="a/iris")
    assert brief(page.events) == [
        ("model.created", "model", "a/iris"),
        ("model.version_created", "model_version", "a/iris:1"),
        ("model.version_created", "model_version", "a/iris:2"),
        ("model.version_approved", "model_version", "a/iris:2"),
        ("model.alias_moved", "model", "a/iris"),
    ]  # neither a/iris_x (a name with "_", which LIKE would match) nor b/iris
    assert page.next_cursor is None
    moved = page.events[-1]
    assert (moved.actor, moved.project) == ("lee", "a")
    assert moved.before == {"alias": "production", "version": None}
    assert moved.after == {"alias": "production", "version": 2, "reason": None}
    assert moved.at.tzinfo is not None and isinstance(moved.id, int)

    one = audit.events(entity_type="model_version", entity_id="a/iris:2")
    assert [e.action for e in one.events] == ["model.version_created", "model.version_approved"]
    run = audit.events(entity_type="run", entity_id=story.run_id)
    assert [e.action for e in run.events] == ["run.created", "run.input_added"]
    assert run.events[1].after == {"dataset": "a/wine:1", "digest": run.events[1].after["digest"],
                                   "role": "train"}  # fmt: skip
    wine = audit.events(entity_type="dataset", entity_id="a/wine")
    assert brief(wine.events) == [
        ("dataset.created", "dataset", "a/wine"),
        ("dataset.version_created", "dataset_version", "a/wine:1"),
    ]
    every_model = audit.events(entity_type="model")
    assert {e.entity_type for e in every_model.events} == {"model", "model_version"}
    assert len(every_model.events) == 9  # a/iris 5, a/iris_x 2, b/iris 2


def test_action_project_and_time(audit: AuditService, story: Story) -> None:
    created = audit.events(action="*.created")
    assert {e.action for e in created.events} == {
        "project.created",
        "run.created",
        "dataset.created",
        "model.created",
    }
    exact = audit.events(action="model.alias_moved")
    assert [e.entity_id for e in exact.events] == ["a/iris"]
    in_b = audit.events(project="b", action="model.*")
    assert brief(in_b.events) == [
        ("model.created", "model", "b/iris"),
        ("model.version_created", "model_version", "b/iris:1"),
    ]
    assert {e.project for e in audit.events(project="b").events} == {"b"}
    assert not audit.events(action="model_*").events  # "_" is a character, not a wildcard

    later = audit.events(since=story.middle, project="a")
    assert [e.action for e in later.events] == [
        "model.version_created",
        "model.version_approved",
        "model.alias_moved",
        "model.created",
        "model.version_created",
    ]
    assert (
        audit.events(since=story.middle.isoformat()).events
        == audit.events(since=story.middle).events
    )
    assert len(audit.events(since="1h").events) == len(audit.events().events)
    assert not audit.events(since=(datetime.now(tz=UTC) + timedelta(hours=1)).isoformat()).events


def test_keyset_pages_cover_every_event_once(audit: AuditService, story: Story) -> None:
    everything = audit.events().events
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    seen: list[AuditEvent] = []
    cursor = None
    while True:
        page = audit.events(limit=3, cursor=cursor)
        seen.extend(page.events)
        assert len(page.events) <= 3
        if page.next_cursor is None:
            break
        assert page.next_cursor == str(page.events[-1].id)
        cursor = page.next_cursor
    assert seen == everything
    two = audit.events(entity_type="model", entity_id="a/iris", limit=2)
    rest = audit.events(entity_type="model", entity_id="a/iris", cursor=two.next_cursor)
    assert len(two.events) + len(rest.events) == 5


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"entity_type": "modle"}, "entity_type"),
        ({"entity_id": "a/iris"}, "entity_id"),
        ({"entity_type": "run", "entity_id": "x\x00y"}, "entity_id"),
        ({"entity_type": "run", "entity_id": "x" * 251}, "entity_id"),
        ({"action": "model.%"}, "action"),
        ({"action": ""}, "action"),
        ({"project": "a b"}, "project"),
        ({"since": "yesterday"}, "since"),
        ({"since": "1y"}, "since"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"since": "999999999w"}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "-1"}, "cursor"),
    ],
)
def test_bad_filters_name_the_field(
    audit: AuditService, filters: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as bad:
        audit.events(**filters)
    assert bad.value.field == field


def test_unknown_project_is_not_found(audit: AuditService) -> None:
    with pytest.raises(NotFound):
        audit.events(project="nowhere")


def test_entities_as_people_type_them() -> None:
    run = new_ulid()
    assert parse_entity(f"runs/{run.lower()}", "p") == ("run", run)
    assert parse_entity("models/iris", "p") == ("model", "p/iris")
    assert parse_entity("models/iris:3", "p") == ("model_version", "p/iris:3")
    assert parse_entity("models/q/iris:3", "p") == ("model_version", "q/iris:3")
    assert parse_entity("datasets/wine", "p") == ("dataset", "p/wine")
    assert parse_entity("datasets/wine:2", "p") == ("dataset_version", "p/wine:2")
    assert parse_entity("projects/q", "p") == ("project", "q")
    assert parse_entity("endpoints/iris-api", "p") == ("endpoint", "p/iris-api")
    assert parse_entity("webhooks/7", "p") == ("webhook", "7")
    for bad in ["models", "models/", "runs/x", "widgets/a", "models/iris@production",
                "projects/q:1", "webhooks/x", "endpoints/e:1", "models/a b"]:  # fmt: skip
        with pytest.raises(Invalid) as error:
            parse_entity(bad, "p")
        assert error.value.field == "entity"
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert parse_since("90s", now) == now - timedelta(seconds=90)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T10:00:00+02:00", now) == datetime(2026, 11, 1, 8, tzinfo=UTC)


def test_the_database_refuses_to_change_events(database: Database, story: Story) -> None:
    """Append-only below the application: a trigger refuses UPDATE and DELETE."""
    with database.read() as conn:
        before = EventRepository(conn).search()
    assert before
    for statement in ("UPDATE events SET action = 'forged'", "DELETE FROM events"):
        with pytest.raises(DBAPIError, match="append-only"), database.write() as tx:
            tx.conn.execute(text(statement))
        with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as conn:
            conn.execute(text(f"{statement} WHERE id = {before[0].id}"))
    with database.read() as conn:
        assert EventRepository(conn).search() == before


def test_nothing_in_the_api_or_the_repository_changes_events(db_url: str) -> None:
    from cairn.api.app import create_app
    from cairn.settings import Settings

    app = create_app(Settings(store=db_url), database=Database(db_url))
    try:
        paths = app.openapi()["paths"]
    finally:
        app.state.db.close()
    assert {p: sorted(ops) for p, ops in paths.items() if "event" in p} == {
        "/api/v1/events": ["get"]
    }
    verbs = ("update", "delete", "remove", "purge", "truncate")
    assert not [m for m in dir(EventRepository) if any(v in m.lower() for v in verbs)]
