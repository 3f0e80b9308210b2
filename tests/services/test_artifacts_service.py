"""Run artifacts: the service and the REST routes, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from cairn.api.app import create_app
from cairn.blobs import LocalBlobStore
from cairn.domain.artifact_paths import normalize_artifact_path
from cairn.domain.errors import Invalid, NotFound
from cairn.domain.ids import new_ulid
from cairn.domain.records import RunStart
from cairn.services.artifacts import ArtifactService
from cairn.services.tracking import TrackingService
from cairn.settings import Settings
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start_run(tracking: TrackingService) -> str:
    run_id = new_ulid()
    tracking.start_run(RunStart(run_id, "proj", T0))
    return run_id


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@pytest.fixture
def artifacts(database: Database, blobs: LocalBlobStore) -> ArtifactService:
    return ArtifactService(database, blobs)


# ---------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("a.txt", "a.txt"),
        ("./a//b/./c.txt", "a/b/c.txt"),
        ("dir/", "dir"),
        ("a b/ü.png", "a b/ü.png"),
    ],
)
def test_paths_are_normalised(given: str, expected: str) -> None:
    assert normalize_artifact_path(given) == expected


@pytest.mark.parametrize(
    "bad",
    ["", ".", "./", "/x", "//x", "C:\\x", "C:/x", "c:x", "\\\\server\\share", "a\\b", "../x",
     "a/../b", "a/..", "a\x00b", "a\nb", "a\x7fb", "x" * 1001],
)  # fmt: skip
def test_bad_paths_are_refused_naming_path(bad: str) -> None:
    with pytest.raises(Invalid) as caught:
        normalize_artifact_path(bad)
    assert caught.value.field == "path"
    assert caught.value.message


# ---------------------------------------------------------------------------- the service


def test_log_list_open(
    artifacts: ArtifactService, tracking: TrackingService, database: Database
) -> None:
    run_id = start_run(tracking)
    entry = artifacts.log_artifact(run_id, "./eval//report.csv", io.BytesIO(b"a,b\n"), actor="ana")
    assert (entry.path, entry.digest, entry.size) == ("eval/report.csv", _sha(b"a,b\n"), 4)
    assert entry.media_type == "text/csv"
    assert artifacts.list_artifacts(run_id) == [entry]
    got, reader = artifacts.open_artifact(run_id, "eval/report.csv")
    with reader:
        assert (got, reader.read()) == (entry, b"a,b\n")
    with database.read() as conn:
        events = EventRepository(conn).for_entity("run", run_id)
    logged = [e for e in events if e.action == "artifact.logged"]
    after = {"path": "eval/report.csv", "digest": entry.digest, "size": 4, "media_type": "text/csv"}
    assert [(e.actor, e.after) for e in logged] == [("ana", after)]


def test_media_type_given_or_guessed(artifacts: ArtifactService, tracking: TrackingService) -> None:
    run_id = start_run(tracking)
    assert artifacts.log_artifact(run_id, "x.bin", io.BytesIO(b"1")).media_type == (
        "application/octet-stream"
    )
    assert artifacts.log_artifact(run_id, "y", io.BytesIO(b"1"), "text/x-log").media_type == (
        "text/x-log"
    )
    with pytest.raises(Invalid) as caught:
        artifacts.log_artifact(run_id, "z", io.BytesIO(b"1"), "not a type")
    assert caught.value.field == "media_type"


def test_same_path_again_is_a_new_version(
    artifacts: ArtifactService, tracking: TrackingService, blobs: LocalBlobStore
) -> None:
    run_id = start_run(tracking)
    artifacts.log_artifact(run_id, "state.txt", io.BytesIO(b"one"))
    second = artifacts.log_artifact(run_id, "state.txt", io.BytesIO(b"two!"))
    assert artifacts.list_artifacts(run_id) == [second]
    assert second.size == 4
    assert sorted(blobs.digests()) == sorted([_sha(b"one"), _sha(b"two!")])


def test_same_bytes_in_two_runs_stored_once(
    artifacts: ArtifactService, tracking: TrackingService, blobs: LocalBlobStore
) -> None:
    first, second = start_run(tracking), start_run(tracking)
    artifacts.log_artifact(first, "m.bin", io.BytesIO(b"weights" * 1000))
    artifacts.log_artifact(second, "other/name.bin", io.BytesIO(b"weights" * 1000))
    assert list(blobs.digests()) == [_sha(b"weights" * 1000)]


def test_prefix_is_a_folder_not_a_string_prefix(
    artifacts: ArtifactService, tracking: TrackingService
) -> None:
    run_id = start_run(tracking)
    for path in ("a", "a/b.txt", "a/c/d.txt", "ab.txt", "a_%/x.txt", "aXY/x.txt"):
        artifacts.log_artifact(run_id, path, io.BytesIO(path.encode()))
    assert [e.path for e in artifacts.list_artifacts(run_id, "a")] == ["a", "a/b.txt", "a/c/d.txt"]
    assert [e.path for e in artifacts.list_artifacts(run_id, "a_%")] == ["a_%/x.txt"]
    assert [e.path for e in artifacts.list_artifacts(run_id, "a/c/")] == ["a/c/d.txt"]
    with pytest.raises(Invalid) as caught:
        artifacts.list_artifacts(run_id, "../a")
    assert caught.value.field == "prefix"


def test_refusals_store_nothing(
    artifacts: ArtifactService, tracking: TrackingService, blobs: LocalBlobStore
) -> None:
    run_id = start_run(tracking)
    with pytest.raises(NotFound):
        artifacts.log_artifact(new_ulid(), "a.txt", io.BytesIO(b"orphan"))
    with pytest.raises(Invalid) as caught:
        artifacts.log_artifact(run_id, "../a.txt", io.BytesIO(b"escape"))
    assert caught.value.field == "path"
    with pytest.raises(Invalid) as caught:
        artifacts.log_artifact(run_id, "a.txt", io.BytesIO(b"x"), expected_digest=_sha(b"y"))
    assert caught.value.field == "digest"
    assert list(blobs.digests()) == []
    assert artifacts.list_artifacts(run_id) == []
    with pytest.raises(NotFound):
        artifacts.open_artifact(run_id, "a.txt")
    with pytest.raises(NotFound):
        artifacts.list_artifacts(new_ulid())


def test_a_store_without_an_artifact_location_says_so(
    database: Database, tracking: TrackingService
) -> None:
    run_id = start_run(tracking)
    database.artifacts = None  # what a PostgreSQL store has unless one is given
    with pytest.raises(Invalid) as caught:
        ArtifactService(database).log_artifact(run_id, "a.txt", io.BytesIO(b"x"))
    assert caught.value.field == "artifacts" and "--artifacts" in caught.value.message


def test_folder_store_keeps_blobs_in_its_artifacts_folder(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "store"))
    try:
        run_id = start_run(TrackingService(db))
        ArtifactService(db).log_artifact(run_id, "a.txt", io.BytesIO(b"x"))
        assert list(LocalBlobStore(tmp_path / "store" / "artifacts").digests()) == [_sha(b"x")]
    finally:
        db.close()


# ---------------------------------------------------------------------------- the REST API


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    folder = str(tmp_path / "server-blobs")
    settings = Settings(store=db_url, artifacts=folder, max_request_bytes=4096)
    app = create_app(settings, database=Database(db_url, artifacts=folder))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def api_run(api: TestClient) -> str:
    run_id = new_ulid()
    body = {"id": run_id, "project": "proj", "start_time": "2024-03-01T12:00:00Z"}
    assert api.post(f"{API}/runs", json=body).status_code == 201
    return run_id


def error_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def test_api_upload_list_download(api: TestClient) -> None:
    run_id = api_run(api)
    data = b"x" * 100_000  # over the 4 KiB JSON limit: uploads stream and are exempt
    response = api.put(
        f"{API}/runs/{run_id}/artifacts/model/w.bin",
        content=data,
        headers={"X-Cairn-Digest": _sha(data)},
    )
    assert response.status_code == 201, response.text
    assert response.json()["path"] == "model/w.bin" and response.json()["size"] == len(data)
    chunked = api.put(
        f"{API}/runs/{run_id}/artifacts/notes.txt",
        content=iter([b"hello ", b"world"]),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    assert chunked.status_code == 201, chunked.text
    listed = api.get(f"{API}/runs/{run_id}/artifacts").json()
    assert [e["path"] for e in listed] == ["model/w.bin", "notes.txt"]
    assert [e["path"] for e in api.get(f"{API}/runs/{run_id}/artifacts?prefix=model").json()] == [
        "model/w.bin"
    ]
    got = api.get(f"{API}/runs/{run_id}/artifacts/model/w.bin")
    assert got.status_code == 200 and got.content == data
    assert got.headers["etag"].strip('"') == _sha(data)
    assert got.headers["content-type"] == "application/octet-stream"
    assert int(got.headers["content-length"]) == len(data)
    text = api.get(f"{API}/runs/{run_id}/artifacts/notes.txt")
    assert text.content == b"hello world"
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    too_big = api.post(f"{API}/runs/search", content=b"{" + b" " * 5000 + b"}")
    assert too_big.status_code == 413  # the JSON routes keep their limit


@pytest.mark.parametrize(
    "raw",
    ["..%2Fx", "a/..%2F..%2Fx", "%2E%2E/x", "%2Fetc%2Fpasswd", "/etc/passwd", "C:%5Cx", "C:/x",
     "a%5Cb", "%5C%5Cserver%5Cshare", "a%00b"],
)  # fmt: skip
def test_api_traversal_is_refused_naming_path(api: TestClient, raw: str) -> None:
    run_id = api_run(api)
    response = api.put(f"{API}/runs/{run_id}/artifacts/{raw}", content=b"evil")
    assert response.status_code == 400, (raw, response.text)
    assert error_of(response)["code"] == "invalid"
    assert error_of(response)["details"]["field"] == "path"
    download = api.get(f"{API}/runs/{run_id}/artifacts/{raw}")
    assert download.status_code == 400
    assert api.get(f"{API}/runs/{run_id}/artifacts").json() == []


def test_api_errors(api: TestClient) -> None:
    run_id = api_run(api)
    wrong = api.put(
        f"{API}/runs/{run_id}/artifacts/a.txt", content=b"x", headers={"X-Cairn-Digest": "0" * 64}
    )
    assert wrong.status_code == 400 and error_of(wrong)["details"]["field"] == "digest"
    malformed = api.put(
        f"{API}/runs/{run_id}/artifacts/a.txt", content=b"x", headers={"X-Cairn-Digest": "abc"}
    )
    assert malformed.status_code == 400 and error_of(malformed)["details"]["field"] == "digest"
    assert api.get(f"{API}/runs/{run_id}/artifacts").json() == []
    missing = api.get(f"{API}/runs/{run_id}/artifacts/nope.txt")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    no_run = api.put(f"{API}/runs/{new_ulid()}/artifacts/a.txt", content=b"x")
    assert no_run.status_code == 404 and error_of(no_run)["code"] == "not_found"
