"""Webhooks: HTTP callbacks on audit events, and what was delivered to them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from cairn.api.deps import ActorDep, WebhooksDep
from cairn.api.route import ApiRoute
from cairn.auth import On, PrincipalDep, guard, require_project_or_admin
from cairn.domain.access import Role
from cairn.schemas.webhooks import (
    DeliveryOut,
    DeliveryStatus,
    WebhookCreatedOut,
    WebhookIn,
    WebhookOut,
)

router = APIRouter(tags=["webhooks"], route_class=ApiRoute)

WebhookId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "/webhooks",
    response_model=WebhookCreatedOut,
    status_code=201,
    dependencies=[guard(On.HANDLER, Role.MAINTAINER)],
)
def create_webhook(
    body: WebhookIn, webhooks: WebhooksDep, actor: ActorDep, who: PrincipalDep
) -> WebhookCreatedOut:
    """A new hook. The answer holds its ``secret``, never shown again: keep it to check
    ``X-Cairn-Signature`` (HMAC-SHA256 of the body, ``sha256=<hex>``). A project's
    hooks are its maintainers'; a hook on every project is an admin's."""
    require_project_or_admin(who, body.project, Role.MAINTAINER)
    hook = webhooks.create(body.url, body.actions, body.project, body.secret, actor)
    return WebhookCreatedOut.of(hook)


@router.get(
    "/webhooks", response_model=list[WebhookOut], dependencies=[guard(On.HANDLER, Role.MAINTAINER)]
)
def list_webhooks(
    webhooks: WebhooksDep, who: PrincipalDep, project: str | None = None
) -> list[WebhookOut]:
    """Active hooks; with ``project``, those that fire for it (its own and global ones)."""
    require_project_or_admin(who, project, Role.MAINTAINER)
    return [WebhookOut.of(h) for h in webhooks.list(project)]


@router.delete(
    "/webhooks/{webhook_id}", status_code=204, dependencies=[guard(On.HANDLER, Role.MAINTAINER)]
)
def delete_webhook(
    webhook_id: WebhookId, webhooks: WebhooksDep, actor: ActorDep, who: PrincipalDep
) -> Response:
    require_project_or_admin(who, webhooks.get(webhook_id).project, Role.MAINTAINER)
    webhooks.delete(webhook_id, actor)
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=list[DeliveryOut],
    dependencies=[guard(On.HANDLER, Role.MAINTAINER)],
)
def list_deliveries(
    webhook_id: WebhookId,
    webhooks: WebhooksDep,
    who: PrincipalDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[DeliveryOut]:
    """The hook's deliveries, newest first."""
    require_project_or_admin(who, webhooks.get(webhook_id).project, Role.MAINTAINER)
    return [DeliveryOut.of(d) for d in webhooks.deliveries(webhook_id, status, limit)]
