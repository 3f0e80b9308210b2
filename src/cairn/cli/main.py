"""Entry point of the ``cairn`` command."""

from __future__ import annotations

import click

from cairn._version import __version__
from cairn.cli.artifacts import artifacts
from cairn.cli.data import data
from cairn.cli.db import db
from cairn.cli.gc import gc
from cairn.cli.projects import projects
from cairn.cli.runs import runs
from cairn.cli.server import server


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cairn")
def cli() -> None:
    """Cairn: keep a machine-learning model's whole life traceable."""


cli.add_command(server)
cli.add_command(db)
cli.add_command(projects)
cli.add_command(runs)
cli.add_command(artifacts)
cli.add_command(data)
cli.add_command(gc)


def main() -> None:
    cli()
