"""``cairn audit ls``: the audit log, every change with who made it and when."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

from cairn.cli.data import project_option
from cairn.cli.output import format_value, handle_errors, print_json, print_table
from cairn.cli.projects import json_option, open_client, uri_option
from cairn.domain.audit import MAX_LIMIT, AuditEvent


@click.group()
def audit() -> None:
    """The audit log: every change to anything, who made it, when, before and after."""


@audit.command("ls")
@click.option(
    "--entity",
    "-e",
    default=None,
    help="runs/<id>, models/iris (and its versions), models/iris:3, datasets/wine[:N], "
    "projects/<name>",
)
@click.option("--since", default=None, help="A duration back from now (30m, 1h, 7d) or ISO 8601.")
@click.option("--action", "-a", default=None, help="An action, or a pattern such as 'model.*'.")
@project_option
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=1000, show_default=True)
@click.option(
    "--cursor", default=None, help="Start after this event (a previous --json's next_cursor)."
)
@uri_option
@json_option
@handle_errors
def ls(
    entity: str | None,
    since: str | None,
    action: str | None,
    project: str | None,
    limit: int,
    cursor: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """List events, oldest first.

    \b
    Examples:
      cairn audit ls --entity models/iris
      cairn audit ls --since 1h --action 'model.*'
      cairn audit ls --entity runs/01JD2... --json
    """
    with open_client(uri) as client:
        events = client.audit(entity, since, action, project, limit, cursor)
    if as_json:
        print_json({"events": [asdict(e) for e in events], "next_cursor": events.next_cursor})
        return
    if not events:
        click.echo("no events")
        return
    rows = [
        (e.id, e.at, e.actor, e.action, f"{e.entity_type} {e.entity_id}", change(e)) for e in events
    ]
    print_table(["ID", "AT", "ACTOR", "ACTION", "ENTITY", "CHANGE"], rows, max_width=70)
    if events.next_cursor is not None:
        click.echo(f"more: --cursor {events.next_cursor}", err=True)


def change(event: AuditEvent) -> str:
    """``version: 1 -> 2, alias=production``: what the event's before and after say."""
    before, after = event.before or {}, event.after or {}
    parts = []
    for key, value in after.items():
        if key in before and before[key] != value:
            parts.append(f"{key}: {_short(before[key])} -> {_short(value)}")
        elif value is not None:
            parts.append(f"{key}={_short(value)}")
    parts.extend(f"{key} was {_short(v)}" for key, v in before.items() if key not in after)
    return ", ".join(parts)


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=format_value)
