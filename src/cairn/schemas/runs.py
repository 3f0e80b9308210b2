"""Runs, batches and metrics on the wire. Metric points travel column-wise."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator

from cairn.domain.records import (
    Batch,
    BatchResult,
    MetricHistory,
    MetricPoint,
    MetricSeries,
    MetricSummary,
    Project,
    ProjectSummary,
    Run,
    RunBatch,
    RunEnd,
    RunPage,
    RunStart,
    RunStatus,
)
from cairn.schemas.base import Wire, as_utc


def _as_strings(value: Any) -> Any:
    """Params and tags are strings; JSON numbers and booleans are taken as their text."""
    if isinstance(value, dict):
        return {
            k: v if isinstance(v, str) or v is None or isinstance(v, dict | list) else str(v)
            for k, v in value.items()
        }
    return value


def _utc(value: datetime) -> datetime:
    """A time as UTC; one that leaves the calendar when converted is a bad value."""
    try:
        return as_utc(value)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


UtcTime = Annotated[datetime, AfterValidator(_utc)]

# NaN and +-inf travel as the strings "NaN", "Infinity", "-Infinity" (JSON has no such
# numbers); the schema says so, for requests and responses alike.
Real = Annotated[
    float,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]},
            ]
        }
    ),
]


class RunStartIn(Wire):
    id: str
    project: str
    start_time: UtcTime
    name: str | None = None
    experiment: str | None = None
    parent_id: str | None = None
    author: str | None = None
    command: str | None = None
    notes: str | None = None
    git: dict[str, Any] | None = None
    git_diff: str | None = None
    environment: dict[str, Any] | None = None

    def to_domain(self) -> RunStart:
        data = self.model_dump()
        return RunStart(**data)

    @classmethod
    def of(cls, start: RunStart) -> RunStartIn:
        return cls.model_construct(**{f: getattr(start, f) for f in cls.model_fields})


class RunEndIn(Wire):
    status: RunStatus
    end_time: UtcTime
    error: str | None = None

    def to_domain(self) -> RunEnd:
        return RunEnd(self.status, self.end_time, self.error)


class SeriesIn(Wire):
    steps: list[int]
    timestamps: list[int]
    values: list[Real]

    @field_validator("values", mode="before")
    @classmethod
    def _no_booleans(cls, values: Any) -> Any:
        if isinstance(values, list) and any(v is True or v is False for v in values):
            raise ValueError("metric values are numbers, not true or false")
        return values


class RunBatchIn(Wire):
    run_id: str
    start: RunStartIn | None = None
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    metrics: dict[str, SeriesIn] = {}
    notes: str | None = None
    end: RunEndIn | None = None

    _stringify = field_validator("params", "tags", mode="before")(_as_strings)

    def to_domain(self) -> RunBatch:
        return RunBatch(
            run_id=self.run_id,
            start=self.start.to_domain() if self.start else None,
            params=dict(self.params),
            tags=dict(self.tags),
            metrics={
                k: MetricSeries(s.steps, s.timestamps, s.values) for k, s in self.metrics.items()
            },
            notes=self.notes,
            end=self.end.to_domain() if self.end else None,
        )


class BatchIn(Wire):
    idempotency_key: str = Field(min_length=8, max_length=100)
    runs: list[RunBatchIn]

    def to_domain(self) -> Batch:
        return Batch(self.idempotency_key, [r.to_domain() for r in self.runs])


class RunBatchBody(Wire):
    """One run's batch at ``POST /runs/{id}/batch``: params, metrics and tags at once."""

    idempotency_key: str = Field(min_length=8, max_length=100)
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    metrics: dict[str, SeriesIn] = {}

    _stringify = field_validator("params", "tags", mode="before")(_as_strings)


class BatchOut(Wire):
    idempotency_key: str
    applied: bool
    runs: int
    points: int

    @classmethod
    def of(cls, result: BatchResult) -> BatchOut:
        return cls(
            idempotency_key=result.idempotency_key,
            applied=result.applied,
            runs=result.runs,
            points=result.points,
        )

    def to_domain(self) -> BatchResult:
        return BatchResult(self.idempotency_key, self.applied, self.runs, self.points)


