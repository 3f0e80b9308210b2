"""Dependencies the routes declare, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cairn.auth import principal
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
from cairn.services.uploads import UploadService
from cairn.services.webhooks import WebhookService


def get_tracking(request: Request) -> TrackingService:
    service: TrackingService = request.app.state.tracking
    return service


def get_artifacts(request: Request) -> ArtifactService:
    service: ArtifactService = request.app.state.artifacts
    return service


def get_blobs(request: Request) -> BlobService:
    service: BlobService = request.app.state.blobs
    return service


def get_data(request: Request) -> DataService:
    service: DataService = request.app.state.data
    return service


def get_uploads(request: Request) -> UploadService:
    service: UploadService = request.app.state.uploads
    return service


def get_registry(request: Request) -> RegistryService:
    service: RegistryService = request.app.state.registry
    return service


def get_aliases(request: Request) -> AliasService:
    service: AliasService = request.app.state.aliases
    return service


def get_webhooks(request: Request) -> WebhookService:
    service: WebhookService = request.app.state.webhooks
    return service


def get_lineage(request: Request) -> LineageService:
    service: LineageService = request.app.state.lineage
    return service


def get_audit(request: Request) -> AuditService:
    service: AuditService = request.app.state.audit
    return service


def get_endpoints(request: Request) -> EndpointService:
    service: EndpointService = request.app.state.endpoints
    return service


def get_predictions(request: Request) -> PredictionService:
    service: PredictionService = request.app.state.predictions
    return service


def get_monitoring(request: Request) -> MonitoringService:
    service: MonitoringService = request.app.state.monitoring
    return service


def get_experiments(request: Request) -> ExperimentService:
    service: ExperimentService = request.app.state.experiments
    return service


def get_actor(request: Request) -> str | None:
    """Who is calling, for the audit log: the signed-in user or the token's owner; on a
    server without authentication, the client's word (``X-Cairn-Actor``)."""
    return principal(request).name


TrackingDep = Annotated[TrackingService, Depends(get_tracking)]
ActorDep = Annotated[str | None, Depends(get_actor)]
ArtifactsDep = Annotated[ArtifactService, Depends(get_artifacts)]
BlobsDep = Annotated[BlobService, Depends(get_blobs)]
DataDep = Annotated[DataService, Depends(get_data)]
UploadsDep = Annotated[UploadService, Depends(get_uploads)]
RegistryDep = Annotated[RegistryService, Depends(get_registry)]
AliasesDep = Annotated[AliasService, Depends(get_aliases)]
WebhooksDep = Annotated[WebhookService, Depends(get_webhooks)]
LineageDep = Annotated[LineageService, Depends(get_lineage)]
AuditDep = Annotated[AuditService, Depends(get_audit)]
EndpointsDep = Annotated[EndpointService, Depends(get_endpoints)]
PredictionsDep = Annotated[PredictionService, Depends(get_predictions)]
MonitoringDep = Annotated[MonitoringService, Depends(get_monitoring)]
ExperimentsDep = Annotated[ExperimentService, Depends(get_experiments)]
