"""Lineage: ``/lineage?ref=…`` draws the dataset versions, runs and model versions around
one of them as an SVG graph laid out left to right in the order data flows (our own
layered layout: a node's column is its longest path from a source)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from cairn.auth import On, guard, principal, require_projects
from cairn.domain.access import Role
from cairn.domain.lineage import MAX_DEPTH, Direction, Lineage, LineageNode, NodeKind
from cairn.ui.render import PageRoute, render, url

router = APIRouter(route_class=PageRoute, include_in_schema=False)

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 172, 56, 56, 30, 16
DETOUR = 26  # how far below its row an edge that skips a column bends


@dataclass(frozen=True)
class Box:
    node: LineageNode
    x: int
    y: int
    href: str
    root: bool


@dataclass(frozen=True)
class Wire:
    path: str
    relation: str
    label: str


def node_href(node: LineageNode) -> str:
    """The page of a node: a run, a model or dataset version, or an endpoint."""
    p = node.project
    if node.kind is NodeKind.RUN:
        return f"/runs/{node.id.split(':', 1)[1]}"
    if node.kind is NodeKind.ENDPOINT:
        return f"/projects/{p}/endpoints/{node.name}"
    group = "models" if node.kind is NodeKind.MODEL else "datasets"
    return url(f"/projects/{p}/{group}/{node.name}", version=node.version)


def lineage_href(ref: str, project: str | None = None) -> str:
    """The lineage page of a ref, both ways (what other pages link to)."""
    return url("/lineage", ref=ref, project=project, direction="both")


def layout(graph: Lineage) -> tuple[list[Box], list[Wire], int, int]:
    """Columns by longest path from a source (cycles are cut), rows in first-seen order."""
    ids = [n.id for n in graph.nodes]
    incoming: dict[str, list[str]] = {i: [] for i in ids}
    for edge in graph.edges:
        if edge.source in incoming and edge.target in incoming:
            incoming[edge.target].append(edge.source)
    column: dict[str, int] = {}

    def depth(node: str, trail: frozenset[str]) -> int:
        if node not in column:
            ups = [u for u in incoming[node] if u not in trail]
            column[node] = 1 + max((depth(u, trail | {node}) for u in ups), default=-1)
        return column[node]

    for node in ids:
        depth(node, frozenset())
    rows: dict[int, int] = {}
    boxes: dict[str, Box] = {}
    for n in graph.nodes:
        col = column[n.id]
        row = rows.get(col, 0)
        rows[col] = row + 1
        x = PAD + col * (NODE_W + GAP_X)
        y = PAD + row * (NODE_H + GAP_Y)
        boxes[n.id] = Box(n, x, y, node_href(n), n.id == graph.root)
    wires = []
    for edge in graph.edges:
        a, b = boxes.get(edge.source), boxes.get(edge.target)
        if a is None or b is None:
            continue
        x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
        x2, y2 = b.x, b.y + NODE_H // 2
        if x2 <= x1:  # a cut cycle: loop around underneath
            x1, x2 = a.x + NODE_W // 2, b.x + NODE_W // 2
            y1, y2 = a.y + NODE_H, b.y + NODE_H
            path = f"M{x1},{y1} C{x1},{y1 + 40} {x2},{y2 + 40} {x2},{y2 + 4}"
        elif x2 - x1 > GAP_X:  # skips a column: bend below the boxes in between
            x1, y1 = a.x + NODE_W - 24, a.y + NODE_H
            x2, y2 = b.x + 24, b.y + NODE_H
            low = max(y1, y2) + DETOUR
            path = f"M{x1},{y1} C{x1},{low} {x2},{low} {x2},{y2 + 5}"
        else:
            mid = (x1 + x2) // 2
            path = f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2 - 6},{y2}"
        label = edge.relation.value + (f" ({edge.role})" if edge.role else "")
        wires.append(Wire(path, edge.relation.value, label))
    width = PAD * 2 + (max(column.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + max(rows.values(), default=1) * (NODE_H + GAP_Y) - GAP_Y + DETOUR
    return list(boxes.values()), wires, width, height


@router.get("/lineage", response_class=HTMLResponse, dependencies=[guard(On.HANDLER, Role.VIEWER)])
def lineage_page(
    request: Request,
    ref: Annotated[str, Query(max_length=600)] = "",
    project: Annotated[str | None, Query(max_length=200)] = None,
    direction: Direction = Direction.BOTH,
    depth: Annotated[int | None, Query(ge=0, le=MAX_DEPTH)] = None,
) -> HTMLResponse:
    graph = request.app.state.lineage.lineage(ref, direction, depth, project) if ref else None
    if graph is not None:
        require_projects(principal(request), (n.project for n in graph.nodes), Role.VIEWER)
    boxes, wires, width, height = layout(graph) if graph else ([], [], 0, 0)
    where = project or (graph.nodes[0].project if graph and graph.nodes else None)
    crumbs: list[tuple[str, str | None]] = []
    if where:
        crumbs.append((where, f"/projects/{where}/runs"))
    crumbs.append(("Lineage", None))
    return render(
        request,
        "lineage.html",
        project=where,
        crumbs=crumbs,
        twin=url(
            "/api/v1/lineage", ref=ref, project=project, direction=direction.value, depth=depth
        )
        if ref
        else None,
        ref=ref,
        direction=direction.value,
        directions=[d.value for d in Direction],
        depth=depth,
        max_depth=MAX_DEPTH,
        graph=graph,
        boxes=boxes,
        wires=wires,
        width=width,
        height=height,
        node_w=NODE_W,
        node_h=NODE_H,
    )
