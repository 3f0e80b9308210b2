"""``cairn models ls|show|versions|approve|reject|promote|history|rollback|protect|compare``
on a real embedded store with real scikit-learn models (and once over HTTP), and the exit
codes of bad input."""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import cairn
from cairn.cli.main import cli
from cairn.cli.output import EXIT_CODES


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json").stdout)


@dataclass
class Store:
    uri: str
    runs: list[str]  # the runs that registered iris:1 and iris:2


def register_iris(uri: str, tmp_path: Path, project: str | None = None) -> list[str]:
    """iris:1 (C=1.0, trained on iris-data@2026-10), iris:2 (C=0.5, on iris-data@2026-11)."""
    x, y = load_iris(return_X_y=True)
    client = cairn.Client(uri)
    runs = []
    try:
        for i, (c, batch) in enumerate([(1.0, "2026-10"), (0.5, "2026-11")]):
            csv = tmp_path / f"iris-{i}.csv"
            rows = [",".join(f"{v:.1f}" for v in row) for row in x[: 100 + 25 * i]]
            csv.write_text("a,b,c,d\n" + "\n".join(rows) + "\n")
            client.log_dataset("iris-data", str(csv), batch, project=project)
            with client.start_run(
                f"train-{i}", params={"C": c}, project=project, capture=False
            ) as run:
                run.use_dataset("iris-data@" + batch)
                run.log({"accuracy": 0.9 + i / 20})
                model = LogisticRegression(C=c, max_iter=500).fit(x, y)
                run.register_model("iris", model, input_example=x[:5])
                runs.append(run.id)
        client.flush()
    finally:
        client.close()
    return runs


@pytest.fixture
def store(tmp_path: Path, sqlite_template: Path) -> Store:
    folder = tmp_path / "store"
    folder.mkdir()
    shutil.copy(sqlite_template, folder / "cairn.db")
    return Store(str(folder), register_iris(str(folder), tmp_path))


def test_ls_and_versions_show_aliases_and_protection(store: Store) -> None:
    ok("models", "promote", "iris", "1", "--to", "production", "--uri", store.uri)
    ok("models", "promote", "iris", "2", "--to", "staging", "--uri", store.uri)
    ok("models", "protect", "iris", "production", "--uri", store.uri)
    listed = ok("models", "ls", "--uri", store.uri).stdout.splitlines()
    assert listed[0].split() == ["name", "versions", "latest", "aliases", "protected"]
    assert listed[1].split() == ["iris", "2", "2", "production→1,", "staging→2", "production"]
    [model] = as_json("models", "ls", "--uri", store.uri)
    assert model["aliases"] == {"production": 1, "staging": 2}
    assert model["protected_aliases"] == ["production"]

    table = ok("models", "versions", "iris", "--uri", store.uri).stdout.splitlines()
    assert table[0].split()[:4] == ["version", "semver", "bump", "reason"]
    assert table[1].startswith("2 ") and "1.1.0" in table[1] and "staging" in table[1]
    assert "training data" in table[1] and store.runs[1] in table[1]
    assert table[2].split()[:4] == ["1", "1.0.0", "first", "version"]
    versions = as_json("models", "versions", "iris", "--uri", store.uri)
    assert [(v["version"], v["approval"], v["aliases"]) for v in versions] == [
        (2, "pending", ["staging"]),
        (1, "pending", ["production"]),
    ]


def test_show_prints_the_model_card(store: Store) -> None:
    ok("models", "approve", "iris:2", "-m", "holdout 0.95", "--uri", store.uri)
    ok("models", "promote", "iris", "2", "--to", "production", "--uri", store.uri)
    shown = ok("models", "show", "iris@production", "--uri", store.uri).stdout
    assert shown.startswith("model default/iris:2\n")
    lines = {line.split()[0]: line for line in shown.splitlines() if line.strip()}
    assert "1.1.0 (training data" in lines["semver"]
    assert lines["algorithm"].split()[1] == "sklearn.linear_model.LogisticRegression"
    assert lines["approval"].split()[1] == "approved" and lines["approval"].endswith("holdout 0.95")
    assert lines["aliases"].split()[1] == "production"
    assert lines["run"].split()[1] == store.runs[1]
    assert lines["C"].split() == ["C", "0.5"] and lines["accuracy"].split() == ["accuracy", "0.95"]
    assert "default/iris-data:2" in shown and "2026-11" in lines["default/iris-data:2"]
    assert lines["inputs"].split()[1:] == ["tensor", "float64", "[-1,", "4]"]
    assert "model.pkl" in lines and "cairn-model.json" in lines
    for ref in ("iris:2", "iris@1.1.0", "iris"):
        card = as_json("models", "show", ref, "--uri", store.uri)
        assert (card["version"], card["approval"]["state"]) == (2, "approved")
    card = as_json("models", "show", "iris:1", "--uri", store.uri)
    assert card["run"]["params"] == {"C": "1.0"}
    assert [d["batch"] for d in card["training_data"]] == ["2026-10"]


