"""Datasets through the SDK, embedded and over HTTP (a real server): versions by content,
batches, profiles, diffs on known data (scikit-learn's wine), materialising, run inputs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

import cairn
from cairn.blobs import LocalBlobStore
from cairn.domain.datasets import DatasetKind


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    frame: pd.DataFrame = load_wine(as_frame=True).frame
    return frame


def _columns(diff: cairn.DatasetDiff) -> dict[str, dict[str, Any]]:
    return {c["column"]: c for c in diff.profile["columns"]}


def test_versions_change_only_with_content(sdk_uri: str, wine: pd.DataFrame) -> None:
    v1 = cairn.log_dataset("wine", wine, batch="2026-10", message="initial load")
    again = cairn.log_dataset("wine", wine.copy(), batch="ignored: content unchanged")
    assert (v1.name, v1.version, v1.batch, v1.message) == ("wine", 1, "2026-10", "initial load")
    assert again.version == 1 and again.digest == v1.digest and again.batch == "2026-10"
    scaled = wine.assign(proline=wine["proline"] * 10)
    v2 = cairn.log_dataset("wine", scaled, batch="2026-11")
    assert (v2.version, v2.parent_version, v2.batch) == (2, 1, "2026-11")
    assert v2.digest != v1.digest and v2.kind is DatasetKind.FILES
    assert v1.profile is not None and v1.profile["rows"] == len(wine)
    assert [c["name"] for c in v1.profile["columns"]] == list(wine.columns)
    assert cairn.get_dataset_version("wine").version == 2
    assert cairn.get_dataset_version("wine:1").digest == v1.digest
    assert cairn.get_dataset_version("wine@2026-10").version == 1  # a batch label resolves
    versions = cairn.client().list_dataset_versions("wine")
    assert [v.version for v in versions] == [2, 1]
    (found,) = cairn.list_datasets()
    assert (found.name, found.latest_version, found.version_count) == ("wine", 2, 2)


def test_diff_on_known_changes(sdk_uri: str, wine: pd.DataFrame) -> None:
    cairn.log_dataset("wine", wine)
    cairn.log_dataset("wine-copy", wine.copy())
    more = pd.concat([wine, wine.sample(30, random_state=7)], ignore_index=True)
    cairn.log_dataset("wine", more, message="30 rows added")
    cairn.log_dataset("wine", more.assign(proline=more["proline"] * 10), message="scaled")
    cairn.log_dataset("wine", more.drop(columns=["ash"]), message="dropped ash")

    same = cairn.diff_datasets("wine:1", "wine-copy:1")
    assert same.unchanged and not same.changed and same.profile["rows"]["change"] == 0
    assert all(c["psi"] == 0.0 and c["ks"] == 0.0 for c in same.profile["columns"])

    rows = cairn.diff_datasets("wine:1", "wine:2")
    assert [c.path for c in rows.changed] == ["data.csv"] and not rows.added
    assert rows.profile["rows"] == {"old": 178, "new": 208, "change": 30}
    assert not any(c["drifted"] for c in rows.profile["columns"])

    scaled = _columns(cairn.diff_datasets("wine:2", "wine:3"))
    assert scaled["proline"]["drifted"] and scaled["proline"]["ks"] == pytest.approx(1.0)
    assert [name for name, c in scaled.items() if c["drifted"]] == ["proline"]

    dropped = cairn.diff_datasets("wine:2", "wine:4")
    assert dropped.profile["schema"]["removed"] == ["ash"] and not dropped.unchanged
    assert "ash" not in _columns(dropped)


def test_files_folders_and_arrays(sdk_uri: str, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "train" / "cats").mkdir(parents=True)
    (folder / "train" / "cats" / "a.bin").write_bytes(b"\x00\x01" * 100)
    (folder / "train" / "b.txt").write_text("b")
    (folder / "labels.csv").write_text("file,label\na.bin,cat\n")
    v1 = cairn.log_dataset("images", folder)
    assert (v1.file_count, v1.profile) == (3, None)
    files = {f.path: f for f in cairn.client().list_dataset_files("images:1")[1]}
    assert sorted(files) == ["labels.csv", "train/b.txt", "train/cats/a.bin"]
    assert files["train/b.txt"].digest == hashlib.sha256(b"b").hexdigest()
    (folder / "train" / "b.txt").write_text("changed")
    (folder / "labels.csv").unlink()
    (folder / "new.txt").write_text("new")
    cairn.log_dataset("images", folder)
    diff = cairn.diff_datasets("images:1", "images:2")
    assert (diff.added, diff.removed) == (["new.txt"], ["labels.csv"])
    assert [c.path for c in diff.changed] == ["train/b.txt"]

    table = tmp_path / "table.csv"
    table.write_text("x,y\n1,a\n2,b\n3,a\n")
    single = cairn.log_dataset("table", table)
    assert single.profile is not None and single.profile["rows"] == 3

    array = cairn.log_dataset("array", np.arange(12.0).reshape(4, 3))
    assert array.profile is not None and [c["name"] for c in array.profile["columns"]] == [
        "0",
        "1",
        "2",
    ]
    back = cairn.get_dataset("array", tmp_path / "array")
    assert np.array_equal(np.load(back / "data.npy"), np.arange(12.0).reshape(4, 3))


def test_get_dataset_materialises_and_verifies(sdk_uri: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "x.bin").write_bytes(os.urandom(50_000))
    (folder / "y.txt").write_text("y")
    cairn.log_dataset("data", folder)
    dest = cairn.get_dataset("data:1", tmp_path / "out")
    assert (dest / "deep" / "x.bin").read_bytes() == (folder / "deep" / "x.bin").read_bytes()
    assert (dest / "y.txt").read_text() == "y"
    # Run again over a damaged copy: the damaged file is replaced, the good one kept as is.
    (dest / "y.txt").write_text("tampered")
    before = (dest / "deep" / "x.bin").stat().st_mtime_ns
    cairn.get_dataset("data:1", dest)
    assert (dest / "y.txt").read_text() == "y"
    assert (dest / "deep" / "x.bin").stat().st_mtime_ns == before
    assert not list(dest.rglob("*.part"))


def test_reference_keeps_identity_not_bytes(sdk_uri: str, tmp_path: Path) -> None:
    folder = tmp_path / "lake"
    folder.mkdir()
    (folder / "part-0.parquet").write_bytes(b"0" * 10)
    uri = folder.as_uri()
    v1 = cairn.log_dataset("lake", uri)
    assert (v1.kind, v1.source, v1.file_count, v1.size) == (DatasetKind.REFERENCE, uri, 1, 10)
    assert cairn.log_dataset("lake", uri).version == 1  # nothing changed there
    (folder / "part-1.parquet").write_bytes(b"1" * 5)
    assert cairn.log_dataset("lake", uri).version == 2
    assert cairn.diff_datasets("lake:1", "lake:2").added == ["part-1.parquet"]
    with pytest.raises(cairn.Invalid, match="by reference"):
        cairn.get_dataset("lake:2", tmp_path / "out")
    with pytest.raises(cairn.Invalid, match="gs://"):
        cairn.log_dataset("lake", "gs://bucket/data")


def test_runs_record_their_inputs(sdk_uri: str, wine: pd.DataFrame) -> None:
    version = cairn.log_dataset("wine", wine, batch="b1")
    with cairn.start_run() as run:
        run.use_dataset(version)
        run.use_dataset("wine:1", role="validation")
        run.use_dataset(version)  # twice in one role: recorded once
        logged = run.log_dataset("labels", pd.DataFrame({"y": [0, 1]}), role="test")
    inputs = cairn.client().run_inputs(run.id)
    assert [(i.name, i.version, i.role, i.batch) for i in inputs] == [
        ("wine", 1, "train", "b1"),
        ("wine", 1, "validation", "b1"),
        ("labels", 1, "test", None),
    ]
    assert logged.version == 1 and inputs[0].digest == version.digest


def test_bad_input_changes_nothing(sdk_uri: str, tmp_path: Path) -> None:
    with pytest.raises(cairn.Invalid, match="dataset name"):
        cairn.log_dataset("bad name!", pd.DataFrame({"x": [1]}))
    with pytest.raises(cairn.Invalid, match="neither a file nor a folder"):
        cairn.log_dataset("x", tmp_path / "missing.csv")
    with pytest.raises(cairn.Invalid, match="source must be"):
        cairn.log_dataset("x", 42)
    with pytest.raises(cairn.NotFound, match="does not exist"):
        cairn.get_dataset_version("nothing:1")
    with pytest.raises(cairn.Invalid, match="not a dataset reference"):
        cairn.get_dataset_version("runs/01JAAAAAAAAAAAAAAAAAAAAAAA")
    with cairn.start_run() as run, pytest.raises(cairn.Invalid, match="role"):
        run.use_dataset("x", role="bad role")
    assert cairn.list_datasets() == []


def test_large_file_goes_in_resumable_chunks(sdk_uri: str, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024 + 123))  # over the 8 MiB single-request size
    version = cairn.log_dataset("big", big)
    dest = cairn.get_dataset("big", tmp_path / "out")
    assert (dest / "big.bin").read_bytes() == big.read_bytes()
    assert version.size == big.stat().st_size


def test_identical_bytes_are_stored_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    cairn.set_tracking_uri(store)
    try:
        data = tmp_path / "same.bin"
        data.write_bytes(os.urandom(100_000))
        with cairn.start_run() as first:
            first.log_artifact(data)
        with cairn.start_run() as second:
            second.log_artifact(data, "copy.bin")
        cairn.log_dataset("same", data)
        cairn.log_dataset("other-name", data)
        blobs = LocalBlobStore(store / "artifacts")
        assert list(blobs.digests()) == [hashlib.sha256(data.read_bytes()).hexdigest()]
    finally:
        cairn.set_tracking_uri(tmp_path / "unused")
