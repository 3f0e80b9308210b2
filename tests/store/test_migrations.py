"""Schema lifecycle on real databases: migrations build exactly the tables the code
declares, an old store is refused with a message that says ``cairn db upgrade``, that
command (a real subprocess) brings it to head, embedded mode upgrades by itself, and
several processes opening one new store at once create its schema once.

A store "at an older revision" is made for real: the migrations tree is copied and given
one more revision, so the store at today's head is one revision behind that tree. The
CLI runs as a subprocess on the same copied tree.
"""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from cairn.domain.errors import NotFound, SchemaOutdated
from cairn.domain.ids import new_ulid
from cairn.services.tracking import TrackingService
from cairn.store import database as database_module
from cairn.store import schema
from cairn.store.database import Database
from cairn.store.engine import make_engine, resolve_store
from cairn.store.schema import alembic_config, current_revision, head_revision
from cairn.store.tables import Base
from conftest import free_port

HEAD = head_revision()
LATER = "0999_test_later"
TABLES = set(Base.metadata.tables)

# The CLI in a subprocess, on a migrations tree given as the first argument.
CLI_ON_TREE = (
    "import pathlib, sys\n"
    "import cairn.store.schema as schema\n"
    "schema._MIGRATIONS = pathlib.Path(sys.argv.pop(1))\n"
    "from cairn.cli.main import main\n"
    "main()\n"
)


