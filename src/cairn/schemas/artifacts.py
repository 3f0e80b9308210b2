"""Run artifacts on the wire: manifest entries."""

from __future__ import annotations

from datetime import datetime

from cairn.domain.records import ArtifactEntry
from cairn.schemas.base import Wire, as_utc


class ArtifactOut(Wire):
    path: str
    digest: str
    size: int
    media_type: str
    created_at: datetime

    @classmethod
    def of(cls, entry: ArtifactEntry) -> ArtifactOut:
        return cls(
            path=entry.path,
            digest=entry.digest,
            size=entry.size,
            media_type=entry.media_type,
            created_at=entry.created_at,
        )

    def to_domain(self) -> ArtifactEntry:
        created = as_utc(self.created_at)
        return ArtifactEntry(self.path, self.digest, self.size, self.media_type, created)


class ArtifactRecordIn(Wire):
    """Record a blob already stored as a run's file: no bytes travel."""

    path: str
    digest: str
    media_type: str | None = None
