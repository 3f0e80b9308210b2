"""Plain typed records: what repositories return and services, SDK and API speak.

Rows stay in the store; these cross every layer. Times are timezone-aware UTC
``datetime`` values, except metric timestamps, which are milliseconds since the epoch
because they come by the million.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"


def ms_to_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    description: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    project: Project
    run_count: int
    running_count: int
    last_activity: datetime | None


class MetricSummary(NamedTuple):
    """Per run and key: the last value (at the highest step), min, max and count."""

    key: str
    last: float
    last_step: int
    last_timestamp: int
    min: float | None
    max: float | None
    count: int  # type: ignore[assignment]  # shadows tuple.count, on purpose


class MetricPoint(NamedTuple):
    """One point of a series. A tuple: series come by the hundred thousand."""

    step: int
    timestamp: int
    value: float


@dataclass(frozen=True, slots=True)
class MetricHistory:
    """A metric series, whole or downsampled (each bucket keeps its min and max)."""

    run_id: str
    key: str
    points: list[MetricPoint]
    total_count: int
    downsampled: bool


@dataclass(frozen=True, slots=True)
class RunStart:
    """Everything known when a run starts; the id is made by whoever starts it."""

    id: str
    project: str
    start_time: datetime
    name: str | None = None
    experiment: str | None = None
    parent_id: str | None = None
    author: str | None = None
    command: str | None = None
    notes: str | None = None
    git: dict[str, Any] | None = None
    git_diff: str | None = None
    environment: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RunEnd:
    status: RunStatus
    end_time: datetime
    error: str | None = None


@dataclass(slots=True)
class MetricSeries:
    """Points of one key, column-wise: the shape they travel and are stored in."""

    steps: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(slots=True)
class RunBatch:
    """What one batch carries for one run. Applied in one transaction with its batch."""

    run_id: str
    start: RunStart | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    notes: str | None = None
    end: RunEnd | None = None

    def is_empty(self) -> bool:
        return not (
            self.start or self.params or self.tags or self.metrics or self.notes or self.end
        )


@dataclass(slots=True)
class Batch:
    """A unit of logging with an idempotency key: applied once, however often it is sent."""

    idempotency_key: str
    runs: list[RunBatch] = field(default_factory=list)

    @property
    def point_count(self) -> int:
        return sum(len(s) for r in self.runs for s in r.metrics.values())


@dataclass(frozen=True, slots=True)
class BatchResult:
    idempotency_key: str
    applied: bool  # False when the key had been applied before (a resend)
    runs: int
    points: int


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    project: str
    name: str | None
    experiment: str | None
    parent_id: str | None
    status: RunStatus
    start_time: datetime
    end_time: datetime | None
    author: str | None
    notes: str | None
    command: str | None
    error: str | None
    git: dict[str, Any] | None
    environment: dict[str, Any] | None
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, MetricSummary]

    @property
    def duration_s(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass(frozen=True, slots=True)
class RunPage:
    runs: list[Run]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """One file of a run's artifact manifest: a normalised path and the blob it names."""

    path: str
    digest: str
    size: int
    media_type: str
    created_at: datetime
