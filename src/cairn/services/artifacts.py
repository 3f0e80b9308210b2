"""Run artifacts: files a run logs, stored once by content, listed by a manifest.

service = ArtifactService(Database("./.cairn"))          # blobs in ./.cairn/artifacts
with open("model.pkl", "rb") as f:
    service.log_artifact(run_id, "model/model.pkl", f, actor="ana")
entry, reader = service.open_artifact(run_id, "model/model.pkl")
"""

from __future__ import annotations

import mimetypes
from typing import BinaryIO

from cairn.blobs import BlobStore, check_digest
from cairn.domain.artifact_paths import check_media_type, normalize_artifact_path
from cairn.domain.errors import Invalid, NotFound
from cairn.domain.records import ArtifactEntry
from cairn.services.blobs import BlobService
from cairn.store.database import Database
from cairn.store.repositories.artifacts import ArtifactRepository
from cairn.store.repositories.events import EventRepository, NewEvent
from cairn.store.repositories.runs import RunKey, RunRepository

DEFAULT_MEDIA_TYPE = "application/octet-stream"


def guess_media_type(path: str) -> str:
    """The media type a file's extension suggests. Example: ``guess_media_type("a.csv")``."""
    guessed, _encoding = mimetypes.guess_type(path, strict=False)
    return guessed or DEFAULT_MEDIA_TYPE


def _run_not_found(run_id: str) -> NotFound:
    return NotFound(f"run {run_id} does not exist", details={"run_id": run_id})


class ArtifactService:
    def __init__(self, db: Database, blobs: BlobStore | BlobService | None = None) -> None:
        self.db = db
        self.blob_service = blobs if isinstance(blobs, BlobService) else BlobService(db, blobs)

    @property
    def blobs(self) -> BlobStore:
        return self.blob_service.store

    def _run(self, run_id: str) -> RunKey:
        with self.db.read() as conn:
            key = RunRepository(conn).keys([run_id]).get(run_id)
        if key is None:
            raise _run_not_found(run_id)
        return key

    def log_artifact(
        self,
        run_id: str,
        path: str,
        stream: BinaryIO,
        media_type: str | None = None,
        *,
        expected_digest: str | None = None,
        actor: str | None = None,
    ) -> ArtifactEntry:
        """Store what ``stream`` yields as the run's file ``path``.

        The bytes go to the blob store first (stored once by digest); the manifest entry
        and the audit event are then written in one transaction. Logging a path again
        replaces its entry (a new version of the file).
        """
        clean = normalize_artifact_path(path)
        media = check_media_type(media_type) if media_type else guess_media_type(clean)
        if expected_digest is not None:
            check_digest(expected_digest)
        self._run(run_id)  # refuse an unknown run before any byte is stored
        info = self.blobs.put(stream, expected_digest=expected_digest)
        return self._record(run_id, [(clean, info.digest, info.size, media)], actor)[0]

    def record_artifacts(
        self,
        run_id: str,
        items: list[tuple[str, str, str | None]],
        *,
        actor: str | None = None,
    ) -> list[ArtifactEntry]:
        """Record blobs already stored as the run's files, ``(path, digest, media type)``
        each, in one transaction: no byte moves. Every item is checked before anything is
        written; a blob not stored is ``Invalid`` naming it (send it first)."""
        checked: list[tuple[str, str, int, str]] = []
        seen: set[str] = set()
        for index, (path, digest, media_type) in enumerate(items):
            clean = normalize_artifact_path(path, f"[{index}].path")
            if clean in seen:
                raise Invalid(f"[{index}].path {clean!r} is listed twice", field=f"[{index}].path")
            seen.add(clean)
            media = check_media_type(media_type) if media_type else guess_media_type(clean)
            check_digest(digest)
            try:
                size = self.blob_service.size(digest)
            except NotFound:
                raise Invalid(
                    f"[{index}] ({clean}): blob {digest} has not been uploaded",
                    field=f"[{index}].digest",
                    details={"digest": digest},
                ) from None
            checked.append((clean, digest, size, media))
        self._run(run_id)
        return self._record(run_id, checked, actor)

    def _record(
        self, run_id: str, items: list[tuple[str, str, int, str]], actor: str | None
    ) -> list[ArtifactEntry]:
        with self.db.write() as tx:
            runs = RunRepository(tx.conn)
            key = runs.keys([run_id]).get(run_id)
            if key is None:
                raise _run_not_found(run_id)
            repo = ArtifactRepository(tx.conn)
            entries = [repo.put(key.pk, *item) for item in items]
            runs.touch([key.pk])
            EventRepository(tx.conn).add_many(
                actor,
                [
                    NewEvent(
                        "artifact.logged",
                        "run",
                        run_id,
                        key.project_id,
                        after={"path": p, "digest": d, "size": n, "media_type": m},
                    )
                    for p, d, n, m in items
                ],
            )
        return entries

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactEntry]:
        """The run's manifest by path; with ``prefix`` the file it names or those under it."""
        clean = normalize_artifact_path(prefix, "prefix") if prefix else None
        with self.db.read() as conn:
            key = RunRepository(conn).keys([run_id]).get(run_id)
            if key is None:
                raise _run_not_found(run_id)
            return ArtifactRepository(conn).list(key.pk, clean)

    def get_artifact(self, run_id: str, path: str) -> ArtifactEntry:
        clean = normalize_artifact_path(path)
        with self.db.read() as conn:
            key = RunRepository(conn).keys([run_id]).get(run_id)
            if key is None:
                raise _run_not_found(run_id)
            entry = ArtifactRepository(conn).get(key.pk, clean)
        if entry is None:
            raise NotFound(
                f"run {run_id} has no artifact {clean!r}",
                details={"run_id": run_id, "path": clean},
            )
        return entry

    def open_artifact(self, run_id: str, path: str) -> tuple[ArtifactEntry, BinaryIO]:
        """The entry and a reader of its bytes, verified against the digest at EOF."""
        entry = self.get_artifact(run_id, path)
        return entry, self.blobs.open(entry.digest)
