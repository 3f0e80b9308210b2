"""Revision 0002 (run artifacts) upgrades a store made at 0001 with data in it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from cairn.blobs import LocalBlobStore
from cairn.services.artifacts import ArtifactService
from cairn.services.tracking import TrackingService
from cairn.store.database import Database
from cairn.store.engine import make_engine, resolve_store
from cairn.store.schema import alembic_config, current_revision, head_revision
from cairn.store.tables import Base

RUN_ID = "01JAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty store: a folder, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield str(tmp_path / "store")
        return
    yield request.getfixturevalue("pg_fresh")


def make_store_at_0001_with_data(location: str) -> None:
    engine = make_engine(resolve_store(location).database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
        with engine.begin() as conn:
            assert current_revision(conn) == "0001"
            assert "artifacts" not in inspect(conn).get_table_names()
            conn.execute(
                text(
                    "INSERT INTO projects (name, description, created_at) "
                    "VALUES ('old', 'from 0001', 1700000000000)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO runs (id, project_id, name, status, start_time, updated_at) "
                    "SELECT :id, id, 'legacy', 'finished', 1700000000000, 1700000000000 "
                    "FROM projects WHERE name = 'old'"
                ),
                {"id": RUN_ID},
            )
            conn.execute(
                text(
                    "INSERT INTO params (run_pk, key, value) "
                    "SELECT pk, 'lr', '0.01' FROM runs WHERE id = :id"
                ),
                {"id": RUN_ID},
            )
    finally:
        engine.dispose()


def test_0001_store_with_data_upgrades_to_0002(store: str, tmp_path: Path) -> None:
    make_store_at_0001_with_data(store)
    db = Database(store, auto_upgrade=True)
    try:
        with db.read() as conn:
            assert current_revision(conn) == head_revision()
            assert "artifacts" in inspect(conn).get_table_names()
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        run = TrackingService(db).get_run(RUN_ID)
        assert (run.project, run.name, run.params) == ("old", "legacy", {"lr": "0.01"})
        artifacts = ArtifactService(db, LocalBlobStore(tmp_path / "blobs"))
        entry = artifacts.log_artifact(RUN_ID, "notes.txt", io.BytesIO(b"after the upgrade"))
        assert artifacts.list_artifacts(RUN_ID) == [entry]
    finally:
        db.close()


def test_0002_goes_down_to_0001_and_up_again(store: str) -> None:
    make_store_at_0001_with_data(store)
    Database(store, auto_upgrade=True).close()
    engine = make_engine(resolve_store(store).database_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
        with engine.connect() as conn:
            assert "artifacts" not in inspect(conn).get_table_names()
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
        with engine.connect() as conn:
            assert "artifacts" in inspect(conn).get_table_names()
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 1
    finally:
        engine.dispose()
