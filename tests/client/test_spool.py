"""The local spool: append, read back, acknowledge; torn and corrupt records; the
batcher's spool-and-resend path; offline mode and ``cairn sync`` into an embedded store."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import cairn
from cairn.cli.main import cli
from cairn.client.batcher import METRIC, Batcher
from cairn.client.spool import Spool, read_records, spool_files
from cairn.domain.errors import Unavailable
from cairn.domain.records import Batch, BatchResult, MetricSeries, RunBatch


def _batch(key: str, run_id: str = "r1", points: int = 3) -> Batch:
    series = MetricSeries(list(range(points)), [1_000 + i for i in range(points)], [0.5] * points)
    return Batch(key, [RunBatch(run_id, metrics={"loss": series})])


def test_append_read_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert not spool.path.exists()  # made on the first append only
    for key in ("key-0001", "key-0002", "key-0003"):
        spool.append_batch(_batch(key))
    assert [r.key for r in read_records(spool.path)] == ["key-0001", "key-0002", "key-0003"]
    assert len(spool) == 3
    spool.ack(["key-0002"])
    assert [r.key for r in spool.pending()] == ["key-0001", "key-0003"]
    assert len(spool) == 2
    record = spool.pending()[0]
    assert record.payload["batch"]["runs"][0]["metrics"]["loss"]["steps"] == [0, 1, 2]
    assert spool_files(tmp_path) == [spool.path]


def test_torn_last_record_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append_batch(_batch("key-0001"))
    spool.append_batch(_batch("key-0002"))
    data = spool.path.read_bytes()
    for cut in (1, 5, 9, 20):  # inside the header and inside the body
        spool.path.write_bytes(data[:-cut])
        assert [r.key for r in read_records(spool.path)] == ["key-0001"]


def test_crc_mismatch_skips_the_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for key in ("key-0001", "key-0002", "key-0003"):
        spool.append_batch(_batch(key))
    data = bytearray(spool.path.read_bytes())
    second = data.index(b"key-0002")
    data[second + 4] ^= 0xFF  # a flipped byte in the body of the second record
    spool.path.write_bytes(bytes(data))
    assert [r.key for r in read_records(spool.path)] == ["key-0001", "key-0003"]


def test_batcher_spools_while_away_and_resends_with_the_same_key(tmp_path: Path) -> None:
    up = threading.Event()
    sent: list[str] = []

    def send(batch: Batch) -> BatchResult:
        if not up.is_set():
            raise Unavailable("server down")
        sent.append(batch.idempotency_key)
        return BatchResult(batch.idempotency_key, True, len(batch.runs), batch.point_count)

    spool = Spool(tmp_path)
    batcher = Batcher(send, interval=0.02, spool=spool)
    try:
        for step in range(50):
            batcher.put((METRIC, "r1", step, 1_000 + step, {"loss": float(step)}))
        with pytest.raises(Unavailable):
            batcher.flush(timeout=0.3)  # an explicit wait still says the server is away
        spooled = [r.key for r in spool.pending()]
        assert spooled, "the batch went to disk"
        up.set()
        batcher.flush(timeout=10)
        assert sent == spooled  # resent in order, each with its own key
        assert spool.pending() == []
    finally:
        batcher.close(timeout=1)
    assert not spool.path.exists()  # all acknowledged: tidied on close


def _offline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[cairn.Client, Any]:
    monkeypatch.setenv("CAIRN_MODE", "offline")
    client = cairn.Client(project="offline")
    assert client.uri.startswith("offline:")
    run = client.start_run("away", params={"lr": 0.1}, tags={"team": "nlp"}, capture=False)
    return client, run


def _sync(uri: str, spool: Path, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli, ["sync", "--uri", uri, "--spool", str(spool), "--json", *extra]
    )
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "spool"
    monkeypatch.setenv("CAIRN_SPOOL_DIR", str(folder))
    return folder


def test_offline_round_trip_through_sync_into_a_store(
    tmp_path: Path, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = tmp_path / "model.txt"
    artifact.write_text("weights")
    client, run = _offline_run(tmp_path, monkeypatch)
    for step in range(20):
        run.log({"loss": 1.0 / (step + 1), "acc": step / 20}, step=step)
    run.note("tried a smaller lr")
    entry = run.log_artifact(artifact, "model/model.txt")
    run.end()
    client.close()
    assert entry.size == 7
    with pytest.raises(cairn.Unavailable, match="offline"):
        client.backend.get_run(run.id)

    monkeypatch.delenv("CAIRN_MODE")
    store = str(tmp_path / "store")
    dry = _sync(store, spool_dir, "--dry-run")
    assert (dry["runs"], dry["points"], dry["artifacts"]) == (1, 40, 1)
    first = _sync(store, spool_dir)
    assert (first["runs"], first["points"], first["artifacts"], first["duplicates"]) == (
        1, 40, 1, 0,
    )  # fmt: skip
    second = _sync(store, spool_dir)
    assert second["batches"] == second["points"] == 0

    reader = cairn.Client(store)
    try:
        got = reader.get_run(run.id)
        assert got.status.value == "finished"
        assert got.params == {"lr": "0.1"} and got.tags["team"] == "nlp"
        assert got.notes == "tried a smaller lr"
        assert got.metrics["loss"].count == 20
        assert [a.path for a in reader.list_artifacts(run.id)] == ["model/model.txt"]
        out = reader.download_artifacts(run.id, "model/model.txt", tmp_path / "dl")
        assert out.read_text() == "weights"
    finally:
        reader.close()


def test_sync_a_run_in_progress_then_the_rest_without_duplicates(
    tmp_path: Path, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, run = _offline_run(tmp_path, monkeypatch)
    store = str(tmp_path / "store")
    try:
        for step in range(10):
            run.log({"loss": float(step)}, step=step)
        client.flush(5)
        first = _sync(store, spool_dir)
        assert first["points"] == 10
        for step in range(10, 25):
            run.log({"loss": float(step)}, step=step)
        run.end()
        client.flush(5)
        second = _sync(store, spool_dir)
        assert (second["points"], second["duplicates"]) == (15, 0)
        assert second["already_synced"] >= 1
        # Forget every acknowledgement: a full resend is recognised batch by batch.
        for ack in spool_dir.glob("*.ack"):
            ack.unlink()
        again = _sync(store, spool_dir)
        assert again["points"] == 0 and again["duplicate_points"] == 25
    finally:
        client.close()
    monkeypatch.delenv("CAIRN_MODE")
    reader = cairn.Client(store)
    try:
        got = reader.get_run(run.id)
        assert got.status.value == "finished"
        history = reader.get_metric_history(run.id, "loss")
        assert [p.step for p in history.points] == list(range(25))
    finally:
        reader.close()
