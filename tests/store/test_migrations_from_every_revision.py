"""A store made at every earlier revision, with rows in every table it has, upgrades to
head without losing a row or a value, and the app then works on what it finds.

The rows are made from the schema as it is at that revision (reflected), so a table or
column added later is filled in the stores made after it. Each row gets a value in every
column, nullable or not; the few columns the app reads with rules of their own (run ids,
statuses, digests, JSON) get values that follow those rules. After the upgrade every row
is fetched by its primary key and each column it had must hold what was written: a
SQLite batch rebuild that cascade-deletes child rows, or drops a value, fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    insert,
    select,
)

from cairn.blobs import LocalBlobStore
from cairn.services.artifacts import ArtifactService
from cairn.services.blobs import BlobService
from cairn.services.data import DataService
from cairn.services.registry import RegistryService
from cairn.services.tracking import TrackingService
from cairn.store.database import Database
from cairn.store.engine import make_engine, resolve_store
from cairn.store.schema import alembic_config, current_revision, head_revision

ROWS_PER_TABLE = 3
RUN_IDS = ["01JAAAAAAAAAAAAAAAAAAAAAA0", "01JAAAAAAAAAAAAAAAAAAAAAA1", "01JAAAAAAAAAAAAAAAAAAAAAA2"]
PROJECT = "legacy"


def earlier_revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = [rev.revision for rev in script.walk_revisions()]  # newest first
    return [rev for rev in reversed(revisions) if rev != head_revision()]


def _json(i: int) -> str:
    return f'{{"k": {i}}}'


# Columns with rules of their own: what the app parses must parse.
SPECIAL: dict[tuple[str, str], Any] = {
    ("projects", "name"): lambda i: PROJECT if i == 0 else f"{PROJECT}_{i}",
    ("runs", "id"): lambda i: RUN_IDS[i],
    ("texts", "body"): _json,
    ("runs", "parent_id"): lambda i: None if i == 0 else RUN_IDS[0],
    ("runs", "status"): lambda i: ["finished", "failed", "killed"][i],
    ("runs", "git"): lambda i: f'{{"branch": "main", "commit": "{i:040x}", "dirty": false}}',
    ("dataset_versions", "kind"): lambda i: "files",
    ("dataset_versions", "profile"): lambda i: None,
    ("dataset_versions", "parent_version"): lambda i: None if i == 0 else i,
    ("model_versions", "semver"): lambda i: f"1.{i}.0",
    ("model_versions", "approval"): lambda i: "pending",
    ("model_versions", "flavor"): lambda i: "sklearn",
    ("model_versions", "signature"): lambda i: None,
    ("model_versions", "training_data"): lambda i: "[]",
    ("model_versions", "tags"): lambda i: _json(i),
    ("model_versions", "requirements"): lambda i: "[]",
    ("model_aliases", "version"): lambda i: 1,
    ("alias_moves", "from_version"): lambda i: None,
    ("alias_moves", "to_version"): lambda i: 1,
    ("endpoints", "settings"): lambda i: "{}",
    ("endpoint_variants", "target"): lambda i: "m0:1",
    ("predictions", "inputs"): _json,
    ("predictions", "outputs"): _json,
    ("feedback", "actual"): _json,
    ("events", "before"): _json,
    ("events", "after"): _json,
    ("webhooks", "actions"): lambda i: '["run.created"]',
    ("webhook_deliveries", "status"): lambda i: "pending",
}


def _value(table: Table, name: str, i: int, made: dict[str, list[dict[str, Any]]]) -> Any:
    column = table.c[name]
    for fk in column.foreign_keys:
        target = fk.column
        return made[target.table.name][i % len(made[target.table.name])][target.name]
    if (table.name, name) in SPECIAL:
        return SPECIAL[(table.name, name)](i)
    if "digest" in name or name == "etag":
        return f"{hash((table.name, name, i)) & (2**64 - 1):064x}"[-64:]
    kind = column.type
    if isinstance(kind, Boolean):
        return i % 2 == 0
    if isinstance(kind, Integer):
        if name in {"version", "level"}:
            return i + 1
        if isinstance(kind, BigInteger):  # times in ms and sizes: past 32 bits
            return 1_700_000_000_000 + 1000 * i + len(name)
        return 1000 * i + len(name)
    if isinstance(kind, Float):
        return 0.25 + i
    if isinstance(kind, String):
        text = f"{table.name[:10]}_{name[:10]}_{i}"
        return text[: kind.length] if kind.length else text
    raise AssertionError(f"no value for {table.name}.{name} of type {kind!r}")


def fill(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """ROWS_PER_TABLE rows in every table of the schema as it is; what was written."""
    meta = MetaData()
    meta.reflect(conn)
    made: dict[str, list[dict[str, Any]]] = {}
    for table in meta.sorted_tables:
        if table.name == "alembic_version":
            continue
        rows = [
            {name: _value(table, name, i, made) for name in table.c.keys()}  # noqa: SIM118
            for i in range(ROWS_PER_TABLE)
        ]
        conn.execute(insert(table), rows)
        made[table.name] = rows
    return made


def missing_after_upgrade(conn: Connection, made: dict[str, list[dict[str, Any]]]) -> list[str]:
    meta = MetaData()
    meta.reflect(conn)
    problems = []
    for name, rows in made.items():
        if name not in meta.tables:
            problems.append(f"table {name} is gone")
            continue
        table = meta.tables[name]
        key = list(table.primary_key.columns)
        for row in rows:
            found = (
                conn.execute(select(table).where(and_(*(c == row[c.name] for c in key))))
                .mappings()
                .first()
            )
            if found is None:
                problems.append(f"{name} row {[row[c.name] for c in key]} is gone")
                continue
            for column, value in row.items():
                if column in found and found[column] != value:
                    problems.append(f"{name}.{column}: wrote {value!r}, found {found[column]!r}")
    return problems


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "store")
        return
    yield request.getfixturevalue("pg_fresh")


@pytest.mark.parametrize("revision", earlier_revisions())
def test_every_row_survives_the_upgrade_to_head(store: str, revision: str, tmp_path: Path) -> None:
    engine = make_engine(resolve_store(store).database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
        with engine.begin() as conn:
            assert current_revision(conn) == revision
            made = fill(conn)
    finally:
        engine.dispose()
    counted = sum(len(rows) for rows in made.values())
    print(f"\nrevision {revision}: {len(made)} tables, {counted} rows written")

    db = Database(store, auto_upgrade=True)
    try:
        with db.read() as conn:
            assert current_revision(conn) == head_revision()
            assert missing_after_upgrade(conn, made) == []
        tracking = TrackingService(db)
        run = tracking.get_run(RUN_IDS[1])
        # row i of a child table belongs to row i of its parent: run 1 is in project 1
        assert (run.project, run.status.value, run.parent_id) == (
            f"{PROJECT}_1",
            "failed",
            RUN_IDS[0],
        )
        param = made["params"][1]
        assert run.params == {param["key"]: param["value"]}
        blobs = BlobService(db, LocalBlobStore(tmp_path / "blobs"))
        if "artifacts" in made:
            assert len(ArtifactService(db, blobs.store).list_artifacts(RUN_IDS[0])) == 1
        if "datasets" in made:
            names = [d.name for d in DataService(db, blobs).list_datasets(PROJECT)]
            assert names == [made["datasets"][0]["name"]]
        if "registered_models" in made:
            models = RegistryService(db, blobs).list_models(PROJECT)
            assert [m.name for m in models] == [made["registered_models"][0]["name"]]
    finally:
        db.close()


def test_the_check_catches_a_batch_rebuild_that_cascades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guard for the guard: 0004 rewritten the way it must not be (a SQLite batch that
    recreates dataset_versions) loses dataset_files rows, and the check above says so."""
    import shutil

    from cairn.store import schema

    tree = tmp_path / "migrations"
    shutil.copytree(schema._MIGRATIONS, tree, ignore=shutil.ignore_patterns("__pycache__"))
    script = tree / "versions" / "0004_model_registry.py"
    text = script.read_text()
    safe = 'if op.get_bind().dialect.name == "sqlite":\n        op.execute(\n'
    assert safe in text
    text = text.replace(
        safe,
        'if op.get_bind().dialect.name == "sqlite":\n'
        '        with op.batch_alter_table("dataset_versions", recreate="always") as b:\n'
        '            b.add_column(sa.Column("run_pk", sa.BigInteger(), nullable=True))\n'
        "    elif False:\n"
        "        op.execute(\n",
        1,
    )
    script.write_text(text)
    monkeypatch.setattr(schema, "_MIGRATIONS", tree)
    store = str(tmp_path / "store")
    engine = make_engine(resolve_store(store).database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0003")
        with engine.begin() as conn:
            made = fill(conn)
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0004")
        with engine.connect() as conn:
            problems = missing_after_upgrade(conn, made)
    finally:
        engine.dispose()
    assert any(p.startswith("dataset_files row") for p in problems), problems
