"""``kill -9`` of the server during heavy concurrent logging loses nothing acknowledged
and duplicates nothing.

Several client processes log metrics as fast as a training loop would; midway the
server is killed with SIGKILL, and restarted a moment later on the same store and port.
The clients never see an error: batches the server could not take go to their spool and
are resent in the background, each with its idempotency key. At the end every point the
server acknowledged is there, each step of each key exactly once, and so is every point
that was sent at all. Once on SQLite, once on PostgreSQL (skipped without
``CAIRN_TEST_DATABASE_URL``).

A client killed mid-run is the other half of crash safety: the server marks its run
``killed`` after the heartbeat timeout, tested in ``test_heartbeats.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import cairn
from conftest import free_port, fresh_pg_database, start_server, stop_server

pytestmark = [pytest.mark.stress, pytest.mark.server, pytest.mark.timeout(240)]

CLIENTS = 4
STEPS = 3_000
KEYS = ("loss", "acc")
DOWN_AT_S = 1.5  # after the clients start
DOWN_FOR_S = 2.0

WRITER = """
import json, sys, time, cairn
client = cairn.Client({url!r}, project="crash", flush_interval=0.05)
acked = {{}}
failed = [0]
already = [0]
send = client.batcher._send
def counting(batch):
    try:
        result = send(batch)
    except cairn.Unavailable:
        failed[0] += 1
        raise
    if not result.applied:
        already[0] += 1  # stored before its answer was lost: the key kept it single
    acked[batch.idempotency_key] = batch.point_count  # once per key, however often sent
    return result
client.batcher._send = counting
run = client.start_run("writer-{index}", capture=False)
print(run.id, flush=True)
began = time.monotonic()
for step in range({steps}):
    run.log({{key: step * 0.5 for key in {keys!r}}}, step=step)
    if step % 50 == 0:
        time.sleep(0.05)  # a training step's worth of work: logging spans the crash
logged = time.monotonic() - began
run.end()
client.flush(timeout=120)
print(json.dumps({{"sent": {steps} * {n_keys}, "acked": sum(acked.values()),
                   "failed_sends": failed[0],
                   "resends_recognised": already[0], "logged_s": logged}}), flush=True)
client.close()
"""


def _drain(proc: subprocess.Popen[bytes]) -> threading.Thread:
    """Read the server's output so a full pipe never stalls it."""
    out = proc.stdout

    def read() -> None:
        if out is not None:
            for _ in iter(out.readline, b""):
                pass

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _writer(url: str, index: int, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    script = WRITER.format(url=url, index=index, steps=STEPS, keys=KEYS, n_keys=len(KEYS))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env,
    )  # fmt: skip


def _crash_and_count(store: str, tmp_path: Path, label: str) -> None:
    port = free_port()
    proc, url = start_server(store, port=port)
    drain = _drain(proc)
    env = {**os.environ, "CAIRN_SPOOL_DIR": str(tmp_path / "spool")}
    writers = [_writer(url, i, tmp_path, env) for i in range(CLIENTS)]
    try:
        run_ids = [w.stdout.readline().strip() if w.stdout else "" for w in writers]
        time.sleep(DOWN_AT_S)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        drain.join(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        time.sleep(DOWN_FOR_S)
        proc, url = start_server(store, port=port)
        _drain(proc)
        reports: list[dict[str, Any]] = []
        for w in writers:
            out, err = w.communicate(timeout=180)
            assert w.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
        reader = cairn.Client(url)
        try:
            found = duplicates = 0
            for run_id in run_ids:
                run = reader.get_run(run_id)
                assert run.status.value == "finished"
                for key in KEYS:
                    steps = [p.step for p in reader.get_metric_history(run_id, key).points]
                    found += len(steps)
                    duplicates += len(steps) - len(set(steps))
                    assert sorted(set(steps)) == list(range(STEPS)), f"{run_id}/{key} lost points"
        finally:
            reader.close()
        sent = sum(r["sent"] for r in reports)
        acked = sum(r["acked"] for r in reports)
        failed = sum(r["failed_sends"] for r in reports)
        recognised = sum(r["resends_recognised"] for r in reports)
        spooled = list((tmp_path / "spool").glob("*.spool"))
        print(
            f"\n[crash {label}] clients={CLIENTS} sent={sent} acked={acked} found={found} "
            f"duplicates={duplicates} failed_sends_while_down={failed} "
            f"resends_recognised_by_key={recognised} "
            f"spool_files_left={len(spooled)} "
            f"logging_s={max(r['logged_s'] for r in reports):.1f}"
        )
        assert failed > 0, "the crash happened while the clients were logging"
        assert duplicates == 0
        assert acked == sent == found
        assert not spooled, "every spooled batch was acknowledged and tidied"
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
                w.wait()
        stop_server(proc)


def test_kill_9_server_sqlite(tmp_path: Path) -> None:
    _crash_and_count(str(tmp_path / "store"), tmp_path, "sqlite")


@pytest.mark.postgres
def test_kill_9_server_postgres(tmp_path: Path) -> None:
    with fresh_pg_database("cairn_crash") as url:
        _crash_and_count(url, tmp_path, "postgresql")
