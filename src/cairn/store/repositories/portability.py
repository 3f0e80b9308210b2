"""Rows of one project, table by table, for export; and their insertion into another store.

A project's rows are named by the tables' surrogate keys (``projects.id``, ``runs.pk``…),
which differ from store to store. ``PLAN`` says, for each table, which column is its own
surrogate key and which columns point at another table's; export writes rows as they
are, and import inserts them in plan order, mapping each old surrogate to the new one.
Natural identities (run ids, version numbers, aliases, digests) are copied unchanged.
Metric keys are global, so a point carries its key's name, not its id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Select, Table, insert, select

from cairn.store.repositories.prediction_rollups import ROLLUP_COLUMNS, RollupRepository
from cairn.store.repositories.production import ProductionRepository
from cairn.store.tables import Base


@dataclass(frozen=True)
class TablePlan:
    name: str
    owner: str | None  # the column that ties a row to the project (through ``refs``)
    surrogate: str | None = None  # this table's own generated key
    refs: Mapping[str, str] = field(default_factory=dict)  # column -> table it points at
    metric_key: bool = False  # carries ``key_id``: exported as the key's name


PLAN: tuple[TablePlan, ...] = (
    TablePlan("projects", None, "id"),
    TablePlan("runs", "project_id", "pk", {"project_id": "projects"}),
    TablePlan("params", "run_pk", refs={"run_pk": "runs"}),
    TablePlan("tags", "run_pk", refs={"run_pk": "runs"}),
    TablePlan("artifacts", "run_pk", refs={"run_pk": "runs"}),
    TablePlan("metric_summaries", "run_pk", refs={"run_pk": "runs"}, metric_key=True),
    TablePlan("metric_rollups", "run_pk", refs={"run_pk": "runs"}, metric_key=True),
    TablePlan("metric_points", "run_pk", refs={"run_pk": "runs"}, metric_key=True),
    TablePlan("datasets", "project_id", "id", {"project_id": "projects"}),
    TablePlan("dataset_versions", "dataset_id", "pk", {"dataset_id": "datasets", "run_pk": "runs"}),
    TablePlan("dataset_files", "version_pk", refs={"version_pk": "dataset_versions"}),
    TablePlan("run_inputs", "run_pk", refs={"run_pk": "runs", "version_pk": "dataset_versions"}),
    TablePlan("registered_models", "project_id", "id", {"project_id": "projects"}),
    TablePlan(
        "model_versions", "model_id", "pk", {"model_id": "registered_models", "run_pk": "runs"}
    ),
    TablePlan("model_files", "version_pk", refs={"version_pk": "model_versions"}),
    TablePlan("model_aliases", "model_id", refs={"model_id": "registered_models"}),
    TablePlan("protected_aliases", "model_id", refs={"model_id": "registered_models"}),
    TablePlan("alias_moves", "model_id", "id", {"model_id": "registered_models"}),
    TablePlan(
        "run_model_inputs", "run_pk", refs={"run_pk": "runs", "version_pk": "model_versions"}
    ),
    TablePlan("endpoints", "project_id", "id", {"project_id": "projects"}),
    TablePlan("endpoint_variants", "endpoint_id", refs={"endpoint_id": "endpoints"}),
    TablePlan(
        "predictions",
        "project_id",
        "id",
        {"project_id": "projects", "model_id": "registered_models", "endpoint_id": "endpoints"},
    ),
    TablePlan("feedback", "project_id", refs={"project_id": "projects"}),
    TablePlan("events", "project_id", "id", {"project_id": "projects"}),
)
PLANS = {plan.name: plan for plan in PLAN}
# Tables whose keys other rows point at: import must learn each row's new key. Rows of
# the others (predictions, events, alias moves) are inserted in chunks, keys left out.
REFERENCED = frozenset(target for plan in PLAN for target in plan.refs.values())
# Columns that name a blob in the blob store.
BLOB_COLUMNS = {"artifacts": "digest", "dataset_files": "digest", "model_files": "digest"}
_TEXT_COLUMNS = ("git_diff_digest", "environment_digest")
CHUNK = 2000


def table(name: str) -> Table:
    return Base.metadata.tables[name]


def _keys_of(plan: TablePlan, project_id: int) -> Select[Any]:
    """A select of the surrogate keys of ``plan``'s rows that belong to the project."""
    t = table(plan.name)
    assert plan.surrogate is not None
    return select(t.c[plan.surrogate]).where(_belongs(plan, project_id))


