"""Lineage graphs on the wire: ``GET /api/v1/lineage``."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from cairn.domain.lineage import Direction, Lineage, LineageEdge, LineageNode, NodeKind, Relation
from cairn.schemas.base import Wire


class LineageNodeOut(Wire):
    id: str = Field(description="dataset:proj/wine:3, run:<ULID> or model:proj/iris:2")
    kind: NodeKind
    label: str
    ref: str = Field(description="The reference to type to name it: runs/<id>, proj/iris:2 …")
    project: str
    name: str | None = None
    version: int | None = None
    batch: str | None = None
    status: str | None = None
    semver: str | None = None
    aliases: list[str] = []
    approval: str | None = None

    @classmethod
    def of(cls, node: LineageNode) -> LineageNodeOut:
        return cls.model_validate(node.to_dict())

    def to_domain(self) -> LineageNode:
        return LineageNode(
            id=self.id,
            kind=self.kind,
            label=self.label,
            ref=self.ref,
            project=self.project,
            name=self.name,
            version=self.version,
            batch=self.batch,
            status=self.status,
            semver=self.semver,
            aliases=tuple(self.aliases),
            approval=self.approval,
        )


class LineageEdgeOut(Wire):
    """An edge as data flows; ``role`` is set on ``input`` edges."""

    model_config = ConfigDict(populate_by_name=True)

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    relation: Relation
    role: str | None = None

    @classmethod
    def of(cls, edge: LineageEdge) -> LineageEdgeOut:
        return cls.model_validate(edge.to_dict())

    def to_domain(self) -> LineageEdge:
        return LineageEdge(self.source, self.target, self.relation, self.role)


class LineageOut(Wire):
    root: str
    direction: Direction
    depth: int | None
    nodes: list[LineageNodeOut]
    edges: list[LineageEdgeOut]

    @classmethod
    def of(cls, lineage: Lineage) -> LineageOut:
        return cls(
            root=lineage.root,
            direction=lineage.direction,
            depth=lineage.depth,
            nodes=[LineageNodeOut.of(n) for n in lineage.nodes],
            edges=[LineageEdgeOut.of(e) for e in lineage.edges],
        )

    def to_domain(self) -> Lineage:
        return Lineage(
            self.root,
            self.direction,
            self.depth,
            [n.to_domain() for n in self.nodes],
            [e.to_domain() for e in self.edges],
        )
