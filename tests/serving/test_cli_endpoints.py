"""``cairn endpoints create|set|ls|show|predictions`` on a real embedded store, and the
exit codes of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import cairn
from cairn.cli.main import cli


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json").stdout)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """An embedded store with iris:1 (``production``) and iris:2 (``staging``)."""
    uri = str(tmp_path / "store")
    x, y = load_iris(return_X_y=True)
    client = cairn.Client(uri)
    try:
        for c in (1.0, 0.1):
            client.register_model("iris", LogisticRegression(C=c, max_iter=300).fit(x, y))
        client.set_alias("iris", "production", 1)
        client.set_alias("iris", "staging", 2)
        client.log_predictions("iris:1", [{"a": 1}], [0], request_ids=["r1"])
    finally:
        client.close()
    return uri


def test_create_show_set_and_list(store: str) -> None:
    created = ok(
        "endpoints", "create", "churn", "-v", "champion=iris@production:90",
        "-v", "challenger=iris@staging:10", "-v", "next=iris:2:0:shadow",
        "-d", "retention A/B", "--uri", store,
    ).stdout  # fmt: skip
    lines = created.splitlines()
    assert lines[0] == "endpoint default/churn" and lines[1] == "retention A/B"
    table = {line.split()[0]: line.split()[1:] for line in lines[3:]}
    assert table == {
        "challenger": ["iris@staging", "10", "10.0%"],
        "champion": ["iris@production", "90", "90.0%"],
        "next": ["iris:2", "0", "-", "yes"],
    }
    shown = as_json("endpoints", "show", "churn", "--uri", store)
    assert shown["name"] == "churn" and len(shown["variants"]) == 3
    ok("endpoints", "set", "churn", "-v", "champion=iris:1:1", "-v", "challenger=iris:2:1",
       "--uri", store)  # fmt: skip
    after = as_json("endpoints", "show", "churn", "--uri", store)
    assert {v["name"]: v["weight"] for v in after["variants"]} == {"champion": 1, "challenger": 1}
    listed = ok("endpoints", "ls", "--uri", store).stdout.splitlines()
    assert listed[1].split()[0] == "churn"
    assert "champion=iris:1:1" in listed[1]
    assert as_json("endpoints", "predictions", "churn", "--uri", store) == []


def test_bad_input_exits_with_its_code(store: str) -> None:
    assert invoke("endpoints", "create", "x", "-v", "nope", "--uri", store).exit_code == 3
    missing = invoke("endpoints", "create", "x", "-v", "a=iris:9:1", "--uri", store)
    assert missing.exit_code == 3 and "iris:9" in missing.stderr
    assert invoke("endpoints", "show", "nope", "--uri", store).exit_code == 4
    assert invoke("endpoints", "ls", "--uri", str(Path(store).parent / "none")).exit_code == 4
