"""Entry point of the ``cairn`` command."""

from __future__ import annotations

import click

from cairn._version import __version__
from cairn.cli.artifacts import artifacts
from cairn.cli.audit import audit
from cairn.cli.data import data
from cairn.cli.db import db
from cairn.cli.demo import demo
from cairn.cli.endpoints import endpoints
from cairn.cli.gc import gc
from cairn.cli.lineage import lineage
from cairn.cli.models import models
from cairn.cli.monitor import ab, monitor
from cairn.cli.monitor import promote as ab_promote
from cairn.cli.portability import export, import_
from cairn.cli.projects import projects
from cairn.cli.runs import runs
from cairn.cli.serve import serve
from cairn.cli.server import server
from cairn.cli.sync import sync
from cairn.cli.users import tokens, users
from cairn.cli.webhooks import webhooks


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
cli.add_command(models)
cli.add_command(gc)
cli.add_command(webhooks)
cli.add_command(lineage)
cli.add_command(audit)
cli.add_command(serve)
cli.add_command(endpoints)
cli.add_command(monitor)
cli.add_command(ab)
cli.add_command(export)
cli.add_command(import_)
cli.add_command(sync)
cli.add_command(demo)
cli.add_command(users)
cli.add_command(tokens)
if "promote" not in endpoints.commands:  # ``cairn endpoints promote`` is ``cairn ab promote``
    endpoints.add_command(ab_promote, "promote")


def main() -> None:
    cli()
