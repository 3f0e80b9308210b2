"""``cairn sync``: push spooled and offline runs to a server or a store.

    cairn sync --uri http://cairn:5000     # spool: $CAIRN_SPOOL_DIR or ~/.cairn/spool
    cairn sync --uri ./.cairn --spool /scratch/spool --dry-run

Every batch keeps its idempotency key, so syncing twice, or while the run still logs
(a later sync sends the rest), never duplicates anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cairn.cli.output import handle_errors, print_json
from cairn.cli.projects import json_option
from cairn.client.backend import Backend, default_uri, open_backend
from cairn.client.spool import default_spool_dir
from cairn.client.spool import sync as sync_spool


@click.command()
@click.option(
    "--uri",
    default=None,
    help="Server URL or store (default: the server each spool file was meant for; "
    "offline runs: $CAIRN_TRACKING_URI).",
)
@click.option(
    "--spool",
    "spool_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Spool folder (default: $CAIRN_SPOOL_DIR or ~/.cairn/spool).",
)
@click.option("--dry-run", is_flag=True, help="Report what would be sent; send nothing.")
@json_option
@handle_errors
def sync(uri: str | None, spool_dir: Path | None, dry_run: bool, as_json: bool) -> None:
    """Send spooled and offline runs (batches and artifacts) not yet acknowledged."""
    folder = spool_dir or default_spool_dir()
    backends: dict[str, Backend] = {}

    def open_target(recorded: str | None) -> Backend:
        target = uri or recorded or default_uri()
        if target not in backends:
            backends[target] = open_backend(target, mode="online")
        return backends[target]

    try:
        report = sync_spool(folder, open_target, dry_run=dry_run)
    finally:
        for backend in backends.values():
            backend.close()
    figures = report.as_dict()
    if as_json:
        print_json({"dry_run": dry_run, **figures})
    else:
        verb = "would send" if dry_run else "sent"
        click.echo(
            f"{verb} {figures['runs']} runs, {figures['batches']} batches, "
            f"{figures['points']} points, {figures['artifacts']} artifacts from "
            f"{figures['files']} spool files; skipped {figures['duplicates']} duplicate "
            f"batches ({figures['duplicate_points']} points) and "
            f"{figures['already_synced']} already synced"
        )
    for failure in report.failed:
        click.echo(f"refused: {failure}", err=True)
    if report.failed:
        sys.exit(1)
