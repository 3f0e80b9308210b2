"""Entry point of the ``cairn`` command."""

from __future__ import annotations

import click

from cairn import __version__
from cairn.cli.db import db
from cairn.cli.server import server


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cairn")
def cli() -> None:
    """Cairn: keep a machine-learning model's whole life traceable."""


cli.add_command(server)
cli.add_command(db)


def _add_optional_groups() -> None:
    from cairn.cli.projects import projects
    from cairn.cli.runs import runs

    cli.add_command(projects)
    cli.add_command(runs)


try:
    _add_optional_groups()
except ImportError:  # groups are added as they are written
    pass


def main() -> None:
    cli()
