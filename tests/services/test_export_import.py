"""Export and import round-trip a project exactly, on SQLite and PostgreSQL.

A project is filled through the SDK (embedded, on SQLite) with every kind of record:
runs with params, tags, notes, git and environment, parents, metrics, artifacts,
datasets with files, profiles, inputs and producers, models with files, aliases, moves,
protection and model inputs, endpoints with variants, predictions, feedback, and the
audit events all of that wrote. It is exported, imported into the ``database`` store
(SQLite or PostgreSQL), and a canonical dump of both projects, every column of every
row with surrogate keys replaced by what they point at, must be identical.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import cairn
from cairn.blobs import LocalBlobStore
from cairn.domain.errors import Conflict, CorruptBlob
from cairn.services.blobs import BlobService
from cairn.services.portability import export_project, import_project
from cairn.services.tracking import TrackingService
from cairn.store.database import Database
from cairn.store.repositories.portability import PLAN, PLANS, PortabilityRepository
from cairn.store.repositories.projects import ProjectRepository

PROJECT = "roundtrip"


def fill(store: Path) -> list[str]:
    """Every kind of record in PROJECT of the embedded store at ``store``; the run ids."""
    client = cairn.Client(str(store), project=PROJECT)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    frame["y"] = (frame["a"] > 0).astype(int)
    client.log_dataset("raw", frame, batch="2026-10", message="first")
    data_dir = store.parent / "files"
    data_dir.mkdir()
    (data_dir / "x.txt").write_text("hello")
    (data_dir / "y.bin").write_bytes(bytes(range(256)))
    client.log_dataset("folder", data_dir, batch="2026-11")
    ids = []
    with client.start_run("parent", experiment="sweep", notes="why: a sweep") as parent:
        with parent.child("train", params={"lr": 0.1, "epochs": 3}, tags={"team": "a"}) as run:
            run.use_dataset("raw:1", role="train")
            for step in range(50):
                run.log({"loss": 1 / (step + 1), "acc": step / 50}, step=step)
            for step in range(5000):  # past the rollup threshold: rollups exist too
                run.log({"long": float(step % 97)}, step=step)
            run.log({"odd": math.nan}, step=0)
            run.log({"odd": math.inf}, step=1)
            run.log_text("some log\n", "logs/train.log")
            run.log_json({"k": [1, 2]}, "config.json")
            run.log_dataset("clean", frame.round(1), message="rounded", output=True)
            x, y = frame[["a", "b", "c"]].to_numpy(), frame["y"].to_numpy()
            model = LogisticRegression(max_iter=200).fit(x, y)
            run.register_model("clf", model, input_example=x[:3], tags={"k": "v"})
            run.register_model("clf", LogisticRegression(C=2, max_iter=200).fit(x, y))
            ids.append(run.id)
        with parent.child("eval") as evaluation:
            evaluation.use_model("clf:1")
            ids.append(evaluation.id)
        ids.append(parent.id)
    failed = client.start_run("diverged", capture=False)
    failed.log({"loss": 9.0}, step=0)
    failed.end("failed", error="diverged")
    ids.append(failed.id)
    client.approve("clf:1", "good")
    client.set_alias("clf", "staging", 1, reason="first")
    client.set_alias("clf", "production", 1, reason="ship")
    client.set_alias("clf", "staging", 2, reason="retrained")
    client.protect_alias("clf", "production")
    client.create_endpoint("churn", ["champion=clf@production:90", "challenger=clf:2:10"])
    request_ids = client.log_predictions(
        "clf:1", [{"a": 1.0}, {"a": 2.0}], [0, 1], endpoint="churn", variant="champion"
    )
    client.log_predictions("clf:2", [{"a": 3.0}], [1], latencies_ms=1.5)
    client.log_feedback(request_ids, [0, 0])
    client.flush()
    return ids


def canonical(db: Database, project: str) -> dict[str, list[str]]:
    """Every row of the project, surrogate keys replaced by what they point at, sorted."""
    out: dict[str, list[str]] = {}
    identity: dict[str, dict[Any, str]] = {}
    imported: list[dict[str, Any]] = []  # the import's own event: checked by the caller
    with db.read() as conn:
        found = ProjectRepository(conn).get(project)
        repo = PortabilityRepository(conn)
        out["texts"] = sorted(json.dumps(r, sort_keys=True) for r in repo.texts(found.id))
        for plan in PLAN:
            rows = []
            identity[plan.name] = {}
            for row in repo.rows(plan, found.id):
                if plan.name == "events" and row["action"] == "project.imported":
                    imported.append(row)
                    continue
                own = row.pop(plan.surrogate) if plan.surrogate else None
                if plan.name == "projects":
                    row.pop("name")
                for column, target in plan.refs.items():
                    if row.get(column) is not None:
                        row[column] = identity[target][row[column]]
                text = json.dumps(row, sort_keys=True, default=str)
                if plan.surrogate:
                    identity[plan.name][own] = text
                rows.append(text)
            out[plan.name] = sorted(rows)
    out["imports"] = sorted(json.dumps(r["after"]) for r in imported)
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    store = tmp_path_factory.mktemp("source") / "store"
    store.mkdir()
    return store, fill(store)


def test_round_trip_is_exact(
    source: tuple[Path, list[str]], database: Database, tmp_path: Path
) -> None:
    store, run_ids = source
    src = Database(str(store))
    try:
        src_blobs = BlobService(src).store
        tar = tmp_path / "out.tar"
        report = export_project(src, src_blobs, PROJECT, tar)
        assert report.rows["runs"] == 4 and report.rows["metric_points"] >= 103
        assert report.blobs >= 4
        expected = canonical(src, PROJECT)
        assert expected.pop("imports") == []
    finally:
        src.close()
    for name in PLANS:
        assert expected[name], f"the fill left {name} empty: the test would prove nothing"
    target_blobs = LocalBlobStore(tmp_path / "target-blobs")
    imported = import_project(database, target_blobs, tar)
    assert imported.blobs_written == report.blobs
    got = canonical(database, PROJECT)
    assert len(got.pop("imports")) == 1  # the import is in the audit log
    assert got == expected
    run = TrackingService(database).get_run(run_ids[0])
    assert run.params == {"lr": "0.1", "epochs": "3"} and run.project == PROJECT
    for digest in export_digests(tar):
        assert target_blobs.exists(digest)
    # the same store again: refused under the same name, exact under a new one
    with pytest.raises(Conflict, match="already exists"):
        import_project(database, target_blobs, tar)
    again = import_project(database, target_blobs, tar, project="roundtrip_copy")
    assert again.blobs_written == 0  # blobs already present are not rewritten
    assert again.runs_renamed == 4  # run ids are unique in a store: the copy's are new
    copy = canonical(database, "roundtrip_copy")
    assert len(copy.pop("imports")) == 1
    assert {k: len(v) for k, v in copy.items()} == {k: len(v) for k, v in expected.items()}
    assert copy["alias_moves"] == expected["alias_moves"]
    # and back out of this store: the same tar content
    second = tmp_path / "second.tar"
    export_project(database, target_blobs, PROJECT, second)
    assert records_of(second) == records_of(tar) + 1  # and the import's own event


def export_digests(tar: Path) -> list[str]:
    with tarfile.open(tar) as archive:
        member = archive.extractfile("cairn-export/meta.json")
        assert member is not None
        return list(json.loads(member.read())["blobs"])


def records_of(tar: Path) -> int:
    with tarfile.open(tar) as archive:
        member = archive.extractfile("cairn-export/records.jsonl")
        assert member is not None
        return sum(1 for _ in member)


def test_a_corrupted_blob_is_refused_and_nothing_is_imported(
    source: tuple[Path, list[str]], database: Database, tmp_path: Path
) -> None:
    store, _ids = source
    src = Database(str(store))
    try:
        tar = tmp_path / "out.tar"
        export_project(src, BlobService(src).store, PROJECT, tar)
    finally:
        src.close()
    bad = tmp_path / "bad.tar"
    with tarfile.open(tar) as archive, tarfile.open(bad, "w") as out:
        flipped = False
        for member in archive.getmembers():
            data = archive.extractfile(member)
            body = data.read() if data else b""
            if "/blobs/" in member.name and not flipped and body:
                body = bytes([body[0] ^ 1]) + body[1:]
                flipped = True
            out.addfile(member, io.BytesIO(body))
    target_blobs = LocalBlobStore(tmp_path / "target-blobs")
    with pytest.raises(CorruptBlob, match="corrupted"):
        import_project(database, target_blobs, bad)
    with database.read() as conn:
        assert ProjectRepository(conn).find(PROJECT) is None
    assert list(target_blobs.digests()) == []


def test_cli_export_and_import(source: tuple[Path, list[str]], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cairn.cli.main import cli

    store, run_ids = source
    tar = tmp_path / "cli.tar"
    runner = CliRunner()
    out = runner.invoke(cli, ["export", "--project", PROJECT, "--store", str(store), str(tar)])
    assert out.exit_code == 0, out.output
    assert f"exported project {PROJECT}" in out.output
    target = tmp_path / "other"
    out = runner.invoke(cli, ["import", str(tar), "--store", str(target)])
    assert out.exit_code == 0, out.output
    assert "imported project roundtrip" in out.output
    out = runner.invoke(cli, ["import", str(tar), "--store", str(target)])
    assert out.exit_code != 0 and "already exists" in out.output
    db = Database(str(target))
    try:
        assert TrackingService(db).get_run(run_ids[0]).name == "train"
    finally:
        db.close()


def test_a_missing_blob_or_a_damaged_record_is_refused(
    source: tuple[Path, list[str]], tmp_path: Path
) -> None:
    from cairn.domain.errors import Invalid

    store, _ids = source
    src = Database(str(store))
    try:
        tar = tmp_path / "out.tar"
        export_project(src, BlobService(src).store, PROJECT, tar)
    finally:
        src.close()
    no_blob, damaged = tmp_path / "no-blob.tar", tmp_path / "damaged.tar"
    with tarfile.open(tar) as archive:
        members = [(m, archive.extractfile(m)) for m in archive.getmembers()]
        bodies = [(m, f.read() if f else b"") for m, f in members]
    blob = next(m.name for m, _body in bodies if "/blobs/" in m.name)
    with tarfile.open(no_blob, "w") as out:
        for member, body in bodies:
            if member.name != blob:
                out.addfile(member, io.BytesIO(body))
    with tarfile.open(damaged, "w") as out:
        for member, body in bodies:
            if member.name.endswith("records.jsonl"):
                body = body + b"{not json\n"
                member.size = len(body)
            out.addfile(member, io.BytesIO(body))
    target = Database(str(tmp_path / "target"))
    try:
        target_blobs = LocalBlobStore(tmp_path / "target-blobs")
        with pytest.raises(Invalid, match="lacks blob"):
            import_project(target, target_blobs, no_blob)
        with pytest.raises(Invalid, match=r"line \d+ is not a record"):
            import_project(target, target_blobs, damaged)
        with target.read() as conn:  # the damaged file's rows were rolled back
            assert ProjectRepository(conn).find(PROJECT) is None
    finally:
        target.close()


def test_a_blob_damaged_in_the_store_stops_the_export(tmp_path: Path) -> None:
    store = tmp_path / "store"
    client = cairn.Client(str(store), project="small")
    with client.start_run("one", capture=False) as run:
        run.log_text("precious bytes\n", "notes.txt")
    client.flush()
    db = Database(str(store))
    try:
        blobs = BlobService(db).store
        (digest,) = list(blobs.digests())
        (path,) = [p for p in store.rglob(digest) if p.is_file()]
        path.write_bytes(b"rotten")  # shorter, too
        out = tmp_path / "small.tar"
        with pytest.raises(CorruptBlob, match="no longer matches"):
            export_project(db, blobs, "small", out)
        assert list(tmp_path.glob("small.tar*")) == []
    finally:
        db.close()
