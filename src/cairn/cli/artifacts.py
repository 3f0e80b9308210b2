"""``cairn artifacts``: list and download the files a run logged."""

from __future__ import annotations

import click

from cairn.cli.output import handle_errors, print_json, print_table
from cairn.cli.progress import transfer_progress
from cairn.cli.projects import json_option, open_client, uri_option
from cairn.cli.runs import _run_id


@click.group()
def artifacts() -> None:
    """Files logged by runs, stored once by content digest."""


@artifacts.command("ls")
@click.argument("run")
@click.option("--prefix", default=None, help="Only the file or folder at this path.")
@uri_option
@json_option
@handle_errors
def ls(run: str, prefix: str | None, uri: str, as_json: bool) -> None:
    """List a run's artifacts: path, size, media type, digest.

    \b
    cairn artifacts ls 01JD... --prefix plots
    """
    with open_client(uri) as client:
        entries = client.list_artifacts(_run_id(run), prefix)
    if as_json:
        print_json(entries)
        return
    if not entries:
        click.echo("no artifacts")
        return
    rows = [[e.path, _size(e.size), e.media_type, e.digest[:12]] for e in entries]
    print_table(["path", "size", "media type", "digest"], rows, max_width=60)


@artifacts.command("get")
@click.argument("run")
@click.argument("path", default="")
@click.option("--dest", default=".", show_default=True, help="Folder to write into.")
@uri_option
@handle_errors
def get(run: str, path: str, dest: str, uri: str) -> None:
    """Download a file, a folder, or (no PATH) all of a run's artifacts.

    Each file is written atomically and checked against its digest.
    """
    run_id = _run_id(run)
    with open_client(uri) as client:

        def total() -> int:
            return sum(e.size for e in client.list_artifacts(run_id, path or None))

        with transfer_progress(total, f"downloading {run}") as progress:
            local = client.download_artifacts(run_id, path, dest, progress=progress)
    click.echo(str(local))


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
