"""Metric points, the volume of the system, and the summaries that spare scanning them.

- ``metric_keys`` interns key names to integers.
- ``metric_points`` is clustered on (run, key, step, seq): one series is one range scan.
  ``seq`` numbers a series' points in arrival order, so a step logged twice keeps both.
  NaN is stored as NULL (SQLite cannot store NaN); +-inf are stored as they are.
- ``metric_summaries``: last (at the highest step), min, max, count per run and key;
  search and sort read these.
- ``metric_rollups``: per bucket of ``seq`` at two resolutions, the min and max points,
  kept as points arrive, so a downsampled chart never scans the series.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cairn.store.tables.base import Base, BigId


class MetricKeyRow(Base):
    __tablename__ = "metric_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(250), unique=True)


class MetricPointRow(Base):
    """No foreign key to runs: checking one per point would tax the bulk insert."""

    __tablename__ = "metric_points"

    run_pk: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float(precision=53))

    __table_args__ = ({"sqlite_with_rowid": False},)


class MetricSummaryRow(Base):
    __tablename__ = "metric_summaries"

    run_pk: Mapped[int] = mapped_column(ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("metric_keys.id"), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    last_value: Mapped[float | None] = mapped_column(Float(precision=53))
    last_step: Mapped[int] = mapped_column(BigInteger)
    last_ts: Mapped[int] = mapped_column(BigInteger)
    min_value: Mapped[float | None] = mapped_column(Float(precision=53))
    max_value: Mapped[float | None] = mapped_column(Float(precision=53))

    __table_args__ = (
        Index("ix_metric_summaries_key_last", "key_id", "last_value"),
        {"sqlite_with_rowid": False},
    )


class MetricRollupRow(Base):
    __tablename__ = "metric_rollups"

    run_pk: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    step_lo: Mapped[int] = mapped_column(BigInteger)
    step_hi: Mapped[int] = mapped_column(BigInteger)
    min_step: Mapped[int | None] = mapped_column(BigInteger)
    min_ts: Mapped[int | None] = mapped_column(BigInteger)
    min_value: Mapped[float | None] = mapped_column(Float(precision=53))
    max_step: Mapped[int | None] = mapped_column(BigInteger)
    max_ts: Mapped[int | None] = mapped_column(BigInteger)
    max_value: Mapped[float | None] = mapped_column(Float(precision=53))

    __table_args__ = ({"sqlite_with_rowid": False},)
