from __future__ import annotations

import click

from cairn.cli.output import handle_errors


@click.group()
def db() -> None:
    """Manage the metadata store's schema."""


@db.command()
@click.option(
    "--store",
    default="./.cairn",
    show_default=True,
    help="A folder, sqlite:///FILE or postgresql://…",
)
@click.option("--revision", default="head", show_default=True)
@handle_errors
def upgrade(store: str, revision: str) -> None:
    """Upgrade the store's schema (back it up first; stop servers that use it)."""
    from cairn.store.engine import make_engine, resolve_store
    from cairn.store.schema import upgrade as do_upgrade

    engine = make_engine(resolve_store(store).database_url)
    try:
        before, after = do_upgrade(engine, revision)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"{store}: already at schema revision {after}")
    else:
        click.echo(f"{store}: upgraded schema {before or '(empty)'} -> {after}")


@db.command()
@click.option("--store", default="./.cairn", show_default=True)
@handle_errors
def current(store: str) -> None:
    """Print the store's schema revision and the one this Cairn needs."""
    from cairn.store.engine import make_engine, resolve_store
    from cairn.store.schema import current_revision, head_revision

    engine = make_engine(resolve_store(store).database_url)
    try:
        with engine.connect() as conn:
            found = current_revision(conn)
    finally:
        engine.dispose()
    click.echo(f"store: {found or '(empty)'}  needed: {head_revision()}")
