"""Runs with their params and tags: bulk writes for batches, whole records for reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import ClauseElement

from cairn.domain.errors import Conflict, NotFound
from cairn.domain.ids import is_ulid
from cairn.domain.records import (
    MetricSummary,
    Run,
    RunEnd,
    RunStart,
    RunStatus,
    datetime_to_ms,
    ms_to_datetime,
    now_ms,
)
from cairn.store.bulk import executemany, fetchall, rows_for
from cairn.store.tables import ParamRow, ProjectRow, RunRow, TagRow, TextRow

_R = cast(Table, RunRow.__table__)
_PA = cast(Table, ParamRow.__table__)
_T = cast(Table, TagRow.__table__)
_X = cast(Table, TextRow.__table__)
_P = cast(Table, ProjectRow.__table__)


_STATUSES = {status.value: status for status in RunStatus}  # RunStatus(x) costs µs
_RUN_COLUMNS = tuple(
    _R.c[name]
    for name in (
        "pk", "id", "project_id", "name", "experiment", "parent_id", "status", "start_time",
        "end_time", "author", "notes", "command", "error", "git", "environment_digest",
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunKey:
    """What a write needs to know of an existing run."""

    pk: int
    id: str
    project_id: int
    status: str


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class RunRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert

    # -- writes ---------------------------------------------------------------------

    def keys(self, run_ids: Iterable[str]) -> dict[str, RunKey]:
        found: dict[str, RunKey] = {}
        ids = [i for i in set(run_ids) if is_ulid(i)]  # anything else names no run
        for chunk in _chunks(ids):
            stmt = select(_R.c.pk, _R.c.id, _R.c.project_id, _R.c.status).where(_R.c.id.in_(chunk))
            for row in self.conn.execute(stmt):
                found[row.id] = RunKey(row.pk, row.id, row.project_id, row.status)
        return found

    def projects_of(self, run_ids: Iterable[str]) -> dict[str, str]:
        """Run id -> the name of its project, for the runs that exist."""
        found: dict[str, str] = {}
        ids = [i for i in set(run_ids) if is_ulid(i)]
        for chunk in _chunks(ids):
            stmt = (
                select(_R.c.id, _P.c.name)
                .join(_P, _P.c.id == _R.c.project_id)
                .where(_R.c.id.in_(chunk))
            )
            found.update({row.id: row.name for row in self.conn.execute(stmt)})
        return found

    def store_text(self, body: str) -> str:
        digest = hashlib.sha256(body.encode()).hexdigest()
        self.conn.execute(
            self._insert(_X).values(digest=digest, body=body).on_conflict_do_nothing()
        )
        return digest

    def insert(self, starts: list[tuple[RunStart, int, RunEnd | None]]) -> dict[str, int]:
        """Insert new runs (start, project id, end when it ended in the same batch)."""
        rows = []
        now = now_ms()
        texts: dict[int, str] = {}  # id(environment) -> digest: runs of a process share one
        for start, project_id, end in starts:
            env_digest = diff_digest = None
            if start.environment is not None:
                key = id(start.environment)
                if key not in texts:
                    texts[key] = self.store_text(json.dumps(start.environment, sort_keys=True))
                env_digest = texts[key]
            if start.git_diff:  # runs started together share one diff: store it once
                key = id(start.git_diff)
                if key not in texts:
                    texts[key] = self.store_text(start.git_diff)
                diff_digest = texts[key]
            rows.append(
                {
                    "id": start.id,
                    "project_id": project_id,
                    "name": start.name,
                    "experiment": start.experiment,
                    "parent_id": start.parent_id,
                    "status": (end.status if end else RunStatus.RUNNING).value,
                    "start_time": datetime_to_ms(start.start_time),
                    "end_time": datetime_to_ms(end.end_time) if end else None,
                    "error": end.error if end else None,
                    "author": start.author,
                    "notes": start.notes,
                    "command": start.command,
                    "git": json.dumps(start.git, sort_keys=True) if start.git else None,
                    "git_diff_digest": diff_digest,
                    "environment_digest": env_digest,
                    "updated_at": now,
                }
            )
        if not rows:
            return {}
        executemany(self.conn, _R.insert, rows, name="runs.insert")
        return {key.id: key.pk for key in self.keys(str(r["id"]) for r in rows).values()}

    def end(self, ends: list[tuple[int, RunEnd]]) -> None:
        if not ends:
            return
        stmt = (
            _R.update()
            .where(_R.c.pk == bindparam("b_pk"))
            .values(
                status=bindparam("b_status"),
                end_time=bindparam("b_end"),
                error=bindparam("b_error"),
                updated_at=bindparam("b_now"),
            )
        )
        now = now_ms()
        self.conn.execute(
            stmt,
            [
                {
                    "b_pk": pk,
                    "b_status": end.status.value,
                    "b_end": datetime_to_ms(end.end_time),
                    "b_error": end.error,
                    "b_now": now,
                }
                for pk, end in ends
            ],
        )

    def touch(self, pks: Iterable[int]) -> None:
        pks = list(pks)
        for chunk in _chunks(pks):
            self.conn.execute(_R.update().where(_R.c.pk.in_(chunk)).values(updated_at=now_ms()))

    def kill_stale(self, cutoff_ms: int, error: str) -> list[tuple[str, int]]:
        """End ``killed`` the running runs last updated before ``cutoff_ms``."""
        stale = (_R.c.status == RunStatus.RUNNING.value) & (_R.c.updated_at < cutoff_ms)
        found = list(self.conn.execute(select(_R.c.id, _R.c.project_id).where(stale)))
        if found:
            self.conn.execute(
                _R.update()
                .where(stale & _R.c.id.in_([row.id for row in found]))
                .values(status=RunStatus.KILLED.value, end_time=_R.c.updated_at, error=error)
            )
        return [(row.id, row.project_id) for row in found]

    def update_fields(self, pk: int, **values: Any) -> None:
        self.conn.execute(_R.update().where(_R.c.pk == pk).values(updated_at=now_ms(), **values))

    def append_notes(self, pk: int, text: str) -> None:
        current = self.conn.execute(select(_R.c.notes).where(_R.c.pk == pk)).scalar()
        notes = f"{current}\n\n{text}" if current else text
        self.update_fields(pk, notes=notes)

    def add_params(self, params: list[tuple[int, str, str, str]], existing_runs: set[int]) -> None:
        """Insert (run pk, run id, key, value); a key logged again with another value conflicts."""
        if not params:
            return
        new_rows = params
        if existing_runs:
            wanted = [(pk, key) for pk, _, key, _ in params if pk in existing_runs]
            have: dict[tuple[int, str], str] = {}
            for chunk in _chunks(wanted):
                stmt = select(_PA.c.run_pk, _PA.c.key, _PA.c.value).where(
                    tuple_(_PA.c.run_pk, _PA.c.key).in_(chunk)
                )
                have.update({(r.run_pk, r.key): r.value for r in self.conn.execute(stmt)})
            for pk, run_id, key, value in params:
                old = have.get((pk, key))
                if old is not None and old != value:
                    raise Conflict(
                        f"param {key!r} of run {run_id} is already {old!r}; params are "
                        f"immutable, so it cannot become {value!r}",
                        details={
                            "field": f"params.{key}",
                            "run_id": run_id,
                            "old": old,
                            "new": value,
                        },
                    )
            new_rows = [p for p in params if (p[0], p[2]) not in have]
        executemany(
            self.conn,
            _PA.insert,
            [(pk, k, v) for pk, _, k, v in new_rows],
            ("run_pk", "key", "value"),
            name="params.insert",
        )

    def set_tags(self, tags: list[tuple[int, str, str]]) -> None:
        if not tags:
            return
        executemany(self.conn, self._tag_upsert, tags, ("run_pk", "key", "value"), name="tags.set")

    def _tag_upsert(self) -> ClauseElement:
        stmt = self._insert(_T)
        return stmt.on_conflict_do_update(
            index_elements=["run_pk", "key"], set_={"value": stmt.excluded.value}
        )

    def delete_tag(self, pk: int, key: str) -> bool:
        result = self.conn.execute(_T.delete().where(_T.c.run_pk == pk, _T.c.key == key))
        return bool(result.rowcount)

    # -- reads ----------------------------------------------------------------------

    def key(self, run_id: str) -> RunKey:
        found = self.keys([run_id]).get(run_id)
        if found is None:
            raise NotFound(f"run {run_id!r} does not exist", details={"run_id": run_id})
        return found

    def load(
        self,
        pks: Sequence[int],
        summaries: dict[int, dict[str, MetricSummary]],
        *,
        with_environment: bool = False,
    ) -> list[Run]:
        """Whole runs in the order of ``pks``."""
        if not pks:
            return []
        params: dict[int, dict[str, str]] = {pk: {} for pk in pks}
        tags: dict[int, dict[str, str]] = {pk: {} for pk in pks}
        projects = dict(fetchall(self.conn, select(_P.c.id, _P.c.name)))
        rows = {row[0]: row for row in rows_for(self.conn, _RUN_COLUMNS, _R.c.pk, pks)}
        param_columns = (_PA.c.run_pk, _PA.c.key, _PA.c.value)
        for pk, key, value in rows_for(self.conn, param_columns, _PA.c.run_pk, pks):
            params[pk][key] = value
        tag_columns = (_T.c.run_pk, _T.c.key, _T.c.value)
        for pk, key, value in rows_for(self.conn, tag_columns, _T.c.run_pk, pks):
            tags[pk][key] = value
        environments: dict[str, Any] = {}
        if with_environment:
            digests = {row[-1] for row in rows.values() if row[-1]}
            if digests:
                stmt = select(_X.c.digest, _X.c.body).where(_X.c.digest.in_(digests))
                environments = {str(r[0]): json.loads(r[1]) for r in self.conn.execute(stmt)}
        runs = []
        gits: dict[str, Any] = {}  # runs of one process share a git reading: parse it once
        for pk in pks:
            row = rows.get(pk)
            if row is None:
                continue
            (_, run_id, project_id, name, experiment, parent_id, status, start, end, author,
             notes, command, error, git, env_digest) = row  # fmt: skip
            runs.append(
                Run(
                    id=run_id,
                    project=projects[project_id],
                    name=name,
                    experiment=experiment,
                    parent_id=parent_id,
                    status=_STATUSES[status],
                    start_time=ms_to_datetime(start),  # type: ignore[arg-type]
                    end_time=ms_to_datetime(end),
                    author=author,
                    notes=notes,
                    command=command,
                    error=error,
                    git=(gits.get(git) or gits.setdefault(git, json.loads(git))) if git else None,
                    environment=environments.get(env_digest) if env_digest else None,
                    params=params[pk],
                    tags=tags[pk],
                    metrics=summaries.get(pk, {}),
                )
            )
        return runs

    def git_diff(self, run_id: str) -> str | None:
        stmt = (
            select(_X.c.body).join(_R, _R.c.git_diff_digest == _X.c.digest).where(_R.c.id == run_id)
        )
        return self.conn.execute(stmt).scalar()

    def children(self, run_id: str) -> list[str]:
        stmt = select(_R.c.id).where(_R.c.parent_id == run_id).order_by(_R.c.id)
        return list(self.conn.execute(stmt).scalars())
