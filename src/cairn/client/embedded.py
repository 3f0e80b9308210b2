"""The services in this process: no server, one SQLite file (or a PostgreSQL URL)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cairn.blobs import LocalBlobStore
from cairn.client.identity import login_name
from cairn.client.transfer import LocalFile, Progress, counting_reader
from cairn.domain.audit import EventPage
from cairn.domain.datasets import (
    Dataset,
    DatasetDiff,
    DatasetFile,
    DatasetInput,
    DatasetKind,
    DatasetVersion,
)
from cairn.domain.errors import NotFound
from cairn.domain.experiments import ABReport, Promotion
from cairn.domain.lineage import Lineage
from cairn.domain.models import AliasMove, ModelFile, ModelVersion, RegisteredModel
from cairn.domain.monitoring import MonitoringReport, parse_since
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
from cairn.services.aliases import AliasService
from cairn.services.artifacts import ArtifactService
from cairn.services.audit import AuditService
from cairn.services.blobs import BlobService
from cairn.services.data import DataService
from cairn.services.experiments import ExperimentService
from cairn.services.lineage import LineageService
from cairn.services.monitoring import MonitoringService
from cairn.services.production import EndpointService, PredictionService
from cairn.services.registry import RegistryService
from cairn.services.tracking import TrackingService
from cairn.store.database import Database

_COPY_CHUNK = 8 * 1024 * 1024


class EmbeddedBackend:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        # One user owns an embedded store, so an old schema is upgraded on open.
        self.db = Database(uri, auto_upgrade=True)
        self.tracking = TrackingService(self.db)
        self.blobs = BlobService(self.db)
        self.artifacts = ArtifactService(self.db, self.blobs)
        self.data = DataService(self.db, self.blobs)
        self.registry = RegistryService(self.db, self.blobs, self.tracking.get_run)
        self.aliases = AliasService(self.db, self.registry)
        self.lineage_service = LineageService(self.db, self.data, self.registry)
        self.audit_service = AuditService(self.db)
        self.endpoints = EndpointService(self.db, self.registry)
        self.predictions = PredictionService(self.db, self.registry)
        self.monitoring = MonitoringService(self.db, self.registry, self.data, self.aliases)
        self.experiments = ExperimentService(self.db, self.registry, self.aliases)
        self.actor = login_name()

    def log_batch(self, batch: Batch) -> BatchResult:
        return self.tracking.log_batch(batch, self.actor)

    def get_run(self, run_id: str) -> Run:
        return self.tracking.get_run(run_id)

    def update_run(
        self,
        run_id: str,
        *,
        name: str | None = None,
        experiment: str | None = None,
        notes: str | None = None,
    ) -> Run:
        return self.tracking.update_run(
            run_id, name=name, experiment=experiment, notes=notes, actor=self.actor
        )

    def metric_history(
        self,
        run_id: str,
        key: str,
        *,
        max_points: int | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> MetricHistory:
        return self.tracking.metric_history(
            run_id, key, max_points=max_points, min_step=min_step, max_step=max_step
        )

    def search_runs(
        self,
        project: str | None,
        filter: str | None,
        order_by: Sequence[str] | None,
        *,
        limit: int,
        cursor: str | None,
    ) -> RunPage:
        return self.tracking.search_runs(project, filter, order_by, limit=limit, cursor=cursor)

    def list_projects(self) -> list[ProjectSummary]:
        return self.tracking.list_projects()

    def create_project(self, name: str, description: str = "") -> Project:
        return self.tracking.create_project(name, description, self.actor)

    def get_git_diff(self, run_id: str) -> str | None:
        return self.tracking.get_git_diff(run_id)

    def log_artifact(
        self, run_id: str, path: str, stream: BinaryIO, media_type: str | None = None
    ) -> ArtifactEntry:
        return self.artifacts.log_artifact(run_id, path, stream, media_type, actor=self.actor)

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactEntry]:
        return self.artifacts.list_artifacts(run_id, prefix)

    def read_artifact(self, run_id: str, path: str, out: BinaryIO) -> None:
        entry = self.artifacts.get_artifact(run_id, path)
        self._copy_blob(entry.digest, entry.size, out)

    def _copy_blob(self, digest: str, size: int, out: BinaryIO) -> None:
        # Unverified read: the SDK's writer hashes what it writes and refuses a mismatch,
        # so hashing here too would only halve the speed of a download.
        with self.blobs.store.open_range(digest, 0, size) as reader:
            shutil.copyfileobj(reader, out, _COPY_CHUNK)

    def local_blob_path(self, digest: str) -> Path | None:
        store = self.blobs.store
        if isinstance(store, LocalBlobStore):
            path = store.path(digest)
            return path if path.is_file() else None
        return None

    def upload_blobs(self, files: Sequence[LocalFile], progress: Progress | None = None) -> None:
        missing = set(self.blobs.missing(f.digest for f in files))
        with self.blobs.batch() as batch:
            for item in files:
                if item.digest not in missing:
                    if progress is not None:
                        progress(item.size)
                    continue
                missing.discard(item.digest)  # the same bytes twice in one call: sent once
                with open(item.path, "rb", buffering=0) as raw:
                    stream = raw if progress is None else counting_reader(raw, progress)
                    batch.put(stream, expected_digest=item.digest)

    def record_artifacts(
        self, run_id: str, items: list[tuple[str, str, str | None]]
    ) -> list[ArtifactEntry]:
        return self.artifacts.record_artifacts(run_id, items, actor=self.actor)

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
        return self.data.log_version(
            project,
            name,
            files,
            kind=kind,
            source=source,
            batch=batch,
            message=message,
            profile=profile,
            actor=self.actor,
            run_id=run_id,
        )

    def get_dataset_version(self, ref: str, project: str) -> DatasetVersion:
        return self.data.resolve(ref, project)

    def list_datasets(self, project: str) -> list[Dataset]:
        return self.data.list_datasets(project)

    def list_dataset_versions(self, name: str, project: str) -> list[DatasetVersion]:
        return self.data.list_versions(name, project)

    def list_dataset_files(
        self, ref: str, project: str
    ) -> tuple[DatasetVersion, list[DatasetFile]]:
        return self.data.list_files(ref, project)

    def read_dataset_file(self, version: DatasetVersion, path: str, out: BinaryIO) -> None:
        item = self.data.stored_file(version.ref, path)
        assert item.digest is not None
        self._copy_blob(item.digest, item.size, out)

    def diff_datasets(self, old: str, new: str, project: str) -> DatasetDiff:
        return self.data.diff(old, new, project)

    def use_dataset(self, run_id: str, ref: str, role: str) -> DatasetInput:
        return self.data.use_dataset(run_id, ref, role, actor=self.actor)

    def run_inputs(self, run_id: str) -> list[DatasetInput]:
        return self.data.run_inputs(run_id)

    # -- model registry --------------------------------------------------------------------

    def register_model_version(
        self, project: str, name: str, files: list[ModelFile], meta: dict[str, Any]
    ) -> ModelVersion:
        return self.registry.register_version(project, name, files, actor=self.actor, **meta)

    def get_model_version(self, ref: str, project: str) -> ModelVersion:
        return self.registry.resolve(ref, project)

    def get_model(self, name: str, project: str) -> RegisteredModel:
        return self.registry.get_model(name, project)

    def list_models(self, project: str) -> list[RegisteredModel]:
        return self.registry.list_models(project)

    def list_model_versions(self, name: str, project: str) -> list[ModelVersion]:
        return self.registry.list_versions(name, project)

    def model_files(self, ref: str, project: str) -> tuple[ModelVersion, list[ModelFile]]:
        return self.registry.files(ref, project)

    def read_model_file(self, version: ModelVersion, path: str, out: BinaryIO) -> None:
        _found, files = self.registry.files(version.ref)
        item = next((f for f in files if f.path == path), None)
        if item is None:
            raise NotFound(f"model version {version} has no file {path!r}")
        self._copy_blob(item.digest, item.size, out)

    def decide_model_version(
        self, ref: str, project: str, approve: bool, comment: str | None
    ) -> ModelVersion:
        decide = self.registry.approve if approve else self.registry.reject
        return decide(ref, comment, project=project, actor=self.actor)

    def set_alias(
        self, name: str, alias: str, version: int | str, project: str, reason: str | None
    ) -> ModelVersion:
        return self.aliases.set_alias(
            name, alias, version, project=project, reason=reason, actor=self.actor
        )

    def delete_alias(self, name: str, alias: str, project: str, reason: str | None) -> None:
        self.aliases.delete_alias(name, alias, project=project, reason=reason, actor=self.actor)

    def alias_history(self, name: str, alias: str | None, project: str) -> list[AliasMove]:
        return self.aliases.history(name, alias, project=project)

    def resolve_alias(
        self, name: str, alias: str, at: datetime | None, project: str
    ) -> ModelVersion | None:
        return self.aliases.resolve_alias(name, alias, at=at, project=project)

    def rollback_alias(
        self, name: str, alias: str, project: str, reason: str | None
    ) -> ModelVersion:
        return self.aliases.rollback(name, alias, project=project, reason=reason, actor=self.actor)

    def protect_alias(self, name: str, alias: str, protect: bool, project: str) -> RegisteredModel:
        return self.aliases.protect(name, alias, protect, project=project, actor=self.actor)

    def model_card(self, ref: str, project: str) -> dict[str, Any]:
        return self.registry.model_card(ref, project)

    def compare_models(self, a: str, b: str, project: str) -> dict[str, Any]:
        return self.registry.compare(a, b, project)

    def use_model(self, run_id: str, ref: str, role: str) -> ModelVersion:
        return self.registry.use_model(run_id, ref, role, actor=self.actor)

    # -- lineage and audit -----------------------------------------------------------------

    def lineage(self, ref: str, direction: str, depth: int | None, project: str) -> Lineage:
        return self.lineage_service.lineage(ref, direction, depth, project)

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
        return self.audit_service.events(
            entity_type=entity_type,
            entity_id=entity_id,
            action=action,
            project=project,
            since=since,
            limit=limit,
            cursor=cursor,
        )

    # -- production: endpoints, predictions, feedback ---------------------------------------

    def create_endpoint(
        self,
        project: str,
        name: str,
        variants: list[Variant],
        description: str,
        settings: dict[str, Any],
    ) -> Endpoint:
        return self.endpoints.create(
            project, name, variants, description=description, settings=settings, actor=self.actor
        )

    def set_endpoint_variants(self, project: str, name: str, variants: list[Variant]) -> Endpoint:
        return self.endpoints.set_variants(project, name, variants, actor=self.actor)

    def update_endpoint_settings(
        self, project: str, name: str, settings: dict[str, Any]
    ) -> Endpoint:
        return self.endpoints.update_settings(project, name, settings, actor=self.actor)

    def get_endpoint(self, name: str, project: str) -> Endpoint:
        return self.endpoints.get(name, project)

    def list_endpoints(self, project: str) -> list[Endpoint]:
        return self.endpoints.list(project)

    def log_predictions(
        self, project: str, model_ref: str, records: list[NewPrediction], endpoint: str | None
    ) -> int:
        return self.predictions.log_predictions(project, model_ref, records, endpoint=endpoint)

    def log_feedback(self, project: str, actuals: dict[str, Any]) -> int:
        return self.predictions.log_feedback(project, actuals)

    def list_predictions(
        self,
        project: str,
        *,
        model: str | None,
        endpoint: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[Prediction]:
        return self.predictions.predictions(
            project, model=model, endpoint=endpoint, since=since, until=until, limit=limit
        )

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
        now = datetime.now(UTC)
        return self.monitoring.report(
            project,
            endpoint=endpoint,
            model=model,
            since=parse_since(since, now, "since"),
            until=parse_since(until, now, "until"),
            window=window,
            actor=self.actor,
        )

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
    ) -> ABReport:
        now = datetime.now(UTC)
        return self.experiments.ab_report(
            project,
            endpoint,
            metric=metric,
            since=parse_since(since, now, "since"),
            until=parse_since(until, now, "until"),
            baseline=baseline,
            mde=mde,
        )

    def promote(
        self, project: str, endpoint: str, variant: str, *, reason: str | None, metric: str
    ) -> Promotion:
        return self.experiments.promote(
            project, endpoint, variant, reason=reason, metric=metric, actor=self.actor
        )

    def close(self) -> None:
        self.db.close()
