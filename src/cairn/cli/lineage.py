"""``cairn lineage REF``: what produced a model or dataset version, or what it fed, as a
tree (or ``--json``)."""

from __future__ import annotations

from collections.abc import Iterator

import click

from cairn.cli.data import project_option
from cairn.cli.output import handle_errors, print_json
from cairn.cli.projects import json_option, open_client, uri_option
from cairn.domain.lineage import MAX_DEPTH, Direction, Lineage, LineageNode, NodeKind


@click.command("lineage")
@click.argument("ref")
@click.option(
    "--direction",
    "-d",
    type=click.Choice([d.value for d in Direction]),
    default=Direction.UP.value,
    show_default=True,
    help="up: what produced it; down: what it fed; both.",
)
@click.option(
    "--depth", type=click.IntRange(0, MAX_DEPTH), default=None, help="Hops at most (no limit)."
)
@project_option
@uri_option
@json_option
@handle_errors
def lineage(
    ref: str, direction: str, depth: int | None, project: str | None, uri: str, as_json: bool
) -> None:
    """The dataset versions, runs and model versions around REF: runs/<id>,
    models/iris@production, datasets/wine:3, or a bare iris@production or wine:3 (a
    model first, then a dataset).

    \b
    Examples:
      cairn lineage iris@production               # which data trained production?
      cairn lineage datasets/wine:3 -d down       # which models did wine:3 feed?
      cairn lineage runs/01JD2... -d both --depth 1
    """
    with open_client(uri) as client:
        graph = client.lineage(ref, direction, depth, project)
    if as_json:
        print_json(graph.to_dict())
        return
    for line in tree_lines(graph):
        click.echo(line)


def tree_lines(graph: Lineage) -> list[str]:
    """The graph as an indented tree from its root; a node met again is not expanded."""
    nodes = {n.id: n for n in graph.nodes}
    root = nodes[graph.root]
    lines = [describe(root, root.project)]
    sides = {Direction.UP: [True], Direction.DOWN: [False], Direction.BOTH: [True, False]}
    for upward in sides[graph.direction]:
        # each node's neighbours on this side, with how they are linked (roles, relations)
        links: dict[str, dict[str, list[str]]] = {}
        for edge in graph.edges:
            near, far = (edge.target, edge.source) if upward else (edge.source, edge.target)
            links.setdefault(near, {}).setdefault(far, []).append(edge.role or edge.relation)
        if graph.direction is Direction.BOTH:
            lines.append("↑ upstream" if upward else "↓ downstream")
        lines.extend(_branches(nodes, links, root.id, root.project, "", {root.id}))
    return lines


def _branches(
    nodes: dict[str, LineageNode],
    links: dict[str, dict[str, list[str]]],
    node_id: str,
    home: str,
    indent: str,
    shown: set[str],
) -> Iterator[str]:
    neighbours = list(links.get(node_id, {}).items())
    for index, (far_id, how) in enumerate(neighbours):
        last = index == len(neighbours) - 1
        again = far_id in shown
        text = f"{describe(nodes[far_id], home)} [{', '.join(how)}]"
        yield f"{indent}{'└─' if last else '├─'} {text}{' (see above)' if again else ''}"
        if not again:
            shown.add(far_id)
            deeper = indent + ("   " if last else "│  ")
            yield from _branches(nodes, links, far_id, home, deeper, shown)


def describe(node: LineageNode, home: str) -> str:
    """``model iris:2 (1.1.0, production, approved)``, ``run 01J… train (finished)``,
    ``dataset wine:3 (batch 2026-11)``; another project's nodes carry its name."""
    if node.kind is NodeKind.RUN:
        name = f" {node.name}" if node.name else ""
        run_id = node.ref.removeprefix("runs/")
        return f"run {run_id}{name} ({node.status})"
    label = node.label if node.project == home else f"{node.project}/{node.label}"
    if node.kind is NodeKind.ENDPOINT:
        return f"endpoint {label}"
    if node.kind is NodeKind.DATASET:
        return f"dataset {label}" + (f" (batch {node.batch})" if node.batch else "")
    details = [node.semver or "", *node.aliases, node.approval or ""]
    return f"model {label} ({', '.join(d for d in details if d)})"
