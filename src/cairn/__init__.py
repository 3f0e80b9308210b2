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
    client,
    diff_datasets,
    download_artifacts,
    flush,
    get_dataset,
    get_dataset_version,
    get_metric_history,
    get_run,
    get_tracking_uri,
    list_artifacts,
    list_datasets,
    log_dataset,
    search_runs,
    set_project,
    set_tracking_uri,
    start_run,
)
from cairn.client.run import ActiveRun
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
    "ActiveRun",
    "AlreadyExists",
    "ArtifactEntry",
    "CairnError",
    "Client",
    "Conflict",
    "Dataset",
    "DatasetDiff",
    "DatasetInput",
    "DatasetVersion",
    "Forbidden",
    "Invalid",
    "MetricHistory",
    "MetricPoint",
    "MetricSummary",
    "NotFound",
    "Ref",
    "Run",
    "RunList",
    "RunStatus",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "__version__",
    "client",
    "diff_datasets",
    "download_artifacts",
    "flush",
    "get_dataset",
    "get_dataset_version",
    "get_metric_history",
    "get_run",
    "get_tracking_uri",
    "list_artifacts",
    "list_datasets",
    "log_dataset",
    "parse_ref",
    "search_runs",
    "set_project",
    "set_tracking_uri",
    "start_run",
]
