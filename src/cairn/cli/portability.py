"""``cairn export`` and ``cairn import``: a whole project, rows and blobs, in one tar file.

They run where the store is (a folder, a SQLite file or PostgreSQL with its artifact
location), not over HTTP.
"""

from __future__ import annotations

import click

from cairn.cli.output import handle_errors, print_json
from cairn.cli.projects import json_option
from cairn.client.identity import login_name

_STORE_HELP = "A folder, sqlite:///FILE or postgresql://…"
_ARTIFACTS_HELP = (
    "The artifact store, when not the store's own folder (a PostgreSQL store needs it): "
    "a folder or s3://bucket/prefix."
)


@click.command("export")
@click.option("--project", required=True, help="The project to export.")
@click.option("--store", default="./.cairn", show_default=True, help=_STORE_HELP)
@click.option("--artifacts", default=None, help=_ARTIFACTS_HELP)
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@json_option
@handle_errors
def export(project: str, store: str, artifacts: str | None, out: str, as_json: bool) -> None:
    """Write a project (runs, metrics, artifacts, datasets, models, production records,
    audit events and every blob they name) to the tar file OUT.

    \b
    Examples:
      cairn export --project translate translate.tar
      cairn export --project translate --store postgresql://cairn@db/cairn \\
          --artifacts s3://ml/cairn backup.tar
    """
    from cairn.cli.gc import _check_store_exists
    from cairn.services.blobs import BlobService
    from cairn.services.portability import export_project
    from cairn.store.database import Database

    _check_store_exists(store)
    db = Database(store, auto_upgrade=False, artifacts=artifacts)
    try:
        report = export_project(db, BlobService(db).store, project, out)
    finally:
        db.close()
    if as_json:
        print_json(report)
        return
    rows = sum(report.rows.values())
    click.echo(f"exported project {report.project}: {rows} rows, {report.blobs} blobs -> {out}")


@click.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--store", default="./.cairn", show_default=True, help=_STORE_HELP)
@click.option("--artifacts", default=None, help=_ARTIFACTS_HELP)
@click.option("--project", default=None, help="Import under this name (default: the exported one).")
@json_option
@handle_errors
def import_(
    source: str, store: str, artifacts: str | None, project: str | None, as_json: bool
) -> None:
    """Recreate the project in SOURCE (a tar from ``cairn export``) in a store.

    A project of the same name is never overwritten: import it under another name.

    \b
    Examples:
      cairn import translate.tar --store ./other
      cairn import translate.tar --project translate_restored
    """
    from cairn.services.blobs import BlobService
    from cairn.services.portability import import_project
    from cairn.store.database import Database

    db = Database(store, artifacts=artifacts)
    try:
        report = import_project(
            db, BlobService(db).store, source, project=project, actor=login_name()
        )
    finally:
        db.close()
    if as_json:
        print_json(report)
        return
    rows = sum(report.rows.values())
    click.echo(
        f"imported project {report.project}: {rows} rows, {report.blobs} blobs "
        f"({report.blobs_written} new)"
    )
