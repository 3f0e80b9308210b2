"""``CAIRN_MODE=offline``: log whole runs to the local spool, with no server at all.

    CAIRN_MODE=offline python train.py          # runs, params, metrics, artifacts → spool
    cairn sync --uri http://cairn:5000          # later: push them (idempotent)

Writes (batches, artifacts) land in this process's spool file; artifact bytes are
copied under ``<spool>/blobs/<digest>``. Reads have nothing to read from and raise
``Unavailable`` naming offline mode.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cairn.client.spool import Spool
from cairn.client.transfer import LocalFile, Progress
from cairn.domain.errors import Unavailable
from cairn.domain.ids import new_ulid
from cairn.domain.records import ArtifactEntry, Batch, BatchResult

DEFAULT_MEDIA_TYPE = "application/octet-stream"


class OfflineBackend:
    """The part of the ``Backend`` protocol a training job writes through; the rest
    raises ``Unavailable``."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.spool = Spool(folder)
        self.uri = f"offline:{self.spool.folder}"
        self._sizes: dict[str, int] = {}

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def offline(*args: Any, **kwargs: Any) -> Any:
            raise Unavailable(
                f"{name} needs a server or a store; CAIRN_MODE=offline only logs "
                "(run `cairn sync` to push the spool, then read from there)",
                details={"mode": "offline"},
            )

        return offline

    def log_batch(self, batch: Batch) -> BatchResult:
        self.spool.append_batch(batch)
        return BatchResult(batch.idempotency_key, True, len(batch.runs), batch.point_count)

    def upload_blobs(self, files: Sequence[LocalFile], progress: Progress | None = None) -> None:
        for item in files:
            self.spool.store_blob(item.path, item.digest)
            self._sizes[item.digest] = item.size
            if progress is not None:
                progress(item.size)

    def record_artifacts(
        self, run_id: str, items: list[tuple[str, str, str | None]]
    ) -> list[ArtifactEntry]:
        now = datetime.now(tz=UTC)
        rows = [
            (path, digest, media or DEFAULT_MEDIA_TYPE, self._size(digest))
            for path, digest, media in items
        ]
        self.spool.append_artifacts(run_id, rows)
        return [ArtifactEntry(p, d, s, m, now) for p, d, m, s in rows]

    def log_artifact(
        self, run_id: str, path: str, stream: BinaryIO, media_type: str | None = None
    ) -> ArtifactEntry:
        import hashlib

        tmp = self.spool.folder / "blobs" / f".{new_ulid()}.in"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        hexdigest = digest.hexdigest()
        self.spool.store_blob(tmp, hexdigest)
        self._sizes[hexdigest] = tmp.stat().st_size
        tmp.unlink()
        return self.record_artifacts(run_id, [(path, hexdigest, media_type)])[0]

    def local_blob_path(self, digest: str) -> Path | None:
        return None

    def _size(self, digest: str) -> int:
        size = self._sizes.get(digest)
        if size is None:
            size = (self.spool.folder / "blobs" / digest).stat().st_size
        return size

    def close(self) -> None:
        return None
