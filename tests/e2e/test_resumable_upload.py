"""A large upload over HTTP whose connection breaks half-way resumes where it stopped:
the server keeps what arrived, the SDK asks for the offset and sends only the rest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

import cairn
from cairn.client.http import HttpBackend

pytestmark = pytest.mark.server


def test_broken_upload_resumes_from_the_servers_offset(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(40 * 1024 * 1024 + 17)  # three 16 MiB chunks
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    backend = HttpBackend(server)
    real = backend.http.request
    sent: list[tuple[str, int]] = []
    broken = {"done": False}

    def flaky(method: str, url: str, **kwargs: Any) -> httpx.Response:
        if method == "PATCH":
            offset = int(kwargs["headers"]["Upload-Offset"])
            sent.append((url, offset))
            if offset > 0 and not broken["done"]:
                broken["done"] = True
                # Half of the chunk reaches the server, then the connection drops.
                half = kwargs["content"][: len(kwargs["content"]) // 2]
                real(method, url, **{**kwargs, "content": half})
                raise httpx.ReadError("connection reset by peer")
        return real(method, url, **kwargs)

    monkeypatch.setattr(backend.http, "request", flaky)
    client = cairn.Client(server)
    client.backend = backend
    try:
        version = client.log_dataset("resumed", big, project="uploads")
        assert version.size == len(data)
        offsets = [offset for _url, offset in sent]
        mib = 1024 * 1024
        # 16 MiB chunks: the second breaks after 8 MiB arrived; the next starts at 24 MiB.
        assert offsets == [0, 16 * mib, 24 * mib, 40 * mib]
        back = client.get_dataset("uploads/resumed:1", tmp_path / "back")
        assert (
            hashlib.sha256((back / "big.bin").read_bytes()).digest()
            == hashlib.sha256(data).digest()
        )
    finally:
        client.close()
