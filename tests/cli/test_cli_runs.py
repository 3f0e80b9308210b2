"""``cairn runs`` and ``cairn projects`` on a real embedded store, plus the real executable
against a real server, and ``cairn db``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import cairn
from cairn.cli.main import cli
from cairn.cli.output import EXIT_CODES


@dataclass
class Store:
    uri: str
    a: str  # default project: lr 0.1, loss 0.5 -> 0.3, acc 0.8, notes
    b: str  # default project: lr 0.01, loss 0.2
    c: str  # project "other": lr 0.001, loss 0.9, failed


@pytest.fixture
def store(tmp_path: Path, sqlite_template: Path) -> Store:
    folder = tmp_path / "s"
    folder.mkdir()
    shutil.copy(sqlite_template, folder / "cairn.db")
    client = cairn.Client(str(folder))
    with client.start_run(
        "a", params={"lr": 0.1, "bs": 32}, tags={"team": "nlp"}, notes="first try\nwith warmup"
    ) as run_a:
        run_a.log({"loss": 0.5, "acc": 0.8}, step=0)
        run_a.log({"loss": 0.3}, step=1)
    with client.start_run("b", params={"lr": 0.01, "bs": 32}, capture=False) as run_b:
        run_b.log({"loss": 0.2}, step=0)
    with (
        pytest.raises(RuntimeError),
        client.start_run("c", params={"lr": 0.001}, project="other", capture=False) as run_c,
    ):
        run_c.log({"loss": 0.9}, step=0)
        raise RuntimeError("diverged")
    client.flush()
    client.close()
    return Store(str(folder), run_a.id, run_b.id, run_c.id)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def names(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [r["name"] for r in json.loads(result.stdout)["runs"]]


def assert_one_line_error(result: Result, code: str) -> str:
    assert result.exit_code == EXIT_CODES[code], result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error ({code}): "), result.stderr
    return lines[0]


# -- runs ls ------------------------------------------------------------------------


def test_ls_prints_a_table_with_the_first_params_and_metrics(store: Store) -> None:
    result = invoke("runs", "ls", "--uri", store.uri)
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split()[:5] == ["id", "name", "status", "start", "duration"]
    assert {"params.lr", "params.bs", "metrics.loss", "metrics.acc"} <= set(header.split())
    assert len(rows) == 3
    row_a = next(r for r in rows if r.startswith(store.a)).split()
    assert row_a[1:3] == ["a", "finished"]
    assert "0.1" in row_a and "0.3" in row_a  # lr and the last loss
    assert next(r for r in rows if r.startswith(store.c)).split()[2] == "failed"
    assert result.stderr == ""  # everything fitted on one page: no cursor hint


def test_ls_json_has_runs_and_values(store: Store) -> None:
    result = invoke("runs", "ls", "--uri", store.uri, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["next_cursor"] is None
    by_id = {r["id"]: r for r in data["runs"]}
    assert set(by_id) == {store.a, store.b, store.c}
    run_a = by_id[store.a]
    assert run_a["params"] == {"lr": "0.1", "bs": "32"}
    assert run_a["metrics"]["loss"]["last"] == 0.3
    assert run_a["metrics"]["loss"]["min"] == 0.3 and run_a["metrics"]["loss"]["max"] == 0.5
    assert run_a["status"] == "finished" and run_a["project"] == "default"
    assert run_a["duration_s"] >= 0


def test_ls_filters_orders_and_scopes_to_a_project(store: Store) -> None:
    base = ("runs", "ls", "--uri", store.uri, "--json")
    assert names(invoke(*base, "--filter", "metrics.loss < 0.6", "--order-by", "metrics.loss")) == [
        "b",
        "a",
    ]
    assert names(invoke(*base, "--order-by", "metrics.loss desc")) == ["c", "a", "b"]
    assert names(invoke(*base, "--filter", "params.bs = '32'", "--order-by", "name desc")) == [
        "b",
        "a",
    ]
    assert names(invoke(*base, "--project", "other")) == ["c"]
    assert names(invoke(*base, "--filter", "attributes.status = 'failed'")) == ["c"]


def test_ls_columns_chooses_what_is_shown(store: Store) -> None:
    result = invoke("runs", "ls", "--uri", store.uri, "--columns", "params.lr,tags.team,project")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header[5:] == ["params.lr", "tags.team", "project"]
    row_a = next(r for r in result.stdout.splitlines() if r.startswith(store.a)).split()
    assert row_a[-3:] == ["0.1", "nlp", "default"]


def test_ls_unknown_column_is_invalid(store: Store) -> None:
    result = invoke("runs", "ls", "--uri", store.uri, "--columns", "params.lr,bogus")
    assert "'bogus'" in assert_one_line_error(result, "invalid")


def test_ls_pages_with_a_cursor_hint_and_all_follows_it(store: Store) -> None:
    first = invoke("runs", "ls", "--uri", store.uri, "--limit", "2", "--order-by", "name")
    assert first.exit_code == 0, first.output
    assert len(first.stdout.splitlines()) == 3  # header and two runs
    hint = first.stderr.strip()
    assert hint.startswith("more runs: add --cursor ")
    cursor = hint.split("--cursor ")[1].split()[0]
    rest = invoke(
        "runs",
        "ls",
        "--uri",
        store.uri,
        "--limit",
        "2",
        "--order-by",
        "name",
        "--cursor",
        cursor,
        "--json",
    )
    assert names(rest) == ["c"]
    assert json.loads(rest.stdout)["next_cursor"] is None
    every = invoke(
        "runs", "ls", "--uri", store.uri, "--limit", "1", "--order-by", "name", "--all", "--json"
    )
    assert names(every) == ["a", "b", "c"]
    assert json.loads(every.stdout)["next_cursor"] is None


def test_malformed_filter_exits_invalid_and_names_the_column(store: Store) -> None:
    result = invoke("runs", "ls", "--uri", store.uri, "--filter", "metrics.loss >> 3")
    assert "column 15" in assert_one_line_error(result, "invalid")
    result = invoke("runs", "ls", "--uri", store.uri, "--order-by", "bogus")
    assert "column 1" in assert_one_line_error(result, "invalid")


def test_unknown_project_and_missing_store_are_not_found(store: Store, tmp_path: Path) -> None:
    result = invoke("runs", "ls", "--uri", store.uri, "--project", "nosuch")
    assert "nosuch" in assert_one_line_error(result, "not_found")
    missing = tmp_path / "typo"
    result = invoke("runs", "ls", "--uri", str(missing))
    assert "no Cairn store" in assert_one_line_error(result, "not_found")
    assert not missing.exists()  # a read command creates no store


def test_uri_defaults_to_the_environment(store: Store) -> None:
    result = CliRunner(env={"CAIRN_TRACKING_URI": store.uri}).invoke(
        cli, ["runs", "ls", "--json"], catch_exceptions=False
    )
    assert sorted(names(result)) == ["a", "b", "c"]


# -- runs show ----------------------------------------------------------------------


def test_show_prints_every_part_of_a_run(store: Store) -> None:
    result = invoke("runs", "show", store.a, "--uri", store.uri)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0] == f"run {store.a}  (a)"
    for section in ("command", "environment", "params", "tags", "metrics", "notes"):
        assert f"\n{section}\n" in out
    assert "\nerror\n" not in out
    lines = [line.split() for line in out.splitlines()]
    assert ["status", "finished"] in lines
    assert ["lr", "0.1"] in lines and ["team", "nlp"] in lines
    assert ["loss", "0.3", "1", "0.3", "0.5", "2"] in lines  # last, step, min, max, count
    assert ["first", "try"] in lines and ["with", "warmup"] in lines
    assert any(line[:1] == ["python"] for line in lines)
    assert any(line[:1] == ["packages"] for line in lines)


def test_show_a_failed_run_prints_its_error(store: Store) -> None:
    result = invoke("runs", "show", f"runs/{store.c}", "--uri", store.uri)
    assert result.exit_code == 0, result.output
    assert "\nerror\n" in result.stdout
    assert "RuntimeError: diverged" in result.stdout
    assert "\nenvironment\n" not in result.stdout  # captured nothing


def test_show_json(store: Store) -> None:
    result = invoke("runs", "show", f"runs/{store.a}", "--uri", store.uri, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"] == store.a and data["name"] == "a"
    assert data["notes"] == "first try\nwith warmup"
    assert data["metrics"]["loss"] == {
        "key": "loss",
        "last": 0.3,
        "last_step": 1,
        "last_timestamp": data["metrics"]["loss"]["last_timestamp"],
        "min": 0.3,
        "max": 0.5,
        "count": 2,
    }
    assert data["environment"]["python_version"]
    assert isinstance(data["environment"]["packages"], dict)


def test_unknown_run_is_not_found_with_a_one_line_error(store: Store) -> None:
    unknown = "01JD2Q0M5Y8C3T7H9K1V6W4X2Z"
    result = invoke("runs", "show", unknown, "--uri", store.uri)
    assert unknown in assert_one_line_error(result, "not_found")
    result = invoke("runs", "compare", store.a, f"runs/{unknown}", "--uri", store.uri)
    assert unknown in assert_one_line_error(result, "not_found")
    result = invoke("runs", "show", "runs/not-an-id", "--uri", store.uri)
    assert_one_line_error(result, "invalid")


# -- runs compare -------------------------------------------------------------------


def test_compare_marks_params_that_differ(store: Store) -> None:
    result = invoke("runs", "compare", store.a, f"runs/{store.b}", "--uri", store.uri)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[lines.index("params (* differs)") + 1].split() == ["key", store.a, store.b]
    assert ["*", "lr", "0.1", "0.01"] in [line.split() for line in lines]
    assert ["bs", "32", "32"] in [line.split() for line in lines]  # same value: no mark
    loss = next(line for line in lines if line.split()[1:2] == ["loss"]).split()
    assert loss == ["*", "loss", "0.3", "(0.3..0.5)", "0.2", "(0.2..0.2)"]
    acc = next(line for line in lines if line.split()[1:2] == ["acc"]).split()
    assert acc == ["*", "acc", "0.8", "(0.8..0.8)", "-"]  # b has no acc


def test_compare_json(store: Store) -> None:
    result = invoke("runs", "compare", store.a, store.b, store.c, "--uri", store.uri, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["id"] for r in data["runs"]] == [store.a, store.b, store.c]
    params = {p["key"]: p for p in data["params"]}
    assert params["lr"] == {"key": "lr", "values": ["0.1", "0.01", "0.001"], "differs": True}
    assert params["bs"] == {"key": "bs", "values": ["32", "32", None], "differs": True}
    two = json.loads(
        invoke("runs", "compare", store.a, store.b, "--uri", store.uri, "--json").stdout
    )
    assert {p["key"]: p["differs"] for p in two["params"]} == {"bs": False, "lr": True}
    loss = next(m for m in data["metrics"] if m["key"] == "loss")
    assert [v["last"] for v in loss["values"]] == [0.3, 0.2, 0.9]
    assert loss["values"][0]["min"] == 0.3 and loss["values"][0]["max"] == 0.5


def test_compare_needs_two_runs(store: Store) -> None:
    result = CliRunner().invoke(cli, ["runs", "compare", store.a, "--uri", store.uri])
    assert result.exit_code == 2
    assert "at least two runs" in result.stderr


# -- projects -----------------------------------------------------------------------


def test_projects_ls(store: Store) -> None:
    result = invoke("projects", "ls", "--uri", store.uri)
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["name", "runs", "running", "last", "activity", "description"]
    assert [line[:3] for line in lines[1:]] == [["default", "2", "0"], ["other", "1", "0"]]
    data = json.loads(invoke("projects", "ls", "--uri", store.uri, "--json").stdout)
    assert {p["name"]: p["runs"] for p in data} == {"default": 2, "other": 1}
    assert all(p["last_activity"] for p in data)


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "ls"],
        ["runs", "show"],
        ["runs", "compare"],
        ["projects", "ls"],
    ],
)
def test_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "--uri" in result.stdout and "--json" in result.stdout


# -- the real executable ------------------------------------------------------------


def _cairn_executable() -> str:
    path = Path(sys.executable).parent / "cairn"
    return str(path) if path.exists() else shutil.which("cairn") or "cairn"


@pytest.mark.server
def test_real_cairn_against_a_real_server(server: str) -> None:
    project = f"cli{uuid.uuid4().hex[:8]}"
    client = cairn.Client(server, project=project)
    with client.start_run("remote", params={"lr": 0.5}, capture=False) as run:
        run.log({"loss": 1.5}, step=0)
    client.flush()
    client.close()
    exe = _cairn_executable()
    listed = subprocess.run(
        [exe, "runs", "ls", "--uri", server, "--project", project, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    (found,) = json.loads(listed.stdout)["runs"]
    assert found["id"] == run.id and found["params"] == {"lr": "0.5"}
    shown = subprocess.run(
        [exe, "runs", "show", "runs/01JD2Q0M5Y8C3T7H9K1V6W4X2Z", "--uri", server],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == EXIT_CODES["not_found"]
    assert shown.stderr.startswith("error (not_found): ")


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    from cairn.store.schema import head_revision

    folder = str(tmp_path / "fresh")
    head = head_revision()
    first = invoke("db", "upgrade", "--store", folder)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == f"{folder}: upgraded schema (empty) -> {head}"
    again = invoke("db", "upgrade", "--store", folder)
    assert again.stdout.strip() == f"{folder}: already at schema revision {head}"
    current = invoke("db", "current", "--store", folder)
    assert current.exit_code == 0, current.output
    assert current.stdout.strip() == f"store: {head}  needed: {head}"
