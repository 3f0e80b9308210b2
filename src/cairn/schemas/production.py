"""Production on the wire: endpoints and their variants, logged predictions, feedback,
and the inference server's ``POST /predict``.

Text that reaches the database as a key (request ids, unit ids, variant names) may not
hold NUL or lone surrogates: PostgreSQL refuses both, and a refusal is a 400 here
rather than a 500 there.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from cairn.domain.production import Endpoint, Prediction, Variant
from cairn.schemas.base import Wire, as_utc
from cairn.schemas.runs import UtcTime

MAX_SETTINGS_BYTES = 64 * 1024


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not hold NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]


class VariantIn(Wire):
    name: Text = Field(description="Letters, digits, '_' or '-'; starts with a letter")
    target: Text = Field(description="A model reference: iris@production, iris:3, iris@1.2.0")
    weight: int = Field(ge=0, le=10_000, description="Share of traffic among serving variants")
    shadow: bool = Field(
        default=False, description="Gets a copy of every request; its answers are only logged"
    )

    def to_domain(self) -> Variant:
        return Variant(self.name, self.target, self.weight, self.shadow)

    @classmethod
    def of(cls, v: Variant) -> VariantIn:
        return cls(name=v.name, target=v.target, weight=v.weight, shadow=v.shadow)


def _settings(value: dict[str, Any]) -> dict[str, Any]:
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:
        raise ValueError("settings hold plain JSON values (no NaN or infinity)") from None
    if len(text) > MAX_SETTINGS_BYTES:
        raise ValueError(f"settings are at most {MAX_SETTINGS_BYTES} bytes as JSON")
    return value


Settings = Annotated[dict[str, Any], AfterValidator(_settings)]


class EndpointIn(Wire):
    name: str
    variants: list[VariantIn] = Field(min_length=1)
    description: str = ""
    settings: Settings = Field(
        default_factory=dict, description="Alert thresholds and the rollback rule"
    )


class VariantsIn(Wire):
    """The endpoint's new variants, replacing all of the old ones."""

    variants: list[VariantIn] = Field(min_length=1)


class SettingsIn(Wire):
    """Keys to set; the others keep their values."""

    settings: Settings


class EndpointOut(Wire):
    project: str
    name: str
    description: str
    variants: list[VariantIn]
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, e: Endpoint) -> EndpointOut:
        return cls(
            project=e.project,
            name=e.name,
            description=e.description,
            variants=[VariantIn.of(v) for v in e.variants],
            settings=e.settings,
            created_at=e.created_at,
            updated_at=e.updated_at,
        )

    def to_domain(self) -> Endpoint:
        return Endpoint(
            self.project,
            self.name,
            self.description,
            [v.to_domain() for v in self.variants],
            self.settings,
            as_utc(self.created_at),
            as_utc(self.updated_at),
        )


class PredictionIn(Wire):
    """One served inference: one input row and what the model answered for it (read
    as it is by ``PredictionService.log_predictions``: a ``domain.PredictionRecord``)."""

    request_id: Text | None = Field(
        default=None, max_length=100, description="Unique per request; made when left out"
    )
    inputs: Any = Field(description="The features of one row: an object or a list")
    outputs: Any = None
    unit_id: Text | None = Field(
        default=None, max_length=250, description="Who the request is for (a user, a device)"
    )
    at: UtcTime | None = Field(default=None, description="When it was served; default now")
    latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    error: Text | None = None
    variant: Text = Field(default="", max_length=100)
    shadow: bool = False


class PredictionsIn(Wire):
    model: Text = Field(
        description="The model version that answered: iris:3, or an alias resolved now"
    )
    endpoint: Text | None = Field(default=None, description="The endpoint that served them")
    records: list[PredictionIn]


class StoredOut(Wire):
    stored: int = Field(description="How many were new (a resent request id is skipped)")


class FeedbackIn(Wire):
    actuals: dict[Text, Any] = Field(
        description="Ground truth by request id; sending one again replaces it"
    )


class PredictionOut(Wire):
    project: str
    model: str
    version: int
    request_id: str
    at: datetime
    inputs: Any
    outputs: Any
    unit_id: str | None = None
    latency_ms: float | None = None
    error: str | None = None
    endpoint: str | None = None
    variant: str = ""
    shadow: bool = False
    actual: Any = None

    @classmethod
    def of(cls, p: Prediction) -> PredictionOut:
        return cls.model_construct(
            project=p.project,
            model=p.model,
            version=p.version,
            request_id=p.request_id,
            at=p.at,
            inputs=p.inputs,
            outputs=p.outputs,
            unit_id=p.unit_id,
            latency_ms=p.latency_ms,
            error=p.error,
            endpoint=p.endpoint,
            variant=p.variant,
            shadow=p.shadow,
            actual=p.actual,
        )

    def to_domain(self) -> Prediction:
        return Prediction(
            project=self.project,
            model=self.model,
            version=self.version,
            request_id=self.request_id,
            at=as_utc(self.at),
            inputs=self.inputs,
            outputs=self.outputs,
            unit_id=self.unit_id,
            latency_ms=self.latency_ms,
            error=self.error,
            endpoint=self.endpoint,
            variant=self.variant,
            shadow=self.shadow,
            actual=self.actual,
        )


# -- the inference server (cairn serve) ---------------------------------------------------


class PredictIn(Wire):
    """Rows as ``records`` (objects), ``columns`` (name → values) or ``instances``
    (lists, or objects); exactly one of them."""

    records: list[dict[str, Any]] | None = None
    columns: dict[str, list[Any]] | None = None
    instances: list[Any] | None = None
    unit_id: str | None = Field(
        default=None, max_length=250, description="Sticky variant assignment per unit"
    )
    request_id: str | None = Field(default=None, max_length=90, description="Made when left out")

    @field_validator("unit_id", "request_id")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _storable(value)


class PredictOut(Wire):
    predictions: list[Any]
    model: str
    version: int
    semver: str
    request_id: str
    request_ids: list[str] = Field(
        description="One per row, for feedback: the request id itself for a single row, "
        "else request_id.0, request_id.1, …"
    )
    variant: str | None = Field(description="The endpoint's variant that answered")
