"""Webhooks and their deliveries on the wire. A secret is sent once, on creation."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from cairn.schemas.base import Wire

DeliveryStatus = Literal["pending", "delivered", "failed"]


class WebhookIn(Wire):
    url: str = Field(description="http:// or https:// URL that receives a POST per event")
    actions: list[str] = Field(
        description="Action patterns, shell-style: 'model.*', 'run.created', '*'"
    )
    project: str | None = Field(default=None, description="Only this project's events")
    secret: str | None = Field(
        default=None, description="HMAC key for X-Cairn-Signature; generated when left out"
    )


class WebhookOut(Wire):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    actions: list[str]
    project: str | None
    active: bool
    created_by: str | None
    created_at: datetime

    @classmethod
    def of(cls, webhook: Any) -> WebhookOut:
        return cls.model_validate(webhook)


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="Shown only in this answer: keep it to verify signatures")

    @classmethod
    def of(cls, webhook: Any) -> WebhookCreatedOut:
        return cls.model_validate(webhook)


class DeliveryOut(Wire):
    model_config = ConfigDict(from_attributes=True)

    id: int
    webhook_id: int
    event_id: int
    action: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: Any) -> DeliveryOut:
        return cls.model_validate(delivery)
