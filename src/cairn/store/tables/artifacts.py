"""A run's artifact manifest: path -> blob digest, size, media type."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cairn.store.tables.base import Base


class ArtifactRow(Base):
    __tablename__ = "artifacts"

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    # Indexed: garbage collection asks which digests any manifest still references.
    digest: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(250))
    created_at: Mapped[int] = mapped_column(BigInteger)
