"""A run whose process dies is marked ``killed`` by the server; a live one never is."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from conftest import start_server, stop_server

DIES = """
import os, signal, cairn
cairn.set_tracking_uri({url!r})
run = cairn.start_run(name="dies", capture=False)
run.log({{"loss": 1.0}}, step=0)
run.flush()
print(run.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no end: the run is left "running"
"""

LIVES = """
import time, cairn
cairn.set_tracking_uri({url!r})
with cairn.start_run(name="lives", capture=False) as run:
    run.flush()
    print(run.id, flush=True)
    time.sleep(4)  # silent but alive: only heartbeats reach the server
"""


def _client(script: str, url: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CAIRN_HEARTBEAT_INTERVAL": "0.2"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script.format(url=url))],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip


@pytest.mark.server
def test_dead_clients_runs_are_killed_live_ones_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_HEARTBEAT_TIMEOUT", "1.5")
    proc, url = start_server(str(tmp_path / "store"))
    try:
        dies, lives = _client(DIES, url, tmp_path), _client(LIVES, url, tmp_path)
        dead_id = dies.stdout.readline().strip() if dies.stdout else ""
        live_id = lives.stdout.readline().strip() if lives.stdout else ""
        dies.wait(timeout=30)
        assert dies.returncode == -9

        def status(run_id: str) -> dict[str, object]:
            got = httpx.get(f"{url}/api/v1/runs/{run_id}", timeout=10).json()
            return {k: got[k] for k in ("status", "error", "end_time")}

        deadline = time.monotonic() + 20
        while status(dead_id)["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        dead = status(dead_id)
        assert dead["status"] == "killed"
        assert "no heartbeat" in str(dead["error"]) and dead["end_time"] is not None
        assert status(live_id)["status"] == "running"  # 1.5 s timeout, 3 s of silence
        lives.wait(timeout=30)
        assert lives.returncode == 0
        assert status(live_id)["status"] == "finished"
    finally:
        for client in (dies, lives):
            if client.stdout:
                client.stdout.close()
        stop_server(proc)
