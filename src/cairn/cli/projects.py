"""``cairn projects``: the projects of a store or server.

This module also holds what every read command shares: the ``--uri`` and ``--json``
options and ``open_client``, which closes the client however the command ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from cairn.cli.output import handle_errors, print_json, print_table
from cairn.client.backend import default_uri
from cairn.client.fluent import Client
from cairn.domain.errors import NotFound
from cairn.domain.records import ProjectSummary

F = TypeVar("F", bound=Callable[..., Any])


def uri_option(func: F) -> F:
    """``--uri``: a server URL, a folder, ``sqlite:///FILE`` or ``postgresql://…``."""
    return click.option(
        "--uri",
        default=default_uri,
        show_default="$CAIRN_TRACKING_URI, else ./.cairn",
        help="Where runs are: http(s)://server, a folder, sqlite:///FILE or postgresql://…",
    )(func)


def json_option(func: F) -> F:
    """``--json``: print JSON for scripts instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        func
    )


@contextmanager
def open_client(uri: str) -> Iterator[Client]:
    """A ``Client`` for one command, closed at the end whatever happens.

    A folder without a store is an error here: opening it would create an empty store,
    and a mistyped ``--uri`` would then list nothing instead of saying so.
    """
    _check_store_exists(uri)
    client = Client(uri)
    try:
        yield client
    finally:
        client.close()


def _check_store_exists(uri: str) -> None:
    if "://" in uri or uri.startswith("sqlite:"):
        return
    from cairn.store.engine import DB_FILENAME

    if not (Path(uri).expanduser() / DB_FILENAME).is_file():
        raise NotFound(
            f"no Cairn store at {uri}: pass --uri or set CAIRN_TRACKING_URI", details={"uri": uri}
        )


@click.group()
def projects() -> None:
    """Projects: the named ML efforts that runs belong to."""


@projects.command("ls")
@uri_option
@json_option
@handle_errors
def ls(uri: str, as_json: bool) -> None:
    """List projects with their run counts and last activity.

    \b
    Example:
      cairn projects ls --uri http://127.0.0.1:5000
    """
    with open_client(uri) as client:
        found = client.list_projects()
    if as_json:
        print_json([_project_json(p) for p in found])
        return
    if not found:
        click.echo("no projects yet")
        return
    print_table(
        ["name", "runs", "running", "last activity", "description"],
        [
            [
                p.project.name,
                p.run_count,
                p.running_count,
                p.last_activity,
                p.project.description or "-",
            ]
            for p in found
        ],
    )


def _project_json(summary: ProjectSummary) -> dict[str, Any]:
    project = summary.project
    return {
        "name": project.name,
        "description": project.description,
        "created_at": project.created_at,
        "runs": summary.run_count,
        "running": summary.running_count,
        "last_activity": summary.last_activity,
    }
