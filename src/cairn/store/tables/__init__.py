"""All tables, one module per aggregate. Importing this package registers them on ``Base``."""

from cairn.store.tables.artifacts import ArtifactRow
from cairn.store.tables.base import Base
from cairn.store.tables.batches import BatchRow
from cairn.store.tables.datasets import DatasetFileRow, DatasetRow, DatasetVersionRow, RunInputRow
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
    "DatasetFileRow",
    "DatasetRow",
    "DatasetVersionRow",
    "EventRow",
    "MetricKeyRow",
    "MetricPointRow",
    "MetricRollupRow",
    "MetricSummaryRow",
    "ParamRow",
    "ProjectRow",
    "RunInputRow",
    "RunRow",
    "TagRow",
    "TextRow",
]
