"""Cairn: keep a machine-learning model's whole life traceable.

    import cairn
    cairn.set_project("iris")
    with cairn.start_run(name="baseline", params={"lr": 0.01}) as run:
        for step in range(100):
            run.log({"loss": 1 / (step + 1)}, step=step)
    cairn.search_runs("metrics.loss < 0.1", order_by=["metrics.loss"])

This module is the SDK surface only; it imports the store and services lazily, when an
embedded store is used, and never the web stack.
"""

from __future__ import annotations

from cairn._version import __version__
from cairn.client.fluent import (
    Client,
    RunList,
    ab_report,
    alias_history,
    approve,
    audit,
    client,
    compare_models,
    create_endpoint,
    delete_alias,
    diff_datasets,
    download_artifacts,
    flush,
    get_dataset,
    get_dataset_version,
    get_endpoint,
    get_metric_history,
    get_model_version,
    get_run,
    get_tracking_uri,
    lineage,
    list_artifacts,
    list_datasets,
    list_models,
    list_predictions,
    load_model,
    log_dataset,
    log_feedback,
    log_predictions,
    model_card,
    monitoring_report,
    promote,
    protect_alias,
    reject,
    resolve_alias,
    rollback,
    search_runs,
    set_alias,
    set_project,
    set_tracking_uri,
    start_run,
)
from cairn.client.lineage_api import EventList
from cairn.client.run import ActiveRun
from cairn.domain.audit import AuditEvent
from cairn.domain.datasets import Dataset, DatasetDiff, DatasetInput, DatasetVersion
from cairn.domain.errors import (
    AlreadyExists,
    CairnError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from cairn.domain.experiments import ABReport, Promotion
from cairn.domain.lineage import Lineage, LineageEdge, LineageNode
from cairn.domain.models import AliasMove, Approval, ModelVersion, RegisteredModel
from cairn.domain.monitoring import MonitoringReport
from cairn.domain.production import Endpoint, Prediction, Variant
from cairn.domain.records import (
    ArtifactEntry,
    MetricHistory,
    MetricPoint,
    MetricSummary,
    Run,
    RunStatus,
)
from cairn.domain.refs import Ref, parse_ref

__all__ = [
    "ABReport",
    "ActiveRun",
    "AliasMove",
    "AlreadyExists",
    "Approval",
    "ArtifactEntry",
    "AuditEvent",
    "CairnError",
    "Client",
    "Conflict",
    "Dataset",
    "DatasetDiff",
    "DatasetInput",
    "DatasetVersion",
    "Endpoint",
    "EventList",
    "Forbidden",
    "Invalid",
    "Lineage",
    "LineageEdge",
    "LineageNode",
    "MetricHistory",
    "MetricPoint",
    "MetricSummary",
    "ModelVersion",
    "MonitoringReport",
    "NotFound",
    "Prediction",
    "Promotion",
    "Ref",
    "RegisteredModel",
    "Run",
    "RunList",
    "RunStatus",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "Variant",
    "__version__",
    "ab_report",
    "alias_history",
    "approve",
    "audit",
    "client",
    "compare_models",
    "create_endpoint",
    "delete_alias",
    "diff_datasets",
    "download_artifacts",
    "flush",
    "get_dataset",
    "get_dataset_version",
    "get_endpoint",
    "get_metric_history",
    "get_model_version",
    "get_run",
    "get_tracking_uri",
    "lineage",
    "list_artifacts",
    "list_datasets",
    "list_models",
    "list_predictions",
    "load_model",
    "log_dataset",
    "log_feedback",
    "log_predictions",
    "model_card",
    "monitoring_report",
    "parse_ref",
    "promote",
    "protect_alias",
    "reject",
    "resolve_alias",
    "rollback",
    "search_runs",
    "set_alias",
    "set_project",
    "set_tracking_uri",
    "start_run",
]
