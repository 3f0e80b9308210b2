"""All tables, one module per aggregate. Importing this package registers them on ``Base``."""

from cairn.store.tables.artifacts import ArtifactRow
from cairn.store.tables.base import Base
from cairn.store.tables.batches import BatchRow
from cairn.store.tables.events import EventRow
from cairn.store.tables.metrics import (
    MetricKeyRow,
    MetricPointRow,
    MetricRollupRow,
    MetricSummaryRow,
)
from cairn.store.tables.projects import ProjectRow
from cairn.store.tables.runs import ParamRow, RunRow, TagRow, TextRow

__all__ = [
    "ArtifactRow",
    "Base",
    "BatchRow",
    "EventRow",
    "MetricKeyRow",
    "MetricPointRow",
    "MetricRollupRow",
    "MetricSummaryRow",
    "ParamRow",
    "ProjectRow",
    "RunRow",
    "TagRow",
    "TextRow",
]