def test_protected_alias_refuses_an_unapproved_version(store: Store) -> None:
    ok("models", "protect", "iris", "production", "--uri", store.uri)
    refused = invoke("models", "promote", "iris", "2", "--to", "production", "--uri", store.uri)
    assert refused.exit_code == EXIT_CODES["conflict"]
    assert "protected" in refused.stderr and "iris:2 is pending" in refused.stderr
    rejected = ok("models", "reject", "iris:2", "-m", "worse recall", "--uri", store.uri).stdout
    assert "iris:2 (1.1.0) rejected" in rejected and rejected.strip().endswith("worse recall")
    again = invoke("models", "promote", "iris", "2", "--to", "production", "--uri", store.uri)
    assert again.exit_code == EXIT_CODES["conflict"] and "is rejected" in again.stderr
    ok("models", "approve", "iris:2", "--uri", store.uri)
    moved = ok("models", "promote", "iris", "1.1.0", "--to", "production", "--uri", store.uri)
    assert moved.stdout.strip() == "iris@production → iris:2 (1.1.0, approved)"
    off = ok("models", "protect", "iris", "production", "--off", "--uri", store.uri)
    assert "not protected" in off.stdout
    assert as_json("models", "ls", "--uri", store.uri)[0]["protected_aliases"] == []


def test_history_at_a_time_and_rollback(store: Store) -> None:
    ok("models", "promote", "iris", "1", "--to", "production", "--uri", store.uri)
    ok("models", "promote", "iris", "2", "--to", "staging", "--uri", store.uri)
    ok(
        "models",
        "promote",
        "iris",
        "staging",
        "--to",
        "production",
        "--reason",
        "v2 wins",
        "--uri",
        store.uri,
    )
    moves = as_json("models", "history", "iris", "--alias", "production", "--uri", store.uri)
    assert [(m["from_version"], m["to_version"]) for m in moves] == [(None, 1), (1, 2)]
    back = ok(
        "models",
        "rollback",
        "iris",
        "--alias",
        "production",
        "--reason",
        "latency",
        "--uri",
        store.uri,
    )
    assert back.stdout.strip() == "iris@production → iris:1 (1.0.0, pending)"

    table = ok("models", "history", "iris", "--uri", store.uri).stdout.splitlines()
    assert table[0].split() == ["time", "alias", "from", "→", "to", "actor", "reason"]
    cells = [line.split()[2:6] for line in table[1:]]
    assert cells == [
        ["production", "-", "→", "1"],
        ["staging", "-", "→", "2"],
        ["production", "1", "→", "2"],
        ["production", "2", "→", "1"],
    ]
    assert table[3].endswith("v2 wins") and table[4].endswith("latency")

    first = datetime.fromisoformat(moves[0]["at"])
    second = datetime.fromisoformat(moves[1]["at"])

    def pointed(at: datetime) -> Any:
        args = ["models", "history", "iris", "--alias", "production", "--at", at.isoformat()]
        return as_json(*args, "--uri", store.uri)["version"]

    assert pointed(first - timedelta(seconds=1)) is None
    assert pointed(first)["version"] == 1
    assert pointed(second)["version"] == 2
    naive = second.replace(tzinfo=None).isoformat()  # no offset: UTC, as history prints
    said = ok(
        "models", "history", "iris", "--alias", "production", "--at", naive, "--uri", store.uri
    )
    assert said.stdout.startswith("iris@production pointed to iris:2 (1.1.0) at ")


