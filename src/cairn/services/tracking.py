"""Tracking: projects, runs, params, metrics, tags. The rules live here, once.

service = TrackingService(Database("./.cairn"))
service.log_batch(batch, actor="ana")          # one transaction, idempotent
service.search_runs("nlp", "metrics.acc > 0.9", ["metrics.acc desc"])
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cairn.domain.errors import AlreadyExists, Conflict, Invalid, NotFound
from cairn.domain.ids import new_ulid
from cairn.domain.query import parse_order_by, parse_search
from cairn.domain.records import (
    Batch,
    BatchResult,
    MetricHistory,
    Project,
    ProjectSummary,
    Run,
    RunBatch,
    RunEnd,
    RunPage,
    RunStart,
    RunStatus,
    now_ms,
)
from cairn.domain.validation import (
    LIMITS,
    check_key,
    check_project_name,
    check_text,
    step_value,
    tag_value,
)
from cairn.services.batch_rules import check_batch
from cairn.store.bulk import no_gc_pauses
from cairn.store.database import Database, Tx
from cairn.store.repositories.batches import BatchRepository
from cairn.store.repositories.events import EventRepository, NewEvent, project_created_event
from cairn.store.repositories.history import read_history
from cairn.store.repositories.metrics import MetricRepository
from cairn.store.repositories.projects import ProjectRepository
from cairn.store.repositories.runs import RunKey, RunRepository
from cairn.store.search import compile_run_search


class TrackingService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- projects -------------------------------------------------------------------

    def create_project(self, name: str, description: str = "", actor: str | None = None) -> Project:
        check_project_name(name)
        check_text(description, "description", "notes_length")
        with self.db.write() as tx:
            project, created = ProjectRepository(tx.conn).ensure(name, description)
            if not created:
                raise AlreadyExists(f"project {name!r} already exists", details={"project": name})
            EventRepository(tx.conn).add_many(
                actor,
                [project_created_event(name, project.id)],
            )
        return project

    def get_project(self, name: str) -> Project:
        with self.db.read() as conn:
            return ProjectRepository(conn).get(name)

    def list_projects(self) -> list[ProjectSummary]:
        with self.db.read() as conn:
            return ProjectRepository(conn).list_summaries()

    # -- writes ---------------------------------------------------------------------

    def log_batch(self, batch: Batch, actor: str | None = None) -> BatchResult:
        """Apply a batch in one transaction; a resent batch (same key) changes nothing."""
        batch = check_batch(batch)
        points = batch.point_count
        with self.db.write() as tx:
            if not BatchRepository(tx.conn).claim(batch.idempotency_key, len(batch.runs), points):
                return BatchResult(batch.idempotency_key, False, len(batch.runs), points)
            self._apply(tx, batch.runs, actor)
        return BatchResult(batch.idempotency_key, True, len(batch.runs), points)

    def _apply(self, tx: Tx, items: list[RunBatch], actor: str | None) -> None:
        runs = RunRepository(tx.conn)
        events: list[NewEvent] = []
        known = runs.keys(item.run_id for item in items)
        to_create = self._runs_to_create(tx, items, known, events)
        new_pks = runs.insert(to_create)
        created_ids = set(new_pks)
        keys: dict[str, RunKey] = dict(known)
        for start, project_id, end in to_create:
            status = (end.status if end else RunStatus.RUNNING).value
            keys[start.id] = RunKey(new_pks[start.id], start.id, project_id, status)
        existing_pks = {keys[i.run_id].pk for i in items if i.run_id not in created_ids}
        runs.add_params(
            [(keys[i.run_id].pk, i.run_id, k, v) for i in items for k, v in i.params.items()],
            existing_pks,
        )
        runs.set_tags([(keys[i.run_id].pk, k, v) for i in items for k, v in i.tags.items()])
        metrics = MetricRepository(tx.conn, self.db.metric_keys)
        metrics.append(
            tx,
            [(keys[i.run_id].pk, i.metrics) for i in items if i.metrics],
            {new_pks[r] for r in created_ids},
        )
        ends = []
        for item in items:
            key = keys[item.run_id]
            if item.notes:
                runs.append_notes(key.pk, item.notes)
            if item.end is not None and item.run_id not in created_ids:
                ends.append((key.pk, item.end))
            if not item.is_empty():  # an empty entry is a heartbeat: no audit noise
                events.append(_run_event(item, key, item.run_id in created_ids))
        runs.end(ends)
        touched = [keys[i.run_id].pk for i in items if i.run_id not in created_ids]
        runs.touch(touched)
        EventRepository(tx.conn).add_many(actor, events)

    @staticmethod
    def _runs_to_create(
        tx: Tx, items: list[RunBatch], known: dict[str, RunKey], events: list[NewEvent]
    ) -> list[tuple[RunStart, int, RunEnd | None]]:
        """New runs of a batch with their project ids; projects are made on first use."""
        projects = ProjectRepository(tx.conn)
        project_ids: dict[str, int] = {}
        to_create: list[tuple[RunStart, int, RunEnd | None]] = []
        for item in items:
            start = item.start
            if start is None:
                if item.run_id not in known:
                    raise NotFound(
                        f"run {item.run_id!r} does not exist", details={"run_id": item.run_id}
                    )
                continue
            if start.project not in project_ids:
                project, created = projects.ensure(start.project)
                project_ids[start.project] = project.id
                if created:
                    events.append(project_created_event(project.name, project.id))
            project_id = project_ids[start.project]
            existing = known.get(item.run_id)
            if existing is None:
                to_create.append((start, project_id, item.end))
            elif existing.project_id != project_id:
                raise Conflict(
                    f"run {item.run_id} already exists in another project",
                    details={"run_id": item.run_id},
                )
            # else: a resumed run, whose start is already recorded
        return to_create

    def reap_stale_runs(self, timeout_s: float, actor: str | None = "cairn") -> list[str]:
        """Mark ``killed`` the runs still ``running`` with no news for ``timeout_s``.

        Any write to a run, a client heartbeat included, is news. The run's end time is
        its last news. Safe to call from several processes at once.
        """
        cutoff = now_ms() - int(timeout_s * 1000)
        error = f"no heartbeat for {timeout_s:g} s: the process logging it is gone"
        with self.db.write() as tx:
            reaped = RunRepository(tx.conn).kill_stale(cutoff, error)
            EventRepository(tx.conn).add_many(
                actor,
                [
                    NewEvent(
                        "run.ended",
                        "run",
                        run_id,
                        project_id,
                        before={"status": RunStatus.RUNNING.value},
                        after={"status": RunStatus.KILLED.value, "error": error},
                    )
                    for run_id, project_id in reaped
                ],
            )
        return [run_id for run_id, _ in reaped]

    def start_run(self, start: RunStart, actor: str | None = None) -> Run:
        self.log_batch(Batch(f"start-{start.id}", [RunBatch(start.id, start=start)]), actor)
        return self.get_run(start.id)

    def end_run(
        self,
        run_id: str,
        status: RunStatus = RunStatus.FINISHED,
        error: str | None = None,
        actor: str | None = None,
        end_time: datetime | None = None,
    ) -> Run:
        if status is RunStatus.RUNNING:
            raise Invalid("a run ends finished, failed or killed, not running", field="status")
        end = RunEnd(status, end_time or datetime.now(tz=UTC), error)
        self.log_batch(Batch(new_ulid(), [RunBatch(run_id, end=end)]), actor)
        return self.get_run(run_id)

    def update_run(
        self,
        run_id: str,
        *,
        name: str | None = None,
        experiment: str | None = None,
        notes: str | None = None,
        actor: str | None = None,
    ) -> Run:
        """Rename a run, regroup it, or replace its notes."""
        values: dict[str, str] = {}
        if name is not None:
            values["name"] = check_text(name, "name", "name_length")
        if experiment is not None:
            values["experiment"] = check_text(experiment, "experiment", "name_length")
        if notes is not None:
            values["notes"] = check_text(notes, "notes", "notes_length")
        if not values:
            raise Invalid("nothing to update: give name, experiment or notes", field="body")
        with self.db.write() as tx:
            key = RunRepository(tx.conn).key(run_id)
            RunRepository(tx.conn).update_fields(key.pk, **values)
            EventRepository(tx.conn).add_many(
                actor, [NewEvent("run.updated", "run", run_id, key.project_id, after=values)]
            )
        return self.get_run(run_id)

    def set_tag(self, run_id: str, key: str, value: str, actor: str | None = None) -> None:
        check_key(key, "key")
        self.log_batch(
            Batch(new_ulid(), [RunBatch(run_id, tags={key: tag_value(value, "value")})]), actor
        )

    def delete_tag(self, run_id: str, key: str, actor: str | None = None) -> None:
        check_key(key, "key")
        with self.db.write() as tx:
            run = RunRepository(tx.conn).key(run_id)
            if not RunRepository(tx.conn).delete_tag(run.pk, key):
                raise NotFound(f"run {run_id} has no tag {key!r}", details={"key": key})
            EventRepository(tx.conn).add_many(
                actor,
                [NewEvent("run.tag_deleted", "run", run_id, run.project_id, before={"key": key})],
            )

    # -- reads ----------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        with self.db.read() as conn:
            key = RunRepository(conn).key(run_id)
            summaries = MetricRepository(conn, self.db.metric_keys).summaries([key.pk])
            return RunRepository(conn).load([key.pk], summaries, with_environment=True)[0]

    def get_git_diff(self, run_id: str) -> str | None:
        with self.db.read() as conn:
            RunRepository(conn).key(run_id)
            return RunRepository(conn).git_diff(run_id)

    def metric_history(
        self,
        run_id: str,
        key: str,
        *,
        max_points: int | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> MetricHistory:
        if max_points is not None and not 2 <= max_points <= 1_000_000:
            raise Invalid("max_points must be between 2 and 1000000", field="max_points")
        check_key(key, "key")
        if min_step is not None:
            step_value(min_step, "min_step")
        if max_step is not None:
            step_value(max_step, "max_step")
        with self.db.read() as conn:
            run = RunRepository(conn).key(run_id)
            repo = MetricRepository(conn, self.db.metric_keys)
            key_id = repo.key_ids([key]).get(key)
            total = repo.summary_count(run.pk, key_id) if key_id is not None else 0
            if key_id is None or total == 0:
                raise NotFound(
                    f"run {run_id} has no metric {key!r}", details={"run_id": run_id, "key": key}
                )
            points, count, downsampled = read_history(
                repo, run.pk, key_id, total, max_points, min_step, max_step
            )
        return MetricHistory(run_id, key, points, count, downsampled)

    def search_runs(
        self,
        project: str | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        *,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RunPage:
        if not 1 <= limit <= LIMITS["page_size"]:
            raise Invalid(f"limit must be between 1 and {LIMITS['page_size']}", field="limit")
        parse_search(filter or "")  # bad input is reported before a missing project
        if order_by:
            parse_order_by(order_by)
        with self.db.read() as conn:
            project_id = ProjectRepository(conn).get(project).id if project else None
            search = compile_run_search(
                filter, order_by, project_id=project_id, limit=limit, cursor=cursor
            )
            pks, next_cursor = search.page(list(conn.execute(search.statement)))
            with no_gc_pauses():  # a page builds ~10^5 small objects and no cycles
                summaries = MetricRepository(conn, self.db.metric_keys).summaries(pks)
                runs = RunRepository(conn).load(pks, summaries)
        return RunPage(runs, next_cursor)

    def child_runs(self, run_id: str) -> list[str]:
        with self.db.read() as conn:
            RunRepository(conn).key(run_id)
            return RunRepository(conn).children(run_id)


def _run_event(item: RunBatch, key: RunKey, created: bool) -> NewEvent:
    """One audit event per run and batch: what it started, logged and ended."""
    after: dict[str, object] = {}
    if item.start is not None:
        after.update(
            name=item.start.name, experiment=item.start.experiment, parent_id=item.start.parent_id
        )
    if item.params:
        after["params"] = item.params
    if item.tags:
        after["tags"] = item.tags
    if item.metrics:
        after["metrics"] = {k: len(s) for k, s in item.metrics.items()}
    if item.notes:
        after["notes_added"] = len(item.notes)
    if item.end is not None:
        after.update(status=item.end.status.value, error=item.end.error)
    action = "run.created" if created else "run.ended" if item.end else "run.logged"
    before = {"status": key.status} if item.end is not None and not created else None
    return NewEvent(action, "run", item.run_id, key.project_id, before=before, after=after)