def _belongs(plan: TablePlan, project_id: int) -> Any:
    t = table(plan.name)
    if plan.owner is None:
        return t.c.id == project_id
    target = plan.refs[plan.owner]
    if target == "projects":
        return t.c[plan.owner] == project_id
    return t.c[plan.owner].in_(_keys_of(PLANS[target], project_id))


class PortabilityRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def rows(self, plan: TablePlan, project_id: int) -> Iterator[dict[str, Any]]:
        """The project's rows of one table, streamed in primary-key order."""
        t = table(plan.name)
        stmt = select(t).where(_belongs(plan, project_id)).order_by(*t.primary_key.columns)
        names = self._key_names() if plan.metric_key else {}
        result = self.conn.execution_options(stream_results=True, yield_per=CHUNK).execute(stmt)
        for row in result.mappings():
            record = dict(row)
            if plan.metric_key:
                record["key"] = names[record.pop("key_id")]
            yield record

    def texts(self, project_id: int) -> Iterator[dict[str, Any]]:
        """The shared texts (git diffs, environments) the project's runs name."""
        runs, texts = table("runs"), table("texts")
        digests = set()
        for column in _TEXT_COLUMNS:
            stmt = select(runs.c[column]).where(runs.c.project_id == project_id)
            digests |= {row[0] for row in self.conn.execute(stmt) if row[0] is not None}
        for digest in sorted(digests):
            row = self.conn.execute(select(texts).where(texts.c.digest == digest)).mappings()
            yield from (dict(r) for r in row)

    def blob_digests(self, project_id: int) -> Iterator[str]:
        """Every digest the project's artifacts, dataset files and model files name."""
        seen: set[str] = set()
        for name, column in BLOB_COLUMNS.items():
            t = table(name)
            stmt = select(t.c[column]).where(_belongs(PLANS[name], project_id)).distinct()
            for row in self.conn.execute(stmt):
                if row[0] is not None and row[0] not in seen:
                    seen.add(row[0])
                    yield row[0]

    def _key_names(self) -> dict[int, str]:
        keys = table("metric_keys")
        return {row.id: row.name for row in self.conn.execute(select(keys.c.id, keys.c.name))}

    # -- import -------------------------------------------------------------------------

    def put_texts(self, rows: Sequence[dict[str, Any]]) -> None:
        texts = table("texts")
        for row in rows:
            found = self.conn.execute(
                select(texts.c.digest).where(texts.c.digest == row["digest"])
            ).first()
            if found is None:
                self.conn.execute(insert(texts).values(**row))

    def run_exists(self, run_id: str) -> bool:
        runs = table("runs")
        return self.conn.execute(select(runs.c.pk).where(runs.c.id == run_id)).first() is not None

    def metric_key_id(self, name: str) -> int:
        keys = table("metric_keys")
        found = self.conn.execute(select(keys.c.id).where(keys.c.name == name)).scalar()
        if found is not None:
            return int(found)
        stmt = insert(keys).values(name=name).returning(keys.c.id)
        return int(self.conn.execute(stmt).scalar_one())

    def insert_one(self, plan: TablePlan, row: dict[str, Any]) -> int:
        """Insert a row of a table with a surrogate key; its new key."""
        assert plan.surrogate is not None
        t = table(plan.name)
        values = {k: v for k, v in row.items() if k != plan.surrogate}
        stmt = insert(t).values(**values).returning(t.c[plan.surrogate])
        return int(self.conn.execute(stmt).scalar_one())

    def insert_many(self, plan: TablePlan, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows in their order; a surrogate key in them is left to the database.
        Predictions are added to their rollups too (monitoring reads those), and so is
        feedback (imported after the predictions, into a new project: nothing replaced)."""
        if rows:
            drop = plan.surrogate
            values = [{k: v for k, v in row.items() if k != drop} for row in rows]
            self.conn.execute(insert(table(plan.name)), values)
            if plan.name == "predictions":
                sources = (tuple(row[c] for c in ROLLUP_COLUMNS) for row in values)
                RollupRepository(self.conn).add(sources)
            elif plan.name == "feedback":
                by_project: dict[int, list[tuple[str, str]]] = {}
                for r in values:
                    by_project.setdefault(r["project_id"], []).append(
                        (r["request_id"], r["actual"])
                    )
                production = ProductionRepository(self.conn)
                for project_id, items in by_project.items():
                    production.label_predictions(project_id, items, {})