class MetricSummaryOut(Wire):
    key: str
    last: Real
    last_step: int
    last_timestamp: int
    min: Real | None
    max: Real | None
    count: int

    def to_domain(self) -> MetricSummary:
        return MetricSummary(**self.model_dump())


class RunOut(Wire):
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
    metrics: dict[str, MetricSummaryOut]

    @classmethod
    def of(cls, run: Run) -> RunOut:
        data = {f: getattr(run, f) for f in cls.model_fields if f != "metrics"}
        metrics = {
            k: MetricSummaryOut.model_construct(**_summary(s)) for k, s in run.metrics.items()
        }
        return cls.model_construct(**data, metrics=metrics)

    def to_domain(self) -> Run:
        data = {f: getattr(self, f) for f in type(self).model_fields if f != "metrics"}
        return Run(**data, metrics={k: s.to_domain() for k, s in self.metrics.items()})


def _summary(s: MetricSummary) -> dict[str, Any]:
    return {
        "key": s.key,
        "last": s.last,
        "last_step": s.last_step,
        "last_timestamp": s.last_timestamp,
        "min": s.min,
        "max": s.max,
        "count": s.count,
    }


class RunPageOut(Wire):
    runs: list[RunOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: RunPage) -> RunPageOut:
        return cls.model_construct(
            runs=[RunOut.of(r) for r in page.runs], next_cursor=page.next_cursor
        )

    def to_domain(self) -> RunPage:
        return RunPage([r.to_domain() for r in self.runs], self.next_cursor)


class RunSearchIn(Wire):
    project: str | None = None
    filter: str | None = None
    order_by: list[str] = []
    limit: int = 100
    cursor: str | None = None


class RunUpdateIn(Wire):
    name: str | None = None
    experiment: str | None = None
    notes: str | None = None
    status: RunStatus | None = None
    error: str | None = None


class TagIn(Wire):
    key: str
    value: str


class MetricHistoryOut(Wire):
    run_id: str
    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[Real]
    total_count: int
    downsampled: bool

    @classmethod
    def of(cls, history: MetricHistory) -> MetricHistoryOut:
        points = history.points
        return cls.model_construct(
            run_id=history.run_id,
            key=history.key,
            steps=[p.step for p in points],
            timestamps=[p.timestamp for p in points],
            values=[p.value for p in points],
            total_count=history.total_count,
            downsampled=history.downsampled,
        )

    def to_domain(self) -> MetricHistory:
        points = [
            MetricPoint(s, t, float(v))
            for s, t, v in zip(self.steps, self.timestamps, self.values, strict=True)
        ]
        return MetricHistory(self.run_id, self.key, points, self.total_count, self.downsampled)


class ProjectIn(Wire):
    name: str
    description: str = ""


class ProjectOut(Wire):
    id: int
    name: str
    description: str
    created_at: datetime

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        return cls(
            id=project.id,
            name=project.name,
            description=project.description,
            created_at=project.created_at,
        )

    def to_domain(self) -> Project:
        return Project(self.id, self.name, self.description, as_utc(self.created_at))


class ProjectSummaryOut(Wire):
    project: ProjectOut
    run_count: int
    running_count: int
    last_activity: datetime | None

    @classmethod
    def of(cls, summary: ProjectSummary) -> ProjectSummaryOut:
        return cls(
            project=ProjectOut.of(summary.project),
            run_count=summary.run_count,
            running_count=summary.running_count,
            last_activity=summary.last_activity,
        )

    def to_domain(self) -> ProjectSummary:
        last = as_utc(self.last_activity) if self.last_activity else None
        return ProjectSummary(self.project.to_domain(), self.run_count, self.running_count, last)


class HealthOut(Wire):
    status: str
    version: str
    schema_revision: str
