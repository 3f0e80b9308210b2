"""The dataset service and blob garbage collection, called directly, on SQLite and
PostgreSQL: versions, references, diffs, runs' inputs, two writers at once, and a
collector that never deletes what a manifest names."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cairn.blobs import LocalBlobStore
from cairn.client.profiling import profile_dataframe
from cairn.domain.datasets import DatasetFile, DatasetKind, DatasetVersion
from cairn.domain.errors import Invalid, NotFound
from cairn.domain.ids import new_ulid
from cairn.domain.records import RunStart
from cairn.services.artifacts import ArtifactService
from cairn.services.blobs import BlobService
from cairn.services.data import DataService
from cairn.services.gc import collect_garbage
from cairn.services.tracking import TrackingService
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository

T0 = datetime(2024, 3, 1, tzinfo=UTC)
DAY = 24 * 3600


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture
def blobs(database: Database, store: LocalBlobStore) -> BlobService:
    return BlobService(database, store)


@pytest.fixture
def data(database: Database, blobs: BlobService) -> DataService:
    return DataService(database, blobs)


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def stored(store: LocalBlobStore, files: dict[str, bytes]) -> list[DatasetFile]:
    """Put the files' bytes in the store; their manifest entries."""
    return [DatasetFile(path, store.put_bytes(b).digest, len(b)) for path, b in files.items()]


def start_run(tracking: TrackingService, project: str = "proj") -> str:
    run_id = new_ulid()
    tracking.start_run(RunStart(run_id, project, T0))
    return run_id


def actions(database: Database, entity_type: str, entity_id: str) -> list[tuple[str, str | None]]:
    with database.read() as conn:
        return [
            (e.action, e.actor) for e in EventRepository(conn).for_entity(entity_type, entity_id)
        ]


FILES = {"red.csv": b"a,b\n1,2\n", "white/part-0.csv": b"a,b\n3,4\n"}


# ---------------------------------------------------------------------------- versions


def test_log_resolve_and_list(data: DataService, store: LocalBlobStore, database: Database) -> None:
    first, created = data.log_version(
        "proj", "wine", stored(store, FILES), batch="2024-03", message="first", actor="ana"
    )
    assert created is True
    assert (str(first), first.ref, first.parent_version) == ("wine:1", "proj/wine:1", None)
    assert (first.batch, first.message, first.author) == ("2024-03", "first", "ana")
    assert (first.file_count, first.size, first.kind) == (2, 16, DatasetKind.FILES)
    second, created = data.log_version("proj", "wine", stored(store, {"red.csv": b"v2"}))
    assert created is True and (second.version, second.parent_version) == (2, 1)

    assert data.resolve("wine", "proj") == second
    assert data.resolve("wine:1", "proj") == first
    assert data.resolve("proj/wine@2024-03") == first
    assert data.resolve("proj/wine", "elsewhere") == second  # the reference's project wins
    with pytest.raises(NotFound):
        data.resolve("wine:3", "proj")
    with pytest.raises(NotFound):
        data.resolve("wine@2099-01", "proj")
    with pytest.raises(NotFound):
        data.resolve("wine")  # the default project has no such dataset
    with pytest.raises(Invalid) as caught:
        data.resolve(f"runs/{new_ulid()}", "proj")
    assert caught.value.field == "ref"

    [dataset] = data.list_datasets("proj")
    assert (dataset.name, dataset.latest_version, dataset.version_count) == ("wine", 2, 2)
    assert [v.version for v in data.list_versions("wine", "proj")] == [2, 1]
    version, files = data.list_files("wine:1", "proj", prefix="white")
    assert version == first and [f.path for f in files] == ["white/part-0.csv"]
    found, reader = data.open_file("wine:1", "white/part-0.csv", "proj")
    with reader:
        assert reader.read() == FILES["white/part-0.csv"]
    assert found.digest == sha(FILES["white/part-0.csv"])

    assert actions(database, "dataset_version", "proj/wine:1") == [
        ("dataset.version_created", "ana")
    ]
    assert actions(database, "dataset_version", "proj/wine:2") == [
        ("dataset.version_created", None)
    ]
    assert actions(database, "dataset", "proj/wine") == [("dataset.created", "ana")]


