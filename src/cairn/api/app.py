"""The app factory: everything is built from ``Settings``; nothing at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from cairn._version import __version__
from cairn.api.errors import install_error_handlers, status_for
from cairn.api.headers import SecurityHeaders
from cairn.api.limits import BodySizeLimit
from cairn.api.openapi import ERROR_RESPONSES, install_openapi
from cairn.api.routes import (
    artifacts,
    batches,
    blobs,
    datasets,
    events,
    health,
    identities,
    lineage,
    models,
    production,
    projects,
    runs,
    uploads,
    webhooks,
)
from cairn.api.routes import monitoring as monitoring_routes
from cairn.auth import check_guarded, install_auth
from cairn.services.aliases import AliasService
from cairn.services.artifacts import ArtifactService
from cairn.services.audit import AuditService
from cairn.services.blobs import BlobService
from cairn.services.data import DataService
from cairn.services.experiments import ExperimentService
from cairn.services.identities import IdentityService
from cairn.services.lineage import LineageService
from cairn.services.monitoring import MonitoringService, rollback_check_interval
from cairn.services.production import EndpointService, PredictionService
from cairn.services.registry import RegistryService
from cairn.services.tracking import TrackingService
from cairn.services.uploads import UploadService
from cairn.services.webhooks import DeliveryPolicy, WebhookService
from cairn.settings import Settings
from cairn.store.database import Database
from cairn.ui import install_ui

log = logging.getLogger("cairn.api")


async def _reap_forever(app: FastAPI, timeout_s: float) -> None:
    """Mark runs whose process died ``killed``. Every worker runs one; the update is
    idempotent, so several workers (or hosts) reaping at once is harmless."""
    period = min(60.0, max(timeout_s / 4, 0.05))
    while True:
        await asyncio.sleep(period)
        try:
            await run_in_threadpool(app.state.tracking.reap_stale_runs, timeout_s)
        except Exception:  # a busy or unreachable database: try again next period
            log.warning("cairn: reaping stale runs failed", exc_info=True)


async def _deliver_forever(app: FastAPI, interval_s: float) -> None:
    """Send due webhook deliveries. Every worker runs one; claims never overlap."""
    while True:
        try:
            sent = await run_in_threadpool(app.state.webhooks.deliver_due)
        except Exception:  # a busy or unreachable database: try again next period
            log.warning("cairn: delivering webhooks failed", exc_info=True)
            sent = 0
        if not sent:  # a full claim may have more behind it: go on at once
            await asyncio.sleep(interval_s)


async def _watch_rollbacks_forever(app: FastAPI, interval_s: float) -> None:
    """Apply endpoints' rollback rules (``settings["rollback"]``) to recent traffic. Every
    worker runs one; a move already made is not made again."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(app.state.monitoring.check_rollbacks)
        except Exception:  # a busy or unreachable database: try again next period
            log.warning("cairn: checking rollback rules failed", exc_info=True)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the server. Refuses an old schema unless ``settings.auto_upgrade``."""
    settings = settings or Settings()
    db = database or Database(
        settings.store, auto_upgrade=settings.auto_upgrade, artifacts=settings.artifacts
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reaper = None
        if settings.heartbeat_timeout_s > 0:
            reaper = asyncio.create_task(_reap_forever(app, settings.heartbeat_timeout_s))
        interval = app.state.webhooks.policy.interval_s
        sender = asyncio.create_task(_deliver_forever(app, interval)) if interval > 0 else None
        check_s = rollback_check_interval()
        watcher = None
        if check_s > 0:
            watcher = asyncio.create_task(_watch_rollbacks_forever(app, check_s))
        yield
        tasks = [t for t in (reaper, sender, watcher) if t is not None]
        for task in tasks:
            task.cancel()
        # A cancelled task waits for its worker thread to finish its database work, so
        # no connection is still in use when the database closes.
        await asyncio.gather(*tasks, return_exceptions=True)
        db.close()

    app = FastAPI(
        title="Cairn",
        version=__version__,
        description="Keep a machine-learning model's whole life traceable.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.tracking = TrackingService(db)
    app.state.blobs = BlobService(db, presign=settings.presigned_uploads)
    app.state.artifacts = ArtifactService(db, app.state.blobs)
    app.state.data = DataService(db, app.state.blobs)
    app.state.uploads = UploadService(app.state.blobs)
    app.state.webhooks = WebhookService(db, DeliveryPolicy.from_env())
    app.state.registry = RegistryService(db, app.state.blobs, app.state.tracking.get_run)
    app.state.aliases = AliasService(db, app.state.registry)
    app.state.lineage = LineageService(db, app.state.data, app.state.registry)
    app.state.audit = AuditService(db)
    app.state.endpoints = EndpointService(db, app.state.registry)
    app.state.predictions = PredictionService(db, app.state.registry)
    app.state.monitoring = MonitoringService(
        db, app.state.registry, app.state.data, app.state.aliases
    )
    app.state.experiments = ExperimentService(db, app.state.registry, app.state.aliases)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)
    install_auth(app, IdentityService(db), db)
    modules = (
        *(projects, runs, batches, artifacts, blobs, uploads, datasets, models, webhooks),
        *(lineage, events, production, monitoring_routes, identities),
    )
    check_guarded([health.router, *(m.router for m in modules)])
    app.include_router(health.router)
    for module in modules:
        app.include_router(module.router, prefix="/api/v1", responses=ERROR_RESPONSES)
    install_openapi(app)
    install_ui(app, status_for)  # the web UI at /, after the API so /api/v1 wins
    return app
