"""``cairn artifacts ls|get`` against an embedded store."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import cairn
from cairn.cli.main import cli
from cairn.cli.output import EXIT_CODES


def _store_with_artifacts(tmp_path: Path) -> tuple[str, str]:
    uri = str(tmp_path / "store")
    client = cairn.Client(uri, project="art")
    try:
        with client.start_run("a", capture=False) as run:
            run.log_text("hello", "notes/readme.txt")
            run.log_json({"acc": 0.9}, "metrics.json")
    finally:
        client.close()
    return uri, run.id


def test_ls_lists_paths_sizes_and_types(tmp_path: Path) -> None:
    uri, run_id = _store_with_artifacts(tmp_path)
    result = CliRunner().invoke(cli, ["artifacts", "ls", run_id, "--uri", uri])
    assert result.exit_code == 0, result.output
    assert "notes/readme.txt" in result.output and "metrics.json" in result.output
    assert "5 B" in result.output and "text/plain" in result.output
    as_json = CliRunner().invoke(cli, ["artifacts", "ls", f"runs/{run_id}", "--uri", uri, "--json"])
    entries = {e["path"]: e for e in json.loads(as_json.output)}
    assert entries["notes/readme.txt"]["size"] == 5
    only = CliRunner().invoke(cli, ["artifacts", "ls", run_id, "--uri", uri, "--prefix", "notes"])
    assert "metrics.json" not in only.output


def test_get_downloads_a_file_or_everything(tmp_path: Path) -> None:
    uri, run_id = _store_with_artifacts(tmp_path)
    one = CliRunner().invoke(
        cli,
        ["artifacts", "get", run_id, "metrics.json", "--uri", uri, "--dest", str(tmp_path / "d")],
    )
    assert one.exit_code == 0, one.output
    assert json.loads((tmp_path / "d" / "metrics.json").read_text()) == {"acc": 0.9}
    everything = CliRunner().invoke(
        cli, ["artifacts", "get", run_id, "--uri", uri, "--dest", str(tmp_path / "all")]
    )
    assert everything.exit_code == 0, everything.output
    assert (tmp_path / "all" / "notes" / "readme.txt").read_text() == "hello"


def test_missing_artifact_and_bad_path_exit_with_their_codes(tmp_path: Path) -> None:
    uri, run_id = _store_with_artifacts(tmp_path)
    missing = CliRunner().invoke(cli, ["artifacts", "get", run_id, "nope.txt", "--uri", uri])
    assert missing.exit_code == EXIT_CODES["not_found"]
    escape = CliRunner().invoke(cli, ["artifacts", "get", run_id, "../x", "--uri", uri])
    assert escape.exit_code == EXIT_CODES["invalid"]
    assert "path" in escape.output
