"""Garbage collection of blobs: mark what any manifest references, sweep the rest.

report = collect_garbage(db, BlobService(db), grace_s=3600, dry_run=True)

Safe while others write: a blob younger than the grace period is never deleted (a
client sends bytes before it records the manifest that names them, and asking
``missing`` touches a blob it is about to reuse), and the manifests are read again just
before anything is deleted, so a reference made during the sweep keeps its blob.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cairn.blobs import LocalBlobStore
from cairn.domain.errors import Invalid, NotFound
from cairn.services.blobs import BlobService
from cairn.services.uploads import UploadService
from cairn.store.database import Database
from cairn.store.repositories.artifacts import ArtifactRepository
from cairn.store.repositories.datasets import DatasetRepository

DEFAULT_GRACE_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class GcReport:
    scanned: int
    referenced: int
    young: int
    unreferenced: int
    unreferenced_bytes: int
    deleted: int
    deleted_bytes: int
    dry_run: bool
    stale_uploads: int = 0
    stale_temps: int = 0


def referenced_digests(db: Database) -> set[str]:
    """Every digest a run's artifacts or a dataset version names."""
    with db.read() as conn:
        return (
            ArtifactRepository(conn).referenced_digests()
            | DatasetRepository(conn).referenced_digests()
        )


def collect_garbage(
    db: Database,
    blobs: BlobService,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    dry_run: bool = False,
) -> GcReport:
    """Delete blobs no manifest references that are older than ``grace_s`` seconds."""
    if grace_s < 0:
        raise Invalid("the grace period must be >= 0 seconds", field="grace")
    started = time.time()
    store = blobs.store
    marked = referenced_digests(db)
    scanned = referenced = young = 0
    candidates: list[tuple[str, int]] = []
    for digest in store.digests():
        scanned += 1
        if digest in marked:
            referenced += 1
            continue
        try:
            if started - store.modified(digest) < grace_s:
                young += 1
                continue
            candidates.append((digest, store.size(digest)))
        except NotFound:  # deleted by another collector meanwhile
            continue
    deleted = deleted_bytes = 0
    if not dry_run and candidates:
        again = referenced_digests(db)  # references made while we listed
        for digest, size in candidates:
            if digest in again:
                continue
            try:
                if started - store.modified(digest) < grace_s:
                    continue  # touched (about to be reused) while we listed
            except NotFound:
                continue
            if store.delete(digest):
                deleted += 1
                deleted_bytes += size
    stale_uploads = stale_temps = 0
    if not dry_run:
        stale_uploads = UploadService(blobs).sweep()
        if isinstance(store, LocalBlobStore):
            stale_temps = store.remove_stale_temps()
    return GcReport(
        scanned=scanned,
        referenced=referenced,
        young=young,
        unreferenced=len(candidates),
        unreferenced_bytes=sum(size for _digest, size in candidates),
        deleted=deleted,
        deleted_bytes=deleted_bytes,
        dry_run=dry_run,
        stale_uploads=stale_uploads,
        stale_temps=stale_temps,
    )