def test_the_same_content_is_the_same_version(
    data: DataService, store: LocalBlobStore, database: Database
) -> None:
    files = stored(store, FILES)
    first, _ = data.log_version("proj", "wine", files)
    reordered = [DatasetFile("./" + f.path, f.digest, f.size) for f in reversed(files)]
    again, created = data.log_version("proj", "wine", reordered, batch="other", actor="bob")
    assert (again, created) == (first, False)
    assert again.batch is None and again.author is None
    assert len(data.list_versions("wine", "proj")) == 1
    assert actions(database, "dataset_version", "proj/wine:1") == [
        ("dataset.version_created", None)
    ]


def test_a_reference_version(data: DataService) -> None:
    files = [DatasetFile("part-0.parquet", None, 10, '"e1"')]
    made, _ = data.log_version("proj", "lake", files, kind="reference", source="s3://lake/x/")
    assert (made.kind, made.source, made.size) == (DatasetKind.REFERENCE, "s3://lake/x/", 10)
    other_source, created = data.log_version(
        "proj", "lake", files, kind="reference", source="s3://lake/y/"
    )
    assert created is True and other_source.version == 2  # the source is part of the content
    changed, created = data.log_version(
        "proj",
        "lake",
        [DatasetFile("part-0.parquet", None, 10, '"e2"')],
        kind="reference",
        source="s3://lake/y/",
    )
    assert created is True and changed.version == 3  # a new ETag is new content
    with pytest.raises(Invalid) as caught:
        data.stored_file("lake:1", "part-0.parquet", "proj")
    assert caught.value.field == "path"


def _with(path: str | None = None, digest: str | None = None, size: int | None = None) -> Any:
    """Files: the first stored one with some of its fields replaced."""

    def files(stored_files: list[DatasetFile]) -> list[DatasetFile]:
        first = stored_files[0]
        return [
            DatasetFile(
                first.path if path is None else path,
                first.digest if digest is None else digest,
                first.size if size is None else size,
            )
        ]

    return files


def _all(stored_files: list[DatasetFile]) -> list[DatasetFile]:
    return stored_files


BAD_VERSIONS: list[tuple[str, str, str, Any, dict[str, Any], str]] = [
    ("blob-missing", "proj", "wine", _with(digest=sha(b"no")), {}, "files[0].digest"),
    ("duplicate", "proj", "wine", lambda f: [f[0], f[0]], {}, "files[1].path"),
    ("dot-dot", "proj", "wine", _with(path="../x"), {}, "files[0].path"),
    ("absolute", "proj", "wine", _with(path="/x"), {}, "files[0].path"),
    ("bad-digest", "proj", "wine", _with(digest="ABC"), {}, "files[0].digest"),
    ("negative-size", "proj", "wine", _with(size=-1), {}, "files[0].size"),
    ("wrong-size", "proj", "wine", _with(size=3), {}, "files[0].size"),
    ("no-files", "proj", "wine", lambda f: [], {}, "files"),
    ("reference-no-source", "proj", "wine", _all, {"kind": "reference"}, "source"),
    ("bad-kind", "proj", "wine", _all, {"kind": "table"}, "kind"),
    ("bad-name", "proj", "-wine", _all, {}, "name"),
    ("bad-project", "bad project", "wine", _all, {}, "project"),
    ("long-batch", "proj", "wine", _all, {"batch": "b" * 251}, "batch"),
    ("bad-profile", "proj", "wine", _all, {"profile": {"format": 1}}, "profile"),
    ("profile-not-object", "proj", "wine", _all, {"profile": "table"}, "profile"),
]


@pytest.mark.parametrize(
    ("project", "name", "files", "extra", "field"),
    [case[1:] for case in BAD_VERSIONS],
    ids=[case[0] for case in BAD_VERSIONS],
)
def test_a_bad_version_is_refused_and_writes_nothing(
    data: DataService,
    store: LocalBlobStore,
    database: Database,
    project: str,
    name: str,
    files: Callable[[list[DatasetFile]], list[DatasetFile]],
    extra: dict[str, Any],
    field: str,
) -> None:
    with pytest.raises(Invalid) as caught:
        data.log_version(project, name, files(stored(store, FILES)), **extra)
    assert caught.value.field == field
    with pytest.raises(NotFound):
        data.list_datasets("proj")  # not even the project was made
    assert actions(database, "project", "proj") == []


