"""Run artifacts through the SDK, embedded and over HTTP (a real server)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.blobs import LocalBlobStore


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_log_file_list_and_download(sdk_uri: str, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    data = bytes(range(256)) * 5000
    source.write_bytes(data)
    with cairn.start_run() as run:
        entry = run.log_artifact(source)
        renamed = run.log_artifact(source, "weights/final.bin")
    assert (entry.path, entry.digest, entry.size) == ("model.bin", _sha(data), len(data))
    assert entry.media_type == "application/octet-stream"
    assert renamed.path == "weights/final.bin" and renamed.digest == entry.digest
    assert [e.path for e in cairn.list_artifacts(run.id)] == ["model.bin", "weights/final.bin"]
    assert [e.path for e in cairn.list_artifacts(run.id, prefix="weights")] == ["weights/final.bin"]
    got = cairn.download_artifacts(run.id, "weights/final.bin", tmp_path / "dl")
    assert got == tmp_path / "dl" / "weights" / "final.bin"
    assert got.read_bytes() == data
    assert not [p for p in got.parent.iterdir() if p.name.endswith(".part")]


def test_log_folder_keeps_relative_paths(sdk_uri: str, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (folder / "plots" / "deep").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "plots" / "b.csv").write_text("x,y\n1,2\n")
    (folder / "plots" / "deep" / "c.json").write_text("{}")
    with cairn.start_run() as run:
        run.log_artifacts(folder)
        run.log_artifacts(folder / "plots", prefix="eval")
    entries = {e.path: e for e in cairn.list_artifacts(run.id)}
    assert sorted(entries) == [
        "a.txt",
        "eval/b.csv",
        "eval/deep/c.json",
        "plots/b.csv",
        "plots/deep/c.json",
    ]
    assert entries["plots/b.csv"].media_type == "text/csv"
    assert entries["plots/deep/c.json"].media_type == "application/json"
    dest = tmp_path / "back"
    assert cairn.download_artifacts(run.id, dest=dest) == dest
    assert (dest / "plots" / "deep" / "c.json").read_text() == "{}"
    assert (dest / "a.txt").read_text() == "a"
    assert cairn.download_artifacts(run.id, "eval", dest / "x") == dest / "x" / "eval"
    assert sorted(p.name for p in (dest / "x" / "eval").rglob("*")) == ["b.csv", "c.json", "deep"]


def test_text_json_and_table(sdk_uri: str, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": [1, 2, 3], "label": ["a", "b", "c"]})
    with cairn.start_run() as run:
        text = run.log_text("héllo\n", "notes/readme.md")
        meta = run.log_json({"classes": 3, "names": ["a", "b"]}, "meta.json")
        table = run.log_table(df, "eval/preds.csv")
    assert text.media_type == "text/markdown" and text.size == len("héllo\n".encode())
    assert meta.media_type == "application/json" and table.media_type == "text/csv"
    dest = cairn.download_artifacts(run.id, dest=tmp_path)
    assert (dest / "notes" / "readme.md").read_text(encoding="utf-8") == "héllo\n"
    assert json.loads((dest / "meta.json").read_text()) == {"classes": 3, "names": ["a", "b"]}
    back = pd.read_csv(dest / "eval" / "preds.csv")
    assert back.to_dict("list") == {"x": [1, 2, 3], "label": ["a", "b", "c"]}


def test_table_as_parquet(sdk_uri: str, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"x": [1.5, 2.5]})
    with cairn.start_run() as run:
        run.log_table(df, "t.parquet")
    path = cairn.download_artifacts(run.id, "t.parquet", tmp_path)
    assert pd.read_parquet(path).to_dict("list") == {"x": [1.5, 2.5]}


def test_figure(sdk_uri: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with cairn.start_run() as run:
        entry = run.log_figure(fig, "plots/loss.png")
    plt.close(fig)
    assert entry.media_type == "image/png"
    data = cairn.download_artifacts(run.id, "plots/loss.png", tmp_path).read_bytes()
    assert data.startswith(b"\x89PNG")


def test_logging_a_path_again_makes_a_new_version(sdk_uri: str, tmp_path: Path) -> None:
    with cairn.start_run() as run:
        run.log_text("one", "state.txt")
        second = run.log_text("two", "state.txt")
    [entry] = cairn.list_artifacts(run.id)
    assert entry.digest == second.digest == _sha(b"two")
    assert cairn.download_artifacts(run.id, "state.txt", tmp_path).read_text() == "two"


def test_same_bytes_in_two_runs_are_stored_once(sdk_uri: str, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b"same bytes " * 10_000)
    with cairn.start_run() as first:
        a = first.log_artifact(source)
    with cairn.start_run() as second:
        b = second.log_artifact(source, "copy/data.bin")
    assert a.digest == b.digest
    if sdk_uri.startswith("http"):
        return  # the server's store is its own; the embedded case counts the files
    blobs = LocalBlobStore(Path(sdk_uri) / "artifacts")
    assert list(blobs.digests()) == [a.digest]


@pytest.mark.parametrize(
    "name", ["../x", "a/../../x", "/etc/passwd", "C:\\x", "C:/x", "\\\\server\\share", "a\x00b"]
)
def test_path_traversal_is_refused_and_nothing_stored(
    sdk_uri: str, tmp_path: Path, name: str
) -> None:
    source = tmp_path / "f.txt"
    source.write_text("secret")
    with cairn.start_run() as run:
        with pytest.raises(cairn.Invalid) as caught:
            run.log_artifact(source, name)
        assert caught.value.field == "path"
        with pytest.raises(cairn.Invalid):
            run.log_text("x", name)
    assert cairn.list_artifacts(run.id) == []
    if not sdk_uri.startswith("http"):
        assert list(LocalBlobStore(Path(sdk_uri) / "artifacts").digests()) == []


def test_missing_run_and_missing_artifact_are_not_found(sdk_uri: str, tmp_path: Path) -> None:
    with cairn.start_run() as run:
        run.log_text("x", "a.txt")
    with pytest.raises(cairn.NotFound):
        cairn.download_artifacts(run.id, "nope.txt", tmp_path)
    with pytest.raises(cairn.NotFound):
        cairn.list_artifacts("01JZZZZZZZZZZZZZZZZZZZZZZZ")


def test_log_artifacts_refuses_a_non_folder(sdk_uri: str, tmp_path: Path) -> None:
    with cairn.start_run() as run, pytest.raises(cairn.Invalid) as caught:
        run.log_artifacts(tmp_path / "missing")
    assert caught.value.field == "folder"


class _FakeFigure:
    """Stands in for a matplotlib figure where matplotlib is not installed."""

    def savefig(self, buffer: Any, format: str) -> None:
        buffer.write(f"figure as {format}".encode())


def test_figure_format_follows_the_name(sdk_uri: str, tmp_path: Path) -> None:
    with cairn.start_run() as run:
        png = run.log_figure(_FakeFigure(), "fig")
        svg = run.log_figure(_FakeFigure(), "plots/fig.svg")
    assert (png.media_type, svg.media_type) == ("image/png", "image/svg+xml")
    assert cairn.download_artifacts(run.id, "fig", tmp_path).read_bytes() == b"figure as png"
    with cairn.start_run() as run, pytest.raises(cairn.Invalid) as caught:
        run.log_figure(object(), "x.png")
    assert caught.value.field == "fig"


def test_parquet_without_pyarrow_is_refused(sdk_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pd = pytest.importorskip("pandas")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    with cairn.start_run() as run, pytest.raises(cairn.Invalid) as caught:
        run.log_table(pd.DataFrame({"x": [1]}), "t.parquet")
    assert caught.value.field == "name"
    assert cairn.list_artifacts(run.id) == []


def test_server_keeps_blobs_where_artifacts_says(tmp_path: Path) -> None:
    from conftest import start_server, stop_server

    folder = tmp_path / "elsewhere"
    proc, url = start_server(str(tmp_path / "store"), "--artifacts", str(folder))
    client = cairn.Client(url, project="p")
    try:
        with client.start_run(capture=False) as run:
            entry = run.log_text("kept elsewhere", "a.txt")
        assert list(LocalBlobStore(folder).digests()) == [entry.digest]
        assert not (tmp_path / "store" / "artifacts").exists()
    finally:
        client.close()
        stop_server(proc)


def test_a_damaged_blob_is_refused_on_download(tmp_path: Path) -> None:
    store = tmp_path / "store"
    cairn.set_tracking_uri(store)
    try:
        source = tmp_path / "weights.bin"
        source.write_bytes(b"w" * 4096)
        with cairn.start_run() as run:
            entry = run.log_artifact(source)
        blob = LocalBlobStore(store / "artifacts").path(entry.digest)
        blob.write_bytes(b"x" * 4096)  # same size, other bytes: bit rot
        with pytest.raises(cairn.CairnError, match=r"damaged|corrupt"):
            cairn.download_artifacts(run.id, "weights.bin", tmp_path / "out")
        assert not (tmp_path / "out" / "weights.bin").exists()
    finally:
        cairn.set_tracking_uri(tmp_path / "unused")
