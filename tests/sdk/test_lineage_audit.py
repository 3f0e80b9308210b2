"""Lineage and the audit log through the SDK and the CLI, embedded and over HTTP (a real
server): a three-step pipeline (preprocess -> train -> evaluate, steps of one parent run)
traced up from the production model and down from the raw data, and exactly one audit
event per change."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import cairn
from cairn.cli.main import cli


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any, pd.DataFrame]:
    x, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(x, columns=["sl", "sw", "pl", "pw"]).assign(species=y)
    return x, y, frame


@dataclass(frozen=True)
class Pipeline:
    project: str
    pipeline: str
    preprocess: str
    train: str
    evaluate: str


@pytest.fixture
def pipeline(sdk_uri: str, iris: tuple[Any, Any, pd.DataFrame]) -> Pipeline:
    """raw:1 -> preprocess -> clean:1 -> train -> iris:1 (production) -> evaluate."""
    x, y, frame = iris
    cairn.log_dataset("raw", frame, batch="2026-11")
    with cairn.start_run("pipeline", capture=False) as parent:
        with parent.child("preprocess", capture=False) as preprocess:
            preprocess.use_dataset("raw:1", role="source")
            clean = frame.assign(sl=frame["sl"].round())
            made = preprocess.log_dataset("clean", clean, message="rounded", output=True)
            assert (made.name, made.version) == ("clean", 1)
        with parent.child("train", capture=False) as train:
            train.use_dataset("clean:1", role="train")
            model = LogisticRegression(max_iter=500).fit(x, y)
            train.register_model("iris", model, input_example=x[:5])
        with parent.child("evaluate", capture=False) as evaluate:
            evaluate.use_model("iris:1")
    cairn.approve("iris:1", "validated on the holdout")
    cairn.set_alias("iris", "production", 1, reason="first release")
    cairn.flush()
    project = cairn.client().project
    assert project is not None
    return Pipeline(project, parent.id, preprocess.id, train.id, evaluate.id)


def edges(graph: cairn.Lineage) -> set[tuple[str, str, str, str | None]]:
    return {(e.source, e.target, e.relation.value, e.role) for e in graph.edges}


def test_up_from_production_reaches_the_data(pipeline: Pipeline) -> None:
    p = pipeline
    up = cairn.lineage("iris@production")
    assert isinstance(up, cairn.Lineage) and up.root == f"model:{p.project}/iris:1"
    (model,) = up.models()
    assert (model.label, model.semver, model.aliases, model.approval) == (
        "iris:1",
        "1.0.0",
        ("production",),
        "approved",
    )
    assert [d.label for d in up.datasets()] == ["clean:1", "raw:1"]
    assert up.datasets()[1].batch == "2026-11"
    assert {n.id for n in up.runs()} == {f"run:{r}" for r in (p.train, p.pipeline, p.preprocess)}
    assert {n.label for n in up.runs()} == {"train", "pipeline", "preprocess"}
    assert {n.status for n in up.runs()} == {"finished"}
    model_id, clean, raw = (f"model:{p.project}/iris:1", f"dataset:{p.project}/clean:1",
                            f"dataset:{p.project}/raw:1")  # fmt: skip
    assert edges(up) == {
        (f"run:{p.train}", model_id, "trained", None),
        (clean, f"run:{p.train}", "input", "train"),
        (f"run:{p.pipeline}", f"run:{p.train}", "step", None),
        (f"run:{p.preprocess}", clean, "output", None),
        (f"run:{p.pipeline}", f"run:{p.preprocess}", "step", None),
        (raw, f"run:{p.preprocess}", "input", "source"),
    }
    assert f"run:{p.evaluate}" not in up
    as_dict = up.to_dict()
    assert as_dict["root"] == model_id and as_dict["direction"] == "up"
    assert {"from", "to", "relation", "role"} == set(as_dict["edges"][0])
    assert cairn.lineage("models/iris@production").to_dict() == as_dict
    assert cairn.lineage(f"{p.project}/iris:1", "up").to_dict() == as_dict


def test_down_from_raw_data_depth_and_both(pipeline: Pipeline) -> None:
    p = pipeline
    down = cairn.lineage("raw:1", direction="down")
    assert [m.label for m in down.models()] == ["iris:1"]
    assert [n.id for n in down.runs()] == [f"run:{r}" for r in (p.preprocess, p.train, p.evaluate)]
    assert (f"model:{p.project}/iris:1", f"run:{p.evaluate}", "input", "evaluate") in edges(down)
    assert f"run:{p.pipeline}" not in down

    one = cairn.lineage("iris@production", depth=1)
    assert [n.id for n in one.nodes] == [f"model:{p.project}/iris:1", f"run:{p.train}"]
    assert len(one.edges) == 1 and one.depth == 1

    near = cairn.lineage(f"runs/{p.train}", direction="both", depth=1)
    assert {n.label for n in near.nodes} == {"train", "clean:1", "pipeline", "iris:1"}
    both = cairn.lineage(f"runs/{p.train}", direction="both")
    assert {n.label for n in both.nodes} == {
        "train",
        "clean:1",
        "pipeline",
        "preprocess",
        "raw:1",
        "iris:1",
        "evaluate",
    }


def test_the_first_producer_wins_and_names_must_be_clear(
    pipeline: Pipeline, iris: tuple[Any, Any, pd.DataFrame]
) -> None:
    frame = iris[2]
    with cairn.start_run("again", capture=False) as rerun:
        same = rerun.log_dataset("clean", frame.assign(sl=frame["sl"].round()), output=True)
    assert same.version == 1
    assert [n.label for n in cairn.lineage("clean:1", depth=1).runs()] == ["preprocess"]
    assert cairn.lineage(f"runs/{rerun.id}", "down").nodes[1:] == []

    cairn.log_dataset("iris", frame)  # a dataset with the model's name
    with pytest.raises(cairn.Invalid) as ambiguous:
        cairn.lineage("iris:1")
    assert ambiguous.value.field == "ref" and "datasets/iris:1" in ambiguous.value.message
    assert cairn.lineage("datasets/iris:1").root == f"dataset:{pipeline.project}/iris:1"
    with pytest.raises(cairn.NotFound):
        cairn.lineage("nothing@production")
    for kwargs, field in [({"direction": "sideways"}, "direction"), ({"depth": -1}, "depth")]:
        with pytest.raises(cairn.Invalid) as bad:
            cairn.lineage("models/iris:1", **kwargs)
        assert bad.value.field == field


def test_one_audit_event_per_change(sdk_uri: str, iris: tuple[Any, Any, pd.DataFrame]) -> None:
    x, y, frame = iris
    with cairn.start_run("train", capture=False) as run:
        wine = cairn.log_dataset("wine", frame)
        run.use_dataset(wine, "train")
        run.register_model("iris", LogisticRegression(max_iter=500).fit(x, y), input_example=x[:5])
    second = LogisticRegression(C=0.5, max_iter=500).fit(x, y)
    cairn.client().register_model("iris", second, input_example=x[:5])
    cairn.approve("iris:1", "ok")
    cairn.set_alias("iris", "production", 1)
    cairn.set_alias("iris", "production", 2)
    cairn.rollback("iris", "production")
    cairn.protect_alias("iris", "production")
    cairn.protect_alias("iris", "production")  # already protected: no change, no event
    cairn.set_alias("iris", "production", 1)  # already there: no change, no event

    project = cairn.client().project
    model = cairn.audit("models/iris")
    assert isinstance(model, cairn.EventList) and model.next_cursor is None
    assert [(e.action, e.entity_id) for e in model] == [
        ("model.created", f"{project}/iris"),
        ("model.version_created", f"{project}/iris:1"),
        ("model.version_created", f"{project}/iris:2"),
        ("model.version_approved", f"{project}/iris:1"),
        ("model.alias_moved", f"{project}/iris"),
        ("model.alias_moved", f"{project}/iris"),
        ("model.alias_moved", f"{project}/iris"),
        ("model.alias_protected", f"{project}/iris"),
    ]
    moves = [(e.before, e.after) for e in model if e.action == "model.alias_moved"]
    assert [(b["version"], a["version"]) for b, a in moves] == [(None, 1), (1, 2), (2, 1)]
    assert {b["alias"] for b, _ in moves} == {a["alias"] for _, a in moves} == {"production"}
    assert moves[2][1]["reason"].startswith("rollback from iris:2")
    assert all(isinstance(e, cairn.AuditEvent) and e.at.tzinfo is not None for e in model)
    assert {e.project for e in model} == {project}
    assert [e.action for e in cairn.audit("models/iris:1")] == [
        "model.version_created",
        "model.version_approved",
    ]
    assert [e.action for e in cairn.audit("datasets/wine")] == [
        "dataset.created",
        "dataset.version_created",
    ]
    assert [e.action for e in cairn.audit(f"runs/{run.id}")] == [
        "run.created",
        "run.input_added",
        "run.ended",
    ]
    everything = cairn.audit()  # the client's project
    assert Counter(e.action for e in everything) == {
        "project.created": 1,
        "run.created": 1,
        "dataset.created": 1,
        "dataset.version_created": 1,
        "run.input_added": 1,
        "model.created": 1,
        "model.version_created": 2,
        "model.version_approved": 1,
        "run.ended": 1,
        "model.alias_moved": 3,
        "model.alias_protected": 1,
    }


def test_audit_filters_and_pages(sdk_uri: str, iris: tuple[Any, Any, pd.DataFrame]) -> None:
    frame = iris[2]
    for rows in (10, 20, 30, 40):
        cairn.log_dataset("wine", frame.head(rows))
    everything = cairn.audit()
    assert len(everything) == 6  # project, dataset, four versions

    versions = cairn.audit(action="dataset.version_*")
    assert [e.entity_id.rsplit(":", 1)[1] for e in versions] == ["1", "2", "3", "4"]
    assert cairn.audit(since="1h") == everything
    assert cairn.audit(since=timedelta(minutes=5)) == everything
    assert cairn.audit(since=datetime.now(tz=UTC) + timedelta(hours=1)) == []
    assert cairn.audit("datasets/wine:3", since=versions[2].at) == [versions[2]]

    pages, cursor = [], None
    while True:
        page = cairn.client().audit(limit=4, cursor=cursor)
        pages.append(list(page))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [len(p) for p in pages] == [4, 2]
    assert [e for page in pages for e in page] == everything

    for call, field in [
        (lambda: cairn.audit("widgets/1"), "entity"),
        (lambda: cairn.audit("models/iris@production"), "entity"),
        (lambda: cairn.audit(action="dataset.%"), "action"),
        (lambda: cairn.audit(since="soon"), "since"),
        (lambda: cairn.audit(limit=0), "limit"),
        (lambda: cairn.client().audit(cursor="next"), "cursor"),
        (lambda: cairn.audit(project="no such"), "project"),
    ]:
        with pytest.raises(cairn.Invalid) as bad:
            call()
        assert bad.value.field == field, (field, bad.value)


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_cli_prints_the_tree_and_the_log(sdk_uri: str, pipeline: Pipeline) -> None:
    p = pipeline
    where = ["--uri", sdk_uri, "--project", p.project]
    tree = invoke("lineage", "iris@production", *where).stdout.splitlines()
    assert tree == [
        "model iris:1 (1.0.0, production, approved)",
        f"└─ run {p.train} train (finished) [trained]",
        "   ├─ dataset clean:1 [train]",
        f"   │  └─ run {p.preprocess} preprocess (finished) [output]",
        "   │     ├─ dataset raw:1 (batch 2026-11) [source]",
        f"   │     └─ run {p.pipeline} pipeline (finished) [step]",
        f"   └─ run {p.pipeline} pipeline (finished) [step] (see above)",
    ]
    both = invoke("lineage", f"runs/{p.train}", "-d", "both", "--depth", "1", *where).stdout
    assert both.splitlines() == [
        f"run {p.train} train (finished)",
        "↑ upstream",
        "├─ dataset clean:1 [train]",
        f"└─ run {p.pipeline} pipeline (finished) [step]",
        "↓ downstream",
        "└─ model iris:1 (1.0.0, production, approved) [trained]",
    ]
    as_json = json.loads(invoke("lineage", "raw:1", "-d", "down", "--json", *where).stdout)
    assert as_json == cairn.lineage("raw:1", "down").to_dict()

    log = json.loads(invoke("audit", "ls", "--entity", "models/iris", "--json", *where).stdout)
    assert [e["action"] for e in log["events"]] == [
        "model.created",
        "model.version_created",
        "model.version_approved",
        "model.alias_moved",
    ]
    assert log["next_cursor"] is None
    table = invoke("audit", "ls", "-e", "models/iris", "-a", "model.alias_*", *where).stdout
    header, row = table.splitlines()
    assert header.split() == ["ID", "AT", "ACTOR", "ACTION", "ENTITY", "CHANGE"]
    assert "model.alias_moved" in row and f"model {p.project}/iris" in row
    assert "version: null -> 1, reason=first release" in row

    bad = CliRunner().invoke(cli, ["audit", "ls", "--since", "soon", *where])
    assert bad.exit_code == 3 and "since" in bad.output
