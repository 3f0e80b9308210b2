"""Offline and spooled runs reach a real server: through ``cairn sync`` and, for a
client whose server comes back, by the background resend alone."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import cairn
from cairn.cli.main import cli
from conftest import free_port, start_server, stop_server

pytestmark = pytest.mark.server


def _points(url: str, run_id: str, key: str) -> list[int]:
    reader = cairn.Client(url)
    try:
        return [p.step for p in reader.get_metric_history(run_id, key).points]
    finally:
        reader.close()


def test_offline_run_synced_to_a_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = tmp_path / "spool"
    monkeypatch.setenv("CAIRN_SPOOL_DIR", str(spool))
    monkeypatch.setenv("CAIRN_MODE", "offline")
    artifact = tmp_path / "weights.bin"
    artifact.write_bytes(b"\x00\x01" * 1000)
    client = cairn.Client(project="offline")
    with client.start_run("away", params={"lr": 0.1}, capture=False) as run:
        for step in range(30):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.log_artifact(artifact)
    client.close()
    monkeypatch.delenv("CAIRN_MODE")

    proc, url = start_server(str(tmp_path / "store"))
    try:
        runner = CliRunner()
        args = ["sync", "--uri", url, "--spool", str(spool), "--json"]
        first = json.loads(runner.invoke(cli, args, catch_exceptions=False).output)
        second = json.loads(runner.invoke(cli, args, catch_exceptions=False).output)
        print(f"[offline sync] first={first} second={second}")
        assert (first["runs"], first["points"], first["artifacts"]) == (1, 30, 1)
        assert second["points"] == 0 and second["batches"] == 0
        got = httpx.get(f"{url}/api/v1/runs/{run.id}", timeout=10).json()
        assert got["status"] == "finished" and got["params"] == {"lr": "0.1"}
        assert _points(url, run.id, "loss") == list(range(30))
        arts = httpx.get(f"{url}/api/v1/runs/{run.id}/artifacts", timeout=10).json()
        assert [a["path"] for a in arts] == ["weights.bin"]
    finally:
        stop_server(proc)


def test_run_started_while_the_server_is_down_arrives_when_it_comes_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_SPOOL_DIR", str(tmp_path / "spool"))
    port = free_port()
    client = cairn.Client(f"http://127.0.0.1:{port}", project="late", flush_interval=0.05)
    run = client.start_run("early", capture=False)  # nothing listens yet
    for step in range(40):
        run.log({"loss": float(step)}, step=step)  # never blocks, never raises
    with pytest.raises(cairn.Unavailable):
        client.flush(timeout=1)
    assert list((tmp_path / "spool").glob("*.spool")), "batches went to the spool"
    proc, url = start_server(str(tmp_path / "store"), port=port)
    try:
        for step in range(40, 60):
            run.log({"loss": float(step)}, step=step)
        run.end()
        client.flush(timeout=60)  # the background resend empties the spool
        assert _points(url, run.id, "loss") == list(range(60))
        client.close()
        assert not list((tmp_path / "spool").glob("*.spool")), "acknowledged: tidied"
    finally:
        stop_server(proc)


def test_a_spool_left_by_a_closed_client_goes_to_its_own_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    monkeypatch.setenv("CAIRN_SPOOL_DIR", str(spool))
    port = free_port()
    client = cairn.Client(f"http://127.0.0.1:{port}", project="later", flush_interval=0.05)
    with client.start_run("gave-up", capture=False) as run:
        for step in range(25):
            run.log({"loss": float(step)}, step=step)
    client.close(timeout=0.5)  # the server never came: the spool keeps everything
    assert len(list(spool.glob("*.spool"))) == 1
    proc, url = start_server(str(tmp_path / "store"), port=port)
    try:
        result = CliRunner().invoke(cli, ["sync", "--spool", str(spool), "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert (report["runs"], report["points"], report["duplicates"]) == (1, 25, 0)
        assert _points(url, run.id, "loss") == list(range(25))
        # The writing process (this one) still lives, so its file stays, all acknowledged.
        again = json.loads(
            CliRunner().invoke(cli, ["sync", "--spool", str(spool), "--json"]).output
        )
        assert again["points"] == 0 and again["already_synced"] == report["batches"]
    finally:
        stop_server(proc)
