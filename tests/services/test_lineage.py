"""The lineage service, called directly, on SQLite and PostgreSQL: producing runs (the
first producer wins), walks up, down and both ways with a depth limit, cycles, how a
start is named, and a query count that grows with hops, not with nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from cairn.blobs import LocalBlobStore
from cairn.domain.datasets import DatasetFile, DatasetVersion
from cairn.domain.errors import Invalid, NotFound
from cairn.domain.ids import new_ulid
from cairn.domain.lineage import Direction, Lineage, NodeKind, Relation
from cairn.domain.models import ModelFile, ModelVersion
from cairn.domain.records import RunStart
from cairn.services.aliases import AliasService
from cairn.services.blobs import BlobService
from cairn.services.data import DataService
from cairn.services.lineage import LineageService
from cairn.services.registry import RegistryService
from cairn.services.tracking import TrackingService
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository

T0 = datetime(2024, 3, 1, tzinfo=UTC)
P = "lin"


@dataclass(frozen=True)
class Services:
    store: LocalBlobStore
    tracking: TrackingService
    data: DataService
    registry: RegistryService
    aliases: AliasService
    lineage: LineageService


@pytest.fixture
def svc(database: Database, tmp_path: Path) -> Services:
    store = LocalBlobStore(tmp_path / "blobs")
    blobs = BlobService(database, store)
    tracking = TrackingService(database)
    data = DataService(database, blobs)
    registry = RegistryService(database, blobs, tracking.get_run)
    return Services(
        store,
        tracking,
        data,
        registry,
        AliasService(database, registry),
        LineageService(database, data, registry),
    )


def run(svc: Services, name: str, parent: str | None = None, project: str = P) -> str:
    run_id = new_ulid()
    svc.tracking.start_run(RunStart(run_id, project, T0, name=name, parent_id=parent))
    return run_id


def dataset(
    svc: Services, name: str, content: bytes, run_id: str | None = None, project: str = P
) -> DatasetVersion:
    files = [DatasetFile("data.csv", svc.store.put_bytes(content).digest, len(content))]
    version, _created = svc.data.log_version(
        project, name, files, batch=f"batch-{name}", run_id=run_id
    )
    return version


def model(svc: Services, name: str, run_id: str, content: bytes = b"w") -> ModelVersion:
    meta = json.dumps({"flavor": "sklearn"}).encode()
    files = [
        ModelFile(path, svc.store.put_bytes(data).digest, len(data))
        for path, data in (("model.pkl", content), ("cairn-model.json", meta))
    ]
    return svc.registry.register_version(P, name, files, flavor="sklearn", run_id=run_id)


@dataclass(frozen=True)
class Pipeline:
    pipeline: str
    preprocess: str
    train: str
    evaluate: str


@pytest.fixture
def pipe(svc: Services) -> Pipeline:
    """pipeline > preprocess (raw:1 -> clean:1), train (clean:1 -> iris:1), evaluate (iris:1)."""
    pipeline = run(svc, "pipeline")
    preprocess = run(svc, "preprocess", pipeline)
    raw = dataset(svc, "raw", b"a,b\n1,2\n")
    svc.data.use_dataset(preprocess, raw.ref, "source")
    dataset(svc, "clean", b"a,b\n1,2\n", run_id=preprocess)
    train = run(svc, "train", pipeline)
    svc.data.use_dataset(train, "clean:1", "train")
    model(svc, "iris", train)
    evaluate = run(svc, "evaluate", pipeline)
    svc.registry.use_model(evaluate, "iris:1", "evaluate")
    svc.registry.approve(f"{P}/iris:1", "ok")
    svc.aliases.set_alias("iris", "production", 1, project=P)
    return Pipeline(pipeline, preprocess, train, evaluate)


def edges(graph: Lineage) -> set[tuple[str, str, str, str | None]]:
    return {(e.source, e.target, e.relation.value, e.role) for e in graph.edges}


def r(run_id: str) -> str:
    return f"run:{run_id}"


def test_up_from_a_model_reaches_the_data_that_made_it(svc: Services, pipe: Pipeline) -> None:
    graph = svc.lineage.lineage("iris@production", project=P)
    assert graph.root == f"model:{P}/iris:1" and graph.direction is Direction.UP
    assert [n.id for n in graph.nodes] == [
        f"model:{P}/iris:1",
        r(pipe.train),
        f"dataset:{P}/clean:1",
        r(pipe.pipeline),
        r(pipe.preprocess),
        f"dataset:{P}/raw:1",
    ]
    assert edges(graph) == {
        (r(pipe.train), f"model:{P}/iris:1", "trained", None),
        (f"dataset:{P}/clean:1", r(pipe.train), "input", "train"),
        (r(pipe.pipeline), r(pipe.train), "step", None),
        (r(pipe.preprocess), f"dataset:{P}/clean:1", "output", None),
        (r(pipe.pipeline), r(pipe.preprocess), "step", None),
        (f"dataset:{P}/raw:1", r(pipe.preprocess), "input", "source"),
    }
    (root,) = graph.models()
    assert (root.label, root.semver, root.aliases, root.approval) == (
        "iris:1",
        "1.0.0",
        ("production",),
        "approved",
    )
    assert root.ref == f"{P}/iris:1"
    clean = graph.node(f"dataset:{P}/clean:1")
    assert clean is not None and (clean.batch, clean.version, clean.ref) == (
        "batch-clean",
        1,
        f"{P}/clean:1",
    )
    train = graph.node(r(pipe.train))
    assert train is not None and (train.label, train.status, train.ref) == (
        "train",
        "running",
        f"runs/{pipe.train}",
    )
    assert r(pipe.evaluate) not in graph  # downstream of the model, not up


def test_down_from_raw_data_reaches_the_models_it_fed(svc: Services, pipe: Pipeline) -> None:
    graph = svc.lineage.lineage("raw:1", "down", project=P)
    assert [n.id for n in graph.nodes] == [
        f"dataset:{P}/raw:1",
        r(pipe.preprocess),
        f"dataset:{P}/clean:1",
        r(pipe.train),
        f"model:{P}/iris:1",
        r(pipe.evaluate),
    ]
    assert (f"model:{P}/iris:1", r(pipe.evaluate), "input", "evaluate") in edges(graph)
    assert [m.label for m in graph.models()] == ["iris:1"]
    assert r(pipe.pipeline) not in graph  # a parent is upstream of its steps


def test_depth_and_both(svc: Services, pipe: Pipeline) -> None:
    one = svc.lineage.lineage(f"models/{P}/iris:1", depth=1)
    assert [n.id for n in one.nodes] == [f"model:{P}/iris:1", r(pipe.train)]
    assert edges(one) == {(r(pipe.train), f"model:{P}/iris:1", "trained", None)}
    assert [n.id for n in svc.lineage.lineage("iris", depth=0, project=P).nodes] == [
        f"model:{P}/iris:1"
    ]

    both = svc.lineage.lineage(f"runs/{pipe.train}", Direction.BOTH, depth=1)
    assert {n.id for n in both.nodes} == {
        r(pipe.train),
        f"dataset:{P}/clean:1",
        r(pipe.pipeline),
        f"model:{P}/iris:1",
    }
    unlimited = svc.lineage.lineage(f"run:{pipe.train.lower()}", "both")
    # No traffic here: endpoints are reached in test_monitoring's lineage test.
    assert {n.kind for n in unlimited.nodes} == set(NodeKind) - {NodeKind.ENDPOINT}
    assert {r(pipe.evaluate), f"dataset:{P}/raw:1", r(pipe.preprocess)} <= {
        n.id for n in unlimited.nodes
    }
    # Up from the train run passes through its parent; down reaches the evaluation.
    assert (r(pipe.pipeline), r(pipe.train), Relation.STEP.value, None) in edges(unlimited)


def test_the_first_producer_wins(svc: Services, database: Database) -> None:
    first, second = run(svc, "first"), run(svc, "second")
    made = dataset(svc, "clean", b"x\n", run_id=first)
    again = dataset(svc, "clean", b"x\n", run_id=second)  # same content: same version
    assert again.version == made.version == 1
    graph = svc.lineage.lineage("clean:1", project=P)
    assert [n.id for n in graph.runs()] == [r(first)]
    with database.read() as conn:
        (created,) = [
            e for e in EventRepository(conn).for_entity("dataset_version", f"{P}/clean:1")
        ]
    assert created.after is not None and created.after["run_id"] == first

    with pytest.raises(NotFound) as missing:
        dataset(svc, "other", b"y\n", run_id=new_ulid())
    assert missing.value.details["run_id"]
    with pytest.raises(NotFound):  # nothing of the refused version was kept
        svc.data.resolve("other", P)


def test_cycles_end(svc: Services) -> None:
    """A run that reads the version it wrote: each node is visited once."""
    loop = run(svc, "loop")
    made = dataset(svc, "state", b"s\n", run_id=loop)
    svc.data.use_dataset(loop, made.ref, "resume")
    for direction in Direction:
        graph = svc.lineage.lineage("state:1", direction, project=P)
        assert [n.id for n in graph.nodes] == [f"dataset:{P}/state:1", r(loop)]
        assert edges(graph) == {
            (r(loop), f"dataset:{P}/state:1", "output", None),
            (f"dataset:{P}/state:1", r(loop), "input", "resume"),
        }


def test_other_projects_and_how_a_start_is_named(svc: Services, pipe: Pipeline) -> None:
    elsewhere = run(svc, "consumer", project="other")
    svc.data.use_dataset(elsewhere, f"{P}/clean:1", "train")
    graph = svc.lineage.lineage(f"datasets/{P}/clean:1", "down", depth=1)
    consumer = graph.node(r(elsewhere))
    assert consumer is not None and consumer.project == "other"

    dataset(svc, "iris", b"both\n")  # now "iris" is a model and a dataset in P
    with pytest.raises(Invalid) as both:
        svc.lineage.lineage("iris:1", project=P)
    assert both.value.field == "ref" and "models/iris:1" in both.value.message
    assert svc.lineage.lineage("datasets/iris:1", project=P).root == f"dataset:{P}/iris:1"
    assert svc.lineage.lineage("models/iris:1", project=P).root == f"model:{P}/iris:1"
    assert svc.lineage.lineage(f"model:{P}/iris:1").root == f"model:{P}/iris:1"

    for ref, error in [
        ("nothing:1", NotFound),
        (f"runs/{new_ulid()}", NotFound),
        ("iris@staging", Invalid),  # both a model and a dataset, still
        ("models/iris@staging", NotFound),
        ("runs/not-a-ulid", Invalid),
        ("", Invalid),
        ("a b", Invalid),
    ]:
        with pytest.raises(error):
            svc.lineage.lineage(ref, project=P)
    for kwargs, field in [
        ({"direction": "sideways"}, "direction"),
        ({"depth": -1}, "depth"),
        ({"depth": True}, "depth"),
        ({"depth": 10**6}, "depth"),
        ({"project": "no such/project"}, "project"),
    ]:
        with pytest.raises(Invalid) as bad:
            svc.lineage.lineage("models/iris:1", **kwargs)
        assert bad.value.field == field


@contextmanager
def counted(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


def test_queries_grow_with_hops_not_nodes(svc: Services, database: Database) -> None:
    """A dataset read by 40 runs, each writing a version another run trained a model on:
    the walk down costs the same number of queries as with one such chain."""

    def fan_out(name: str, width: int) -> list[str]:
        source = dataset(svc, name, name.encode())
        for i in range(width):
            reader = run(svc, f"{name}-read-{i}")
            svc.data.use_dataset(reader, source.ref, "train")
            dataset(svc, f"{name}-out-{i}", f"{name}{i}".encode(), run_id=reader)
            trainer = run(svc, f"{name}-train-{i}")
            svc.data.use_dataset(trainer, f"{name}-out-{i}:1", "train")
            model(svc, f"{name}-model-{i}", trainer)
        with counted(database) as statements:
            graph = svc.lineage.lineage(source.ref, "down")
        assert len(graph.models()) == width and len(graph.runs()) == 2 * width
        return statements

    narrow, wide = fan_out("narrow", 1), fan_out("wide", 40)
    assert len(wide) == len(narrow)
    assert len(wide) <= 30, "\n".join(wide)  # a handful to find the start, one per hop
