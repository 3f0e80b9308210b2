from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Wire(BaseModel):
    """Strict about unknown fields (a typo is an error), NaN/inf sent as strings."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings", allow_inf_nan=True)


class ErrorBody(Wire):
    code: str
    message: str
    details: dict[str, object] = {}


class ErrorOut(Wire):
    error: ErrorBody
