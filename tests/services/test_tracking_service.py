"""TrackingService on a real database: SQLite always, PostgreSQL when configured.

Every rule of tracking is checked through the service, the way the API and the SDK use
it: projects, batches (idempotent, all or nothing), params, tags, metric series and their
summaries, downsampled history, run lifecycle, the audit trail and search paging.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from cairn.domain.errors import AlreadyExists, Conflict, Invalid, NotFound
from cairn.domain.ids import new_ulid
from cairn.domain.records import (
    Batch,
    BatchResult,
    MetricSeries,
    RunBatch,
    RunEnd,
    RunStart,
    RunStatus,
)
from cairn.services.tracking import TrackingService
from cairn.store.database import Database
from cairn.store.repositories.events import Event, EventRepository
from cairn.store.tables import Base

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TS0 = 1_709_294_400_000  # T0 in milliseconds


# ---------------------------------------------------------------------------- helpers


def new_start(project: str = "proj", **fields: Any) -> RunStart:
    return RunStart(new_ulid(), project, T0, **fields)


def series(steps: Iterable[int], values: Iterable[float]) -> MetricSeries:
    steps = list(steps)
    return MetricSeries(steps, [TS0 + s for s in steps], list(values))


def log(
    tracking: TrackingService,
    run_id: str,
    *,
    key: str | None = None,
    actor: str | None = None,
    **parts: Any,
) -> BatchResult:
    return tracking.log_batch(Batch(key or new_ulid(), [RunBatch(run_id, **parts)]), actor)


def started(tracking: TrackingService, project: str = "proj", **parts: Any) -> str:
    start = new_start(project)
    log(tracking, start.id, start=start, **parts)
    return start.id


def run_events(database: Database, run_id: str) -> list[Event]:
    with database.read() as conn:
        return EventRepository(conn).for_entity("run", run_id)


def row_counts(database: Database) -> dict[str, int]:
    """Rows in every table: equal before and after means a request wrote nothing."""
    with database.read() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }


def same(a: Sequence[float], b: Sequence[float]) -> bool:
    """Equal lists of floats where NaN equals NaN."""
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True)
    )


def values_of(tracking: TrackingService, run_id: str, key: str, **kw: Any) -> list[float]:
    return [p.value for p in tracking.metric_history(run_id, key, **kw).points]


# ---------------------------------------------------------------------------- projects


def test_create_and_get_projects(tracking: TrackingService, database: Database) -> None:
    alpha = tracking.create_project("alpha", "the first one", actor="ana")
    assert alpha.name == "alpha"
    assert alpha.description == "the first one"
    assert alpha.created_at.tzinfo is not None
    assert tracking.get_project("alpha") == alpha
    with database.read() as conn:
        events = EventRepository(conn).for_entity("project", "alpha")
    assert [(e.action, e.actor, e.after) for e in events] == [
        ("project.created", "ana", {"name": "alpha"})
    ]


def test_list_projects(
    tracking: TrackingService, database: Database, request: pytest.FixtureRequest
) -> None:
    tracking.create_project("beta")
    tracking.create_project("alpha")
    summaries = {s.project.name: s for s in tracking.list_projects()}
    assert list(summaries) == ["alpha", "beta"]
    assert (summaries["alpha"].run_count, summaries["alpha"].running_count) == (0, 0)
    assert summaries["alpha"].last_activity is None

    started(tracking, "alpha")
    finished = started(tracking, "alpha")
    tracking.end_run(finished)
    started(tracking, "gamma")  # a project made by starting a run in it
    summaries = {s.project.name: s for s in tracking.list_projects()}
    assert list(summaries) == ["alpha", "beta", "gamma"]
    assert (summaries["alpha"].run_count, summaries["alpha"].running_count) == (2, 1)
    assert summaries["alpha"].last_activity is not None
    assert (summaries["gamma"].run_count, summaries["gamma"].running_count) == (1, 1)


def test_duplicate_project_is_already_exists_and_writes_nothing(
    tracking: TrackingService, database: Database
) -> None:
    tracking.create_project("alpha", "original")
    before = row_counts(database)
    with pytest.raises(AlreadyExists) as caught:
        tracking.create_project("alpha", "another")
    assert caught.value.details == {"project": "alpha"}
    assert row_counts(database) == before
    assert tracking.get_project("alpha").description == "original"


def test_invalid_project_name(tracking: TrackingService, database: Database) -> None:
    before = row_counts(database)
    for name in ["", "has space", "-dash-first", "x" * 101, "a/b", "a..b/c"]:
        with pytest.raises(Invalid) as caught:
            tracking.create_project(name)
        assert caught.value.field == "project", name
    assert row_counts(database) == before


def test_unknown_project_is_not_found(tracking: TrackingService) -> None:
    with pytest.raises(NotFound):
        tracking.get_project("nope")
    with pytest.raises(NotFound):
        tracking.search_runs("nope")


# ---------------------------------------------------------------------------- batches


def test_batch_starts_runs_with_client_made_ids(tracking: TrackingService) -> None:
    parent = new_start(
        "vision",
        name="sweep",
        experiment="resnet",
        author="ana",
        command="python train.py",
        notes="why: try a wider net",
        git={"commit": "abc123", "branch": "main", "dirty": True},
        git_diff="--- a\n+++ b\n",
        environment={"python": "3.11", "packages": {"torch": "2.3"}},
    )
    child = new_start("vision", name="trial-1", parent_id=parent.id)
    result = tracking.log_batch(
        Batch(
            new_ulid(),
            [
                RunBatch(parent.id, start=parent, params={"lr": "0.1"}, tags={"team": "cv"}),
                RunBatch(
                    child.id,
                    start=child,
                    params={"lr": "0.01", "depth": "50"},
                    metrics={"loss": series([0, 1, 2], [0.9, 0.5, 0.4])},
                ),
            ],
        ),
        actor="ana",
    )
    assert (result.applied, result.runs, result.points) == (True, 2, 3)

    run = tracking.get_run(parent.id)
    assert run.id == parent.id
    assert run.project == "vision"
    assert run.status is RunStatus.RUNNING
    assert run.start_time == T0
    assert run.end_time is None
    assert (run.name, run.experiment, run.author) == ("sweep", "resnet", "ana")
    assert run.command == "python train.py"
    assert run.notes == "why: try a wider net"
    assert run.git == {"commit": "abc123", "branch": "main", "dirty": True}
    assert run.environment == {"python": "3.11", "packages": {"torch": "2.3"}}
    assert run.params == {"lr": "0.1"}
    assert run.tags == {"team": "cv"}
    assert run.metrics == {}
    assert tracking.get_git_diff(parent.id) == "--- a\n+++ b\n"

    kid = tracking.get_run(child.id)
    assert kid.parent_id == parent.id
    assert kid.params == {"lr": "0.01", "depth": "50"}
    assert kid.metrics["loss"].count == 3
    assert tracking.get_git_diff(child.id) is None
    assert tracking.child_runs(parent.id) == [child.id]
    assert tracking.child_runs(child.id) == []
    assert tracking.get_project("vision").name == "vision"


def test_resumed_run_keeps_its_start(tracking: TrackingService, database: Database) -> None:
    start = new_start("proj", name="first")
    log(tracking, start.id, start=start)
    again = RunStart(start.id, "proj", T0 + timedelta(hours=1), name="second")
    log(tracking, start.id, start=again, params={"lr": "0.1"})
    run = tracking.get_run(start.id)
    assert (run.name, run.start_time, run.params) == ("first", T0, {"lr": "0.1"})
    assert [e.action for e in run_events(database, start.id)] == ["run.created", "run.logged"]


def test_run_cannot_move_to_another_project(tracking: TrackingService) -> None:
    run_id = started(tracking, "one")
    with pytest.raises(Conflict):
        log(tracking, run_id, start=RunStart(run_id, "two", T0))
    assert tracking.get_run(run_id).project == "one"


def test_nan_and_infinities_are_kept(tracking: TrackingService) -> None:
    nan, inf = math.nan, math.inf
    run_id = started(
        tracking,
        metrics={
            "mixed": series(range(5), [1.0, nan, inf, -inf, 0.5]),
            "ends_nan": series(range(3), [2.0, 1.0, nan]),
            "all_nan": series(range(2), [nan, nan]),
        },
    )
    assert same(values_of(tracking, run_id, "mixed"), [1.0, nan, inf, -inf, 0.5])
    assert same(values_of(tracking, run_id, "ends_nan"), [2.0, 1.0, nan])

    metrics = tracking.get_run(run_id).metrics
    mixed = metrics["mixed"]
    assert (mixed.last, mixed.last_step, mixed.count) == (0.5, 4, 5)
    assert (mixed.min, mixed.max) == (-inf, inf)
    ends_nan = metrics["ends_nan"]
    assert math.isnan(ends_nan.last)
    assert (ends_nan.min, ends_nan.max, ends_nan.count) == (1.0, 2.0, 3)
    all_nan = metrics["all_nan"]
    assert math.isnan(all_nan.last)
    assert (all_nan.min, all_nan.max, all_nan.count) == (None, None, 2)

    # Later batches: NaN still never becomes a min or max, and a real value fills them.
    log(tracking, run_id, metrics={"all_nan": series([2], [3.0]), "ends_nan": series([3], [nan])})
    metrics = tracking.get_run(run_id).metrics
    assert (metrics["all_nan"].min, metrics["all_nan"].max, metrics["all_nan"].last) == (3.0,) * 3
    assert (metrics["ends_nan"].min, metrics["ends_nan"].max) == (1.0, 2.0)
    assert metrics["ends_nan"].count == 4


def test_last_is_the_value_at_the_highest_step(tracking: TrackingService) -> None:
    run_id = started(tracking, metrics={"acc": series([5, 3, 1], [50.0, 30.0, 10.0])})
    acc = tracking.get_run(run_id).metrics["acc"]
    assert (acc.last, acc.last_step, acc.last_timestamp) == (50.0, 5, TS0 + 5)
    assert (acc.min, acc.max, acc.count) == (10.0, 50.0, 3)

    log(tracking, run_id, metrics={"acc": series([2], [99.0])})  # an earlier step, logged later
    acc = tracking.get_run(run_id).metrics["acc"]
    assert (acc.last, acc.last_step, acc.max, acc.count) == (50.0, 5, 99.0, 4)

    log(tracking, run_id, metrics={"acc": series([7, 6], [-1.0, 70.0])})
    acc = tracking.get_run(run_id).metrics["acc"]
    assert (acc.last, acc.last_step, acc.min, acc.max, acc.count) == (-1.0, 7, -1.0, 99.0, 6)


def test_a_step_logged_twice_keeps_both_points(tracking: TrackingService) -> None:
    run_id = started(tracking, metrics={"loss": series([0, 1, 1], [3.0, 2.0, 2.5])})
    log(tracking, run_id, metrics={"loss": series([1], [1.5])})
    history = tracking.metric_history(run_id, "loss")
    assert [(p.step, p.value) for p in history.points] == [(0, 3.0), (1, 2.0), (1, 2.5), (1, 1.5)]
    assert history.total_count == 4
    loss = tracking.get_run(run_id).metrics["loss"]
    assert (loss.count, loss.last, loss.last_step) == (4, 1.5, 1)


def test_points_appended_across_batches_keep_order_and_counts(tracking: TrackingService) -> None:
    run_id = started(tracking)
    for first in range(0, 50, 10):
        steps = range(first, first + 10)
        log(
            tracking,
            run_id,
            metrics={"loss": series(steps, [s / 100 for s in steps]), "lr": series([first], [0.1])},
        )
    history = tracking.metric_history(run_id, "loss")
    assert [p.step for p in history.points] == list(range(50))
    assert [p.value for p in history.points] == [s / 100 for s in range(50)]
    assert [p.timestamp for p in history.points] == [TS0 + s for s in range(50)]
    assert (history.total_count, history.downsampled) == (50, False)
    metrics = tracking.get_run(run_id).metrics
    assert (metrics["loss"].count, metrics["loss"].last) == (50, 0.49)
    assert metrics["lr"].count == 5


def test_same_batch_entries_for_one_run_are_merged(tracking: TrackingService) -> None:
    start = new_start()
    tracking.log_batch(
        Batch(
            new_ulid(),
            [
                RunBatch(start.id, start=start, metrics={"x": series([0], [1.0])}, notes="one"),
                RunBatch(
                    start.id, params={"a": "1"}, metrics={"x": series([1], [2.0])}, notes="two"
                ),
            ],
        )
    )
    run = tracking.get_run(start.id)
    assert run.params == {"a": "1"}
    assert run.notes == "one\n\ntwo"
    assert values_of(tracking, start.id, "x") == [1.0, 2.0]


def test_param_logged_again_with_same_value_is_fine(tracking: TrackingService) -> None:
    run_id = started(tracking, params={"lr": "0.1"})
    result = log(tracking, run_id, params={"lr": "0.1", "depth": "3"})
    assert result.applied
    assert tracking.get_run(run_id).params == {"lr": "0.1", "depth": "3"}


def test_changed_param_is_a_conflict_and_writes_nothing(
    tracking: TrackingService, database: Database
) -> None:
    run_id = started(
        tracking, params={"lr": "0.1"}, tags={"stage": "a"}, metrics={"loss": series([0], [1.0])}
    )
    other = new_start("fresh-project")
    before = row_counts(database)
    events_before = run_events(database, run_id)
    key = new_ulid()
    bad = Batch(
        key,
        [
            RunBatch(other.id, start=other, params={"x": "1"}),
            RunBatch(
                run_id,
                params={"lr": "0.2", "new": "x"},
                tags={"stage": "b", "more": "y"},
                metrics={"loss": series([1, 2, 3], [0.5, 0.4, 0.3]), "acc": series([0], [0.9])},
                notes="should not appear",
                end=RunEnd(RunStatus.FINISHED, T0),
            ),
        ],
    )
    with pytest.raises(Conflict) as caught:
        tracking.log_batch(bad)
    assert caught.value.details["field"] == "params.lr"
    assert (caught.value.details["old"], caught.value.details["new"]) == ("0.1", "0.2")

    assert row_counts(database) == before
    assert run_events(database, run_id) == events_before
    run = tracking.get_run(run_id)
    assert run.params == {"lr": "0.1"}
    assert run.tags == {"stage": "a"}
    assert set(run.metrics) == {"loss"}
    assert run.metrics["loss"].count == 1
    assert (run.status, run.notes) == (RunStatus.RUNNING, None)
    assert values_of(tracking, run_id, "loss") == [1.0]
    with pytest.raises(NotFound):
        tracking.metric_history(run_id, "acc")
    with pytest.raises(NotFound):
        tracking.get_run(other.id)
    with pytest.raises(NotFound):
        tracking.get_project("fresh-project")

    # The key was not used up: the corrected batch goes through under it.
    bad.runs[1].params["lr"] = "0.1"
    assert tracking.log_batch(bad).applied
    assert tracking.get_run(run_id).params == {"lr": "0.1", "new": "x"}


def test_resent_batch_is_applied_once(
    tracking: TrackingService, database: Database, request: pytest.FixtureRequest
) -> None:
    start = new_start()
    batch = Batch(
        "resend-key-1",
        [
            RunBatch(
                start.id,
                start=start,
                params={"lr": "0.1"},
                tags={"t": "1"},
                metrics={"loss": series(range(20), [1.0] * 20)},
                notes="once",
            )
        ],
    )
    first = tracking.log_batch(batch)
    after_first = row_counts(database)
    again = tracking.log_batch(batch)
    assert (first.applied, again.applied) == (True, False)
    assert (again.idempotency_key, again.runs, again.points) == ("resend-key-1", 1, 20)
    assert row_counts(database) == after_first

    # The key decides, not the content: another batch under a used key changes nothing.
    other = Batch("resend-key-1", [RunBatch(start.id, metrics={"loss": series([99], [0.0])})])
    assert not tracking.log_batch(other).applied
    assert row_counts(database) == after_first
    run = tracking.get_run(start.id)
    assert (run.metrics["loss"].count, run.notes) == (20, "once")


def test_batch_for_an_unknown_run_is_not_found(
    tracking: TrackingService, database: Database
) -> None:
    before = row_counts(database)
    with pytest.raises(NotFound) as caught:
        log(tracking, new_ulid(), params={"a": "1"})
    assert "run_id" in caught.value.details
    assert row_counts(database) == before


# ---------------------------------------------------------------------------- history


def test_history_downsampling_keeps_spikes(tracking: TrackingService) -> None:
    n = 100_000
    values = [math.sin(i / 500) for i in range(n)]
    spikes = {73_457: 1e6, 12_345: -1e6, 70_001: 5e5, 69_999: 9e9, 80_000: -7e7}
    for step, value in spikes.items():
        values[step] = value
    values[500] = math.nan
    run_id = started(tracking, metrics={"loss": series(range(n), values)})

    history = tracking.metric_history(run_id, "loss", max_points=100)
    assert history.downsampled
    assert history.total_count == n
    assert len(history.points) <= 100
    steps = [p.step for p in history.points]
    assert steps == sorted(steps)
    got = {p.step: p.value for p in history.points}
    for step in (12_345, 69_999, 73_457, 80_000):  # each the extreme of its neighbourhood
        assert got.get(step) == spikes[step], step
    assert all(values[p.step] == p.value for p in history.points)

    # A step range reads only points in range and keeps the spikes inside it.
    ranged = tracking.metric_history(
        run_id, "loss", max_points=50, min_step=70_000, max_step=80_000
    )
    assert ranged.downsampled
    assert ranged.total_count == 10_001
    assert len(ranged.points) <= 50
    assert all(70_000 <= p.step <= 80_000 for p in ranged.points)
    got = {p.step: p.value for p in ranged.points}
    assert got[73_457] == 1e6
    assert got[70_001] == 5e5
    assert got[80_000] == -7e7
    assert 69_999 not in got

    tail = tracking.metric_history(run_id, "loss", min_step=n - 10)
    assert [p.step for p in tail.points] == list(range(n - 10, n))
    assert (tail.total_count, tail.downsampled) == (10, False)

    small = tracking.metric_history(run_id, "loss", max_points=100, min_step=10, max_step=19)
    assert [p.step for p in small.points] == list(range(10, 20))
    assert not small.downsampled

    whole = tracking.metric_history(run_id, "loss")
    assert len(whole.points) == n
    assert not whole.downsampled


def test_history_small_series_is_not_downsampled(tracking: TrackingService) -> None:
    run_id = started(tracking, metrics={"loss": series(range(10), [float(i) for i in range(10)])})
    history = tracking.metric_history(run_id, "loss", max_points=10)
    assert [p.value for p in history.points] == [float(i) for i in range(10)]
    assert not history.downsampled
    history = tracking.metric_history(run_id, "loss", max_points=4)
    assert len(history.points) <= 4
    assert {p.value for p in history.points} >= {0.0, 9.0}


def test_history_max_points_out_of_range(tracking: TrackingService) -> None:
    run_id = started(tracking, metrics={"loss": series([0], [1.0])})
    for max_points in (-1, 0, 1, 1_000_001):
        with pytest.raises(Invalid) as caught:
            tracking.metric_history(run_id, "loss", max_points=max_points)
        assert caught.value.field == "max_points"


def test_history_of_unknown_run_or_key_is_not_found(tracking: TrackingService) -> None:
    run_id = started(tracking, metrics={"loss": series([0], [1.0])})
    with pytest.raises(NotFound) as caught:
        tracking.metric_history(run_id, "acc")
    assert caught.value.details == {"run_id": run_id, "key": "acc"}
    other = started(tracking)  # the key exists, but not in this run
    with pytest.raises(NotFound):
        tracking.metric_history(other, "loss")
    with pytest.raises(NotFound):
        tracking.metric_history(new_ulid(), "loss")


# ---------------------------------------------------------------------------- lifecycle


def test_end_run(tracking: TrackingService, database: Database) -> None:
    end_time = T0 + timedelta(minutes=5)
    for status, error in [
        (RunStatus.FINISHED, None),
        (RunStatus.FAILED, "ValueError: boom"),
        (RunStatus.KILLED, None),
    ]:
        run_id = started(tracking)
        run = tracking.end_run(run_id, status, error, actor="bo", end_time=end_time)
        assert (run.status, run.error, run.end_time) == (status, error, end_time)
        assert run.duration_s == 300.0
        ended = run_events(database, run_id)[-1]
        assert (ended.action, ended.actor) == ("run.ended", "bo")
        assert ended.before == {"status": "running"}
        assert ended.after is not None
        assert (ended.after["status"], ended.after["error"]) == (status.value, error)


def test_end_run_rejects_running_and_unknown(tracking: TrackingService) -> None:
    run_id = started(tracking)
    with pytest.raises(Invalid) as caught:
        tracking.end_run(run_id, RunStatus.RUNNING)
    assert caught.value.field == "status"
    with pytest.raises(NotFound):
        tracking.end_run(new_ulid())


def test_run_started_and_ended_in_one_batch(tracking: TrackingService) -> None:
    start = new_start()
    log(tracking, start.id, start=start, end=RunEnd(RunStatus.FAILED, T0, "oom"))
    run = tracking.get_run(start.id)
    assert (run.status, run.end_time, run.error) == (RunStatus.FAILED, T0, "oom")


def test_update_run(tracking: TrackingService, database: Database) -> None:
    run_id = started(tracking)
    run = tracking.update_run(run_id, name="renamed", experiment="exp-2", actor="cy")
    assert (run.name, run.experiment, run.notes) == ("renamed", "exp-2", None)
    run = tracking.update_run(run_id, notes="why this run")
    assert (run.name, run.notes) == ("renamed", "why this run")
    updates = [e for e in run_events(database, run_id) if e.action == "run.updated"]
    assert [(e.actor, e.after) for e in updates] == [
        ("cy", {"name": "renamed", "experiment": "exp-2"}),
        (None, {"notes": "why this run"}),
    ]


def test_update_run_rejects_bad_input(tracking: TrackingService, database: Database) -> None:
    run_id = started(tracking)
    before = row_counts(database)
    with pytest.raises(Invalid) as caught:
        tracking.update_run(run_id)
    assert caught.value.field == "body"
    with pytest.raises(Invalid) as caught:
        tracking.update_run(run_id, name="x" * 251)
    assert caught.value.field == "name"
    with pytest.raises(NotFound):
        tracking.update_run(new_ulid(), name="x")
    assert row_counts(database) == before


def test_set_and_delete_tags(tracking: TrackingService, database: Database) -> None:
    run_id = started(tracking)
    tracking.set_tag(run_id, "stage", "dev", actor="di")
    tracking.set_tag(run_id, "stage", "prod")
    tracking.set_tag(run_id, "owner", "di")
    assert tracking.get_run(run_id).tags == {"stage": "prod", "owner": "di"}
    tracking.delete_tag(run_id, "stage", actor="di")
    assert tracking.get_run(run_id).tags == {"owner": "di"}
    deleted = run_events(database, run_id)[-1]
    assert (deleted.action, deleted.actor, deleted.before) == (
        "run.tag_deleted",
        "di",
        {"key": "stage"},
    )

    before = row_counts(database)
    with pytest.raises(NotFound):
        tracking.delete_tag(run_id, "stage")
    with pytest.raises(Invalid) as caught:
        tracking.set_tag(run_id, "bad key ", "v")
    assert caught.value.field == "key"
    with pytest.raises(Invalid) as caught:
        tracking.set_tag(run_id, "k", "v" * 8001)
    assert caught.value.field == "value"
    with pytest.raises(NotFound):
        tracking.set_tag(new_ulid(), "k", "v")
    with pytest.raises(NotFound):
        tracking.delete_tag(new_ulid(), "k")
    assert row_counts(database) == before


def test_every_mutation_writes_an_audit_event(
    tracking: TrackingService, database: Database
) -> None:
    start = new_start("audited")
    log(tracking, start.id, start=start, actor="ana")
    log(
        tracking,
        start.id,
        params={"lr": "0.1"},
        metrics={"loss": series([0, 1], [1.0, 0.5])},
        actor="ana",
    )
    tracking.set_tag(start.id, "stage", "dev", actor="bo")
    tracking.delete_tag(start.id, "stage", actor="bo")
    tracking.update_run(start.id, name="better", actor="cy")
    tracking.end_run(start.id, actor="cy")
    events = run_events(database, start.id)
    assert [(e.action, e.actor) for e in events] == [
        ("run.created", "ana"),
        ("run.logged", "ana"),
        ("run.logged", "bo"),
        ("run.tag_deleted", "bo"),
        ("run.updated", "cy"),
        ("run.ended", "cy"),
    ]
    assert events[1].after is not None and events[2].after is not None
    assert (events[1].after["params"], events[1].after["metrics"]) == ({"lr": "0.1"}, {"loss": 2})
    assert events[2].after["tags"] == {"stage": "dev"}
    assert all(e.entity_type == "run" and e.entity_id == start.id for e in events)
    with database.read() as conn:
        project_events = EventRepository(conn).for_entity("project", "audited")
    assert [(e.action, e.actor) for e in project_events] == [("project.created", "ana")]


# ---------------------------------------------------------------------------- search


def test_search_filter_order_and_cursor_paging(tracking: TrackingService) -> None:
    items, acc = [], {}
    for i in range(23):
        start = new_start("search", name=f"r{i}")
        metrics = {} if i % 5 == 0 else {"acc": series([0], [i / 23])}
        if i % 5:
            acc[start.id] = i / 23
        items.append(RunBatch(start.id, start=start, params={"lr": str(i % 3)}, metrics=metrics))
    elsewhere = new_start("other")
    items.append(RunBatch(elsewhere.id, start=elsewhere, metrics={"acc": series([0], [0.99])}))
    tracking.log_batch(Batch(new_ulid(), items))

    def all_pages(
        project: str | None, filter: str | None, order: list[str], limit: int
    ) -> list[str]:
        seen: list[str] = []
        cursor = None
        for _ in range(100):
            page = tracking.search_runs(project, filter, order, limit=limit, cursor=cursor)
            assert len(page.runs) <= limit
            seen.extend(r.id for r in page.runs)
            cursor = page.next_cursor
            if cursor is None:
                return seen
        raise AssertionError("paging never ended")

    expected = sorted((i for i, a in acc.items() if a > 0.2), key=acc.__getitem__, reverse=True)
    got = all_pages("search", "metrics.acc > 0.2", ["metrics.acc desc"], 4)
    assert got == expected

    # The order can sit in the filter too, and without a project the search spans all.
    got = all_pages(None, "metrics.acc > 0.2 order by metrics.acc desc", [], 5)
    assert got == [elsewhere.id, *expected]

    lr_one = all_pages("search", "params.lr = '1'", ["attributes.name asc"], 2)
    assert [tracking.get_run(i).name for i in lr_one] == sorted(
        f"r{i}" for i in range(23) if i % 3 == 1
    )

    # Runs without the metric sort last, each run comes exactly once.
    everything = all_pages("search", None, ["metrics.acc asc"], 3)
    assert len(everything) == len(set(everything)) == 23
    assert everything[: len(acc)] == sorted(acc, key=acc.__getitem__)

    page = tracking.search_runs("search", "metrics.acc > 0.2", ["metrics.acc desc"], limit=2)
    assert [r.metrics["acc"].last for r in page.runs] == [acc[i] for i in expected[:2]]
    assert page.runs[0].params["lr"] in {"0", "1", "2"}


def test_search_rejects_bad_input(tracking: TrackingService) -> None:
    started(tracking, "search")
    with pytest.raises(Invalid) as caught:
        tracking.search_runs("search", "metrics.acc >")
    assert caught.value.field == "filter"
    assert caught.value.details["column"] == 14
    with pytest.raises(Invalid) as caught:
        tracking.search_runs("search", cursor="not-a-cursor")
    assert caught.value.field == "cursor"
    for limit in (0, 10_001):
        with pytest.raises(Invalid) as caught:
            tracking.search_runs("search", limit=limit)
        assert caught.value.field == "limit"


# ---------------------------------------------------------------------------- not found


def test_unknown_run_is_not_found_everywhere(tracking: TrackingService) -> None:
    missing = new_ulid()
    calls = [
        lambda: tracking.get_run(missing),
        lambda: tracking.get_git_diff(missing),
        lambda: tracking.child_runs(missing),
        lambda: tracking.metric_history(missing, "loss"),
        lambda: tracking.end_run(missing),
        lambda: tracking.update_run(missing, name="x"),
        lambda: tracking.set_tag(missing, "k", "v"),
        lambda: tracking.delete_tag(missing, "k"),
        lambda: log(tracking, missing, metrics={"loss": series([0], [1.0])}),
    ]
    for call in calls:
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.details.get("run_id") == missing


def test_a_parent_may_arrive_after_its_child(tracking: TrackingService) -> None:
    """Ids are made where runs start, and a child's batch can overtake its parent's
    (another process, an offline spool): the link is kept and resolves once both exist."""
    from datetime import UTC, datetime

    from cairn.domain.ids import new_ulid
    from cairn.domain.records import Batch, RunBatch, RunStart

    parent, child = new_ulid(), new_ulid()
    now = datetime.now(tz=UTC)
    tracking.log_batch(
        Batch(new_ulid(), [RunBatch(child, start=RunStart(child, "p", now, parent_id=parent))])
    )
    tracking.log_batch(Batch(new_ulid(), [RunBatch(parent, start=RunStart(parent, "p", now))]))
    assert tracking.get_run(child).parent_id == parent
    assert tracking.child_runs(parent) == [child]


def test_runs_without_news_are_reaped_as_killed(
    tracking: TrackingService, database: Database
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from cairn.domain.ids import new_ulid
    from cairn.domain.records import Batch, RunBatch, RunEnd, RunStart, RunStatus
    from cairn.store.tables import RunRow

    stale, fresh, done = new_ulid(), new_ulid(), new_ulid()
    now = datetime.now(tz=UTC)
    tracking.log_batch(Batch(new_ulid(), [
        RunBatch(stale, start=RunStart(stale, "p", now)),
        RunBatch(fresh, start=RunStart(fresh, "p", now)),
        RunBatch(done, start=RunStart(done, "p", now), end=RunEnd(RunStatus.FINISHED, now)),
    ]))  # fmt: skip
    last_news = 1_700_000_000_000
    with database.write() as tx:
        tx.conn.execute(
            update(RunRow).where(RunRow.id.in_([stale, done])).values(updated_at=last_news)
        )
    assert tracking.reap_stale_runs(60) == [stale]
    killed = tracking.get_run(stale)
    assert killed.status is RunStatus.KILLED and "no heartbeat" in (killed.error or "")
    assert killed.end_time is not None and int(killed.end_time.timestamp() * 1000) == last_news
    assert tracking.get_run(fresh).status is RunStatus.RUNNING
    assert tracking.get_run(done).status is RunStatus.FINISHED
    assert tracking.reap_stale_runs(60) == []  # idempotent
    with database.read() as conn:
        events = EventRepository(conn).for_entity("run", stale)
    assert events[-1].action == "run.ended" and events[-1].actor == "cairn"
    # a heartbeat (an empty entry) is news, and leaves no audit event
    tracking.log_batch(Batch(new_ulid(), [RunBatch(fresh)]))
    with database.read() as conn:
        assert len(EventRepository(conn).for_entity("run", fresh)) == 1
