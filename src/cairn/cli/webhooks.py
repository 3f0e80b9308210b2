"""``cairn webhooks``: HTTP callbacks on audit events, and what was delivered.

With ``--uri http(s)://…`` the commands call the server's REST API; with a store (a
folder, ``sqlite:///FILE``, ``postgresql://…``) they use it in this process. Either way
deliveries are sent by ``cairn server``: a hook made on a store fires once a server
serves that store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import click

from cairn.cli.output import handle_errors, print_json, print_table
from cairn.cli.projects import _check_store_exists, json_option, uri_option
from cairn.client.identity import login_name


class _Hooks(Protocol):
    """Wire-shaped answers (the REST API's JSON) from either transport."""

    def create(
        self, url: str, actions: list[str], project: str | None, secret: str | None
    ) -> dict[str, Any]: ...

    def list_hooks(self, project: str | None) -> list[dict[str, Any]]: ...

    def delete(self, webhook_id: int) -> None: ...

    def deliveries(
        self, webhook_id: int, status: str | None, limit: int
    ) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class _Remote:
    def __init__(self, uri: str) -> None:
        from cairn.client.http import HttpBackend

        self.backend = HttpBackend(uri)
        actor = login_name()
        if actor:
            self.backend.http.headers["X-Cairn-Actor"] = actor

    def create(
        self, url: str, actions: list[str], project: str | None, secret: str | None
    ) -> dict[str, Any]:
        body = {"url": url, "actions": actions, "project": project, "secret": secret}
        found: dict[str, Any] = self.backend._request("POST", "/webhooks", json=body).json()
        return found

    def list_hooks(self, project: str | None) -> list[dict[str, Any]]:
        params = {"project": project} if project else {}
        found: list[dict[str, Any]] = self.backend._request(
            "GET", "/webhooks", params=params
        ).json()
        return found

    def delete(self, webhook_id: int) -> None:
        self.backend._request("DELETE", f"/webhooks/{webhook_id}")

    def deliveries(self, webhook_id: int, status: str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        path = f"/webhooks/{webhook_id}/deliveries"
        found: list[dict[str, Any]] = self.backend._request("GET", path, params=params).json()
        return found

    def close(self) -> None:
        self.backend.close()


class _Local:
    def __init__(self, uri: str) -> None:
        from cairn.services.webhooks import WebhookService
        from cairn.store.database import Database

        _check_store_exists(uri)
        self.db = Database(uri)
        self.service = WebhookService(self.db)

    def create(
        self, url: str, actions: list[str], project: str | None, secret: str | None
    ) -> dict[str, Any]:
        from cairn.schemas.webhooks import WebhookCreatedOut

        hook = self.service.create(url, actions, project, secret, login_name())
        return WebhookCreatedOut.of(hook).model_dump(mode="json")

    def list_hooks(self, project: str | None) -> list[dict[str, Any]]:
        from cairn.schemas.webhooks import WebhookOut

        return [WebhookOut.of(h).model_dump(mode="json") for h in self.service.list(project)]

    def delete(self, webhook_id: int) -> None:
        self.service.delete(webhook_id, login_name())

    def deliveries(self, webhook_id: int, status: str | None, limit: int) -> list[dict[str, Any]]:
        from cairn.schemas.webhooks import DeliveryOut

        found = self.service.deliveries(webhook_id, status, limit)
        return [DeliveryOut.of(d).model_dump(mode="json") for d in found]

    def close(self) -> None:
        self.db.close()


@contextmanager
def _open(uri: str) -> Iterator[_Hooks]:
    hooks = _Remote(uri) if uri.startswith(("http://", "https://")) else _Local(uri)
    try:
        yield hooks
    finally:
        hooks.close()


def _when(text: str | None) -> str:
    return "-" if not text else text[:19].replace("T", " ")


@click.group()
def webhooks() -> None:
    """Webhooks: a signed POST to a URL for each audit event that matches."""


@webhooks.command("create")
@click.argument("url")
@click.option(
    "--action",
    "actions",
    multiple=True,
    required=True,
    help="An action pattern such as 'model.*' or 'run.created' (repeat for more).",
)
@click.option("--project", default=None, help="Only this project's events (default: all).")
@click.option("--secret", default=None, help="The HMAC key (default: a random one, shown once).")
@uri_option
@json_option
@handle_errors
def create(
    url: str,
    actions: tuple[str, ...],
    project: str | None,
    secret: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """Create a webhook; prints its secret, which is never shown again.

    \b
    Example:
      cairn webhooks create https://ci.example/cairn --action 'model.*' --project nlp
    """
    with _open(uri) as hooks:
        hook = hooks.create(url, list(actions), project, secret)
    if as_json:
        print_json(hook)
        return
    click.echo(f"webhook {hook['id']} -> {hook['url']}")
    click.echo(f"actions: {', '.join(hook['actions'])}  project: {hook['project'] or '(all)'}")
    click.echo(f"secret:  {hook['secret']}")
    click.echo("Keep the secret: it is shown only now. Receivers check X-Cairn-Signature with it.")


@webhooks.command("ls")
@click.option("--project", default=None, help="Only hooks that fire for this project.")
@uri_option
@json_option
@handle_errors
def ls(project: str | None, uri: str, as_json: bool) -> None:
    """List active webhooks (secrets are never listed).

    \b
    Example:
      cairn webhooks ls --uri http://127.0.0.1:5000
    """
    with _open(uri) as hooks:
        found = hooks.list_hooks(project)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no webhooks")
        return
    rows = [
        [h["id"], h["url"], ",".join(h["actions"]), h["project"] or "(all)", _when(h["created_at"])]
        for h in found
    ]
    print_table(["id", "url", "actions", "project", "created"], rows, max_width=60)


@webhooks.command("rm")
@click.argument("webhook_id", type=click.IntRange(1, 2**63 - 1), metavar="ID")
@uri_option
@handle_errors
def rm(webhook_id: int, uri: str) -> None:
    """Turn a webhook off; its pending deliveries are dropped, its history kept."""
    with _open(uri) as hooks:
        hooks.delete(webhook_id)
    click.echo(f"webhook {webhook_id} deleted")


@webhooks.command("deliveries")
@click.argument("webhook_id", type=click.IntRange(1, 2**63 - 1), metavar="ID")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]), default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@uri_option
@json_option
@handle_errors
def deliveries(webhook_id: int, status: str | None, limit: int, uri: str, as_json: bool) -> None:
    """A webhook's deliveries, newest first: status, attempts, last answer.

    \b
    Example:
      cairn webhooks deliveries 3 --status failed
    """
    with _open(uri) as hooks:
        found = hooks.deliveries(webhook_id, status, limit)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no deliveries")
        return
    rows = [
        [
            d["id"],
            d["action"],
            d["status"],
            d["attempts"],
            d["last_status"],
            _when(d["delivered_at"] or d["next_attempt_at"]),
            d["last_error"],
        ]
        for d in found
    ]
    print_table(["id", "action", "status", "attempts", "http", "at", "last error"], rows)
