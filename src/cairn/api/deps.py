"""Dependencies the routes declare, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cairn.services.aliases import AliasService
from cairn.services.artifacts import ArtifactService
from cairn.services.blobs import BlobService
from cairn.services.data import DataService
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


def get_actor(request: Request) -> str | None:
    """Who is calling. Until accounts exist, the client's word (``X-Cairn-Actor``)."""
    actor = request.headers.get("x-cairn-actor")
    return actor[:250] if actor else None


TrackingDep = Annotated[TrackingService, Depends(get_tracking)]
ActorDep = Annotated[str | None, Depends(get_actor)]
ArtifactsDep = Annotated[ArtifactService, Depends(get_artifacts)]
BlobsDep = Annotated[BlobService, Depends(get_blobs)]
DataDep = Annotated[DataService, Depends(get_data)]
UploadsDep = Annotated[UploadService, Depends(get_uploads)]
RegistryDep = Annotated[RegistryService, Depends(get_registry)]
AliasesDep = Annotated[AliasService, Depends(get_aliases)]
WebhooksDep = Annotated[WebhookService, Depends(get_webhooks)]
