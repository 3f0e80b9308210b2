"""``cairn data add|ls|show|diff|get`` on a real embedded store (and once over HTTP), and
the progress bars of long transfers."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cairn.cli import progress as progress_module
from cairn.cli.main import cli
from cairn.cli.output import EXIT_CODES
from cairn.cli.progress import MIN_BYTES, transfer_progress


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def write_csv(path: Path, scale: float = 1.0, rows: int = 200) -> Path:
    lines = ["id,alcohol,colour"]
    for i in range(rows):
        lines.append(f"{i},{(10 + i % 37 / 10) * scale:.3f},{'red' if i % 3 else 'white'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def store(tmp_path: Path, sqlite_template: Path) -> str:
    folder = tmp_path / "store"
    folder.mkdir()
    shutil.copy(sqlite_template, folder / "cairn.db")
    return str(folder)


@pytest.fixture
def wine(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "wine.csv")


def test_add_versions_new_content_once(store: str, wine: Path, tmp_path: Path) -> None:
    first = ok("data", "add", "wine", str(wine), "--uri", store, "-m", "first harvest")
    assert first.stdout.startswith("wine:1 created (digest ")
    assert "1 file," in first.stdout
    again = ok("data", "add", "wine", str(wine), "--uri", store)
    assert again.stdout.strip() == "wine:1 unchanged (content matches wine:1)"
    changed = write_csv(tmp_path / "changed" / "wine.csv", scale=2.0)
    second = ok("data", "add", "wine", str(changed), "--uri", store, "--batch", "2026-11")
    assert second.stdout.startswith("wine:2 created")
    back = ok("data", "add", "wine", str(wine), "--uri", store, "--json")
    as_json = json.loads(back.stdout)
    assert (as_json["version"], as_json["created"]) == (1, False)
    assert as_json["message"] == "first harvest" and as_json["profile"]["rows"] == 200


def test_add_creates_a_store_where_there_is_none(tmp_path: Path, wine: Path) -> None:
    fresh = str(tmp_path / "fresh")
    out = json.loads(ok("data", "add", "wine", str(wine), "--uri", fresh, "--json").stdout)
    assert (out["version"], out["created"], out["kind"]) == (1, True, "files")
    assert (Path(fresh) / "cairn.db").is_file()


def test_ls_lists_datasets_then_versions_newest_first(
    store: str, wine: Path, tmp_path: Path
) -> None:
    ok("data", "add", "wine", str(wine), "--uri", store, "-m", "first")
    scaled = write_csv(tmp_path / "scaled.csv", scale=3.0)
    ok("data", "add", "wine", str(scaled), "--uri", store, "--batch", "2026-11", "-m", "second")
    ok("data", "add", "other", str(wine), "--uri", store, "--project", "elsewhere")
    datasets = ok("data", "ls", "--uri", store).stdout.splitlines()
    assert datasets[0].split() == ["name", "versions", "latest", "created"]
    assert datasets[1].split()[:3] == ["wine", "2", "2"] and len(datasets) == 2
    versions = ok("data", "ls", "wine", "--uri", store).stdout.splitlines()
    assert versions[0].split()[:4] == ["version", "batch", "files", "size"]
    assert versions[1].split()[:2] == ["2", "2026-11"] and versions[1].endswith("second")
    assert versions[2].startswith("1 ") and versions[2].endswith("first")
    as_json = json.loads(ok("data", "ls", "wine", "--uri", store, "--json").stdout)
    assert [v["version"] for v in as_json] == [2, 1]
    elsewhere = json.loads(ok("data", "ls", "-p", "elsewhere", "--uri", store, "--json").stdout)
    assert [d["name"] for d in elsewhere] == ["other"]


def test_show_prints_the_header_and_the_profile(store: str, wine: Path) -> None:
    ok("data", "add", "wine", str(wine), "--uri", store, "--batch", "2026-10")
    shown = ok("data", "show", "wine", "--uri", store, "--files").stdout
    assert "version  default/wine:1" in shown and "batch    2026-10" in shown
    assert "profile: 200 rows, 3 columns" in shown
    row = next(line for line in shown.splitlines() if line.startswith("alcohol"))
    assert row.split()[:5] == ["alcohol", "numeric", "0", "10", "13.6"]
    colour = next(line for line in shown.splitlines() if line.startswith("colour"))
    assert "categorical" in colour and "red (133), white (67)" in colour
    assert any(line.startswith("wine.csv") for line in shown.splitlines())  # --files
    as_json = json.loads(ok("data", "show", "wine@2026-10", "--uri", store, "--json").stdout)
    assert as_json["profile"]["rows"] == 200 and "files" not in as_json
    listed = json.loads(ok("data", "show", "wine:1", "--uri", store, "--json", "--files").stdout)
    assert [f["path"] for f in listed["files"]] == ["wine.csv"]


def test_diff_marks_a_scaled_column_as_drifted(store: str, wine: Path, tmp_path: Path) -> None:
    ok("data", "add", "wine", str(wine), "--uri", store)
    scaled = write_csv(tmp_path / "scaled" / "wine.csv", scale=2.0)
    ok("data", "add", "wine", str(scaled), "--uri", store)
    out = ok("data", "diff", "wine:1", "wine:2", "--uri", store).stdout
    assert "files: 0 added, 0 removed, 1 changed" in out and "~ wine.csv" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line}
    assert lines["alcohol"].rstrip().endswith("DRIFT")
    assert "DRIFT" not in lines["id"] and "DRIFT" not in lines["colour"]
    as_json = json.loads(ok("data", "diff", "wine:1", "wine:2", "--uri", store, "--json").stdout)
    drifted = {c["column"]: c["drifted"] for c in as_json["profile"]["columns"]}
    assert drifted == {"id": False, "alcohol": True, "colour": False}
    assert as_json["unchanged"] is False


def test_diff_of_identical_versions_says_no_differences(store: str, wine: Path) -> None:
    ok("data", "add", "wine", str(wine), "--uri", store)
    same = ok("data", "diff", "wine:1", "wine", "--uri", store)
    assert same.stdout.strip() == "default/wine:1 -> default/wine:1: no differences"


def test_get_writes_the_same_bytes(store: str, wine: Path, tmp_path: Path) -> None:
    ok("data", "add", "wine", str(wine), "--uri", store)
    dest = tmp_path / "out"
    got = ok("data", "get", "wine:1", "--uri", store, "--dest", str(dest))
    assert got.stdout.strip() == str(dest)
    assert (dest / "wine.csv").read_bytes() == wine.read_bytes()


def test_a_folder_source_comes_back_file_for_file(store: str, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "a.bin").write_bytes(bytes(range(256)) * 10)
    (folder / "labels.txt").write_text("cat\n")
    added = ok("data", "add", "images", str(folder), "--uri", store)
    assert added.stdout.startswith("images:1 created") and "2 files" in added.stdout
    assert "no profile" in ok("data", "show", "images", "--uri", store).stdout
    dest = tmp_path / "back"
    ok("data", "get", "images", "--uri", store, "--dest", str(dest))
    for name in ("cats/a.bin", "labels.txt"):
        assert (dest / name).read_bytes() == (folder / name).read_bytes()


def test_a_file_uri_is_kept_by_reference(store: str, wine: Path, tmp_path: Path) -> None:
    uri = wine.parent.as_uri()
    added = ok("data", "add", "raw", uri, "--uri", store)
    assert added.stdout.startswith("raw:1 created") and f"by reference to {uri}" in added.stdout
    shown = ok("data", "show", "raw", "--uri", store).stdout
    assert "kind     reference" in shown and f"source   {uri}" in shown
    refused = invoke("data", "get", "raw", "--uri", store, "--dest", str(tmp_path / "x"))
    assert refused.exit_code == EXIT_CODES["invalid"]
    assert "by reference" in refused.stderr


def test_bad_input_exits_with_its_code_and_a_clear_message(
    store: str, wine: Path, tmp_path: Path
) -> None:
    ok("data", "add", "wine", str(wine), "--uri", store)
    for args in (("show", "nope"), ("ls", "nope"), ("diff", "wine:1", "wine:9"), ("get", "nope")):
        missing = invoke("data", *args, "--uri", store)
        assert missing.exit_code == EXIT_CODES["not_found"], missing.output
        assert "does not exist" in missing.stderr and missing.stdout == ""
    absent = invoke("data", "add", "wine", str(tmp_path / "absent.csv"), "--uri", store)
    assert absent.exit_code == EXIT_CODES["invalid"]
    assert "neither a file nor a folder" in absent.stderr
    no_store = invoke("data", "ls", "--uri", str(tmp_path / "typo"))
    assert no_store.exit_code == EXIT_CODES["not_found"] and "no Cairn store" in no_store.stderr


@pytest.mark.server
def test_add_and_get_over_http(server: str, wine: Path, tmp_path: Path) -> None:
    project = f"cli{uuid.uuid4().hex[:8]}"
    first = ok("data", "add", "wine", str(wine), "--uri", server, "-p", project)
    assert first.stdout.startswith("wine:1 created")
    again = ok("data", "add", "wine", str(wine), "--uri", server, "-p", project)
    assert again.stdout.strip() == "wine:1 unchanged (content matches wine:1)"
    dest = tmp_path / "http"
    ok("data", "get", "wine:1", "--uri", server, "-p", project, "--dest", str(dest))
    assert (dest / "wine.csv").read_bytes() == wine.read_bytes()


# -- progress bars ------------------------------------------------------------------


def test_no_bar_off_a_terminal_or_for_a_small_transfer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str] = []

    def size() -> int:
        asked.append("size")
        return MIN_BYTES * 4

    with transfer_progress(size, "copying") as progress:
        progress(1024)
    assert asked == []  # off a terminal the size is not even worked out
    monkeypatch.setattr(progress_module, "_stderr_is_terminal", lambda: True)
    with transfer_progress(MIN_BYTES, "copying") as progress:
        progress(MIN_BYTES)
    assert "copying" not in capsys.readouterr().err


def test_a_bar_on_a_terminal_for_a_large_transfer(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[int] = []

    class Bar:
        def __init__(self, length: int, label: str, **options: object) -> None:
            assert (length, label) == (MIN_BYTES * 2, "copying")

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def update(self, n: int) -> None:
            steps.append(n)

    monkeypatch.setattr(progress_module, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(progress_module.click, "progressbar", Bar)
    with transfer_progress(lambda: MIN_BYTES * 2, "copying") as progress:
        progress(MIN_BYTES)
        progress(0)
        progress(MIN_BYTES * 5)  # a retried chunk: never past 100%
        progress(10)
    assert steps == [MIN_BYTES, MIN_BYTES]
