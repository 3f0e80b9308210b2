"""Production records: endpoints with weighted variants, predictions, feedback.

Assignment is sticky: the same unit id (a user, a device) always lands on the same
variant of an endpoint while the weights stay the same; without a unit id it is random.

>>> v = [Variant("champion", "iris@production", 90), Variant("challenger", "iris@staging", 10)]
>>> assign_variant("churn", v, "user-42").name == assign_variant("churn", v, "user-42").name
True
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cairn.domain.errors import Invalid

MAX_VARIANTS = 20
MAX_BATCH = 10_000
MAX_RECORD_BYTES = 256 * 1024
_VARIANT = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,99}$")


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    target: str  # a model reference: iris@production, iris:3
    weight: int
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    project: str
    name: str
    description: str
    variants: list[Variant]
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def serving(self) -> list[Variant]:
        """The variants that answer (weight > 0, not shadows)."""
        return [v for v in self.variants if not v.shadow and v.weight > 0]

    def shadows(self) -> list[Variant]:
        return [v for v in self.variants if v.shadow]


@dataclass(frozen=True, slots=True)
class NewPrediction:
    """One served inference to record. ``request_id`` makes a resend harmless."""

    request_id: str
    inputs: Any
    outputs: Any = None
    unit_id: str | None = None
    at: datetime | None = None
    latency_ms: float | None = None
    error: str | None = None
    variant: str = ""
    shadow: bool = False


class PredictionRecord(Protocol):
    """What logging reads of a prediction: a ``NewPrediction``, or the API's record of
    one as it arrived (no copy of a large batch is made to log it)."""

    @property
    def request_id(self) -> str | None: ...
    @property
    def inputs(self) -> Any: ...
    @property
    def outputs(self) -> Any: ...
    @property
    def unit_id(self) -> str | None: ...
    @property
    def at(self) -> datetime | None: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def variant(self) -> str: ...
    @property
    def shadow(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Prediction:
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
    actual: Any = field(default=None)  # the feedback joined by request id, if any


def check_variants(variants: list[Variant]) -> list[Variant]:
    if not variants:
        raise Invalid("an endpoint needs at least one variant", field="variants")
    if len(variants) > MAX_VARIANTS:
        raise Invalid(f"an endpoint has at most {MAX_VARIANTS} variants", field="variants")
    seen: set[str] = set()
    for index, v in enumerate(variants):
        where = f"variants[{index}]"
        if not isinstance(v.name, str) or _VARIANT.match(v.name) is None:
            raise Invalid(
                f"{where}.name {v.name!r} must start with a letter and hold letters, digits, "
                "'_' or '-'",
                field=f"{where}.name",
            )
        if v.name in seen:
            raise Invalid(f"{where}.name {v.name!r} is used twice", field=f"{where}.name")
        seen.add(v.name)
        if (
            isinstance(v.weight, bool)
            or not isinstance(v.weight, int)
            or not 0 <= v.weight <= 10_000
        ):
            raise Invalid(
                f"{where}.weight must be a whole number from 0 to 10000", field=f"{where}.weight"
            )
    if sum(v.weight for v in variants if not v.shadow) <= 0:
        raise Invalid("at least one non-shadow variant needs a weight above 0", field="variants")
    return variants


def assign_variant(endpoint: str, variants: list[Variant], unit_id: str | None) -> Variant:
    """The serving variant for a unit: a stable hash of (endpoint, unit) over the weights."""
    serving = [v for v in variants if not v.shadow and v.weight > 0]
    if not serving:
        raise Invalid(f"endpoint {endpoint!r} has no serving variant", field="variants")
    total = sum(v.weight for v in serving)
    if unit_id is None:
        point = random.randrange(total)
    else:
        digest = hashlib.sha256(f"{endpoint}\x00{unit_id}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") % total
    for variant in serving:
        if point < variant.weight:
            return variant
        point -= variant.weight
    return serving[-1]


def parse_variant_spec(text: str) -> Variant:
    """``champion=iris@production:90`` (``shadow=iris@staging:0:shadow`` for a shadow)."""
    name, sep, rest = text.partition("=")
    if not sep:
        raise Invalid(f"variant {text!r} must read NAME=MODEL_REF:WEIGHT", field="variant")
    shadow = rest.endswith(":shadow")
    if shadow:
        rest = rest[: -len(":shadow")]
    target, sep, weight = rest.rpartition(":")
    if not sep or not weight.isdigit():
        raise Invalid(f"variant {text!r} must end with :WEIGHT (a whole number)", field="variant")
    return Variant(name, target, int(weight), shadow)
