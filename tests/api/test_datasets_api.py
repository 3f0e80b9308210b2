"""Datasets over HTTP, on SQLite and PostgreSQL: versions made from blobs sent first,
labels, references, files and their download, refusals that change nothing, runs' inputs,
diffs with profile drift, and the audit event every write leaves."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import select
from starlette.exceptions import StarletteDeprecationWarning

from cairn.api.app import create_app
from cairn.client.profiling import profile_dataframe
from cairn.domain.ids import new_ulid
from cairn.settings import Settings
from cairn.store.database import Database
from cairn.store.repositories.events import Event, EventRepository
from cairn.store.tables import Base

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
START = "2024-03-01T12:00:00Z"
WINE = f"{API}/projects/proj/datasets/wine"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app on a fresh store of each database, with a blob folder (PostgreSQL has none)."""
    folder = str(tmp_path / "server-blobs")
    app = create_app(
        Settings(store=db_url, artifacts=folder), database=Database(db_url, artifacts=folder)
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_blob(api: TestClient, data: bytes) -> str:
    digest = sha(data)
    response = api.put(f"{API}/blobs/{digest}", content=data)
    assert response.status_code == 201, response.text
    return digest


def entry(path: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "digest": sha(data), "size": len(data)}


def log_version(
    api: TestClient,
    files: list[dict[str, Any]],
    url: str = WINE,
    actor: str | None = None,
    **fields: Any,
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if actor is not None:
        headers["X-Cairn-Actor"] = actor
    body = {"files": files, **fields}
    response: httpx.Response = api.post(
        f"{url}/versions", content=json.dumps(body), headers=headers
    )
    return response


def stored_version(api: TestClient, files: dict[str, bytes], **fields: Any) -> dict[str, Any]:
    """Send the files' blobs, then log them as a version of ``wine``."""
    for data in files.values():
        put_blob(api, data)
    response = log_version(api, [entry(p, d) for p, d in files.items()], **fields)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def start_run(api: TestClient, project: str = "proj") -> str:
    run_id = new_ulid()
    body = {"id": run_id, "project": project, "start_time": START}
    assert api.post(f"{API}/runs", json=body).status_code == 201
    return run_id


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


def events(api: TestClient, entity_type: str, entity_id: str) -> list[Event]:
    db: Database = api.app.state.db  # type: ignore[attr-defined]
    with db.read() as conn:
        return EventRepository(conn).for_entity(entity_type, entity_id)


def everything(api: TestClient) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    db: Database = api.app.state.db  # type: ignore[attr-defined]
    with db.read() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
        }


FILES = {"red.csv": b"a,b\n1,2\n", "white/part-0.csv": b"a,b\n3,4\n5,6\n"}


# ---------------------------------------------------------------------------- versions


def test_a_version_is_made_from_blobs_sent_first(api: TestClient) -> None:
    for data in FILES.values():
        put_blob(api, data)
    files = [entry(p, d) for p, d in FILES.items()]
    response = log_version(api, files, actor="ana", batch="2024-03", message="first cut")
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["created"] is True
    assert (made["project"], made["name"], made["version"], made["ref"]) == (
        "proj",
        "wine",
        1,
        "proj/wine:1",
    )
    assert (made["kind"], made["file_count"], made["size"]) == (
        "files",
        2,
        sum(len(d) for d in FILES.values()),
    )
    assert (made["batch"], made["message"], made["author"]) == ("2024-03", "first cut", "ana")
    assert made["parent_version"] is None and made["source"] is None
    assert len(made["digest"]) == 64

    fetched = api.get(f"{WINE}/versions/1").json()
    assert {k: v for k, v in fetched.items() if k != "created"} == {
        k: v for k, v in made.items() if k != "created"
    }
    assert fetched["created"] is None  # only a write says whether it made the version

    logged = events(api, "dataset_version", "proj/wine:1")
    assert [(e.action, e.actor) for e in logged] == [("dataset.version_created", "ana")]
    assert logged[0].after is not None
    assert logged[0].after["digest"] == made["digest"]
    assert (logged[0].after["files"], logged[0].after["batch"]) == (2, "2024-03")
    assert [e.action for e in events(api, "dataset", "proj/wine")] == ["dataset.created"]
    assert [e.action for e in events(api, "project", "proj")] == ["project.created"]


def test_the_same_manifest_again_is_the_same_version(api: TestClient) -> None:
    first = stored_version(api, FILES, batch="2024-03")
    before = everything(api)
    # The same content, listed in another order with paths spelled differently.
    again = log_version(
        api,
        [
            entry("./white//part-0.csv", FILES["white/part-0.csv"]),
            entry("red.csv", FILES["red.csv"]),
        ],
        actor="bob",
        batch="2024-03",
    )
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["created"] is False
    assert (body["version"], body["digest"]) == (1, first["digest"])
    assert body["author"] is None  # still the first version, as it was made
    assert everything(api) == before  # no version, file row or audit event added
    assert [v["version"] for v in api.get(f"{WINE}/versions").json()] == [1]


def test_a_changed_manifest_makes_the_next_version(api: TestClient) -> None:
    first = stored_version(api, FILES, batch="2024-03", actor="ana")
    changed = {**FILES, "red.csv": b"a,b\n1,2\n7,8\n"}
    second = stored_version(api, changed, batch="2024-04", message="more rows", actor="bob")
    assert second["created"] is True
    assert (second["version"], second["parent_version"]) == (2, 1)
    assert second["digest"] != first["digest"]
    assert (second["batch"], second["message"], second["author"]) == (
        "2024-04",
        "more rows",
        "bob",
    )
    logged = events(api, "dataset_version", "proj/wine:2")
    assert [(e.action, e.actor) for e in logged] == [("dataset.version_created", "bob")]
    assert logged[0].after is not None and logged[0].after["parent_version"] == 1
    # Going back to the first content finds version 1: numbers change only with content.
    back = log_version(api, [entry(p, d) for p, d in FILES.items()])
    assert back.status_code == 200 and back.json()["version"] == 1


def test_versions_resolve_by_number_latest_and_batch(api: TestClient) -> None:
    stored_version(api, FILES, batch="2024-03")
    stored_version(api, {"red.csv": b"v2"}, batch="2024-04")
    stored_version(api, {"red.csv": b"v3"}, batch="2024-03")  # a batch label sent again
    assert api.get(f"{WINE}/versions/latest").json()["version"] == 3
    assert api.get(f"{WINE}/versions/2").json()["version"] == 2
    assert api.get(f"{WINE}/versions/@2024-04").json()["version"] == 2
    assert api.get(f"{WINE}/versions/@2024-03").json()["version"] == 3  # the newest with it
    files = api.get(f"{WINE}/versions/@2024-04/files").json()
    assert [f["path"] for f in files["files"]] == ["red.csv"]
    assert files["version"]["version"] == 2


def test_a_batch_label_shaped_like_a_version_number_resolves(api: TestClient) -> None:
    stored_version(api, FILES, batch="2024.11.01")
    response = api.get(f"{WINE}/versions/@2024.11.01")
    assert response.status_code == 200, response.text
    assert response.json()["batch"] == "2024.11.01"


def test_list_datasets_and_versions(api: TestClient) -> None:
    stored_version(api, FILES)
    stored_version(api, {"red.csv": b"v2"})
    put_blob(api, b"beer")
    response = log_version(api, [entry("b.csv", b"beer")], url=f"{API}/projects/proj/datasets/ale")
    assert response.status_code == 201
    listed = api.get(f"{API}/projects/proj/datasets").json()
    assert [(d["name"], d["latest_version"], d["version_count"]) for d in listed] == [
        ("ale", 1, 1),
        ("wine", 2, 2),
    ]
    versions = api.get(f"{WINE}/versions").json()
    assert [(v["version"], v["parent_version"]) for v in versions] == [(2, 1), (1, None)]
    assert all(v["profile"] is None for v in versions)  # profiles only on one version


def test_unknown_datasets_and_versions_are_404(api: TestClient) -> None:
    stored_version(api, FILES, batch="b1")
    for url in (
        f"{WINE}/versions/9",
        f"{WINE}/versions/@nope",
        f"{WINE}/versions/9/files",
        f"{WINE}/versions/1/files/nope.csv",
        f"{WINE}/versions/9/files/red.csv",
        f"{WINE}/versions/9/runs",
        f"{API}/projects/proj/datasets/beer/versions",
        f"{API}/projects/proj/datasets/beer/versions/latest",
        f"{API}/projects/nope/datasets",
        f"{API}/projects/nope/datasets/wine/versions/1",
        f"{API}/projects/proj/dataset-diff?old=wine:1&new=wine:9",
        f"{API}/projects/proj/dataset-diff?old=beer:1&new=wine:1",
    ):
        response = api.get(url)
        assert response.status_code == 404, (url, response.text)
        assert error_of(response)["code"] == "not_found"


# ---------------------------------------------------------------------------- files


def test_files_are_listed_and_downloaded(api: TestClient) -> None:
    stored_version(api, FILES)
    listed = api.get(f"{WINE}/versions/1/files").json()
    assert listed["version"]["version"] == 1
    assert listed["files"] == [{**entry(p, d), "etag": None} for p, d in sorted(FILES.items())]
    under = api.get(f"{WINE}/versions/1/files", params={"prefix": "white"}).json()
    assert [f["path"] for f in under["files"]] == ["white/part-0.csv"]

    data = FILES["white/part-0.csv"]
    whole = api.get(f"{WINE}/versions/latest/files/white/part-0.csv")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["etag"] == f'"{sha(data)}"'
    assert int(whole.headers["content-length"]) == len(data)

    part = api.get(f"{WINE}/versions/1/files/white/part-0.csv", headers={"Range": "bytes=4-7"})
    assert part.status_code == 206 and part.content == data[4:8]
    assert part.headers["content-range"] == f"bytes 4-7/{len(data)}"
    tail = api.get(f"{WINE}/versions/1/files/red.csv", headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == FILES["red.csv"][-4:]
    outside = api.get(f"{WINE}/versions/1/files/red.csv", headers={"Range": "bytes=999-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{len(FILES['red.csv'])}"

    escape = api.get(f"{WINE}/versions/1/files/..%2Fx")
    assert escape.status_code == 400 and error_of(escape)["details"]["field"] == "path"


def test_a_reference_version_keeps_no_bytes(api: TestClient) -> None:
    response = log_version(
        api,
        [{"path": "part-0.parquet", "size": 1234, "etag": '"abc"'}],
        kind="reference",
        source="s3://lake/wine/",
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert (made["kind"], made["source"], made["size"]) == ("reference", "s3://lake/wine/", 1234)
    files = api.get(f"{WINE}/versions/1/files").json()["files"]
    assert files == [{"path": "part-0.parquet", "digest": None, "size": 1234, "etag": '"abc"'}]
    download = api.get(f"{WINE}/versions/1/files/part-0.parquet")
    assert download.status_code == 400 and error_of(download)["details"]["field"] == "path"


def test_a_version_whose_blob_was_never_sent_is_refused(api: TestClient) -> None:
    stored_version(api, FILES)
    put_blob(api, b"sent")
    before = everything(api)
    listed = api.get(f"{API}/projects/proj/datasets").json()
    for url in (f"{API}/projects/proj/datasets/ale", WINE, f"{API}/projects/fresh/datasets/ale"):
        response = log_version(api, [entry("a.csv", b"sent"), entry("b.csv", b"never sent")], url)
        assert response.status_code == 400, response.text
        error = error_of(response)
        assert error["code"] == "invalid"
        assert error["details"]["field"] == "files[1].digest"
        assert error["details"]["digest"] == sha(b"never sent")
    assert everything(api) == before
    assert api.get(f"{API}/projects/proj/datasets").json() == listed
    assert api.get(f"{API}/projects/fresh").status_code == 404


def test_a_missing_blob_is_named_by_its_index_in_the_request(api: TestClient) -> None:
    put_blob(api, b"sent")
    response = log_version(api, [entry("z.csv", b"sent"), entry("a.csv", b"never sent")])
    assert response.status_code == 400, response.text
    assert error_of(response)["details"]["field"] == "files[1].digest"


def test_a_manifest_size_other_than_the_stored_blobs_is_refused(api: TestClient) -> None:
    put_blob(api, b"12345")
    before = everything(api)
    response = log_version(api, [{"path": "a.csv", "digest": sha(b"12345"), "size": 4}])
    assert response.status_code == 400
    assert error_of(response)["details"]["field"] == "files[0].size"
    assert everything(api) == before


def _profile_with_columns(n: int, name: str = "c") -> dict[str, Any]:
    """A valid profile of an empty table with ``n`` text columns named ``{name}{i}``."""
    column = {"dtype": "str", "kind": "categorical", "count": 0, "nulls": 0, "distinct": 0}
    return {
        "format": 1,
        "rows": 0,
        "columns": [{"name": f"{name}{i}", **column, "top": []} for i in range(n)],
    }


GOOD = entry("a.csv", b"sent")
BAD_VERSIONS: list[tuple[str, dict[str, Any], str]] = [
    ("duplicate-path", {"files": [GOOD, {**GOOD, "path": "./a.csv"}]}, "files[1].path"),
    ("dot-dot-path", {"files": [{**GOOD, "path": "../a.csv"}]}, "files[0].path"),
    ("inner-dot-dot", {"files": [GOOD, {**GOOD, "path": "x/../../a.csv"}]}, "files[1].path"),
    ("absolute-path", {"files": [{**GOOD, "path": "/etc/passwd"}]}, "files[0].path"),
    ("windows-path", {"files": [{**GOOD, "path": "C:\\a.csv"}]}, "files[0].path"),
    ("short-digest", {"files": [{**GOOD, "digest": "abc"}]}, "files[0].digest"),
    ("upper-digest", {"files": [{**GOOD, "digest": GOOD["digest"].upper()}]}, "files[0].digest"),
    ("no-digest", {"files": [{"path": "a.csv", "size": 4}]}, "files[0].digest"),
    ("negative-size", {"files": [{**GOOD, "size": -1}]}, "files.0.size"),
    ("no-files", {"files": []}, "files"),
    ("reference-without-source", {"files": [GOOD], "kind": "reference"}, "source"),
    ("unknown-kind", {"files": [GOOD], "kind": "table"}, "kind"),
    ("batch-too-long", {"files": [GOOD], "batch": "b" * 251}, "batch"),
    ("message-with-nul", {"files": [GOOD], "message": "a\x00b"}, "message"),
    ("unknown-field", {"files": [GOOD], "colour": "red"}, "colour"),
    ("profile-not-a-profile", {"files": [GOOD], "profile": {"rows": 3}}, "profile"),
    (
        "profile-wrong-format",
        {"files": [GOOD], "profile": {"format": 2, "rows": 0, "columns": []}},
        "profile",
    ),
    ("profile-too-many-columns", {"files": [GOOD], "profile": _profile_with_columns(10_001)},
     "profile"),
    ("profile-name-too-long", {"files": [GOOD], "profile": _profile_with_columns(1, "n" * 1001)},
     "profile"),
    ("profile-a-list", {"files": [GOOD], "profile": [1, 2]}, "profile"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"), [c[1:] for c in BAD_VERSIONS], ids=[c[0] for c in BAD_VERSIONS]
)
def test_a_bad_version_is_refused_naming_the_field(
    api: TestClient, body: dict[str, Any], field: str
) -> None:
    put_blob(api, b"sent")
    before = everything(api)
    response = api.post(
        f"{WINE}/versions", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "invalid"
    assert error["details"]["field"] == field, error
    assert everything(api) == before


@pytest.mark.parametrize("name", ["-wine", "a b", "a/b%2Fc", "x" * 251])
def test_a_bad_dataset_name_is_refused(api: TestClient, name: str) -> None:
    put_blob(api, b"sent")
    before = everything(api)
    response = log_version(api, [GOOD], url=f"{API}/projects/proj/datasets/{name}")
    assert response.status_code in (400, 404), response.text
    if response.status_code == 400:
        assert error_of(response)["details"]["field"] == "name"
    assert everything(api) == before


# ---------------------------------------------------------------------------- runs' inputs


def test_a_run_records_the_versions_it_used(api: TestClient) -> None:
    stored_version(api, FILES, batch="2024-03")
    stored_version(api, {"red.csv": b"v2"})
    run_id = start_run(api)
    used = api.post(
        f"{API}/runs/{run_id}/inputs",
        json={"dataset": "wine@2024-03", "role": "train"},
        headers={"X-Cairn-Actor": "ana"},
    )
    assert used.status_code == 201, used.text
    body = used.json()
    assert (body["run_id"], body["project"], body["name"], body["version"]) == (
        run_id,
        "proj",
        "wine",
        1,
    )
    assert (body["role"], body["batch"]) == ("train", "2024-03")
    again = api.post(f"{API}/runs/{run_id}/inputs", json={"dataset": "wine:1", "role": "train"})
    assert again.status_code == 201 and again.json() == body  # idempotent: the same input
    latest = api.post(f"{API}/runs/{run_id}/inputs", json={"dataset": "wine", "role": "test"})
    assert latest.json()["version"] == 2  # a bare name: the run's project's latest

    inputs = api.get(f"{API}/runs/{run_id}/inputs").json()
    assert [(i["version"], i["role"]) for i in inputs] == [(1, "train"), (2, "test")]
    assert api.get(f"{WINE}/versions/1/runs").json() == [{"run_id": run_id, "role": "train"}]
    assert api.get(f"{WINE}/versions/latest/runs").json() == [{"run_id": run_id, "role": "test"}]
    other = start_run(api)
    api.post(f"{API}/runs/{other}/inputs", json={"dataset": "proj/wine:1", "role": "validation"})
    assert api.get(f"{WINE}/versions/1/runs").json() == [
        {"run_id": run_id, "role": "train"},
        {"run_id": other, "role": "validation"},
    ]

    logged = [e for e in events(api, "run", run_id) if e.action == "run.input_added"]
    assert [(e.actor, (e.after or {}).get("dataset")) for e in logged] == [
        ("ana", "proj/wine:1"),
        (None, "proj/wine:2"),
    ]


def test_bad_inputs_are_refused(api: TestClient) -> None:
    stored_version(api, FILES)
    run_id = start_run(api)
    before = everything(api)
    cases = [
        (f"{API}/runs/{new_ulid()}/inputs", {"dataset": "wine:1"}, 404, None),
        (f"{API}/runs/{run_id}/inputs", {"dataset": "wine:9"}, 404, None),
        (f"{API}/runs/{run_id}/inputs", {"dataset": "beer"}, 404, None),
        (f"{API}/runs/{run_id}/inputs", {"dataset": "wine:x"}, 400, "ref"),
        (f"{API}/runs/{run_id}/inputs", {"dataset": "wine:1", "role": "a b"}, 400, "role"),
        (f"{API}/runs/{run_id}/inputs", {"dataset": "wine:1", "role": ""}, 400, "role"),
    ]
    for url, body, status, field in cases:
        response = api.post(url, json=body)
        assert response.status_code == status, (body, response.text)
        if field is not None:
            assert error_of(response)["details"]["field"] == field
    assert everything(api) == before
    assert api.get(f"{API}/runs/{new_ulid()}/inputs").status_code == 404


# ---------------------------------------------------------------------------- diff


def test_the_diff_shows_files_and_profile_drift(api: TestClient) -> None:
    frame = pd.DataFrame(
        {
            "alcohol": [float(11 + (i % 30) / 10) for i in range(300)],
            "colour": ["red" if i % 3 else "white" for i in range(300)],
        }
    )
    scaled = frame.copy()
    scaled["alcohol"] = scaled["alcohol"] * 10
    old_files = {"a.csv": b"same", "b.csv": b"gone", "c.csv": b"before"}
    new_files = {"a.csv": b"same", "c.csv": b"after!", "d.csv": b"new"}
    first = stored_version(api, old_files, profile=profile_dataframe(frame))
    second = stored_version(api, new_files, profile=profile_dataframe(scaled))
    assert api.get(f"{WINE}/versions/2").json()["profile"] == json.loads(
        json.dumps(profile_dataframe(scaled))
    )

    response = api.get(
        f"{API}/projects/proj/dataset-diff", params={"old": "wine:1", "new": "wine:2"}
    )
    assert response.status_code == 200, response.text
    diff = response.json()
    assert (diff["old"], diff["new"]) == (first["ref"], second["ref"])
    assert (diff["added"], diff["removed"]) == (["d.csv"], ["b.csv"])
    assert diff["changed"] == [
        {
            "path": "c.csv",
            "old_digest": sha(b"before"),
            "new_digest": sha(b"after!"),
            "old_size": 6,
            "new_size": 6,
        }
    ]
    assert diff["unchanged"] is False
    profile = diff["profile"]
    assert profile["rows"] == {"old": 300, "new": 300, "change": 0}
    assert profile["schema"] == {"added": [], "removed": [], "changed": []}
    columns = {c["column"]: c for c in profile["columns"]}
    assert columns["alcohol"]["drifted"] is True
    assert columns["alcohol"]["psi"] > 0.2 and columns["alcohol"]["ks"] == 1.0
    assert columns["alcohol"]["mean"]["new"] == pytest.approx(
        columns["alcohol"]["mean"]["old"] * 10
    )
    assert columns["colour"]["drifted"] is False and columns["colour"]["psi"] == 0.0

    same = api.get(f"{API}/projects/proj/dataset-diff", params={"old": "wine:2", "new": "wine"})
    assert same.status_code == 200
    assert same.json()["unchanged"] is True
    assert (same.json()["added"], same.json()["removed"], same.json()["changed"]) == ([], [], [])
    bad = api.get(f"{API}/projects/proj/dataset-diff", params={"old": "wine:1", "new": "runs/x"})
    assert bad.status_code == 400 and error_of(bad)["details"]["field"] == "ref"
    missing = api.get(f"{API}/projects/proj/dataset-diff", params={"old": "wine:1"})
    assert missing.status_code == 400 and error_of(missing)["details"]["field"] == "new"
