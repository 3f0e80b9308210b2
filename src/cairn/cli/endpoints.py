"""``cairn endpoints``: served names with weighted variants (A/B tests, canaries, shadows).

    cairn endpoints create churn --variant champion=iris@production:90 \\
                                 --variant challenger=iris@staging:10
    cairn serve --endpoint churn
"""

from __future__ import annotations

from datetime import datetime

import click

from cairn.cli.data import project_option
from cairn.cli.output import handle_errors, print_json, print_table
from cairn.cli.projects import json_option, open_client, uri_option
from cairn.domain.production import Endpoint, parse_variant_spec

_VARIANT_HELP = (
    "NAME=MODEL_REF:WEIGHT, e.g. champion=iris@production:90; "
    "append :shadow for a shadow (e.g. next=iris:4:0:shadow). Repeat for each variant."
)


@click.group()
def endpoints() -> None:
    """Endpoints: weighted variants of models, served by ``cairn serve --endpoint``."""


def _show(endpoint: Endpoint) -> None:
    click.echo(f"endpoint {endpoint.project}/{endpoint.name}")
    if endpoint.description:
        click.echo(endpoint.description)
    serving = sum(v.weight for v in endpoint.serving()) or 1
    print_table(
        ["variant", "target", "weight", "share", "shadow"],
        [
            [
                v.name,
                v.target,
                v.weight,
                "-" if v.shadow else f"{100 * v.weight / serving:.1f}%",
                "yes" if v.shadow else "",
            ]
            for v in endpoint.variants
        ],
        max_width=60,
    )
    if endpoint.settings:
        click.echo("settings: " + ", ".join(f"{k}={v}" for k, v in endpoint.settings.items()))


@endpoints.command("create")
@click.argument("name")
@click.option("--variant", "-v", "variants", multiple=True, required=True, help=_VARIANT_HELP)
@click.option("--description", "-d", default="", help="What the endpoint is for.")
@project_option
@uri_option
@json_option
@handle_errors
def create(
    name: str,
    variants: tuple[str, ...],
    description: str,
    project: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """Create an endpoint; every variant's model reference must resolve now.

    \b
    Example:
      cairn endpoints create churn --variant champion=iris@production:90 \\
                                   --variant challenger=iris@staging:10
    """
    parsed = [parse_variant_spec(v) for v in variants]
    with open_client(uri) as client:
        created = client.create_endpoint(name, parsed, description=description, project=project)
    if as_json:
        print_json(created)
    else:
        _show(created)


@endpoints.command("set")
@click.argument("name")
@click.option("--variant", "-v", "variants", multiple=True, required=True, help=_VARIANT_HELP)
@project_option
@uri_option
@json_option
@handle_errors
def set_variants(
    name: str, variants: tuple[str, ...], project: str | None, uri: str, as_json: bool
) -> None:
    """Replace an endpoint's variants (new weights, a new challenger); audited.

    \b
    Example:
      cairn endpoints set churn -v champion=iris@production:50 -v challenger=iris@staging:50
    """
    parsed = [parse_variant_spec(v) for v in variants]
    with open_client(uri) as client:
        changed = client.set_endpoint_variants(name, parsed, project=project)
    if as_json:
        print_json(changed)
    else:
        _show(changed)


@endpoints.command("ls")
@project_option
@uri_option
@json_option
@handle_errors
def ls(project: str | None, uri: str, as_json: bool) -> None:
    """List endpoints and their variants."""
    with open_client(uri) as client:
        found = client.list_endpoints(project)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no endpoints yet")
        return
    print_table(
        ["name", "variants", "updated"],
        [
            [
                e.name,
                ", ".join(
                    f"{v.name}={v.target}:{v.weight}{':shadow' if v.shadow else ''}"
                    for v in e.variants
                ),
                e.updated_at,
            ]
            for e in found
        ],
        max_width=80,
    )


@endpoints.command("show")
@click.argument("name")
@project_option
@uri_option
@json_option
@handle_errors
def show(name: str, project: str | None, uri: str, as_json: bool) -> None:
    """An endpoint's variants, their weights and share of traffic, and its settings."""
    with open_client(uri) as client:
        found = client.get_endpoint(name, project)
    if as_json:
        print_json(found)
    else:
        _show(found)


@endpoints.command("predictions")
@click.argument("name")
@click.option("--since", type=click.DateTime(), default=None, help="From this time (UTC).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100_000))
@project_option
@uri_option
@json_option
@handle_errors
def predictions(
    name: str,
    since: datetime | None,
    limit: int,
    project: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """The endpoint's logged predictions, oldest first, with the version that made each."""
    with open_client(uri) as client:
        found = client.list_predictions(endpoint=name, since=since, limit=limit, project=project)
    if as_json:
        print_json(found)
        return
    print_table(
        ["at", "request", "variant", "version", "shadow", "outputs", "latency ms", "actual"],
        [
            [
                p.at,
                p.request_id,
                p.variant,
                f"{p.model}:{p.version}",
                "yes" if p.shadow else "",
                p.outputs,
                p.latency_ms,
                p.actual,
            ]
            for p in found
        ],
    )