# ---------------------------------------------------------------------------- stores


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new store goes: a folder that does not exist yet, or an empty database."""
    if request.param == "sqlite":
        return str(tmp_path / "store")
    return str(request.getfixturevalue("pg_fresh"))


def run_sql(location: str, *statements: str) -> None:
    engine = make_engine(resolve_store(location).database_url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def inspect_store(location: str) -> tuple[str | None, set[str], list[Any]]:
    """(revision, tables, differences between the schema and ``Base.metadata``)."""
    engine = make_engine(resolve_store(location).database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return (
                current_revision(conn),
                set(inspect(conn).get_table_names()),
                compare_metadata(context, Base.metadata),
            )
    finally:
        engine.dispose()


@contextmanager
def engines_made() -> Iterator[list[Engine]]:
    """The engines ``Database`` makes meanwhile, disposed afterwards."""
    made: list[Engine] = []
    real = database_module.make_engine

    def recording(url: str) -> Engine:
        made.append(real(url))
        return made[-1]

    database_module.make_engine = recording  # type: ignore[assignment]
    try:
        yield made
    finally:
        database_module.make_engine = real  # type: ignore[assignment]
        for engine in made:
            engine.dispose()


def open_refused(location: str, *, auto_upgrade: bool) -> SchemaOutdated:
    """Open a store that must be refused. A refusing ``Database`` leaves its engine open
    (see test_refusal_leaves_no_connection_open), and a psycopg connection left to the
    garbage collector fails some later test with a ResourceWarning, so close it here."""
    with engines_made(), pytest.raises(SchemaOutdated) as caught:
        Database(location, auto_upgrade=auto_upgrade).close()
    return caught.value


def cairn(
    *args: str, tree: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The ``cairn`` command as a subprocess, optionally on another migrations tree."""
    prefix = ["-c", CLI_ON_TREE, str(tree)] if tree else ["-m", "cairn"]
    return subprocess.run(
        [sys.executable, *prefix, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def later_tree(tmp_path: Path) -> Path:
    """Today's migrations plus one later revision (a new table)."""
    tree = tmp_path / "migrations"
    shutil.copytree(
        Path(schema.__file__).parent / "migrations",
        tree,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (tree / "versions" / f"{LATER}.py").write_text(
        f'"""A later revision, for tests."""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        f"revision = {LATER!r}\n"
        f"down_revision = {HEAD!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        '    op.create_table("later_things", sa.Column("id", sa.Integer, primary_key=True))\n\n\n'
        "def downgrade() -> None:\n"
        '    op.drop_table("later_things")\n'
    )
    return tree


# ---------------------------------------------------------------------------- (a) head


def test_new_store_at_head_matches_the_declared_tables(store: str) -> None:
    Database(store).close()
    revision, tables, differences = inspect_store(store)
    assert revision == HEAD
    assert tables == TABLES | {"alembic_version"}
    assert differences == []


def test_migrations_go_down_to_base_and_up_again(store: str) -> None:
    Database(store).close()
    engine = make_engine(resolve_store(store).database_url)
    try:
        with engine.connect().execution_options(cairn_write=True) as conn, conn.begin():
            command.downgrade(alembic_config(conn), "base")
    finally:
        engine.dispose()
    revision, tables, _ = inspect_store(store)
    assert (revision, tables) == (None, {"alembic_version"})
    Database(store, auto_upgrade=False).close()  # an empty store is simply created
    revision, tables, differences = inspect_store(store)
    assert (revision, tables, differences) == (HEAD, TABLES | {"alembic_version"}, [])


def test_revisions_form_one_named_line() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(script.walk_revisions())
    assert script.get_heads() == [HEAD]
    assert [r.revision for r in revisions if r.down_revision is None] == [revisions[-1].revision]
    for revision in revisions:
        assert revision.doc and revision.doc.strip(), f"revision {revision.revision} is unnamed"
        assert Path(revision.path).name.startswith(revision.revision)


# ---------------------------------------------------------------------------- (b) refusals


def test_older_store_is_refused_with_upgrade_advice(
    store: str, later_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Database(store).close()
    monkeypatch.setattr(schema, "_MIGRATIONS", later_tree)
    assert head_revision() == LATER
    error = open_refused(store, auto_upgrade=False)
    assert "cairn db upgrade" in error.message
    assert error.code == "schema_outdated"
    assert error.details == {"current": HEAD, "head": LATER}
    revision, tables, _ = inspect_store(store)
    assert (revision, "later_things" in tables) == (HEAD, False)  # refused means untouched


def test_embedded_mode_upgrades_an_older_store(
    store: str, later_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Database(store).close()
    monkeypatch.setattr(schema, "_MIGRATIONS", later_tree)
    Database(store, auto_upgrade=True).close()
    revision, tables, _ = inspect_store(store)
    assert revision == LATER
    assert tables == TABLES | {"alembic_version", "later_things"}
    Database(store, auto_upgrade=False).close()  # now current


@pytest.mark.parametrize("auto_upgrade", [False, True])
def test_store_with_tables_but_no_revision_is_refused(store: str, auto_upgrade: bool) -> None:
    """Tables but no revision: not Cairn's, or damaged. Upgrading would fail half-way."""
    Database(store).close()
    run_sql(store, "DELETE FROM alembic_version")
    error = open_refused(store, auto_upgrade=auto_upgrade)
    assert "no schema revision" in error.message and "backup" in error.message
    assert error.details == {"current": None, "head": HEAD}


def test_cairn_db_upgrade_refuses_a_store_without_a_revision(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    Database(store).close()
    run_sql(store, "DELETE FROM alembic_version")
    result = cairn("db", "upgrade", "--store", store)
    assert result.returncode == 8
    assert "no schema revision" in result.stderr and "Traceback" not in result.stderr


def test_store_from_a_newer_cairn_is_refused(store: str) -> None:
    Database(store).close()
    run_sql(store, "UPDATE alembic_version SET version_num = '0000_unknown'")
    error = open_refused(store, auto_upgrade=False)
    assert "newer Cairn" in error.message
    assert "upgrade Cairn" in error.message
    assert "cairn db upgrade" not in error.message
    assert error.details == {"current": "0000_unknown", "head": HEAD}


def test_embedded_mode_refuses_a_store_from_a_newer_cairn(store: str) -> None:
    Database(store).close()
    run_sql(store, "UPDATE alembic_version SET version_num = '0000_unknown'")
    error = open_refused(store, auto_upgrade=True)
    assert "upgrade Cairn" in error.message


def test_refusal_leaves_no_connection_open(store: str) -> None:
    Database(store).close()
    run_sql(store, "UPDATE alembic_version SET version_num = '0000_unknown'")
    with engines_made() as made:
        with pytest.raises(SchemaOutdated):
            Database(store, auto_upgrade=False)
        assert [engine.pool.checkedin() for engine in made] == [0]


# ---------------------------------------------------------------------------- (c) server


@pytest.mark.server
def test_server_refuses_a_store_it_cannot_use(store: str) -> None:
    """The real ``python -m cairn server`` on a store without a revision."""
    Database(store).close()
    run_sql(store, "DELETE FROM alembic_version")
    refused = cairn("server", "--host", "127.0.0.1", "--port", str(free_port()), "--store", store)
    assert refused.returncode == 8  # the exit code of schema_outdated
    assert "no schema revision" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "Cairn is serving" not in refused.stdout


@pytest.mark.server
def test_older_revision_is_refused_by_the_server_until_cairn_db_upgrade(
    tmp_path: Path, later_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Cairn whose migrations go one revision further, run as the real CLI."""
    store = str(tmp_path / "store")
    Database(store).close()
    refused = cairn("server", "--store", store, "--port", str(free_port()), tree=later_tree)
    assert refused.returncode == 8
    assert "cairn db upgrade" in refused.stderr
    assert "Cairn is serving" not in refused.stdout

    current = cairn("db", "current", "--store", store, tree=later_tree)
    assert current.returncode == 0
    assert f"store: {HEAD}  needed: {LATER}" in current.stdout

    upgraded = cairn("db", "upgrade", "--store", store, tree=later_tree)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded schema {HEAD} -> {LATER}" in upgraded.stdout
    revision, tables, _ = inspect_store(store)
    assert (revision, tables) == (LATER, TABLES | {"alembic_version", "later_things"})
    monkeypatch.setattr(schema, "_MIGRATIONS", later_tree)
    Database(store, auto_upgrade=False).close()  # what the server checks before serving


# ---------------------------------------------------------------------------- (d) cairn db


def test_cairn_db_upgrade_brings_a_store_to_head(store: str) -> None:
    created = cairn("db", "upgrade", "--store", store)
    assert created.returncode == 0, created.stderr
    assert f"upgraded schema (empty) -> {HEAD}" in created.stdout
    revision, tables, differences = inspect_store(store)
    assert (revision, tables, differences) == (HEAD, TABLES | {"alembic_version"}, [])

    again = cairn("db", "upgrade", "--store", store)
    assert again.returncode == 0
    assert f"already at schema revision {HEAD}" in again.stdout
    Database(store, auto_upgrade=False).close()


# ---------------------------------------------------------------------------- (e) embedded


@pytest.mark.parametrize("auto_upgrade", [True, False])
def test_store_missing_its_tables_is_created(tmp_path: Path, auto_upgrade: bool) -> None:
    """An empty file, or an empty database with only an empty alembic_version table."""
    empty_file = tmp_path / "empty"
    empty_file.mkdir()
    (empty_file / "cairn.db").touch()
    only_version = tmp_path / "only-version"
    only_version.mkdir()
    run_sql(str(only_version), "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    for location in (empty_file, only_version):
        Database(str(location), auto_upgrade=auto_upgrade).close()
        revision, tables, differences = inspect_store(str(location))
        assert (revision, tables, differences) == (HEAD, TABLES | {"alembic_version"}, [])


def test_embedded_store_is_usable_after_upgrade(
    store: str, later_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Database(store).close()
    monkeypatch.setattr(schema, "_MIGRATIONS", later_tree)
    db = Database(store, auto_upgrade=True)
    try:
        tracking = TrackingService(db)
        tracking.create_project("after-upgrade")
        with pytest.raises(NotFound):
            tracking.get_run(new_ulid())
        assert tracking.get_project("after-upgrade").name == "after-upgrade"
    finally:
        db.close()


# ---------------------------------------------------------------------------- (f) at once


def open_store_in_child(location: str, barrier: Any, results: Any) -> None:
    """In a spawned process: open the store when all are ready; report what it did."""
    try:
        from cairn.store import schema as child_schema

        upgrades: list[tuple[str | None, str]] = []
        real_upgrade = child_schema.upgrade

        def recording_upgrade(engine: Any, revision: str = "head") -> tuple[str | None, str]:
            result = real_upgrade(engine, revision)
            upgrades.append(result)
            return result

        child_schema.upgrade = recording_upgrade  # type: ignore[assignment]
        barrier.wait(timeout=60)
        db = Database(location)
        with db.read() as conn:
            revision = current_revision(conn)
        db.close()
        results.put(("ok", revision, upgrades))
    except BaseException as exc:  # report anything, so the parent never waits in vain
        results.put(("error", repr(exc), []))


def test_processes_opening_a_new_store_at_once_create_it_once(store: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    processes = [
        context.Process(target=open_store_in_child, args=(store, barrier, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():  # pragma: no cover - a hang, already reported
                process.kill()
    assert [o[0] for o in outcomes] == ["ok"] * 4, outcomes
    assert [o[1] for o in outcomes] == [HEAD] * 4
    schema_made = [u for o in outcomes for u in o[2] if u[0] != u[1]]
    assert schema_made == [(None, HEAD)], outcomes  # one process created it, the rest waited
    assert all(process.exitcode == 0 for process in processes)
    revision, tables, differences = inspect_store(store)
    assert (revision, tables, differences) == (HEAD, TABLES | {"alembic_version"}, [])
    engine = make_engine(resolve_store(store).database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        engine.dispose()
