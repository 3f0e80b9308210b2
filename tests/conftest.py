"""Shared fixtures: real databases, a real server subprocess, the SDK on both transports.

- ``db_url``: a fresh SQLite file per test; with ``CAIRN_TEST_DATABASE_URL`` set, the same
  tests also run on PostgreSQL (one database per session, emptied after each test).
  ``CAIRN_REQUIRE_ALL=1`` turns a missing PostgreSQL into a failure instead of a skip.
- ``server``: ``cairn server`` booted as a subprocess on a free port (session scope).
- ``sdk_uri``: the SDK suite runs embedded and over HTTP against that server.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("CAIRN_TEST_DATABASE_URL")
REQUIRE_ALL = os.environ.get("CAIRN_REQUIRE_ALL") == "1"
BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    # The SDK's digest cache and spool live in the home folder; tests keep theirs apart.
    import tempfile

    os.environ.setdefault("CAIRN_CACHE_DIR", tempfile.mkdtemp(prefix="cairn-test-cache-"))
    os.environ.setdefault("CAIRN_SPOOL_DIR", tempfile.mkdtemp(prefix="cairn-test-spool-"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if REQUIRE_ALL and not PG_URL:
        raise pytest.UsageError(
            "CAIRN_REQUIRE_ALL=1 but CAIRN_TEST_DATABASE_URL is not set: PostgreSQL is required"
        )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store migrated to head once; each test gets a copy of the file."""
    from cairn.store.database import Database

    folder = tmp_path_factory.mktemp("template")
    db = Database(str(folder))
    db.close()
    return folder / "cairn.db"


def pg_url_or_skip() -> str:
    """The PostgreSQL server URL; skip without one, fail under ``CAIRN_REQUIRE_ALL=1``."""
    if not PG_URL:
        if REQUIRE_ALL:
            pytest.fail("PostgreSQL is required (CAIRN_REQUIRE_ALL=1) but not configured")
        pytest.skip("CAIRN_TEST_DATABASE_URL not set")
    from cairn.store.engine import resolve_store

    return resolve_store(PG_URL).database_url


@contextmanager
def fresh_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database of its own (its URL), dropped afterwards."""
    url = make_url(pg_url_or_skip())
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            if REQUIRE_ALL:
                pytest.fail(f"PostgreSQL at {PG_URL} is not usable: {exc}")
            pytest.skip(f"PostgreSQL not usable: {exc}")
        yield url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One migrated database for the session; ``db_url`` empties it after each test."""
    from cairn.store.database import Database

    with fresh_pg_database("cairn_test") as url:
        Database(url).close()  # migrate once
        yield url


@pytest.fixture
def pg_fresh() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test."""
    with fresh_pg_database("cairn_fresh") as url:
        yield url


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        names = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        ]
        if names:
            conn.execute(
                text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE")
            )
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A database URL for one test, on SQLite and (when configured) PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "store"
        target.mkdir()
        shutil.copy(sqlite_template, target / "cairn.db")
        yield str(target)
        return
    url = request.getfixturevalue("pg_database")
    yield url
    _truncate_pg(url)


@pytest.fixture
def database(db_url: str) -> Iterator[object]:
    from cairn.store.database import Database

    db = Database(db_url)
    yield db
    db.close()


@pytest.fixture
def client(db_url: str) -> Iterator[Any]:
    """The app in-process (FastAPI's TestClient), on a fresh store of each database."""
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    from cairn.api.app import create_app
    from cairn.settings import Settings
    from cairn.store.database import Database

    with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient

    app = create_app(Settings(store=db_url), database=Database(db_url))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def tracking(database: object) -> object:
    from cairn.services.tracking import TrackingService

    return TrackingService(database)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    store: str, *extra: str, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Boot ``cairn server`` and wait until ``/healthz`` answers."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "cairn",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--store",
        store,
        *extra,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.communicate()[0].decode()
            raise RuntimeError(f"cairn server exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("cairn server did not answer /healthz within 30 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout:
        proc.stdout.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``cairn server`` subprocess on a fresh store; yields its base URL."""
    store = tmp_path_factory.mktemp("server-store")
    proc, url = start_server(str(store))
    yield url
    stop_server(proc)


@pytest.fixture(params=["embedded", "http"])
def sdk_uri(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """Where the SDK suite logs: an embedded store, or the server over HTTP."""
    import cairn

    if request.param == "embedded":
        target = tmp_path / "sdk-store"
        target.mkdir()
        shutil.copy(sqlite_template, target / "cairn.db")
        uri = str(target)
    else:
        uri = request.getfixturevalue("server")
    cairn.set_tracking_uri(uri)
    cairn.set_project(f"p{uuid.uuid4().hex[:8]}")
    yield uri
    cairn.set_tracking_uri(str(tmp_path / "unused-after-test"))


# --- the S3-compatible server --------------------------------------------------------------


def s3_unavailable(reason: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(f"CAIRN_REQUIRE_ALL=1 but the S3 test server is unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone S3 server as a subprocess; yields its URL."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("boto3") is None:
        s3_unavailable("moto[server] and boto3 are not installed (pip install -e '.[dev]')")
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url, log_path)
    except RuntimeError as exc:
        _stop(proc)
        s3_unavailable(str(exc))
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_CONFIG_FILE", str(log_path.parent / "no-config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(log_path.parent / "no-credentials"))
        env.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield url
    _stop(proc)


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    with httpx.Client(trust_env=False, timeout=1) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"moto server exited with {proc.returncode}:\n{out}")
            try:
                http.get(url)
                return
            except httpx.TransportError:
                time.sleep(0.1)
    raise RuntimeError("moto server did not answer within 30 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
