"""Lineage: the graph of dataset versions, runs and model versions, edges as data flows.

    dataset ──input(role)──▶ run ──output──▶ dataset
    run ──trained──▶ model ──input(role)──▶ run
    parent run ──step──▶ child run
    model ──served(variant)──▶ endpoint     (the versions that answered its traffic)

Node ids name the kind: ``dataset:proj/wine:3``, ``run:<ULID>``, ``model:proj/iris:2``,
``endpoint:proj/churn``.
Walking ``up`` follows edges backwards (what produced this?), ``down`` forwards (what did
this feed?), ``both`` does both from the same start.

>>> dataset_node_id("p", "wine", 3), model_node_id("p", "iris", 2)
('dataset:p/wine:3', 'model:p/iris:2')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cairn.domain.errors import Invalid

MAX_DEPTH = 1000


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    BOTH = "both"


class NodeKind(StrEnum):
    DATASET = "dataset"
    RUN = "run"
    MODEL = "model"
    ENDPOINT = "endpoint"


class Relation(StrEnum):
    INPUT = "input"  # dataset -> run, model -> run (with the role it was used in)
    OUTPUT = "output"  # run -> dataset (the run produced the version)
    TRAINED = "trained"  # run -> model (the version's source run)
    STEP = "step"  # parent run -> child run
    SERVED = "served"  # model -> endpoint (the variant it answered as, from logged traffic)


def dataset_node_id(project: str, name: str, version: int) -> str:
    return f"dataset:{project}/{name}:{version}"


def model_node_id(project: str, name: str, version: int) -> str:
    return f"model:{project}/{name}:{version}"


def endpoint_node_id(project: str, name: str) -> str:
    return f"endpoint:{project}/{name}"


def run_node_id(run_id: str) -> str:
    return f"run:{run_id}"


@dataclass(frozen=True, slots=True)
class LineageNode:
    """A dataset version, run or model version; ``ref`` is what to type to name it again."""

    id: str
    kind: NodeKind
    label: str
    ref: str
    project: str
    name: str | None = None  # the dataset's or model's name; the run's name, if it has one
    version: int | None = None
    batch: str | None = None  # datasets
    status: str | None = None  # runs
    semver: str | None = None  # models
    aliases: tuple[str, ...] = ()  # models
    approval: str | None = None  # models

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "label": self.label,
            "ref": self.ref,
            "project": self.project,
            "name": self.name,
            "version": self.version,
            "batch": self.batch,
            "status": self.status,
            "semver": self.semver,
            "aliases": list(self.aliases),
            "approval": self.approval,
        }


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """Data flows from ``source`` to ``target``; ``role`` on ``input`` edges (how the run
    used it) and ``served`` edges (the endpoint variant, ``(shadow)`` for a shadow)."""

    source: str
    target: str
    relation: Relation
    role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "relation": self.relation.value,
            "role": self.role,
        }


@dataclass(frozen=True, slots=True)
class Lineage:
    """What a lineage query found: the start node, every node reached, and the edges
    between them. Example: ``[n.label for n in cairn.lineage("iris@production").datasets()]``.
    """

    root: str
    direction: Direction
    depth: int | None
    nodes: list[LineageNode]
    edges: list[LineageEdge] = field(default_factory=list)

    def node(self, node_id: str) -> LineageNode | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def __contains__(self, node_id: object) -> bool:
        return any(n.id == node_id for n in self.nodes)

    def datasets(self) -> list[LineageNode]:
        return [n for n in self.nodes if n.kind is NodeKind.DATASET]

    def runs(self) -> list[LineageNode]:
        return [n for n in self.nodes if n.kind is NodeKind.RUN]

    def models(self) -> list[LineageNode]:
        return [n for n in self.nodes if n.kind is NodeKind.MODEL]

    def endpoints(self) -> list[LineageNode]:
        return [n for n in self.nodes if n.kind is NodeKind.ENDPOINT]

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction.value,
            "depth": self.depth,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }


def check_direction(direction: object) -> Direction:
    try:
        return Direction(str(direction))
    except ValueError:
        raise Invalid(
            f"direction must be 'up', 'down' or 'both', not {direction!r}", field="direction"
        ) from None


def check_depth(depth: object) -> int | None:
    """None (no limit) or a number of hops from 0 to ``MAX_DEPTH``."""
    if depth is None:
        return None
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH:
        raise Invalid(
            f"depth must be a whole number of hops from 0 to {MAX_DEPTH}, or none for no limit",
            field="depth",
        )
    return depth
