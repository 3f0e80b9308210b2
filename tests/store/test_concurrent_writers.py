"""Sixteen processes log at once, and nothing is lost, duplicated or refused.

Each writer is a fresh interpreter (``spawn``) that starts its own run with five params,
logs ``STEPS`` steps of five metric keys through the fluent SDK, ends the run and
``flush()``es. They wait at a barrier first, so all sixteen open the store and write at
the same moment. Three targets:

- one embedded SQLite store folder, new (the writers also race to create its schema);
- a real ``cairn server --workers 4`` on SQLite;
- a real ``cairn server --workers 4`` on PostgreSQL, on a database made for the test
  (skipped without ``CAIRN_TEST_DATABASE_URL``, required with ``CAIRN_REQUIRE_ALL=1``).

A writer's exception comes back through a queue, and so does anything the SDK's
background sender logged (a retried 5xx, an unexpected error): both must be empty, and
the server's own log must hold no error. Then every run is finished, every metric holds
exactly ``STEPS`` points, and one key per run has steps ``0..STEPS-1`` once each.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import cairn
from conftest import fresh_pg_database, start_server, stop_server

pytestmark = [pytest.mark.stress, pytest.mark.timeout(240)]

PROCESSES = 16
STEPS = 2_000
KEYS = ("loss", "acc", "lr", "grad_norm", "throughput")
PARAMS = 5
SERVER_WORKERS = 4
WAIT_S = 150.0  # the longest wait for the next writer's report


# ---------------------------------------------------------------------------- the writer


def _write_one_run(
    uri: str, project: str, index: int, barrier: Any, reports: multiprocessing.Queue[Any]
) -> None:
    """One training job: a run, STEPS x KEYS points, end, flush. Reports what happened."""
    seen: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    logging.getLogger("cairn").addHandler(_Keep(logging.WARNING))
    try:
        cairn.set_tracking_uri(uri)
        cairn.set_project(project)
        barrier.wait(60)
        began = time.perf_counter()
        params = {f"p{j}": f"{index}-{j}" for j in range(PARAMS)}
        with cairn.start_run(name=f"writer-{index}", params=params, capture=False) as run:
            for step in range(STEPS):
                run.log({key: index + step / (k + 1) for k, key in enumerate(KEYS)}, step=step)
            logged = time.perf_counter()
        cairn.flush(timeout=120)
        done = time.perf_counter()
        reports.put(("ok", index, run.id, logged - began, done - began, seen))
    except BaseException:
        reports.put(("error", index, traceback.format_exc(), 0.0, 0.0, seen))


# ---------------------------------------------------------------------------- targets


@dataclass
class Target:
    uri: str
    server: subprocess.Popen[bytes] | None = None
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def stop(self) -> None:
        """Stop the server and keep everything it printed."""
        if self.server is None:
            return
        self.server.terminate()
        try:
            self.server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        if self.reader is not None:
            self.reader.join(timeout=10)
        stop_server(self.server)
        self.server = None


def _serve(store: str) -> Target:
    proc, url = start_server(store, "--workers", str(SERVER_WORKERS))
    target = Target(url, proc)
    stdout = proc.stdout
    assert stdout is not None

    def drain() -> None:  # an unread pipe would block a server that logs a lot
        for line in iter(stdout.readline, b""):
            target.log.append(line.decode(errors="replace").rstrip())

    target.reader = threading.Thread(target=drain, name="server-log", daemon=True)
    target.reader.start()
    return target


@pytest.fixture
def pg_store() -> Iterator[str]:
    """A new, empty PostgreSQL database as a ``postgresql://`` store URL; dropped after."""
    from sqlalchemy.engine import make_url

    with fresh_pg_database("cairn_stress") as url:
        yield make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(params=["embedded-sqlite", "server-sqlite", "server-postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "embedded-sqlite":
        store = tmp_path / "store"
        store.mkdir()
        yield Target(str(store))
        return
    store_uri = (
        request.getfixturevalue("pg_store")
        if request.param == "server-postgresql"
        else str(tmp_path / "server-store")
    )
    served = _serve(store_uri)
    try:
        yield served
    finally:
        served.stop()


# ---------------------------------------------------------------------------- the test


def _run_writers(uri: str, project: str) -> tuple[list[tuple[Any, ...]], float]:
    ctx = multiprocessing.get_context("spawn")
    reports: multiprocessing.Queue[Any] = ctx.Queue()
    barrier = ctx.Barrier(PROCESSES)
    procs = [
        ctx.Process(target=_write_one_run, args=(uri, project, i, barrier, reports))
        for i in range(PROCESSES)
    ]
    began = time.perf_counter()
    for proc in procs:
        proc.start()
    got: list[tuple[Any, ...]] = []
    try:
        while len(got) < PROCESSES:
            got.append(reports.get(timeout=WAIT_S))
    except queue.Empty:
        pass
    wall = time.perf_counter() - began
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join()
    reports.close()
    reports.join_thread()
    missing = PROCESSES - len(got)
    codes = [proc.exitcode for proc in procs]
    assert not missing, f"{missing} writers never reported (exit codes {codes})"
    return got, wall


@dataclass
class Found:
    runs: int = 0
    unfinished: int = 0
    points: int = 0  # the metric counts, all runs and keys
    short_series: list[str] = field(default_factory=list)  # run/key with a count != STEPS
    history_points: int = 0  # the points of one key per run, read back one by one
    duplicates: int = 0  # steps seen twice in those histories
    missing_steps: int = 0  # steps 0..STEPS-1 absent from them
    other: list[str] = field(default_factory=list)


def _read_back(uri: str, project: str, run_ids: list[str], after: Path) -> Found:
    """What the store holds, read back through the SDK's fluent API."""
    found = Found()
    cairn.set_tracking_uri(uri)
    try:
        listed = {r.id for r in cairn.search_runs(project=project, limit=1000)}
        found.runs = len(listed)
        if listed != set(run_ids):
            found.other.append(f"the project lists {sorted(listed)}, writers made {run_ids}")
        for run_id in run_ids:
            try:
                run = cairn.get_run(run_id)
                history = cairn.get_metric_history(run_id, KEYS[0])
            except cairn.NotFound as exc:
                found.other.append(f"run {run_id}: {exc}")
                continue
            found.unfinished += run.status is not cairn.RunStatus.FINISHED
            if len(run.params) != PARAMS:
                found.other.append(f"run {run_id} has params {run.params}")
            for key in KEYS:
                count = run.metrics[key].count if key in run.metrics else 0
                found.points += count
                if count != STEPS:
                    found.short_series.append(f"{run_id}/{key}: {count}")
            steps = [p.step for p in history.points]
            found.history_points += len(steps)
            found.duplicates += len(steps) - len(set(steps))
            found.missing_steps += len(set(range(STEPS)) - set(steps))
    finally:
        cairn.set_tracking_uri(after)  # the default client lets go of this store
    return found


def test_sixteen_writers_lose_nothing(
    target: Target, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    project = f"stress{uuid.uuid4().hex[:8]}"
    reports, wall = _run_writers(target.uri, project)
    errors = [f"writer {r[1]}:\n{r[2]}" for r in reports if r[0] == "error"]
    sdk_log = [f"writer {r[1]}: {line}" for r in reports for line in r[5]]
    run_ids = [r[2] for r in reports if r[0] == "ok"]
    found = _read_back(target.uri, project, run_ids, tmp_path / "unused-after-test")
    target.stop()  # the server's log is complete once it has stopped
    locked = [line for line in target.log if "database is locked" in line]
    server_errors = [
        line
        for line in target.log
        if "Traceback" in line or "unhandled" in line or line.startswith(("ERROR", "CRITICAL"))
    ]

    sent = PROCESSES * STEPS * len(KEYS)
    slowest = max((r[4] for r in reports if r[0] == "ok"), default=0.0)
    _say(
        request,
        f"[concurrent writers] {request.node.callspec.id}: processes={PROCESSES} "
        f"runs found={found.runs} unfinished={found.unfinished} points sent={sent} "
        f"found={found.points} history of {KEYS[0]}: points={found.history_points} "
        f"duplicates={found.duplicates} missing={found.missing_steps} "
        f"writer errors={len(errors)} sdk warnings={len(sdk_log)} "
        f"server errors={len(server_errors)} wall={wall:.1f}s "
        f"(slowest writer, barrier to flushed: {slowest:.1f}s)",
    )
    assert not errors, "\n".join(errors)
    assert not locked, "\n".join(locked[:5])
    assert not sdk_log, "the SDK logged retries or errors:\n" + "\n".join(sdk_log[:20])
    assert not server_errors, "the server logged errors:\n" + "\n".join(target.log[-80:])
    assert not found.other, found.other
    assert not found.short_series, found.short_series[:20]
    assert (found.runs, found.unfinished, found.points) == (PROCESSES, 0, sent)
    assert (found.history_points, found.duplicates, found.missing_steps) == (
        PROCESSES * STEPS,
        0,
        0,
    )


def _say(request: pytest.FixtureRequest, line: str) -> None:
    """A figure on the terminal, whether or not pytest captures output (``-s``)."""
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)