def test_compare_marks_the_rows_that_differ(store: Store) -> None:
    out = ok("models", "compare", "iris:1", "iris:2", "--uri", store.uri).stdout
    assert out.startswith("default/iris:1 vs default/iris:2 (* differs)")
    rows = {line.lstrip("* ").split()[0]: line for line in out.splitlines() if line.strip()}
    assert rows["semver"].split() == ["*", "semver", "1.0.0", "1.1.0"]
    assert rows["flavor"].split() == ["flavor", "sklearn", "sklearn"]
    assert rows["C"].split() == ["*", "C", "1.0", "0.5"]
    assert rows["accuracy"].split() == ["*", "accuracy", "0.9", "0.95"]
    assert rows["default/iris-data"].split() == ["*", "default/iris-data", "1", "2"]
    assert rows["inputs"].split() == ["inputs", *["tensor", "float64", "[-1,", "4]"] * 2]
    found = as_json("models", "compare", "iris:1", "iris:2", "--uri", store.uri)
    assert found["params"]["C"] == {"a": "1.0", "b": "0.5", "differs": True}
    assert found["signature"]["differs"] is False


def test_bad_input_exits_with_its_code(store: Store, tmp_path: Path) -> None:
    for args in (
        ["show", "nope"],
        ["versions", "nope"],
        ["promote", "nope", "1", "--to", "production"],
        ["history", "nope"],
        ["show", "iris:9"],
        ["show", "iris@canary"],
    ):
        result = invoke("models", *args, "--uri", store.uri)
        assert result.exit_code == EXIT_CODES["not_found"], (args, result.output)
        assert result.stderr.startswith("error (not_found): ") and result.stderr.endswith("\n")
    unknown = invoke("models", "show", "nope", "--uri", store.uri)
    assert "model 'nope' does not exist in project 'default'" in unknown.stderr
    for args in (
        ["promote", "iris", "1", "--to", "bad alias"],
        ["promote", "iris", "1", "--to", "latest"],
        ["history", "iris", "--alias", "9lives"],
        ["protect", "iris", "no/slash"],
    ):
        result = invoke("models", *args, "--uri", store.uri)
        assert result.exit_code == EXIT_CODES["invalid"], (args, result.output)
        assert "must start with a letter" in result.stderr
    usage = invoke("models", "history", "iris", "--at", "2026-03-03", "--uri", store.uri)
    assert usage.exit_code == 2 and "--at needs --alias" in usage.output
    bad_time = invoke(
        "models", "history", "iris", "--alias", "production", "--at", "soon", "--uri", store.uri
    )
    assert bad_time.exit_code == 2 and "ISO 8601" in bad_time.output
    missing = invoke("models", "ls", "--uri", str(tmp_path / "no-store"))
    assert missing.exit_code == EXIT_CODES["not_found"] and "no Cairn store" in missing.stderr


@pytest.mark.server
def test_over_http(server: str, tmp_path: Path) -> None:
    project = f"m{uuid.uuid4().hex[:8]}"
    runs = register_iris(server, tmp_path, project)
    where = ["--uri", server, "-p", project]
    assert ok("models", "ls", *where).stdout.splitlines()[1].split()[:3] == ["iris", "2", "2"]
    ok("models", "protect", "iris", "production", *where)
    refused = invoke("models", "promote", "iris", "2", "--to", "production", *where)
    assert refused.exit_code == EXIT_CODES["conflict"]
    assert "may point only to an approved version" in refused.stderr
    ok("models", "approve", "iris:2", "-m", "ok", *where)
    ok("models", "promote", "iris", "2", "--to", "production", *where)
    card = as_json("models", "show", "iris@production", *where)
    assert (card["version"], card["run"]["id"]) == (2, runs[1])
    assert card["training_data"][0]["batch"] == "2026-11"
    moves = as_json("models", "history", "iris", *where)
    at = ["--alias", "production", "--at", moves[0]["at"]]
    assert as_json("models", "history", "iris", *at, *where)["version"]["version"] == 2
    assert "*  C" in ok("models", "compare", "iris:1", "iris:2", *where).stdout
    gone = invoke("models", "show", "nope", *where)
    assert gone.exit_code == EXIT_CODES["not_found"] and "does not exist" in gone.stderr
