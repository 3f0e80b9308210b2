from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict


def as_utc(value: datetime) -> datetime:
    """A time as timezone-aware UTC; a naive time is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Wire(BaseModel):
    """Strict about unknown fields (a typo is an error), NaN/inf sent as strings."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings", allow_inf_nan=True)


class ErrorBody(Wire):
    code: str
    message: str
    details: dict[str, object] = {}


class ErrorOut(Wire):
    error: ErrorBody
