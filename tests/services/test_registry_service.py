"""The registry and alias services, called directly, on SQLite and PostgreSQL: semvers by
the rule and by override, approvals, protected aliases, every alias move kept and asked
about at a point in time, rollback, model cards, and exactly one audit event per change."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, func, select

from cairn.blobs import LocalBlobStore
from cairn.domain.datasets import DatasetFile
from cairn.domain.errors import Conflict, Invalid, NotFound
from cairn.domain.ids import new_ulid
from cairn.domain.models import Approval, ModelFile, ModelVersion
from cairn.domain.records import Batch, MetricSeries, RunBatch, RunStart
from cairn.services.aliases import AliasService
from cairn.services.blobs import BlobService
from cairn.services.data import DataService
from cairn.services.registry import RegistryService
from cairn.services.tracking import TrackingService
from cairn.store.database import Database
from cairn.store.tables import EventRow

T0 = datetime(2024, 3, 1, tzinfo=UTC)
LOGREG = "sklearn.linear_model.LogisticRegression"
FOREST = "sklearn.ensemble.RandomForestClassifier"
TENSOR = {
    "inputs": {"tensor": {"dtype": "float64", "shape": [-1, 4]}},
    "outputs": {"tensor": {"dtype": "int64", "shape": [-1]}},
}
COLUMNS = {
    "inputs": [{"name": "sepal_length", "type": "float64"}],
    "outputs": {"tensor": {"dtype": "int64", "shape": [-1]}},
}
_E = cast(Table, EventRow.__table__)


@dataclass(frozen=True)
class Services:
    store: LocalBlobStore
    tracking: TrackingService
    data: DataService
    registry: RegistryService
    aliases: AliasService


@pytest.fixture
def svc(database: Database, tmp_path: Path) -> Services:
    store = LocalBlobStore(tmp_path / "blobs")
    blobs = BlobService(database, store)
    tracking = TrackingService(database)
    registry = RegistryService(database, blobs, tracking.get_run)
    return Services(
        store, tracking, DataService(database, blobs), registry, AliasService(database, registry)
    )


@dataclass(frozen=True)
class Logged:
    action: str
    entity_id: str
    actor: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@contextmanager
def new_events(database: Database) -> Iterator[list[Logged]]:
    """The audit events written inside the block, oldest first."""
    with database.read() as conn:
        start = conn.execute(select(func.max(_E.c.id))).scalar() or 0
    found: list[Logged] = []
    yield found
    with database.read() as conn:
        rows = conn.execute(select(_E).where(_E.c.id > start).order_by(_E.c.id)).all()
    found.extend(
        Logged(
            r.action,
            r.entity_id,
            r.actor,
            json.loads(r.before) if r.before else None,
            json.loads(r.after) if r.after else None,
        )
        for r in rows
    )


def brief(logged: list[Logged]) -> list[tuple[str, str, str | None]]:
    return [(e.action, e.entity_id, e.actor) for e in logged]


def stored(store: LocalBlobStore, content: bytes) -> list[ModelFile]:
    meta = json.dumps({"flavor": "sklearn"}).encode()
    return [
        ModelFile(path, store.put_bytes(data).digest, len(data))
        for path, data in (("model.pkl", content), ("cairn-model.json", meta))
    ]


def register(svc: Services, content: bytes = b"weights-1", **kwargs: Any) -> ModelVersion:
    kwargs.setdefault("flavor", "sklearn")
    kwargs.setdefault("algorithm", LOGREG)
    kwargs.setdefault("signature", TENSOR)
    project = kwargs.pop("project", "proj")
    name = kwargs.pop("name", "iris")
    return svc.registry.register_version(project, name, stored(svc.store, content), **kwargs)


def start_run(svc: Services, **fields: Any) -> str:
    run_id = new_ulid()
    svc.tracking.start_run(RunStart(run_id, "proj", T0, **fields))
    return run_id


def pause() -> None:
    time.sleep(0.005)  # moves stamped in different milliseconds


# ---------------------------------------------------------------------------- versions


def test_register_resolve_and_one_event_each(svc: Services, database: Database) -> None:
    with new_events(database) as logged:
        first = register(svc, actor="ana", description="baseline", tags={"team": "vision"})
    assert (str(first), first.ref, first.semver, first.bump_reason) == (
        "iris:1",
        "proj/iris:1",
        "1.0.0",
        "first version",
    )
    assert (first.approval, first.author, first.run_id) == (Approval.PENDING, "ana", None)
    assert (first.flavor, first.algorithm, first.signature) == ("sklearn", LOGREG, TENSOR)
    assert (first.description, first.tags, first.aliases) == ("baseline", {"team": "vision"}, [])
    assert brief(logged) == [
        ("project.created", "proj", "ana"),
        ("model.created", "proj/iris", "ana"),
        ("model.version_created", "proj/iris:1", "ana"),
    ]
    after = logged[-1].after
    assert after is not None
    assert (after["semver"], after["reason"], after["digest"]) == (
        "1.0.0",
        "first version",
        first.digest,
    )

    with new_events(database) as logged:
        second = register(svc, actor="bob")  # the very same bytes: a new version, no new blob
    assert brief(logged) == [("model.version_created", "proj/iris:2", "bob")]
    assert (second.version, second.semver, second.digest) == (2, "1.0.1", first.digest)
    assert second.bump_reason == "same signature, algorithm and training data"
    assert len(list(svc.store.digests())) == 2  # model.pkl and cairn-model.json, once each

    version, files = svc.registry.files("iris:1", "proj")
    assert version == first
    assert [f.path for f in files] == ["cairn-model.json", "model.pkl"]
    assert first.size == sum(f.size for f in files)
    for ref in ("iris", "iris:2", "iris@1.0.1", "proj/iris"):
        assert svc.registry.resolve(ref, "proj") == second
    assert svc.registry.resolve("proj/iris:1", "elsewhere") == first
    assert [v.version for v in svc.registry.list_versions("iris", "proj")] == [2, 1]
    model = svc.registry.get_model("iris", "proj")
    assert (model.latest_version, model.version_count, model.aliases) == (2, 2, {})
    assert [m.name for m in svc.registry.list_models("proj")] == ["iris"]


@pytest.mark.parametrize("ref", ["iris:3", "iris@9.9.9", "iris@production", "nothing", "x/iris"])
def test_unknown_versions_are_not_found(svc: Services, ref: str) -> None:
    register(svc)
    with pytest.raises(NotFound):
        svc.registry.resolve(ref, "proj")


def test_refused_registrations_change_nothing(svc: Services, database: Database) -> None:
    register(svc)
    missing = ModelFile("model.pkl", "a" * 64, 3)
    cases: list[tuple[dict[str, Any], type[Exception], str | None]] = [
        ({"bump": "minor", "semver": "3.0.0"}, Invalid, "bump"),
        ({"bump": "huge"}, Invalid, "bump"),
        ({"semver": "3.0"}, Invalid, "semver"),
        ({"semver": "1.0.0"}, Conflict, None),  # iris has a 1.0.0 already
        ({"name": "new-model", "bump": "huge"}, Invalid, "bump"),
        ({"flavor": ""}, Invalid, "flavor"),
        ({"flavor": "x" * 51}, Invalid, "flavor"),
        ({"name": "-bad"}, Invalid, "name"),
        ({"run_id": new_ulid()}, NotFound, None),
    ]
    with new_events(database) as logged:
        for kwargs, error, field in cases:
            with pytest.raises(error) as caught:
                register(svc, **kwargs)
            if field is not None:
                assert cast(Invalid, caught.value).field == field
        with pytest.raises(Invalid) as caught:
            svc.registry.register_version("proj", "iris", [missing], flavor="sklearn")
        assert caught.value.details["field"] == "files[0].digest"
        with pytest.raises(Invalid) as caught:
            svc.registry.register_version(
                "proj", "iris", [ModelFile("../up", "a" * 64, 3)], flavor="sklearn"
            )
        assert caught.value.details["field"] == "files[0].path"
    assert logged == []
    assert [v.version for v in svc.registry.list_versions("iris", "proj")] == [1]
    with pytest.raises(NotFound):
        svc.registry.get_model("new-model", "proj")  # the refused first version made no model


def test_an_explicit_semver_never_makes_the_rule_collide(svc: Services) -> None:
    register(svc)  # 1.0.0
    register(svc, semver="1.1.0")
    try:
        register(svc, semver="1.0.5")  # below 1.1.0
    except (Conflict, Invalid):
        return  # refusing a semver that goes backwards is one fix
    made = register(svc, algorithm=FOREST)  # the rule: minor
    assert made.semver not in ("1.0.0", "1.1.0", "1.0.5")


def test_the_semver_rule_end_to_end(svc: Services) -> None:
    """Each version against the one before it: the bump and the reason kept with it."""
    data = svc.data
    one = DatasetFile("d.csv", svc.store.put_bytes(b"x\n1\n").digest, 4)
    two = DatasetFile("d.csv", svc.store.put_bytes(b"x\n1\n2\n").digest, 6)
    data.log_version("proj", "d", [one], batch="2024-03")
    data.log_version("proj", "d", [two], batch="2024-04")
    on_d1 = start_run(svc)
    data.use_dataset(on_d1, "d:1", "train")
    on_d2 = start_run(svc)
    data.use_dataset(on_d2, "d:2", "train")
    data.use_dataset(on_d2, "d:1", "validation")  # not training data: no part of the rule

    steps: list[tuple[dict[str, Any], str, str]] = [
        ({}, "1.0.0", "first version"),
        ({"content": b"weights-1"}, "1.0.1", "same signature, algorithm and training data"),
        ({"content": b"C=0.5"}, "1.0.2", "same signature, algorithm and training data"),
        ({"algorithm": FOREST}, "1.1.0", f"algorithm {LOGREG} -> {FOREST}"),
        ({"algorithm": FOREST, "run_id": on_d1}, "1.2.0", "training data none -> proj/d:1"),
        ({"algorithm": FOREST, "run_id": on_d2}, "1.3.0", "training data proj/d:1 -> proj/d:2"),
        ({"algorithm": FOREST, "run_id": on_d2}, "1.3.1", "same signature"),
        (
            {"algorithm": FOREST, "run_id": on_d2, "signature": COLUMNS},
            "2.0.0",
            "the input/output signature changed",
        ),
        ({"algorithm": FOREST, "run_id": on_d2, "bump": "minor"}, "2.1.0", "minor bump asked"),
        ({"signature": TENSOR, "bump": "patch"}, "2.1.1", "patch bump asked for"),
        ({"semver": "3.0.0"}, "3.0.0", "set explicitly"),
        ({}, "3.0.1", "same signature"),
    ]
    for number, (kwargs, semver, reason) in enumerate(steps, start=1):
        made = register(svc, **kwargs)
        assert (made.version, made.semver) == (number, semver), kwargs
        assert made.bump_reason.startswith(reason), (made.bump_reason, kwargs)
    assert svc.registry.resolve("iris:5", "proj").training_data == ["proj/d:1"]
    assert svc.registry.resolve("iris:6", "proj").training_data == ["proj/d:2"]
    assert svc.registry.resolve("iris:6", "proj").run_id == on_d2
    assert svc.registry.resolve("iris@2.0.0", "proj").version == 8


# ---------------------------------------------------------------------------- approvals


def test_approve_and_reject_are_recorded(svc: Services, database: Database) -> None:
    register(svc)
    register(svc, content=b"weights-2")
    before = datetime.now(UTC) - timedelta(seconds=1)
    with new_events(database) as logged:
        approved = svc.registry.approve("iris:1", "holdout 0.97", project="proj", actor="lee")
        rejected = svc.registry.reject("proj/iris@1.0.1", "overfits", actor="kim")
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert (approved.approval, approved.approval_comment, approved.approval_actor) == (
        Approval.APPROVED,
        "holdout 0.97",
        "lee",
    )
    assert approved.approval_at is not None and before <= approved.approval_at <= after
    assert (rejected.version, rejected.approval, rejected.approval_comment) == (
        2,
        Approval.REJECTED,
        "overfits",
    )
    assert rejected.approval_actor == "kim"
    assert svc.registry.resolve("iris:1", "proj") == approved
    assert brief(logged) == [
        ("model.version_approved", "proj/iris:1", "lee"),
        ("model.version_rejected", "proj/iris:2", "kim"),
    ]
    assert logged[0].before == {"approval": "pending"}
    assert logged[0].after == {"approval": "approved", "comment": "holdout 0.97"}
    with pytest.raises(NotFound):
        svc.registry.approve("iris:9", project="proj")
    with pytest.raises(Invalid):
        svc.registry.approve("iris:1", "x" * 10_001, project="proj")


def test_the_target_of_a_protected_alias_cannot_be_rejected(
    svc: Services, database: Database
) -> None:
    register(svc)
    svc.registry.approve("iris:1", project="proj")
    svc.aliases.protect("iris", "production", project="proj")
    svc.aliases.set_alias("iris", "production", 1, project="proj")
    with new_events(database) as logged, pytest.raises(Conflict) as caught:
        svc.registry.reject("iris:1", "changed my mind", project="proj", actor="kim")
    assert "production" in caught.value.message and "iris:1" in caught.value.message
    assert caught.value.details == {"aliases": ["production"], "version": 1}
    assert logged == []
    assert svc.registry.resolve("iris:1", "proj").approval is Approval.APPROVED
    svc.aliases.protect("iris", "staging", project="proj")  # protected, points elsewhere
    register(svc, content=b"weights-2")
    svc.registry.approve("iris:2", project="proj")
    svc.aliases.set_alias("iris", "production", 2, project="proj")
    assert svc.registry.reject("iris:1", project="proj").approval is Approval.REJECTED


# ---------------------------------------------------------------------------- aliases


def test_a_protected_alias_takes_approved_versions_only(svc: Services, database: Database) -> None:
    register(svc)
    register(svc, content=b"weights-2")
    register(svc, content=b"weights-3")
    svc.registry.reject("iris:3", project="proj")
    with new_events(database) as logged:
        model = svc.aliases.protect("iris", "production", project="proj", actor="lee")
        svc.aliases.protect("iris", "production", project="proj", actor="lee")  # no change
    assert model.protected_aliases == ["production"]
    assert brief(logged) == [("model.alias_protected", "proj/iris", "lee")]
    assert logged[0].after == {"alias": "production"}

    with new_events(database) as logged:
        for version, state in ((1, "pending"), (3, "rejected")):
            with pytest.raises(Conflict) as caught:
                svc.aliases.set_alias("iris", "production", version, project="proj")
            message = caught.value.message
            assert "'production'" in message and "protected" in message
            assert f"iris:{version} is {state}" in message
            assert caught.value.details == {
                "alias": "production",
                "version": version,
                "approval": state,
            }
    assert logged == []
    assert svc.aliases.history("iris", "production", project="proj") == []

    svc.registry.approve("iris:1", project="proj")
    with new_events(database) as logged:
        moved = svc.aliases.set_alias("iris", "production", 1, project="proj", actor="lee")
        svc.aliases.set_alias("iris", "production", "1", project="proj")  # already there
    assert (moved.version, moved.aliases) == (1, ["production"])
    assert brief(logged) == [("model.alias_moved", "proj/iris", "lee")]
    assert logged[0].before == {"alias": "production", "version": None}
    assert logged[0].after == {"alias": "production", "version": 1, "reason": None}

    with new_events(database) as logged:
        model = svc.aliases.protect("iris", "production", False, project="proj", actor="lee")
    assert model.protected_aliases == []
    assert brief(logged) == [("model.alias_unprotected", "proj/iris", "lee")]
    assert svc.aliases.set_alias("iris", "production", 2, project="proj").version == 2


def test_every_move_is_kept_and_answers_point_in_time(svc: Services, database: Database) -> None:
    for n in (1, 2, 3):
        register(svc, content=f"weights-{n}".encode())
    with new_events(database) as logged:
        svc.aliases.set_alias("iris", "staging", 1, project="proj", reason="first", actor="ana")
        pause()
        svc.aliases.set_alias("iris", "staging", "iris@1.0.1", project="proj", actor="bob")
        pause()
        svc.aliases.set_alias("iris", "staging", "3", project="proj", reason="newest")
        pause()
        svc.aliases.delete_alias("iris", "staging", project="proj", reason="retired", actor="ana")
    assert brief(logged) == [
        ("model.alias_moved", "proj/iris", "ana"),
        ("model.alias_moved", "proj/iris", "bob"),
        ("model.alias_moved", "proj/iris", None),
        ("model.alias_deleted", "proj/iris", "ana"),
    ]
    assert logged[-1].after == {"alias": "staging", "version": None, "reason": "retired"}
    moves = svc.aliases.history("iris", "staging", project="proj")
    assert [(m.from_version, m.to_version, m.actor, m.reason) for m in moves] == [
        (None, 1, "ana", "first"),
        (1, 2, "bob", None),
        (2, 3, None, "newest"),
        (3, None, "ana", "retired"),
    ]
    assert {m.model for m in moves} == {"iris"} and {m.alias for m in moves} == {"staging"}
    assert all(a.at < b.at for a, b in itertools.pairwise(moves))

    def at(when: datetime) -> int | None:
        found = svc.aliases.resolve_alias("iris", "staging", at=when, project="proj")
        return None if found is None else found.version

    ms = timedelta(milliseconds=1)
    assert at(moves[0].at - ms) is None  # before the alias existed
    assert at(moves[0].at) == 1
    assert at(moves[1].at - ms) == 1
    assert at(moves[1].at) == 2
    assert at(moves[2].at) == 3 and at(moves[3].at - ms) == 3
    assert at(moves[3].at) is None  # deleted then
    assert at(datetime.now(UTC) + timedelta(days=1)) is None
    assert at(moves[1].at.replace(tzinfo=None)) == 2  # a naive time is UTC
    assert svc.aliases.resolve_alias("iris", "staging", project="proj") is None
    assert svc.aliases.resolve_alias("iris", "never", project="proj") is None
    with pytest.raises(NotFound):
        svc.aliases.resolve_alias("nothing", "staging", project="proj")
    with pytest.raises(NotFound):
        svc.aliases.delete_alias("iris", "staging", project="proj")  # already gone
    assert len(svc.aliases.history("iris", project="proj")) == 4


def test_rollback_moves_back_and_is_recorded(svc: Services, database: Database) -> None:
    for n in (1, 2):
        register(svc, content=f"weights-{n}".encode())
    svc.aliases.set_alias("iris", "production", 1, project="proj")
    with pytest.raises(Conflict) as caught:
        svc.aliases.rollback("iris", "production", project="proj")
    assert "no earlier target" in caught.value.message
    with pytest.raises(Conflict):
        svc.aliases.rollback("iris", "canary", project="proj")  # never set
    pause()
    svc.aliases.set_alias("iris", "production", 2, project="proj")
    pause()
    with new_events(database) as logged:
        back = svc.aliases.rollback("iris", "production", project="proj", actor="lee")
    assert (back.version, back.aliases) == (1, ["production"])
    assert brief(logged) == [("model.alias_moved", "proj/iris", "lee")]
    last = svc.aliases.history("iris", "production", project="proj")[-1]
    assert (last.from_version, last.to_version, last.actor) == (2, 1, "lee")
    assert last.reason == "rollback from iris:2 to iris:1"
    assert svc.registry.resolve("iris@production", "proj").version == 1
    why = svc.aliases.rollback("iris", "production", project="proj", reason="undo the undo")
    assert why.version == 2
    assert svc.aliases.history("iris", "production", project="proj")[-1].reason == "undo the undo"


def test_rollback_of_a_protected_alias_still_needs_an_approved_target(svc: Services) -> None:
    for n in (1, 2):
        register(svc, content=f"weights-{n}".encode())
        svc.registry.approve(f"iris:{n}", project="proj")
    svc.aliases.protect("iris", "production", project="proj")
    svc.aliases.set_alias("iris", "production", 1, project="proj")
    pause()
    svc.aliases.set_alias("iris", "production", 2, project="proj")
    svc.registry.reject("iris:1", "found a leak", project="proj")  # not the target any more
    with pytest.raises(Conflict, match="rejected"):
        svc.aliases.rollback("iris", "production", project="proj")
    assert svc.registry.resolve("iris@production", "proj").version == 2


def test_rollback_after_a_delete_says_what_it_restored(svc: Services) -> None:
    register(svc)
    svc.aliases.set_alias("iris", "production", 1, project="proj")
    pause()
    svc.aliases.delete_alias("iris", "production", project="proj")
    pause()
    assert svc.aliases.rollback("iris", "production", project="proj").version == 1
    reason = svc.aliases.history("iris", "production", project="proj")[-1].reason
    assert reason is not None and "None" not in reason


def test_aliases_point_to_their_own_model_only(svc: Services, database: Database) -> None:
    register(svc)
    register(svc, name="wine")
    register(svc, name="iris", project="other")
    with new_events(database) as logged:
        for ref in ("wine:1", "wine@1.0.0", "other/iris:1"):
            with pytest.raises(Conflict) as caught:
                svc.aliases.set_alias("iris", "production", ref, project="proj")
            assert "another model" in caught.value.message
        with pytest.raises(NotFound):
            svc.aliases.set_alias("iris", "production", 7, project="proj")
        with pytest.raises(NotFound):
            svc.aliases.set_alias("nothing", "production", 1, project="proj")
    assert logged == []
    assert svc.registry.get_model("iris", "proj").aliases == {}


@pytest.mark.parametrize("alias", ["1abc", "latest", "a b", "", "x" * 101])
def test_bad_alias_names_are_invalid_everywhere(svc: Services, alias: str) -> None:
    register(svc)
    calls: list[Callable[[], object]] = [
        lambda: svc.aliases.set_alias("iris", alias, 1, project="proj"),
        lambda: svc.aliases.delete_alias("iris", alias, project="proj"),
        lambda: svc.aliases.resolve_alias("iris", alias, project="proj"),
        lambda: svc.aliases.history("iris", alias, project="proj"),
        lambda: svc.aliases.protect("iris", alias, project="proj"),
    ]
    for call in calls:
        with pytest.raises(Invalid) as caught:
            call()
        assert caught.value.field == "alias"
        assert "alias" in caught.value.message


# ---------------------------------------------------------------------------- cards, inputs


def test_model_card_and_compare(svc: Services) -> None:
    git = {"commit": "a" * 40, "branch": "main", "dirty": False}
    data = svc.data
    data.log_version(
        "proj",
        "d",
        [DatasetFile("d.csv", svc.store.put_bytes(b"x\n1\n").digest, 4)],
        batch="2024-03",
    )
    runs = []
    for lr, acc in (("0.1", 0.91), ("0.2", 0.95)):
        run_id = start_run(svc, git=git, command="python train.py")
        svc.tracking.log_batch(
            Batch(
                f"batch-{run_id}",
                [
                    RunBatch(
                        run_id,
                        params={"lr": lr, "epochs": "10"},
                        metrics={"acc": MetricSeries([0], [0], [acc])},
                    )
                ],
            )
        )
        data.use_dataset(run_id, "d:1", "train")
        runs.append(run_id)
    register(svc, run_id=runs[0])
    register(svc, content=b"weights-2", run_id=runs[1], algorithm=FOREST)
    svc.registry.approve("iris:1", "ok", project="proj", actor="lee")

    card = svc.registry.model_card("iris:1", "proj")
    assert (card["model"], card["project"], card["version"], card["semver"]) == (
        "iris",
        "proj",
        1,
        "1.0.0",
    )
    assert (card["flavor"], card["algorithm"], card["signature"]) == ("sklearn", LOGREG, TENSOR)
    assert card["approval"]["state"] == "approved" and card["approval"]["by"] == "lee"
    assert [f["path"] for f in card["files"]] == ["cairn-model.json", "model.pkl"]
    run = card["run"]
    assert run["id"] == runs[0] and run["git"] == git and run["command"] == "python train.py"
    assert (run["params"], run["metrics"]) == ({"lr": "0.1", "epochs": "10"}, {"acc": 0.91})
    assert card["training_data"] == [
        {
            "dataset": "proj/d:1",
            "role": "train",
            "batch": "2024-03",
            "digest": data.resolve("d:1", "proj").digest,
        }
    ]
    json.dumps(card)  # plain data

    diff = svc.registry.compare("iris:1", "iris:2", "proj")
    assert (diff["a"], diff["b"]) == ("proj/iris:1", "proj/iris:2")
    assert diff["params"] == {
        "epochs": {"a": "10", "b": "10", "differs": False},
        "lr": {"a": "0.1", "b": "0.2", "differs": True},
    }
    assert diff["metrics"] == {"acc": {"a": 0.91, "b": 0.95, "differs": True}}
    assert diff["algorithm"] == {"a": LOGREG, "b": FOREST}
    assert diff["training_data"] == {"a": ["proj/d:1"], "b": ["proj/d:1"]}
    assert diff["signature"]["differs"] is False

    bare = register(svc, name="bare")
    card = svc.registry.model_card(str(bare), "proj")
    assert (card["run"], card["training_data"]) == (None, [])


def test_a_run_using_a_version_is_recorded_once(svc: Services, database: Database) -> None:
    register(svc)
    svc.aliases.set_alias("iris", "staging", 1, project="proj")
    run_id = start_run(svc)
    with new_events(database) as logged:
        used = svc.registry.use_model(run_id, "iris@staging", actor="ana")
        svc.registry.use_model(run_id, "iris:1", actor="ana")  # the same version and role
        svc.registry.use_model(run_id, "iris:1", "test", actor="ana")
    assert used.version == 1
    assert brief(logged) == [
        ("run.model_input_added", run_id, "ana"),
        ("run.model_input_added", run_id, "ana"),
    ]
    assert [e.after for e in logged] == [
        {"model": "proj/iris:1", "role": "evaluate"},
        {"model": "proj/iris:1", "role": "test"},
    ]
    with pytest.raises(NotFound):
        svc.registry.use_model(new_ulid(), "iris:1")
    with pytest.raises(Invalid):
        svc.registry.use_model(run_id, "iris:1", "bad role")
