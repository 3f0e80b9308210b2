from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cairn.store.tables.base import Base


class BatchRow(Base):
    """Idempotency keys of applied batches: a resent batch is recognised and skipped."""

    __tablename__ = "batches"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    applied_at: Mapped[int] = mapped_column(BigInteger, index=True)
    runs: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)
