"""``cairn gc``: delete the blobs that no run artifact or dataset version references.

It runs where the store is (a folder, a SQLite file or PostgreSQL with its artifact
location), not over HTTP, and is safe while a server writes: see ``cairn.services.gc``.
"""

from __future__ import annotations

import re

import click

from cairn.cli.artifacts import _size
from cairn.cli.output import handle_errors, print_json
from cairn.cli.projects import json_option
from cairn.domain.errors import NotFound

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_AGE_FORMS = "a number of seconds, or a number with s, m, h or d: 90s, 30m, 24h, 7d"


def parse_age(text: str) -> float:
    """Seconds in ``90s``, ``30m``, ``24h``, ``7d`` or a plain number of seconds.

    >>> parse_age("30m"), parse_age("7d"), parse_age("0")
    (1800.0, 604800.0, 0.0)
    """
    match = _AGE.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not an age: use {_AGE_FORMS}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def _grace(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_age(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    value = value.strip().lower()
    return value + "s" if value[-1:].isdigit() else value


@click.command()
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    callback=_grace,
    metavar="AGE",
    help="Keep unreferenced blobs younger than this: 90s, 30m, 24h, 7d or seconds.",
)
@click.option(
    "--store",
    default="./.cairn",
    show_default=True,
    help="A folder, sqlite:///FILE or postgresql://…",
)
@click.option(
    "--artifacts",
    default=None,
    help="The artifact store, when not the store's own folder (a PostgreSQL store needs "
    "it): a folder or s3://bucket/prefix.",
)
@json_option
@handle_errors
def gc(dry_run: bool, grace: str, store: str, artifacts: str | None, as_json: bool) -> None:
    """Delete blobs that nothing references and that are older than the grace period.

    Safe while a server writes: young blobs (sent but not yet recorded) are kept, and
    the references are read again just before anything is deleted. Stale resumable
    uploads and temporary files are cleared too (not in a dry run).

    \b
    Examples:
      cairn gc --dry-run
      cairn gc --grace 7d --store postgresql://cairn@db/cairn --artifacts s3://ml/cairn
    """
    from cairn.services.blobs import BlobService
    from cairn.services.gc import collect_garbage
    from cairn.store.database import Database

    _check_store_exists(store)
    db = Database(store, auto_upgrade=False, artifacts=artifacts)
    try:
        report = collect_garbage(db, BlobService(db), grace_s=parse_age(grace), dry_run=dry_run)
    finally:
        db.close()
    if as_json:
        print_json(report)
        return
    if report.dry_run:
        click.echo("dry run: nothing was deleted")
    rows = [
        ("scanned", f"{report.scanned} blob{'' if report.scanned == 1 else 's'}"),
        ("referenced", str(report.referenced)),
        ("kept young", f"{report.young} (younger than {grace})"),
        ("unreferenced", f"{report.unreferenced} ({_size(report.unreferenced_bytes)})"),
    ]
    if report.dry_run:
        rows.append(("would delete", f"{report.unreferenced} ({_size(report.unreferenced_bytes)})"))
        rows.append(("stale uploads", "not swept in a dry run"))
    else:
        rows.append(("deleted", f"{report.deleted} ({_size(report.deleted_bytes)})"))
        rows.append(("stale uploads", f"{report.stale_uploads} removed"))
        rows.append(("stale temps", f"{report.stale_temps} removed"))
    width = max(len(key) for key, _value in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")


def _check_store_exists(store: str) -> None:
    """Opening a path that holds no store would create one: gc there is a typo."""
    from cairn.store.engine import store_exists

    if not store_exists(store):
        raise NotFound(f"no Cairn store at {store}: pass --store", details={"store": store})
