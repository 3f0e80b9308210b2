"""The one seam between the SDK and the services: ``Backend``.

``EmbeddedBackend`` calls the services in this process (a SQLite file or PostgreSQL);
``HttpBackend`` calls a Cairn server. The SDK test-suite runs against both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from cairn.client.transfer import LocalFile, Progress
from cairn.domain.audit import EventPage
from cairn.domain.datasets import (
    Dataset,
    DatasetDiff,
    DatasetFile,
    DatasetInput,
    DatasetKind,
    DatasetVersion,
)
from cairn.domain.experiments import ABReport, Promotion
from cairn.domain.lineage import Lineage
from cairn.domain.models import AliasMove, ModelFile, ModelVersion, RegisteredModel
from cairn.domain.monitoring import MonitoringReport
from cairn.domain.production import Endpoint, NewPrediction, Prediction, Variant
from cairn.domain.records import (
    ArtifactEntry,
    Batch,
    BatchResult,
    MetricHistory,
    Project,
    ProjectSummary,
    Run,
    RunPage,
)

DEFAULT_STORE = "./.cairn"


class Backend(Protocol):
    uri: str

    def log_batch(self, batch: Batch) -> BatchResult: ...

    def get_run(self, run_id: str) -> Run: ...

    def update_run(
        self,
        run_id: str,
        *,
        name: str | None = None,
        experiment: str | None = None,
        notes: str | None = None,
    ) -> Run: ...

    def metric_history(
        self,
        run_id: str,
        key: str,
        *,
        max_points: int | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> MetricHistory: ...

    def search_runs(
        self,
        project: str | None,
        filter: str | None,
        order_by: Sequence[str] | None,
        *,
        limit: int,
        cursor: str | None,
    ) -> RunPage: ...

    def list_projects(self) -> list[ProjectSummary]: ...

    def create_project(self, name: str, description: str = "") -> Project: ...

    def get_git_diff(self, run_id: str) -> str | None: ...

    def log_artifact(
        self, run_id: str, path: str, stream: BinaryIO, media_type: str | None = None
    ) -> ArtifactEntry:
        """Store what ``stream`` yields as the run's (normalised) file ``path``, streamed."""
        ...

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactEntry]: ...

    def read_artifact(self, run_id: str, path: str, out: BinaryIO) -> None:
        """Write the file's bytes into ``out``, streamed; the caller checks them against
        the digest (``write_atomically``)."""
        ...

    def local_blob_path(self, digest: str) -> Path | None:
        """The blob's own file when the store is a local folder in this process (so a
        download can be a kernel copy), else None."""
        ...

    def upload_blobs(self, files: Sequence[LocalFile], progress: Progress | None = None) -> None:
        """Send the files whose digests the store lacks (verified on arrival)."""
        ...

    def record_artifacts(
        self, run_id: str, items: list[tuple[str, str, str | None]]
    ) -> list[ArtifactEntry]:
        """Record stored blobs as the run's files: ``(path, digest, media type)`` each."""
        ...

    def log_dataset_version(
        self,
        project: str,
        name: str,
        files: list[DatasetFile],
        *,
        kind: DatasetKind,
        source: str | None,
        batch: str | None,
        message: str | None,
        profile: dict[str, Any] | None,
        run_id: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """``run_id``: the run that produced the data (kept only by a new version)."""
        ...

    def get_dataset_version(self, ref: str, project: str) -> DatasetVersion: ...

    def list_datasets(self, project: str) -> list[Dataset]: ...

    def list_dataset_versions(self, name: str, project: str) -> list[DatasetVersion]: ...

    def list_dataset_files(
        self, ref: str, project: str
    ) -> tuple[DatasetVersion, list[DatasetFile]]: ...

    def read_dataset_file(self, version: DatasetVersion, path: str, out: BinaryIO) -> None: ...

    def diff_datasets(self, old: str, new: str, project: str) -> DatasetDiff: ...

    def use_dataset(self, run_id: str, ref: str, role: str) -> DatasetInput: ...

    def run_inputs(self, run_id: str) -> list[DatasetInput]: ...

    # -- model registry --------------------------------------------------------------------

    def register_model_version(
        self, project: str, name: str, files: list[ModelFile], meta: dict[str, Any]
    ) -> ModelVersion:
        """``meta``: flavor, run_id, algorithm, signature, requirements, bump, semver,
        description, tags (the fields of ``POST /models/{name}/versions``)."""
        ...

    def get_model_version(self, ref: str, project: str) -> ModelVersion: ...

    def get_model(self, name: str, project: str) -> RegisteredModel: ...

    def list_models(self, project: str) -> list[RegisteredModel]: ...

    def list_model_versions(self, name: str, project: str) -> list[ModelVersion]: ...

    def model_files(self, ref: str, project: str) -> tuple[ModelVersion, list[ModelFile]]: ...

    def read_model_file(self, version: ModelVersion, path: str, out: BinaryIO) -> None: ...

    def decide_model_version(
        self, ref: str, project: str, approve: bool, comment: str | None
    ) -> ModelVersion: ...

    def set_alias(
        self, name: str, alias: str, version: int | str, project: str, reason: str | None
    ) -> ModelVersion: ...

    def delete_alias(self, name: str, alias: str, project: str, reason: str | None) -> None: ...

    def alias_history(self, name: str, alias: str | None, project: str) -> list[AliasMove]: ...

    def resolve_alias(
        self, name: str, alias: str, at: datetime | None, project: str
    ) -> ModelVersion | None: ...

    def rollback_alias(
        self, name: str, alias: str, project: str, reason: str | None
    ) -> ModelVersion: ...

    def protect_alias(
        self, name: str, alias: str, protect: bool, project: str
    ) -> RegisteredModel: ...

    def model_card(self, ref: str, project: str) -> dict[str, Any]: ...

    def compare_models(self, a: str, b: str, project: str) -> dict[str, Any]: ...

    def use_model(self, run_id: str, ref: str, role: str) -> ModelVersion: ...

    # -- lineage and audit -----------------------------------------------------------------

    def lineage(self, ref: str, direction: str, depth: int | None, project: str) -> Lineage: ...

    def events(
        self,
        *,
        entity_type: str | None,
        entity_id: str | None,
        action: str | None,
        project: str | None,
        since: str | None,
        limit: int,
        cursor: str | None,
    ) -> EventPage:
        """One page of the audit log (``GET /events``), oldest first."""
        ...

    # -- production: endpoints, predictions, feedback ---------------------------------------

    def create_endpoint(
        self,
        project: str,
        name: str,
        variants: list[Variant],
        description: str,
        settings: dict[str, Any],
    ) -> Endpoint: ...

    def set_endpoint_variants(
        self, project: str, name: str, variants: list[Variant]
    ) -> Endpoint: ...

    def update_endpoint_settings(
        self, project: str, name: str, settings: dict[str, Any]
    ) -> Endpoint: ...

    def get_endpoint(self, name: str, project: str) -> Endpoint: ...

    def list_endpoints(self, project: str) -> list[Endpoint]: ...

    def log_predictions(
        self, project: str, model_ref: str, records: list[NewPrediction], endpoint: str | None
    ) -> int:
        """Store one model version's predictions; returns how many were new."""
        ...

    def log_feedback(self, project: str, actuals: dict[str, Any]) -> int: ...

    def list_predictions(
        self,
        project: str,
        *,
        model: str | None,
        endpoint: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[Prediction]: ...

    # -- monitoring and A/B analysis ---------------------------------------------------------

    def monitoring_report(
        self,
        project: str,
        since: str | None,
        until: str | None,
        window: str,
        *,
        endpoint: str | None,
        model: str | None,
    ) -> MonitoringReport:
        """``since``/``until``: ISO 8601 or a duration back from now (``24h``)."""
        ...

    def ab_report(
        self,
        project: str,
        endpoint: str,
        *,
        metric: str,
        since: str | None,
        until: str | None,
        baseline: str | None,
        mde: float | None,
    ) -> ABReport: ...

    def promote(
        self, project: str, endpoint: str, variant: str, *, reason: str | None, metric: str
    ) -> Promotion: ...

    def close(self) -> None: ...


def default_uri() -> str:
    return os.environ.get("CAIRN_TRACKING_URI") or DEFAULT_STORE


def open_backend(uri: str | os.PathLike[str] | None = None, *, mode: str | None = None) -> Backend:
    """``http(s)://`` talks to a server; anything else opens a store in this process.

    ``mode="offline"`` (default: ``$CAIRN_MODE``) logs to the local spool instead, with
    no server or store at all; ``cairn sync`` pushes it later.
    """
    if (mode if mode is not None else os.environ.get("CAIRN_MODE", "")).lower() == "offline":
        from typing import cast

        from cairn.client.offline import OfflineBackend

        return cast(Backend, OfflineBackend())
    text = os.fspath(uri) if uri is not None else default_uri()
    if text.startswith(("http://", "https://")):
        from cairn.client.http import HttpBackend

        return HttpBackend(text)
    from cairn.client.embedded import EmbeddedBackend

    return EmbeddedBackend(text)
