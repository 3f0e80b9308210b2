"""``cairn demo``: fill a project with realistic history to look at in the UI."""

from __future__ import annotations

import click

from cairn.cli.output import handle_errors
from cairn.cli.projects import uri_option


@click.command("demo")
@click.option("--project", "-p", default="demo", show_default=True, help="The project to fill.")
@uri_option
@handle_errors
def demo(project: str, uri: str) -> None:
    """Fill PROJECT with a realistic history built from scikit-learn's bundled datasets
    (wine, breast cancer, digits): dataset batches, a nested sweep, registered versions
    with aliases and approvals, and production traffic with feedback and drift.

    \b
    Examples:
      make run                                     # in one terminal
      cairn demo --uri http://127.0.0.1:5000       # then open http://127.0.0.1:5000
    """
    import importlib.util

    missing = [
        name
        for name in ("sklearn", "pandas", "numpy", "matplotlib")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise click.ClickException(
            f"the demo trains models and needs {', '.join(missing)}: "
            "pip install 'cairn[demo]' (make run installs it)"
        )
    from cairn.client.fluent import Client
    from cairn.demo import fill

    client = Client(uri, project=project)
    try:
        fill(client, say=lambda line: click.echo(line, err=True))
    finally:
        client.close()
