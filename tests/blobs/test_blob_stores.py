"""One suite for both blob backends: a local folder, and S3 over real HTTP.

The S3 backend talks to moto's standalone server, started here as a subprocess on a free
port (session scope), with dummy credentials in the environment. Without moto the S3 cases
are skipped, unless ``CAIRN_REQUIRE_ALL=1``, which turns that into a failure.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import tracemalloc
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cairn.blobs import BlobStore, LocalBlobStore, open_blob_store
from cairn.blobs import s3 as s3_module
from cairn.domain.errors import CorruptBlob, Invalid, NotFound

REQUIRE_ALL = os.environ.get("CAIRN_REQUIRE_ALL") == "1"
MiB = 1024 * 1024
PART = s3_module.PART_SIZE
LARGE = PART + MiB  # takes the multipart path on S3
BAD_DIGESTS = [
    "../../etc/passwd",
    "A" * 64,
    "ab" * 31,
    "",
    "0" * 63 + "g",
    "0" * 64 + "\n",
    "../" + "0" * 61,
]


# --- streams -------------------------------------------------------------------------------


class WriterDied(Exception):
    """What a generated stream raises half-way, standing in for a crashed writer."""


class GeneratedStream(io.RawIOBase):
    """``size`` bytes made on the fly, never held whole; raises after ``fail_at`` bytes."""

    _BLOCK = 64 * 1024

    def __init__(self, size: int, *, seed: int = 0, fail_at: int | None = None) -> None:
        super().__init__()
        self._size = size
        self._fail_at = fail_at
        self._pos = 0
        self._block = memoryview(bytes((i * 31 + seed) % 251 for i in range(self._BLOCK)))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        limit = self._size if self._fail_at is None else min(self._size, self._fail_at)
        if self._pos >= limit and self._fail_at is not None and self._fail_at < self._size:
            raise WriterDied("the writer died half-way")
        with memoryview(buffer) as view:
            n = min(len(view), limit - self._pos)
            filled = 0
            while filled < n:
                start = (self._pos + filled) % self._BLOCK
                take = min(n - filled, self._BLOCK - start)
                view[filled : filled + take] = self._block[start : start + take]
                filled += take
        self._pos += n
        return n


def digest_of_stream(stream: io.RawIOBase | io.BufferedIOBase | Any) -> str:
    hasher = hashlib.sha256()
    while chunk := stream.read(MiB):
        hasher.update(chunk)
    return hasher.hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- one fixture, two backends -------------------------------------------------------------


@dataclass
class Backend:
    name: str
    store: BlobStore
    stored: Callable[[], list[str]]  # every file or object kept, temporaries included
    pending: Callable[[], list[str]]  # unfinished writes: temp files, open multipart uploads
    corrupt: Callable[[str, bytes], None]  # replace a blob's stored bytes behind its back
    memory_bound: int  # the most a put may hold in memory


def _local_backend(root: Path) -> Backend:
    store = LocalBlobStore(root)

    def stored() -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def pending() -> list[str]:
        return sorted(os.listdir(root / "tmp"))

    def corrupt(digest: str, data: bytes) -> None:
        store.path(digest).write_bytes(data)

    return Backend("local", store, stored, pending, corrupt, memory_bound=5 * MiB)


def _s3_backend(endpoint: str) -> Backend:
    bucket = f"cairn-test-{uuid.uuid4().hex[:12]}"
    store = open_blob_store(f"s3://{bucket}/blobs?endpoint_url={endpoint}&region=us-east-1")
    assert isinstance(store, s3_module.S3BlobStore)
    client = store.client
    client.create_bucket(Bucket=bucket)

    def stored() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def pending() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return sorted(u["Key"] for u in uploads)

    def corrupt(digest: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=store.key(digest), Body=data)

    # A part is buffered whole before it is sent (S3 parts are >= 5 MiB), nothing more.
    return Backend("s3", store, stored, pending, corrupt, memory_bound=PART + 4 * MiB)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local_backend(tmp_path / "blobs")
    return _s3_backend(request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def s3(request: pytest.FixtureRequest) -> Backend:
    return _s3_backend(request.getfixturevalue("s3_endpoint"))


# --- the suite -----------------------------------------------------------------------------


def test_bytes_go_in_and_come_out_verified(backend: Backend) -> None:
    store = backend.store
    data = b"hello, cairn\n" * 1000
    info = store.put_bytes(data)
    assert (info.digest, info.size) == (sha(data), len(data))
    assert store.exists(info.digest)
    assert store.size(info.digest) == len(data)
    with store.open(info.digest) as reader:
        assert reader.read(10) == data[:10]
        assert reader.read() == data[10:]
    assert list(store.digests()) == [info.digest]


def test_put_file_streams_a_file(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(3 * MiB + 17))
    info = backend.store.put_file(path)
    assert info.digest == sha(path.read_bytes())
    with backend.store.open(info.digest) as reader:
        assert reader.read() == path.read_bytes()


@pytest.mark.parametrize("size", [1000, LARGE], ids=["small", "multipart"])
def test_same_bytes_are_stored_once(backend: Backend, size: int) -> None:
    first = backend.store.put(GeneratedStream(size))  # type: ignore[arg-type]
    second = backend.store.put(GeneratedStream(size))  # type: ignore[arg-type]
    assert first == second
    assert len(backend.stored()) == 1
    assert backend.pending() == []
    assert list(backend.store.digests()) == [first.digest]


def test_concurrent_puts_of_the_same_bytes_are_harmless(tmp_path: Path) -> None:
    # Local only: moto's server itself fails (HTTP 500) on concurrent writes to one key.
    backend = _local_backend(tmp_path / "blobs")
    data = os.urandom(2 * MiB)
    with ThreadPoolExecutor(max_workers=4) as pool:
        infos = list(pool.map(lambda _: backend.store.put_bytes(data), range(8)))
    assert {i.digest for i in infos} == {sha(data)}
    assert len(backend.stored()) == 1
    with backend.store.open(sha(data)) as reader:
        assert reader.read() == data


def test_a_large_stream_is_put_and_read_in_bounded_memory(backend: Backend) -> None:
    size = 20 * MiB
    expected = digest_of_stream(GeneratedStream(size, seed=7))
    backend.store.put_bytes(b"warm up the client")  # lazy client set-up is not the put's
    tracemalloc.start()
    try:
        info = backend.store.put(GeneratedStream(size, seed=7))  # type: ignore[arg-type]
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with backend.store.open(info.digest) as reader:
            read_back = digest_of_stream(reader)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.digest, info.size) == (expected, size)
    assert read_back == expected
    assert put_peak < backend.memory_bound, f"put held {put_peak / MiB:.1f} MiB"
    assert read_peak < 6 * MiB, f"read held {read_peak / MiB:.1f} MiB"


@pytest.mark.parametrize("size", [1000, LARGE], ids=["small", "multipart"])
def test_an_unexpected_digest_stores_nothing(backend: Backend, size: int) -> None:
    wrong = sha(b"something else")
    with pytest.raises(Invalid) as caught:
        backend.store.put(GeneratedStream(size), expected_digest=wrong)  # type: ignore[arg-type]
    assert caught.value.field == "digest"
    assert backend.stored() == []
    assert backend.pending() == []
    right = digest_of_stream(GeneratedStream(size))
    info = backend.store.put(GeneratedStream(size), expected_digest=right)  # type: ignore[arg-type]
    assert info.digest == right


@pytest.mark.parametrize("damage", ["flipped", "truncated", "extended"])
def test_reading_a_damaged_blob_raises_corrupt(backend: Backend, damage: str) -> None:
    data = os.urandom(100_000)
    digest = backend.store.put_bytes(data).digest
    damaged = {
        "flipped": data[:500] + bytes([data[500] ^ 1]) + data[501:],
        "truncated": data[:-1],
        "extended": data + b"!",
    }[damage]
    backend.corrupt(digest, damaged)
    with backend.store.open(digest) as reader, pytest.raises(CorruptBlob) as caught:
        reader.read()
    assert caught.value.code == "corrupt"
    assert caught.value.details == {"digest": digest}
    with backend.store.open(digest) as reader, pytest.raises(CorruptBlob):
        while reader.read(4096):
            pass


def test_delete(backend: Backend) -> None:
    store = backend.store
    digest = store.put_bytes(b"short-lived").digest
    kept = store.put_bytes(b"kept").digest
    assert store.delete(digest) is True
    assert not store.exists(digest)
    assert store.delete(digest) is False
    with pytest.raises(NotFound):
        store.open(digest)
    with pytest.raises(NotFound):
        store.size(digest)
    assert list(store.digests()) == [kept]


def test_digests_lists_every_blob_in_order(backend: Backend) -> None:
    blobs = [f"blob {i}".encode() for i in range(12)]
    for data in blobs:
        backend.store.put_bytes(data)
    assert list(backend.store.digests()) == sorted(sha(d) for d in blobs)


def test_unknown_digest_is_not_found(backend: Backend) -> None:
    missing = sha(b"never stored")
    assert not backend.store.exists(missing)
    assert backend.store.delete(missing) is False
    with pytest.raises(NotFound) as caught:
        backend.store.open(missing)
    assert caught.value.details == {"digest": missing}
    with pytest.raises(NotFound):
        backend.store.size(missing)


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_malformed_digests_are_invalid(backend: Backend, bad: str) -> None:
    store = backend.store
    calls: list[Callable[[], object]] = [
        lambda: store.open(bad),
        lambda: store.exists(bad),
        lambda: store.size(bad),
        lambda: store.delete(bad),
        lambda: store.put(io.BytesIO(b"x"), expected_digest=bad),
    ]
    for call in calls:
        with pytest.raises(Invalid) as caught:
            call()
        assert caught.value.field == "digest"
    assert backend.stored() == []


@pytest.mark.parametrize("fail_at", [100_000, PART + 3 * MiB], ids=["early", "after-a-part"])
def test_a_writer_dying_half_way_leaves_nothing_visible(backend: Backend, fail_at: int) -> None:
    with pytest.raises(WriterDied):
        backend.store.put(GeneratedStream(2 * fail_at, fail_at=fail_at))  # type: ignore[arg-type]
    assert list(backend.store.digests()) == []
    assert backend.stored() == []
    assert backend.pending() == []


def test_a_killed_writers_temp_file_is_never_listed(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    kept = store.put_bytes(b"kept").digest
    leftover = tmp_path / "tmp" / "put-killed.part"
    leftover.write_bytes(b"half a blob")
    (tmp_path / kept[:2] / kept[2:4] / "not-a-digest").write_bytes(b"stray")
    assert list(store.digests()) == [kept]
    assert store.remove_stale_temps(older_than_s=3600) == 0
    old = time.time() - 7200
    os.utime(leftover, (old, old))
    assert store.remove_stale_temps(older_than_s=3600) == 1
    assert not leftover.exists()


# --- S3 specifics --------------------------------------------------------------------------


def _count_calls(backend: Backend) -> dict[str, int]:
    assert isinstance(backend.store, s3_module.S3BlobStore)
    counts: dict[str, int] = {}

    def count(model: Any, **_: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    backend.store.client.meta.events.register("before-call.s3", count)
    return counts


def test_s3_uses_multipart_above_one_part(s3: Backend) -> None:
    calls = _count_calls(s3)
    s3.store.put(GeneratedStream(1000))  # type: ignore[arg-type]
    assert calls.get("PutObject") == 1
    assert "CreateMultipartUpload" not in calls
    calls.clear()
    info = s3.store.put(GeneratedStream(LARGE, seed=1))  # type: ignore[arg-type]
    assert calls["CreateMultipartUpload"] == 1
    assert calls["UploadPart"] == 2
    assert calls["CompleteMultipartUpload"] == 1
    assert calls["CopyObject"] == 1
    assert "PutObject" not in calls
    assert s3.pending() == []
    assert not any("/tmp/" in key for key in s3.stored())
    assert s3.store.size(info.digest) == LARGE


def test_s3_copies_huge_objects_in_parts(s3: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    # Above 5 GB copy_object refuses; shrink the limit to take the multipart-copy path.
    monkeypatch.setattr(s3_module, "COPY_OBJECT_LIMIT", 1)
    monkeypatch.setattr(s3_module, "COPY_PART_SIZE", 5 * MiB)
    calls = _count_calls(s3)
    size = 12 * MiB + 5
    info = s3.store.put(GeneratedStream(size, seed=2))  # type: ignore[arg-type]
    assert calls["UploadPartCopy"] == 3
    assert "CopyObject" not in calls
    with s3.store.open(info.digest) as reader:
        assert digest_of_stream(reader) == digest_of_stream(GeneratedStream(size, seed=2))
    assert len(s3.stored()) == 1
    assert s3.pending() == []


def test_s3_an_existing_blob_is_not_uploaded_again(s3: Backend) -> None:
    s3.store.put(GeneratedStream(LARGE))  # type: ignore[arg-type]
    calls = _count_calls(s3)
    s3.store.put(GeneratedStream(LARGE))  # type: ignore[arg-type]
    assert calls["AbortMultipartUpload"] == 1
    assert "CompleteMultipartUpload" not in calls
    assert "CopyObject" not in calls
    calls.clear()
    s3.store.put_bytes(b"tiny")
    s3.store.put_bytes(b"tiny")
    assert calls["PutObject"] == 1


def test_s3_presigned_get_serves_the_bytes(s3: Backend) -> None:
    assert isinstance(s3.store, s3_module.S3BlobStore)
    data = os.urandom(50_000)
    digest = s3.store.put_bytes(data).digest
    url = s3.store.presigned_get(digest, expires_s=60)
    response = httpx.get(url, trust_env=False)
    assert response.status_code == 200
    assert response.content == data


def test_s3_presigned_incoming_upload_is_verified_then_adopted(s3: Backend) -> None:
    assert isinstance(s3.store, s3_module.S3BlobStore)
    data = b"uploaded straight to the object store"
    token, url, headers = s3.store.presign_incoming(sha(data), len(data), expires_s=60)
    assert httpx.put(url, content=data, headers=headers, trust_env=False).status_code == 200
    assert not s3.store.exists(sha(data))  # not visible before it is adopted
    assert s3.store.adopt_incoming(sha(data), token).size == len(data)
    with s3.store.open(sha(data)) as reader:
        assert reader.read() == data
    assert sorted(s3.store.digests()) == [sha(data)]


def test_s3_presigned_upload_of_other_bytes_is_refused(s3: Backend) -> None:
    assert isinstance(s3.store, s3_module.S3BlobStore)
    claimed = b"what the client said it would send"
    token, url, headers = s3.store.presign_incoming(sha(claimed), len(claimed), expires_s=60)
    other = b"something else of the same size!!!"[: len(claimed)].ljust(len(claimed), b"!")
    response = httpx.put(url, content=other, headers=headers, trust_env=False)
    if response.status_code == 200:  # a store that does not check checksums: we do
        with pytest.raises(Invalid, match="expected digest"):
            s3.store.adopt_incoming(sha(claimed), token)
    assert not s3.store.exists(sha(claimed))
    with pytest.raises(NotFound):
        s3.store.adopt_incoming(sha(claimed), token)  # the bad object is gone
    with pytest.raises(Invalid, match="token"):
        s3.store.adopt_incoming(sha(claimed), "../../x")


# --- choosing a backend by URI -------------------------------------------------------------


def test_open_blob_store_local_uris(tmp_path: Path) -> None:
    by_path = open_blob_store(str(tmp_path / "a"))
    assert isinstance(by_path, LocalBlobStore)
    assert by_path.root == tmp_path / "a"
    by_uri = open_blob_store((tmp_path / "b").as_uri())
    assert isinstance(by_uri, LocalBlobStore)
    assert by_uri.root == tmp_path / "b"
    assert (tmp_path / "b" / "tmp").is_dir()


def test_open_blob_store_s3_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    uri = "s3://ml-bucket/team/blobs/?endpoint_url=http://minio:9000&region=eu-west-1"
    store = open_blob_store(uri)
    assert isinstance(store, s3_module.S3BlobStore)
    assert (store.bucket, store.prefix) == ("ml-bucket", "team/blobs")
    assert store.client.meta.endpoint_url == "http://minio:9000"
    assert store.client.meta.region_name == "eu-west-1"
    assert store.key("ab" * 32) == "team/blobs/ab/ab/" + "ab" * 32
    bare = open_blob_store("s3://ml-bucket?region=us-east-1")
    assert isinstance(bare, s3_module.S3BlobStore)
    assert bare.key("cd" * 32) == "cd/cd/" + "cd" * 32


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "ftp://host/blobs",
        "http://example.com/blobs",
        "gs://bucket/blobs",
        "file://otherhost/blobs",
        "s3://",
        "s3:///prefix-without-bucket",
        "s3://bucket/p?colour=red",
        "s3://bucket/p?endpoint_url=ftp://host",
        "s3://bucket/p?region=",
        "s3://bucket/p?region=a&region=b",
    ],
)
def test_open_blob_store_refuses_bad_uris(uri: str) -> None:
    with pytest.raises(Invalid) as caught:
        open_blob_store(uri)
    assert caught.value.field == "artifacts"
