"""The local digest cache: a large unchanged file is not hashed twice; any change to it,
even one that puts the modification time back, is noticed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cairn.client import transfer


def _no_hashing(*_args: object) -> object:
    raise AssertionError("the file was hashed again")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CAIRN_CACHE_DIR", str(folder))
    return folder


def test_unchanged_large_file_is_hashed_once(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(2 * 1024 * 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    first = transfer.hash_file(path)
    assert first == (hashlib.sha256(data).hexdigest(), len(data))
    with monkeypatch.context() as patched:
        patched.setattr(transfer.hashlib, "sha256", _no_hashing)
        assert transfer.hash_file(path) == first
    assert (cache / "digests.sqlite").is_file()


def test_a_change_is_noticed_even_with_the_old_mtime(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"a" * (2 * 1024 * 1024))
    transfer.hash_file(path)
    before = path.stat()
    path.write_bytes(b"b" * (2 * 1024 * 1024))  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
    assert transfer.hash_file(path)[0] == hashlib.sha256(b"b" * (2 * 1024 * 1024)).hexdigest()


def test_small_files_are_not_cached(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "small.txt"
    path.write_text("small")
    transfer.hash_file(path)
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(transfer.hashlib, "sha256", lambda: calls.append(1) or real())
    assert transfer.hash_file(path)[0] == real(b"small").hexdigest()
    assert calls == [1]


def test_an_unusable_cache_folder_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("CAIRN_CACHE_DIR", str(blocker / "cache"))
    path = tmp_path / "big.bin"
    path.write_bytes(b"c" * (2 * 1024 * 1024))
    assert transfer.hash_file(path)[0] == hashlib.sha256(path.read_bytes()).hexdigest()