def test_a_missing_blob_is_named_by_its_index_in_the_callers_list(
    data: DataService, store: LocalBlobStore
) -> None:
    files = [*stored(store, FILES), DatasetFile("a.csv", sha(b"never stored"), 12)]
    with pytest.raises(Invalid) as caught:
        data.log_version("proj", "wine", files)
    assert caught.value.field == "files[2].digest"


# ---------------------------------------------------------------------------- diff


def test_diff_files_and_profiles(data: DataService, store: LocalBlobStore) -> None:
    frame = pd.DataFrame({"x": [float(i % 50) for i in range(500)], "k": ["a", "b"] * 250})
    scaled = frame.copy()
    scaled["x"] = scaled["x"] * 10
    old = stored(store, {"keep": b"k", "gone": b"g", "edit": b"1"})
    new = stored(store, {"keep": b"k", "edit": b"22", "new": b"n"})
    data.log_version("proj", "wine", old, profile=profile_dataframe(frame))
    data.log_version("proj", "wine", new, profile=profile_dataframe(scaled))
    diff = data.diff("wine:1", "wine:2", "proj")
    assert (diff.old, diff.new) == ("proj/wine:1", "proj/wine:2")
    assert (diff.added, diff.removed) == (["new"], ["gone"])
    assert [(c.path, c.old_size, c.new_size) for c in diff.changed] == [("edit", 1, 2)]
    columns = {c["column"]: c for c in diff.profile["columns"]}
    assert columns["x"]["drifted"] is True and columns["x"]["psi"] > 0.2
    assert columns["k"]["drifted"] is False
    assert diff.unchanged is False
    same = data.diff("proj/wine:2", "wine", "proj")
    assert same.unchanged is True and same.profile["rows"]["change"] == 0
    no_profile, _ = data.log_version("proj", "beer", new)
    versus = data.diff("wine:2", "beer:1", "proj")
    assert no_profile.profile is None
    assert versus.profile == {
        "rows": {"old": 500, "new": None, "change": None},
        "schema": None,
        "columns": [],
    }
    assert (versus.added, versus.removed, versus.changed) == ([], [], [])


# ---------------------------------------------------------------------------- inputs


def test_use_dataset_is_recorded_once(
    data: DataService, store: LocalBlobStore, database: Database
) -> None:
    tracking = TrackingService(database)
    data.log_version("proj", "wine", stored(store, FILES), batch="b1")
    data.log_version("proj", "wine", stored(store, {"red.csv": b"v2"}))
    run_id, other = start_run(tracking), start_run(tracking)
    used = data.use_dataset(run_id, "wine:1", "train", actor="ana")
    assert (used.run_id, used.project, used.name, used.version, used.role, used.batch) == (
        run_id,
        "proj",
        "wine",
        1,
        "train",
        "b1",
    )
    assert data.use_dataset(run_id, "wine@b1", "train") == used
    assert data.use_dataset(run_id, "wine", "test").version == 2  # the run's project's latest
    data.use_dataset(other, "proj/wine:1", "validation")
    assert [(i.version, i.role) for i in data.run_inputs(run_id)] == [(1, "train"), (2, "test")]
    assert data.runs_using("wine:1", "proj") == [(run_id, "train"), (other, "validation")]
    assert data.runs_using("wine:2", "proj") == [(run_id, "test")]
    assert [a for a in actions(database, "run", run_id) if a[0] == "run.input_added"] == [
        ("run.input_added", "ana"),
        ("run.input_added", None),
    ]
    with pytest.raises(NotFound):
        data.use_dataset(new_ulid(), "wine:1")
    with pytest.raises(NotFound):
        data.use_dataset(run_id, "wine:7")
    with pytest.raises(Invalid) as caught:
        data.use_dataset(run_id, "wine:1", "no spaces")
    assert caught.value.field == "role"
    with pytest.raises(NotFound):
        data.run_inputs(new_ulid())


# ---------------------------------------------------------------------------- two writers


