"""Blobs, bundles, resumable uploads, recorded artifacts, Range downloads and the request
size limit over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from cairn.api.app import create_app
from cairn.blobs import LocalBlobStore
from cairn.domain.errors import Conflict
from cairn.domain.ids import new_ulid
from cairn.services.blobs import BlobService
from cairn.services.uploads import UploadService
from cairn.settings import Settings
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
START = "2024-03-01T12:00:00Z"


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    return tmp_path / "server-blobs"


def make_api(db_url: str, blob_dir: Path, **settings: Any) -> TestClient:
    folder = str(blob_dir)
    app = create_app(
        Settings(store=db_url, artifacts=folder, **settings),
        database=Database(db_url, artifacts=folder),
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def api(db_url: str, blob_dir: Path) -> Iterator[TestClient]:
    """The app on a fresh store of each database, with a blob folder (PostgreSQL has none)."""
    with make_api(db_url, blob_dir) as test_client:
        yield test_client


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored(blob_dir: Path) -> list[str]:
    return list(LocalBlobStore(blob_dir).digests())


def missing(api: TestClient, *digests: str) -> list[str]:
    response = api.post(f"{API}/blobs/missing", json={"digests": list(digests)})
    assert response.status_code == 200, response.text
    return list(response.json()["missing"])


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


def frame(data: bytes, digest: str | None = None, size: int | None = None) -> bytes:
    header = f"{digest or sha(data)} {len(data) if size is None else size}\n"
    return header.encode() + data


def start_run(api: TestClient) -> str:
    run_id = new_ulid()
    body = {"id": run_id, "project": "proj", "start_time": START}
    assert api.post(f"{API}/runs", json=body).status_code == 201
    return run_id


# ---------------------------------------------------------------------------- blobs


def test_missing_says_which_digests_to_send(api: TestClient, blob_dir: Path) -> None:
    here, absent = b"here", b"absent"
    response = api.put(f"{API}/blobs/{sha(here)}", content=here)
    assert response.status_code == 201, response.text
    assert response.json() == {"digest": sha(here), "size": 4}
    again = api.put(f"{API}/blobs/{sha(here)}", content=here)  # harmless
    assert again.status_code == 201 and again.json() == response.json()
    assert missing(api, sha(here), sha(absent), sha(absent)) == [sha(absent)]
    assert missing(api) == []
    assert stored(blob_dir) == [sha(here)]


@pytest.mark.parametrize("bad", ["abc", "A" * 64, "g" * 64, "0" * 65, "", "../" + "0" * 61])
def test_missing_refuses_a_malformed_digest(api: TestClient, bad: str) -> None:
    response = api.post(f"{API}/blobs/missing", json={"digests": [sha(b"x"), bad]})
    assert response.status_code == 400, response.text
    assert error_of(response)["details"]["field"] == "digest"


def test_a_blob_whose_bytes_do_not_match_is_not_stored(api: TestClient, blob_dir: Path) -> None:
    announced = sha(b"what was announced")
    response = api.put(f"{API}/blobs/{announced}", content=b"something else")
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["details"]["field"] == "digest"
    assert error["details"]["actual"] == sha(b"something else")
    assert missing(api, announced, sha(b"something else")) == [announced, sha(b"something else")]
    assert stored(blob_dir) == []
    malformed = api.put(f"{API}/blobs/NOT-A-DIGEST", content=b"x")
    assert malformed.status_code == 400 and error_of(malformed)["details"]["field"] == "digest"
    assert stored(blob_dir) == []


def test_a_bundle_stores_every_frame(api: TestClient, blob_dir: Path) -> None:
    parts = [b"one", b"", b"three\n3 3\n", bytes(range(256)) * 10]
    response = api.post(f"{API}/blobs/bundle", content=b"".join(frame(p) for p in parts))
    assert response.status_code == 201, response.text
    assert response.json() == [{"digest": sha(p), "size": len(p)} for p in parts]
    assert missing(api, *(sha(p) for p in parts)) == []
    assert sorted(stored(blob_dir)) == sorted(sha(p) for p in parts)
    empty = api.post(f"{API}/blobs/bundle", content=b"")
    assert empty.status_code == 201 and empty.json() == []


@pytest.mark.parametrize(
    "bad",
    [
        b"not a header\n",
        b"no-newline-at-all",
        b"\n",
        f"{sha(b'b')} -1\n".encode(),
        f"{sha(b'b')} 1x\n".encode(),
        f"{sha(b'b')}  1\n".encode(),
        f"{sha(b'b')} 1 2\n".encode(),
        b"x" * 200 + b"\n",
    ],
)
def test_a_bundle_with_a_malformed_header_names_the_frame(
    api: TestClient, blob_dir: Path, bad: bytes
) -> None:
    response = api.post(f"{API}/blobs/bundle", content=frame(b"a") + bad + b"b")
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "invalid"
    assert error["details"]["frame"] == 1
    assert stored(blob_dir) == []  # a bundle is all or nothing


def test_a_short_frame_names_the_frame(api: TestClient, blob_dir: Path) -> None:
    body = frame(b"a") + frame(b"bb") + frame(b"only four", size=20)
    response = api.post(f"{API}/blobs/bundle", content=body)
    assert response.status_code == 400, response.text
    assert error_of(response)["details"]["frame"] == 2
    assert stored(blob_dir) == []  # a bundle is all or nothing


def test_a_frame_with_the_wrong_digest_names_the_frame(api: TestClient, blob_dir: Path) -> None:
    body = frame(b"a") + frame(b"b", digest=sha(b"not b")) + frame(b"c")
    response = api.post(f"{API}/blobs/bundle", content=body)
    assert response.status_code == 400, response.text
    assert stored(blob_dir) == []  # a bundle is all or nothing
    assert error_of(response)["details"]["frame"] == 1


def test_a_frame_header_with_a_malformed_digest_names_the_frame(
    api: TestClient, blob_dir: Path
) -> None:
    body = frame(b"a") + frame(b"b", digest="B" * 64)
    response = api.post(f"{API}/blobs/bundle", content=body)
    assert response.status_code == 400, response.text
    assert stored(blob_dir) == []
    assert error_of(response)["details"]["frame"] == 1


# ---------------------------------------------------------------------------- uploads


def test_a_resumable_upload(api: TestClient, blob_dir: Path) -> None:
    data = bytes(range(256)) * 40
    first, second = data[:3000], data[3000:]
    started = api.post(f"{API}/uploads", json={"size": len(data), "digest": sha(data)})
    assert started.status_code == 201, started.text
    upload = started.json()
    assert (upload["offset"], upload["size"], upload["digest"]) == (0, len(data), sha(data))
    url = f"{API}/uploads/{upload['id']}"

    one = api.patch(url, content=first, headers={"Upload-Offset": "0"})
    assert one.status_code == 200, one.text
    assert one.json()["offset"] == 3000
    two = api.patch(
        url, content=iter([second[:100], second[100:]]), headers={"Upload-Offset": "3000"}
    )
    assert two.status_code == 200, two.text
    assert two.json()["offset"] == len(data)
    status = api.get(url)
    assert status.status_code == 200 and status.json()["offset"] == len(data)
    assert status.headers["upload-offset"] == str(len(data))

    stale = api.patch(url, content=b"again", headers={"Upload-Offset": "0"})
    assert stale.status_code == 409, stale.text
    assert error_of(stale)["code"] == "conflict"
    assert error_of(stale)["details"]["offset"] == len(data)
    assert api.get(url).json()["offset"] == len(data)  # the refused chunk was not kept
    assert stored(blob_dir) == []

    done = api.post(f"{url}/complete")
    assert done.status_code == 201, done.text
    assert done.json() == {"digest": sha(data), "size": len(data)}
    assert missing(api, sha(data)) == []
    assert api.get(url).status_code == 404  # the upload ends when it completes


def test_completing_with_bytes_missing_is_a_conflict(api: TestClient, blob_dir: Path) -> None:
    upload = api.post(f"{API}/uploads", json={"size": 10}).json()
    url = f"{API}/uploads/{upload['id']}"
    assert api.patch(url, content=b"1234", headers={"Upload-Offset": "0"}).status_code == 200
    response = api.post(f"{url}/complete")
    assert response.status_code == 409, response.text
    assert error_of(response)["details"]["offset"] == 4
    assert api.get(url).json()["offset"] == 4  # still there: the client can go on
    assert stored(blob_dir) == []


def test_more_bytes_than_announced_are_refused(api: TestClient, blob_dir: Path) -> None:
    upload = api.post(f"{API}/uploads", json={"size": 4}).json()
    url = f"{API}/uploads/{upload['id']}"
    response = api.patch(url, content=b"0123456789", headers={"Upload-Offset": "0"})
    assert response.status_code == 400, response.text
    assert error_of(response)["details"]["field"] == "body"
    assert api.get(url).json()["offset"] <= 4
    assert stored(blob_dir) == []


def test_completing_with_other_bytes_than_announced_stores_nothing(
    api: TestClient, blob_dir: Path
) -> None:
    upload = api.post(f"{API}/uploads", json={"digest": sha(b"expected")}).json()
    url = f"{API}/uploads/{upload['id']}"
    assert api.patch(url, content=b"received", headers={"Upload-Offset": "0"}).status_code == 200
    response = api.post(f"{url}/complete")
    assert response.status_code == 400 and error_of(response)["details"]["field"] == "digest"
    assert stored(blob_dir) == []


def test_cancelling_an_upload(api: TestClient) -> None:
    upload = api.post(f"{API}/uploads", json={}).json()
    url = f"{API}/uploads/{upload['id']}"
    assert api.patch(url, content=b"abc", headers={"Upload-Offset": "0"}).status_code == 200
    assert api.delete(url).status_code == 204
    for response in (
        api.get(url),
        api.patch(url, content=b"d", headers={"Upload-Offset": "3"}),
        api.post(f"{url}/complete"),
    ):
        assert response.status_code == 404, response.text
        assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "upload_id",
    ["01J0000000000000000000000A", "nope", "..%2F..%2Fcairn.db", "..", "a" * 300],
    ids=["unknown", "word", "escape", "dot-dot", "long"],
)
def test_an_unknown_or_malformed_upload_is_404(api: TestClient, upload_id: str) -> None:
    url = f"{API}/uploads/{upload_id}"
    responses = [
        api.get(url),
        api.patch(url, content=b"x", headers={"Upload-Offset": "0"}),
        api.post(f"{url}/complete"),
    ]
    if upload_id != "01J0000000000000000000000A":  # an unknown well-formed id: see the report
        responses.append(api.delete(url))
    for response in responses:
        assert response.status_code == 404, (upload_id, response.text)
        assert error_of(response)["code"] == "not_found"


def test_bad_upload_requests_name_the_field(api: TestClient) -> None:
    for body, field in (({"size": -1}, "size"), ({"digest": "abc"}, "digest")):
        response = api.post(f"{API}/uploads", json=body)
        assert response.status_code == 400, response.text
        assert error_of(response)["details"]["field"] == field
    upload = api.post(f"{API}/uploads", json={}).json()
    url = f"{API}/uploads/{upload['id']}"
    for headers in ({}, {"Upload-Offset": "-1"}, {"Upload-Offset": "x"}):
        response = api.patch(url, content=b"x", headers=headers)
        assert response.status_code == 400, (headers, response.text)
        assert error_of(response)["details"]["field"] == "upload-offset"


def test_two_chunks_at_the_same_offset_at_once_keep_one(tmp_path: Path) -> None:
    # At the service: TestClient runs request bodies on its event loop, which a body that
    # waits for another request would block.
    uploads = UploadService(BlobService(None, LocalBlobStore(tmp_path / "blobs")))  # type: ignore[arg-type]
    upload = uploads.start()
    reading, release = threading.Event(), threading.Event()

    class Slow(io.RawIOBase):
        """Three bytes, handed out only once the other chunk has been appended."""

        sent = False

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.sent:
                return 0
            reading.set()
            release.wait(10)
            self.sent = True
            buffer[:3] = b"AAA"
            return 3

    outcome: dict[str, object] = {}

    def slow_append() -> None:
        try:
            outcome["slow"] = uploads.append(upload.id, 0, io.BufferedReader(Slow()))
        except Conflict as exc:
            outcome["slow"] = exc

    worker = threading.Thread(target=slow_append)
    worker.start()
    assert reading.wait(10)
    try:
        outcome["fast"] = uploads.append(upload.id, 0, io.BytesIO(b"BBB"))
    except Conflict as exc:
        outcome["fast"] = exc
    finally:
        release.set()
        worker.join(10)
    conflicts = [o for o in outcome.values() if isinstance(o, Conflict)]
    assert len(conflicts) == 1, outcome
    assert uploads.status(upload.id).offset == 3


# ---------------------------------------------------------------------------- recorded artifacts


def test_stored_blobs_are_recorded_as_artifacts(api: TestClient) -> None:
    run_id = start_run(api)
    weights, notes = b"weights" * 100, b"notes"
    for data in (weights, notes):
        assert api.put(f"{API}/blobs/{sha(data)}", content=data).status_code == 201
    body = [
        {"path": "model/w.bin", "digest": sha(weights)},
        {"path": "notes.txt", "digest": sha(notes), "media_type": "text/x-notes"},
    ]
    response = api.post(
        f"{API}/runs/{run_id}/artifacts", json=body, headers={"X-Cairn-Actor": "ana"}
    )
    assert response.status_code == 201, response.text
    recorded = response.json()
    assert [(e["path"], e["digest"], e["size"], e["media_type"]) for e in recorded] == [
        ("model/w.bin", sha(weights), len(weights), "application/octet-stream"),
        ("notes.txt", sha(notes), len(notes), "text/x-notes"),
    ]
    assert api.get(f"{API}/runs/{run_id}/artifacts").json() == recorded
    assert api.get(f"{API}/runs/{run_id}/artifacts/model/w.bin").content == weights
    db: Database = api.app.state.db  # type: ignore[attr-defined]
    with db.read() as conn:
        logged = EventRepository(conn).for_entity("run", run_id)
    assert [(e.action, e.actor, (e.after or {}).get("path")) for e in logged[-2:]] == [
        ("artifact.logged", "ana", "model/w.bin"),
        ("artifact.logged", "ana", "notes.txt"),
    ]


def test_recording_a_blob_never_sent_records_nothing(api: TestClient) -> None:
    run_id = start_run(api)
    assert api.put(f"{API}/blobs/{sha(b'sent')}", content=b"sent").status_code == 201
    db: Database = api.app.state.db  # type: ignore[attr-defined]
    with db.read() as conn:
        events_before = EventRepository(conn).for_entity("run", run_id)
    cases: list[tuple[list[dict[str, Any]], str]] = [
        (
            [{"path": "a.txt", "digest": sha(b"sent")}, {"path": "b.txt", "digest": sha(b"never")}],
            "[1].digest",
        ),
        ([{"path": "a.txt", "digest": "abc"}], "digest"),
        ([{"path": "../a.txt", "digest": sha(b"sent")}], "[0].path"),
        (
            [
                {"path": "a.txt", "digest": sha(b"sent")},
                {"path": "./a.txt", "digest": sha(b"sent")},
            ],
            "[1].path",
        ),
    ]
    for body, field in cases:
        response = api.post(f"{API}/runs/{run_id}/artifacts", json=body)
        assert response.status_code == 400, response.text
        assert error_of(response)["details"]["field"] == field
    assert api.get(f"{API}/runs/{run_id}/artifacts").json() == []
    with db.read() as conn:
        assert EventRepository(conn).for_entity("run", run_id) == events_before
    unknown = api.post(
        f"{API}/runs/{new_ulid()}/artifacts", json=[{"path": "a.txt", "digest": sha(b"sent")}]
    )
    assert unknown.status_code == 404


# ---------------------------------------------------------------------------- Range


@pytest.fixture
def artifact(api: TestClient) -> tuple[str, bytes]:
    """A run's 100-byte artifact: the download URL and its bytes."""
    run_id = start_run(api)
    data = bytes(range(100))
    assert api.put(f"{API}/runs/{run_id}/artifacts/data.bin", content=data).status_code == 201
    return f"{API}/runs/{run_id}/artifacts/data.bin", data


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, 99),
        ("bytes=-5", 95, 99),
        ("bytes=90-5000", 90, 99),
        ("bytes=-500", 0, 99),
        ("bytes=99-99", 99, 99),
    ],
)
def test_a_range_is_a_206_with_its_slice(
    api: TestClient, artifact: tuple[str, bytes], header: str, start: int, end: int
) -> None:
    url, data = artifact
    response = api.get(url, headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == data[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/100"
    assert int(response.headers["content-length"]) == end - start + 1
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes=1000000-", "bytes=100-", "bytes=-0"])
def test_a_range_outside_the_file_is_416(
    api: TestClient, artifact: tuple[str, bytes], header: str
) -> None:
    url, _data = artifact
    response = api.get(url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */100"
    assert response.headers["accept-ranges"] == "bytes"


def test_a_suffix_range_on_an_empty_file_is_answered_validly(api: TestClient) -> None:
    run_id = start_run(api)
    assert api.put(f"{API}/runs/{run_id}/artifacts/_SUCCESS", content=b"").status_code == 201
    response = api.get(f"{API}/runs/{run_id}/artifacts/_SUCCESS", headers={"Range": "bytes=-5"})
    assert response.content == b""
    assert response.status_code in (200, 416), response.headers.get("content-range")
    assert response.headers.get("content-range") in (None, "bytes */0")


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "bytes=0-1, 5-6", "items=0-5", "bytes=-", "nonsense"]
)
def test_several_ranges_or_another_unit_get_the_whole_file(
    api: TestClient, artifact: tuple[str, bytes], header: str
) -> None:
    url, data = artifact
    response = api.get(url, headers={"Range": header})
    assert response.status_code == 200
    assert response.content == data
    assert "content-range" not in response.headers
    assert response.headers["accept-ranges"] == "bytes"


def test_if_range_sends_the_whole_file_when_the_etag_differs(
    api: TestClient, artifact: tuple[str, bytes]
) -> None:
    url, data = artifact
    whole = api.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    etag = whole.headers["etag"]
    assert etag == f'"{sha(data)}"'
    other = api.get(url, headers={"Range": "bytes=0-9", "If-Range": f'"{sha(b"old")}"'})
    assert other.status_code == 200 and other.content == data
    assert other.headers["accept-ranges"] == "bytes"
    same = api.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status_code == 206 and same.content == data[:10]


# ---------------------------------------------------------------------------- size limit


def test_the_size_limit_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_MAX_REQUEST_BYTES", "1024")
    assert Settings(store="unused").max_request_bytes == 1024


def test_the_size_limit_spares_byte_uploads_only(db_url: str, blob_dir: Path) -> None:
    big = bytes(range(256)) * 40  # 10 KiB, ten times the limit
    with make_api(db_url, blob_dir, max_request_bytes=1024) as small:
        put = small.put(f"{API}/blobs/{sha(big)}", content=big)
        assert put.status_code == 201, put.text
        streamed = small.put(f"{API}/blobs/{sha(big[1:])}", content=iter([big[1:5000], big[5000:]]))
        assert streamed.status_code == 201, streamed.text
        bundle = small.post(f"{API}/blobs/bundle", content=frame(big[2:]) + frame(big[3:]))
        assert bundle.status_code == 201, bundle.text
        upload = small.post(f"{API}/uploads", json={"size": len(big)}).json()
        patched = small.patch(
            f"{API}/uploads/{upload['id']}", content=big, headers={"Upload-Offset": "0"}
        )
        assert patched.status_code == 200, patched.text
        assert small.post(f"{API}/uploads/{upload['id']}/complete").status_code == 201

        many = {"digests": [sha(bytes([i])) for i in range(40)]}  # about 2.7 KB of JSON
        for response in (
            small.post(f"{API}/blobs/missing", json=many),
            small.post(
                f"{API}/blobs/missing",
                content=iter([json.dumps(many).encode()]),  # chunked: no Content-Length
                headers={"Content-Type": "application/json"},
            ),
            small.post(
                f"{API}/projects/proj/datasets/wine/versions",
                json={
                    "files": [
                        {"path": f"f{i}.csv", "digest": sha(big), "size": 1} for i in range(20)
                    ]
                },
            ),
            small.post(f"{API}/uploads", content=b"{" + b" " * 2000 + b"}"),
        ):
            assert response.status_code == 413, response.text
            assert error_of(response)["code"] == "too_large"
            assert error_of(response)["details"]["max"] == 1024
        assert small.post(f"{API}/blobs/missing", json={"digests": [sha(big)]}).json() == {
            "missing": []
        }
