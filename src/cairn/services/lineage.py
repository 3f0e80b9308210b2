"""Lineage: which data and runs made a model version, and what a dataset version fed.

lineage = LineageService(db, data, registry)
lineage.lineage("iris@production")                    # up: the runs and data behind it
lineage.lineage("datasets/wine:3", direction="down")  # the runs and models it fed
lineage.lineage("runs/01JD…", direction="both", depth=1)

A start is ``runs/<id>``, ``models/<ref>``, ``datasets/<ref>``, ``endpoints/[proj/]name``
(up: the versions that served it, and what made them), a node id from an
earlier answer (``model:p/iris:2``), or a bare ref (``iris@production``, ``wine:3``):
a model first, then a dataset; a name that is both must say which. The walk is breadth
first, one query per hop and relation, and visits each node once (cycles end there).
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Connection, Table

from cairn.domain.errors import Invalid, NotFound
from cairn.domain.lineage import (
    Direction,
    Lineage,
    LineageEdge,
    NodeKind,
    check_depth,
    check_direction,
)
from cairn.domain.refs import parse_ref
from cairn.domain.validation import DEFAULT_PROJECT, check_project_name
from cairn.services.data import DataService
from cairn.services.registry import RegistryService, locate
from cairn.store.database import Database
from cairn.store.named import find_named
from cairn.store.repositories.datasets import DatasetRepository
from cairn.store.repositories.lineage import LineageRepository, Link, NodeKey
from cairn.store.repositories.models import ModelRepository
from cairn.store.repositories.projects import ProjectRepository
from cairn.store.repositories.runs import RunRepository
from cairn.store.tables import EndpointRow

_E = cast(Table, EndpointRow.__table__)

# The prefixes a start may carry: the collection people type, or a node id's kind.
_PREFIXES = {
    "runs/": NodeKind.RUN,
    "run:": NodeKind.RUN,
    "models/": NodeKind.MODEL,
    "model:": NodeKind.MODEL,
    "datasets/": NodeKind.DATASET,
    "dataset:": NodeKind.DATASET,
    "endpoints/": NodeKind.ENDPOINT,
    "endpoint:": NodeKind.ENDPOINT,
}


class LineageService:
    def __init__(self, db: Database, data: DataService, registry: RegistryService) -> None:
        self.db = db
        self.data = data
        self.registry = registry

    def lineage(
        self,
        ref: str,
        direction: Direction | str = Direction.UP,
        depth: int | None = None,
        project: str | None = None,
    ) -> Lineage:
        """The graph around ``ref``: ``up`` what produced it, ``down`` what it fed,
        ``both``; ``depth`` hops at most (None: no limit)."""
        direction = check_direction(direction)
        depth = check_depth(depth)
        project = check_project_name(project or DEFAULT_PROJECT)
        root = self._start(ref, project)
        reached: dict[NodeKey, None] = {root: None}  # insertion-ordered: root, then by hop
        links: dict[Link, None] = {}
        with self.db.read() as conn:
            repo = LineageRepository(conn)
            if direction is not Direction.DOWN:
                _walk(repo, root, False, depth, reached, links)
            if direction is not Direction.UP:
                _walk(repo, root, True, depth, reached, links)
            nodes = repo.nodes(reached)
        edges = [
            LineageEdge(nodes[link.source].id, nodes[link.target].id, link.relation, link.role)
            for link in links
        ]
        return Lineage(nodes[root].id, direction, depth, [nodes[key] for key in reached], edges)

    # -- the start node -------------------------------------------------------------------

    def _start(self, ref: object, project: str) -> NodeKey:
        if not isinstance(ref, str) or not ref.strip():
            raise Invalid("ref must name a run, a model version or a dataset version", field="ref")
        text = ref.strip()
        for prefix, kind in _PREFIXES.items():
            if text.startswith(prefix):
                return self._key(kind, text[len(prefix) :], project)
        parsed = parse_ref(text)
        where = parsed.project or project
        with self.db.read() as conn:
            project_row = ProjectRepository(conn).find(where)
            is_model = is_dataset = False
            if project_row is not None:
                is_model = ModelRepository(conn).find_id(project_row.id, parsed.name) is not None
                is_dataset = (
                    DatasetRepository(conn).find_id(project_row.id, parsed.name) is not None
                )
        if is_model and is_dataset:
            raise Invalid(
                f"{text!r} names both a model and a dataset in project {where!r}: "
                f"write models/{text} or datasets/{text}",
                field="ref",
            )
        if not (is_model or is_dataset):
            raise NotFound(
                f"no model or dataset {parsed.name!r} in project {where!r}",
                details={"project": where, "ref": text},
            )
        return self._key(NodeKind.MODEL if is_model else NodeKind.DATASET, text, project)

    def _key(self, kind: NodeKind, text: str, project: str) -> NodeKey:
        if kind is NodeKind.RUN:
            run_id = parse_ref(f"runs/{text}").name
            with self.db.read() as conn:
                key = RunRepository(conn).keys([run_id]).get(run_id)
            if key is None:
                raise NotFound(f"run {run_id} does not exist", details={"run_id": run_id})
            return kind, key.pk
        if kind is NodeKind.ENDPOINT:
            return kind, self._endpoint_pk(text, project)
        if kind is NodeKind.MODEL:
            model = self.registry.resolve(text, project)
            with self.db.read() as conn:
                where = locate(conn, model.project, model.name)
                pk = ModelRepository(conn).version_pk(where.model_id, model.version)
        else:
            dataset = self.data.resolve(text, project)
            with self.db.read() as conn:
                pk = _dataset_pk(conn, dataset.project, dataset.name, dataset.version)
        assert pk is not None  # just resolved; versions are never deleted
        return kind, pk

    def _endpoint_pk(self, text: str, project: str) -> int:
        where, _, name = text.rpartition("/")
        where = check_project_name(where) if where else project
        with self.db.read() as conn:
            project_row = ProjectRepository(conn).find(where)
            pk = find_named(conn, _E, project_row.id, name) if project_row else None
        if pk is None:
            raise NotFound(
                f"no endpoint {name!r} in project {where!r}",
                details={"project": where, "endpoint": name},
            )
        return pk


def _dataset_pk(conn: Connection, project: str, name: str, version: int) -> int | None:
    project_row = ProjectRepository(conn).get(project)
    repo = DatasetRepository(conn)
    dataset_id = repo.find_id(project_row.id, name)
    return repo.version_pk(dataset_id, version) if dataset_id is not None else None


def _walk(
    repo: LineageRepository,
    root: NodeKey,
    forward: bool,
    depth: int | None,
    reached: dict[NodeKey, None],
    links: dict[Link, None],
) -> None:
    """Breadth first from ``root``, adding what it meets to ``reached`` and ``links``."""
    seen = {root}
    frontier = [root]
    hops = 0
    while frontier and (depth is None or hops < depth):
        following: list[NodeKey] = []
        for link in repo.links(frontier, forward):
            links.setdefault(link)
            far = link.target if forward else link.source
            if far not in seen:
                seen.add(far)
                reached.setdefault(far)
                following.append(far)
        frontier = following
        hops += 1
