"""All tables, one module per aggregate. Importing this package registers them on ``Base``."""

from cairn.store.tables.artifacts import ArtifactRow
from cairn.store.tables.base import Base
from cairn.store.tables.batches import BatchRow
from cairn.store.tables.datasets import DatasetFileRow, DatasetRow, DatasetVersionRow, RunInputRow
from cairn.store.tables.events import EventRow
from cairn.store.tables.identities import ApiTokenRow, ProjectMemberRow, SessionRow, UserRow
from cairn.store.tables.metrics import (
    MetricKeyRow,
    MetricPointRow,
    MetricRollupRow,
    MetricSummaryRow,
)
from cairn.store.tables.models import (
    AliasMoveRow,
    ModelAliasRow,
    ModelFileRow,
    ModelVersionRow,
    ProtectedAliasRow,
    RegisteredModelRow,
    RunModelInputRow,
)
from cairn.store.tables.production import (
    EndpointRow,
    EndpointVariantRow,
    FeedbackRow,
    PredictionRollupRow,
    PredictionRow,
)
from cairn.store.tables.projects import ProjectRow
from cairn.store.tables.runs import ParamRow, RunRow, TagRow, TextRow
from cairn.store.tables.webhooks import WebhookDeliveryRow, WebhookRow

__all__ = [
    "AliasMoveRow",
    "ApiTokenRow",
    "ArtifactRow",
    "Base",
    "BatchRow",
    "DatasetFileRow",
    "DatasetRow",
    "DatasetVersionRow",
    "EndpointRow",
    "EndpointVariantRow",
    "EventRow",
    "FeedbackRow",
    "MetricKeyRow",
    "MetricPointRow",
    "MetricRollupRow",
    "MetricSummaryRow",
    "ModelAliasRow",
    "ModelFileRow",
    "ModelVersionRow",
    "ParamRow",
    "PredictionRollupRow",
    "PredictionRow",
    "ProjectMemberRow",
    "ProjectRow",
    "ProtectedAliasRow",
    "RegisteredModelRow",
    "RunInputRow",
    "RunModelInputRow",
    "RunRow",
    "SessionRow",
    "TagRow",
    "TextRow",
    "UserRow",
    "WebhookDeliveryRow",
    "WebhookRow",
]
