"""Production: endpoints with weighted variants, served predictions, and feedback.

Predictions are append-only and the volume table; they are keyed for the questions
monitoring asks: one model version over a time window, one endpoint over a window, one
request by its id (feedback joins on it). Their rollups per minute are written with them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cairn.store.tables.base import Base, BigId


class EndpointRow(Base):
    __tablename__ = "endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(250))
    description: Mapped[str] = mapped_column(Text, default="")
    # JSON: thresholds for drift and quality alerts, the rollback rule.
    settings: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("uq_endpoints_project_name", "project_id", "name", unique=True),)


class EndpointVariantRow(Base):
    __tablename__ = "endpoint_variants"

    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    target: Mapped[str] = mapped_column(String(600))  # a model reference: iris@production
    weight: Mapped[int] = mapped_column(Integer)
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)


class PredictionRow(Base):
    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(BigInteger)
    model_id: Mapped[int] = mapped_column(BigInteger)
    model_version: Mapped[int] = mapped_column(Integer)
    endpoint_id: Mapped[int | None] = mapped_column(BigInteger)
    variant: Mapped[str] = mapped_column(String(100), default="")  # "" outside endpoints
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)
    request_id: Mapped[str] = mapped_column(String(100))
    unit_id: Mapped[str | None] = mapped_column(String(250))
    at: Mapped[int] = mapped_column(BigInteger)
    inputs: Mapped[str] = mapped_column(Text)  # JSON
    outputs: Mapped[str | None] = mapped_column(Text)  # JSON
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_predictions_model_at", "model_id", "model_version", "at"),
        Index("ix_predictions_endpoint_at", "endpoint_id", "at"),
        # A resent batch must not duplicate: one row per request and variant.
        Index("uq_predictions_request", "project_id", "request_id", "variant", unique=True),
    )


class FeedbackRow(Base):
    """Ground truth that arrived later, joined to predictions by request id."""

    __tablename__ = "feedback"

    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    actual: Mapped[str] = mapped_column(Text)  # JSON
    at: Mapped[int] = mapped_column(BigInteger)


class PredictionRollupRow(Base):
    """Predictions of one group (version, endpoint, variant) added up per minute, kept
    as they are logged, so a monitoring report reads these instead of every prediction
    (``domain/rollups.py`` says what the columns hold)."""

    __tablename__ = "prediction_rollups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(BigInteger)
    model_id: Mapped[int] = mapped_column(BigInteger)
    model_version: Mapped[int] = mapped_column(Integer)
    endpoint_id: Mapped[int] = mapped_column(BigInteger)  # 0 outside endpoints: a key part
    variant: Mapped[str] = mapped_column(String(100))
    shadow: Mapped[bool] = mapped_column(Boolean)
    minute: Mapped[int] = mapped_column(BigInteger)  # its start, ms since the epoch
    volume: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    latency: Mapped[str] = mapped_column(Text)  # JSON: moments and a log-scale histogram
    outputs: Mapped[str] = mapped_column(Text)  # JSON: class counts, moments, histogram
    # JSON: the (outputs, actual) pairs of predictions whose feedback arrived, error sums
    labels: Mapped[str] = mapped_column(Text, server_default="{}")

    __table_args__ = (
        Index(
            "uq_prediction_rollups_key",
            "project_id",
            "model_id",
            "model_version",
            "endpoint_id",
            "variant",
            "shadow",
            "minute",
            unique=True,
        ),
        Index("ix_prediction_rollups_endpoint", "endpoint_id", "minute"),
    )
