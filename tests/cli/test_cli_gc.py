"""``cairn gc`` on a real embedded store: what it keeps, what it deletes, what it reports."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import cairn
from cairn.blobs import LocalBlobStore
from cairn.cli.main import cli
from cairn.cli.output import EXIT_CODES

DAY_S = 24 * 3600


@dataclass
class Store:
    uri: str
    blobs: LocalBlobStore
    referenced: str  # the digest of a dataset version's file


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def age(blobs: LocalBlobStore, digest: str, seconds: float) -> None:
    """Make a blob look ``seconds`` old."""
    then = time.time() - seconds
    os.utime(blobs.path(digest), (then, then))


@pytest.fixture
def store(tmp_path: Path, sqlite_template: Path) -> Store:
    folder = tmp_path / "store"
    folder.mkdir()
    shutil.copy(sqlite_template, folder / "cairn.db")
    source = tmp_path / "wine.csv"
    source.write_text("a,b\n1,2\n3,4\n")
    client = cairn.Client(str(folder))
    try:
        version = client.log_dataset("wine", source)
        _version, files = client.list_dataset_files(str(version))
    finally:
        client.close()
    blobs = LocalBlobStore(folder / "artifacts")
    referenced = files[0].digest
    assert referenced is not None
    age(blobs, referenced, 2 * DAY_S)  # old enough to go, were it not referenced
    return Store(str(folder), blobs, referenced)


def orphan(store: Store, data: bytes = b"nobody points at me", old_s: float = 0) -> str:
    digest = store.blobs.put(io.BytesIO(data)).digest
    if old_s:
        age(store.blobs, digest, old_s)
    return digest


def report(result: Result) -> dict[str, str]:
    assert result.exit_code == 0, result.output
    rows = [re.split(r"\s{2,}", line, maxsplit=1) for line in result.stdout.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) == 2}


def test_dry_run_deletes_nothing_and_reports_the_unreferenced_blob(store: Store) -> None:
    digest = orphan(store, old_s=2 * DAY_S)
    result = invoke("gc", "--dry-run", "--store", store.uri)
    assert result.stdout.startswith("dry run: nothing was deleted")
    found = report(result)
    assert found["scanned"] == "2 blobs" and found["referenced"] == "1"
    assert found["unreferenced"] == "1 (19 B)" and found["would delete"] == "1 (19 B)"
    assert "deleted" not in found
    assert store.blobs.exists(digest) and store.blobs.exists(store.referenced)
    as_json = json.loads(invoke("gc", "--dry-run", "--store", store.uri, "--json").stdout)
    assert (as_json["unreferenced"], as_json["deleted"], as_json["dry_run"]) == (1, 0, True)


def test_grace_zero_deletes_an_unreferenced_blob_never_a_referenced_one(store: Store) -> None:
    digest = orphan(store, old_s=10)
    found = report(invoke("gc", "--grace", "0", "--store", store.uri))
    assert found["deleted"] == "1 (19 B)" and found["referenced"] == "1"
    assert "dry run" not in found
    assert not store.blobs.exists(digest)
    assert store.blobs.exists(store.referenced)
    again = report(invoke("gc", "--grace", "0", "--store", store.uri))
    assert again["scanned"] == "1 blob" and again["deleted"] == "0 (0 B)"


def test_default_grace_keeps_a_young_unreferenced_blob(store: Store) -> None:
    digest = orphan(store)
    found = report(invoke("gc", "--store", store.uri))
    assert found["kept young"] == "1 (younger than 24h)"
    assert found["unreferenced"] == "0 (0 B)" and found["deleted"] == "0 (0 B)"
    assert store.blobs.exists(digest)
    past_grace = report(invoke("gc", "--grace", "90s", "--store", store.uri))
    assert past_grace["deleted"] == "0 (0 B)"  # 90 s have not passed either
    age(store.blobs, digest, 31 * 60)
    assert report(invoke("gc", "--grace", "30m", "--store", store.uri))["deleted"] == "1 (19 B)"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800), ("5", 5)]
)
def test_grace_accepts_seconds_and_units(text: str, seconds: int) -> None:
    from cairn.cli.gc import parse_age

    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5", "1w", "3 hours", "h"])
def test_a_bad_grace_names_the_accepted_forms(store: Store, text: str) -> None:
    result = CliRunner().invoke(cli, ["gc", "--grace", text, "--store", store.uri])
    assert result.exit_code == 2
    assert "90s, 30m, 24h, 7d" in result.output


def test_no_store_there_is_not_found_and_creates_nothing(tmp_path: Path) -> None:
    result = invoke("gc", "--store", str(tmp_path / "typo"))
    assert result.exit_code == EXIT_CODES["not_found"]
    assert "no Cairn store" in result.stderr
    assert not (tmp_path / "typo").exists()