def _at_once(
    calls: list[Callable[[], tuple[DatasetVersion, bool]]],
) -> list[tuple[DatasetVersion, bool]]:
    """Run the calls in threads released together; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def work(index: int) -> None:
        barrier.wait(10)
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # reported below, in the test's thread
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_two_writers_of_the_same_new_content_make_one_version(
    data: DataService, store: LocalBlobStore, database: Database
) -> None:
    for round_ in range(4):  # the first round also makes the project and the dataset
        files = stored(store, {"red.csv": f"round {round_}".encode()})

        def log(files: list[DatasetFile] = files) -> tuple[DatasetVersion, bool]:
            return data.log_version("proj", "wine", files)

        results = _at_once([log, log])
        assert sorted(created for _, created in results) == [False, True]
        assert results[0][0] == results[1][0]
        assert results[0][0].version == round_ + 1
    assert [v.version for v in data.list_versions("wine", "proj")] == [4, 3, 2, 1]
    for version in range(1, 5):
        assert len(actions(database, "dataset_version", f"proj/wine:{version}")) == 1
    assert actions(database, "dataset", "proj/wine") == [("dataset.created", None)]
    assert actions(database, "project", "proj") == [("project.created", None)]


def test_two_writers_of_different_content_get_consecutive_versions(
    data: DataService, store: LocalBlobStore
) -> None:
    one, two = stored(store, {"a": b"one"}), stored(store, {"a": b"two"})
    results = _at_once(
        [
            lambda: data.log_version("proj", "wine", one),
            lambda: data.log_version("proj", "wine", two),
        ]
    )
    assert all(created for _, created in results)
    versions = sorted((v.version, v.parent_version) for v, _ in results)
    assert versions == [(1, None), (2, 1)]


# ---------------------------------------------------------------------------- garbage collection


def age(store: LocalBlobStore, digest: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(store.path(digest), (then, then))


def test_gc_keeps_referenced_and_young_blobs(
    data: DataService, blobs: BlobService, store: LocalBlobStore, database: Database
) -> None:
    tracking = TrackingService(database)
    in_old_version = store.put_bytes(b"in version 1 only").digest
    in_latest = store.put_bytes(b"in version 2").digest
    in_artifact = store.put_bytes(b"a run's artifact").digest
    in_reference = store.put_bytes(b"named by a reference dataset").digest
    old_orphan = store.put_bytes(b"nobody names me").digest
    young_orphan = store.put_bytes(b"about to be named").digest
    data.log_version("proj", "wine", [DatasetFile("a", in_old_version, 17)])
    data.log_version("proj", "wine", [DatasetFile("a", in_latest, 12)])
    data.log_version(
        "proj",
        "lake",
        [DatasetFile("a", in_reference, 28)],
        kind="reference",
        source="s3://lake/",
    )
    run_id = start_run(tracking)
    ArtifactService(database, blobs).record_artifacts(run_id, [("m.bin", in_artifact, None)])
    for digest in (in_old_version, in_latest, in_artifact, in_reference, old_orphan):
        age(store, digest, 2 * DAY)
    everything = {in_old_version, in_latest, in_artifact, in_reference, old_orphan, young_orphan}

    dry = collect_garbage(database, blobs, grace_s=DAY, dry_run=True)
    assert (dry.scanned, dry.referenced, dry.young) == (6, 4, 1)
    assert (dry.unreferenced, dry.unreferenced_bytes) == (1, len(b"nobody names me"))
    assert (dry.deleted, dry.deleted_bytes, dry.dry_run) == (0, 0, True)
    assert set(store.digests()) == everything

    report = collect_garbage(database, blobs, grace_s=DAY)
    assert (report.deleted, report.deleted_bytes) == (1, len(b"nobody names me"))
    assert (report.referenced, report.young) == (4, 1)
    assert set(store.digests()) == everything - {old_orphan}
    assert data.open_file("wine:1", "a", "proj")[1].read() == b"in version 1 only"

    again = collect_garbage(database, blobs, grace_s=DAY)
    assert again.deleted == 0  # nothing more to do
    age(store, young_orphan, 2 * DAY)
    assert collect_garbage(database, blobs, grace_s=DAY).deleted == 1
    assert set(store.digests()) == everything - {old_orphan, young_orphan}


def test_asking_what_is_missing_protects_a_blob_about_to_be_reused(
    blobs: BlobService, store: LocalBlobStore, database: Database
) -> None:
    digest = store.put_bytes(b"reused").digest
    age(store, digest, 2 * DAY)
    assert blobs.missing([digest]) == []  # touches it: the client will name it soon
    assert collect_garbage(database, blobs, grace_s=DAY).deleted == 0
    assert store.exists(digest)


def test_gc_refuses_a_negative_grace(blobs: BlobService, database: Database) -> None:
    with pytest.raises(Invalid) as caught:
        collect_garbage(database, blobs, grace_s=-1)
    assert caught.value.field == "grace"
