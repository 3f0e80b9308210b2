"""The model registry: versions with semantic versions, approvals, model cards.

registry = RegistryService(db, BlobService(db))
v = registry.register_version("default", "iris", files, run_id=rid, flavor="sklearn", ...)
registry.resolve("iris@production")           # also iris:3, iris@1.2.0, iris (latest)
registry.approve("iris:3", "validated on holdout", actor="lee")

A version's semver comes from the rule in ``domain/semver.py`` against the latest
version: the signature, the flavor/algorithm and the source run's training datasets
are compared. Its files are blobs sent first (identical bytes are stored once). Every
change writes an audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from cairn.domain.artifact_paths import normalize_artifact_path
from cairn.domain.datasets import check_optional_text, check_role, manifest_digest
from cairn.domain.errors import Conflict, Invalid, NotFound
from cairn.domain.models import (
    KNOWN_FLAVORS,
    MAX_DESCRIPTION_LENGTH,
    Approval,
    ModelFile,
    ModelVersion,
    RegisteredModel,
)
from cairn.domain.records import Run
from cairn.domain.refs import RefKind, parse_ref
from cairn.domain.semver import ModelTraits, next_semver, semver_key
from cairn.domain.validation import DEFAULT_PROJECT, check_name, check_project_name
from cairn.services.blobs import BlobService
from cairn.store.database import Database
from cairn.store.repositories.datasets import DatasetRepository
from cairn.store.repositories.events import EventRepository, NewEvent, project_created_event
from cairn.store.repositories.models import ModelRepository
from cairn.store.repositories.projects import ProjectRepository
from cairn.store.repositories.runs import RunRepository

MAX_TAGS = 100


@dataclass(frozen=True, slots=True)
class Located:
    project: str
    project_id: int
    name: str
    model_id: int


def model_not_found(project: str, name: str, what: str | None = None) -> NotFound:
    return NotFound(
        f"model {what or name!r} does not exist in project {project!r}",
        details={"project": project, "model": name},
    )


def locate(conn: Connection, project: str, name: str) -> Located:
    project_row = ProjectRepository(conn).find(project)
    model_id = ModelRepository(conn).find_id(project_row.id, name) if project_row else None
    if project_row is None or model_id is None:
        raise model_not_found(project, name)
    return Located(project, project_row.id, name, model_id)


def find_version(conn: Connection, ref: str, project: str | None = None) -> tuple[Located, int]:
    """The model and the number of the version ``ref`` names (``iris``, ``iris:3``,
    ``iris@production``, ``iris@1.2.0``, ``p/iris:3``), read on ``conn``; NotFound if
    there is no such version."""
    parsed = parse_ref(ref)
    if parsed.kind is RefKind.RUN:
        raise Invalid(f"{ref!r} names a run, not a model version", field="ref")
    where = locate(conn, parsed.project or project or DEFAULT_PROJECT, parsed.name)
    repo = ModelRepository(conn)
    version: int | None
    if parsed.kind is RefKind.VERSION:
        version = parsed.version
        if version is not None and repo.version_pk(where.model_id, version) is None:
            version = None
    elif parsed.kind is RefKind.SEMVER:
        assert parsed.semver is not None
        version = repo.version_by_semver(where.model_id, parsed.semver)
    elif parsed.kind is RefKind.ALIAS:
        assert parsed.alias is not None
        version = repo.aliases(where.model_id).get(parsed.alias)
        if version is None:
            raise NotFound(
                f"model {parsed.name!r} has no alias {parsed.alias!r}",
                details={"model": parsed.name, "alias": parsed.alias},
            )
    else:
        version = repo.latest_version(where.model_id)
    if version is None:
        raise model_not_found(where.project, parsed.name, ref)
    return where, version


def _check_files(files: list[ModelFile]) -> list[ModelFile]:
    if not files:
        raise Invalid("a model version needs at least one file", field="files")
    seen: dict[str, ModelFile] = {}
    for index, item in enumerate(files):
        path = normalize_artifact_path(item.path, f"files[{index}].path")
        if path in seen:
            raise Invalid(
                f"files[{index}].path {path!r} is listed twice", field=f"files[{index}].path"
            )
        seen[path] = ModelFile(path, item.digest, item.size)
    return [seen[p] for p in sorted(seen)]


def _check_tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
        raise Invalid(f"tags must be a mapping of at most {MAX_TAGS} entries", field="tags")
    clean = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > 250:
            raise Invalid("tag keys are non-empty strings of at most 250 characters", field="tags")
        clean[key] = check_optional_text(str(value), f"tags.{key}", 5000) or ""
    return clean


class RegistryService:
    def __init__(
        self, db: Database, blobs: BlobService, runs: Callable[[str], Run] | None = None
    ) -> None:
        self.db = db
        self.blobs = blobs
        self._runs = runs  # loads a run for model cards (TrackingService.get_run)

    # -- registering ---------------------------------------------------------------------

    def register_version(
        self,
        project: str,
        name: str,
        files: list[ModelFile],
        *,
        flavor: str,
        run_id: str | None = None,
        algorithm: str | None = None,
        signature: dict[str, Any] | None = None,
        requirements: dict[str, str] | None = None,
        bump: str | None = None,
        semver: str | None = None,
        description: str | None = None,
        tags: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """A new version of ``name`` from files already in the blob store."""
        check_project_name(project)
        check_name(name, "model")
        if flavor not in KNOWN_FLAVORS:
            raise Invalid(
                f"flavor {flavor!r} is not one Cairn can load: use {', '.join(KNOWN_FLAVORS)}",
                field="flavor",
            )
        algorithm = check_optional_text(algorithm, "algorithm", 250)
        description = check_optional_text(description, "description", MAX_DESCRIPTION_LENGTH)
        if signature is not None and not isinstance(signature, dict):
            raise Invalid("signature must be an object of inputs and outputs", field="signature")
        clean_tags = _check_tags(tags)
        files = _check_files(files)
        self.blobs.check_stored((f.path, f.digest, f.size) for f in files)
        digest = manifest_digest([_as_dataset_file(f) for f in files], "files", None)
        with self.db.write() as tx:
            project_row, project_created = ProjectRepository(tx.conn).ensure(project)
            run_pk, training = self._training_data(tx.conn, run_id)
            repo = ModelRepository(tx.conn)
            model_id, model_created = repo.ensure(project_row.id, name)
            repo.lock(model_id)
            latest = repo.latest_version(model_id)
            previous = None
            if latest is not None:
                prior = repo.get_version(model_id, latest, project, name)
                assert prior is not None
                # The rule compares with the latest version but counts up from the highest
                # semver, so an explicit semver earlier can never make it collide.
                highest = max(repo.semvers(model_id), key=semver_key)
                previous = (highest, _traits(prior))
            traits = ModelTraits(flavor, algorithm, signature, tuple(training))
            chosen, reason = next_semver(previous, traits, bump=bump, semver=semver)
            if repo.version_by_semver(model_id, chosen) is not None:
                raise Conflict(
                    f"model {name!r} already has a version {chosen}",
                    details={"model": name, "semver": chosen},
                )
            version = (latest or 0) + 1
            repo.add_version(
                model_id,
                {
                    "version": version,
                    "semver": chosen,
                    "bump_reason": reason,
                    "run_pk": run_pk,
                    "flavor": flavor,
                    "algorithm": algorithm,
                    "signature": signature,
                    "requirements": requirements or {},
                    "training_data": training,
                    "digest": digest,
                    "size": sum(f.size for f in files),
                    "description": description or "",
                    "tags": clean_tags,
                    "approval": Approval.PENDING.value,
                    "author": actor,
                },
                files,
            )
            events = []
            if project_created:
                events.append(project_created_event(project, project_row.id))
            if model_created:
                events.append(
                    NewEvent("model.created", "model", f"{project}/{name}", project_row.id)
                )
            events.append(
                NewEvent(
                    "model.version_created",
                    "model_version",
                    f"{project}/{name}:{version}",
                    project_row.id,
                    after={
                        "version": version,
                        "semver": chosen,
                        "reason": reason,
                        "run_id": run_id,
                        "flavor": flavor,
                        "digest": digest,
                        "training_data": training,
                    },
                )
            )
            EventRepository(tx.conn).add_many(actor, events)
            made = repo.get_version(model_id, version, project, name)
        assert made is not None
        return made

    def _training_data(self, conn: Connection, run_id: str | None) -> tuple[int | None, list[str]]:
        """The source run's pk and the dataset versions it trained on (role ``train``)."""
        if run_id is None:
            return None, []
        key = RunRepository(conn).keys([run_id]).get(run_id)
        if key is None:
            raise NotFound(f"run {run_id} does not exist", details={"run_id": run_id})
        inputs = DatasetRepository(conn).inputs_of_run(key.pk, run_id)
        training = sorted(
            {f"{i.project}/{i.name}:{i.version}" for i in inputs if i.role == "train"}
        )
        return key.pk, training

    # -- reading -------------------------------------------------------------------------

    def resolve(self, ref: str, project: str | None = None) -> ModelVersion:
        """``iris`` (latest), ``iris:3``, ``iris@production``, ``iris@1.2.0``, ``p/iris:3``."""
        with self.db.read() as conn:
            where, version = find_version(conn, ref, project)
            found = ModelRepository(conn).get_version(
                where.model_id, version, where.project, where.name
            )
        if found is None:
            raise model_not_found(where.project, where.name, ref)
        return found

    def files(self, ref: str, project: str | None = None) -> tuple[ModelVersion, list[ModelFile]]:
        version = self.resolve(ref, project)
        with self.db.read() as conn:
            where = locate(conn, version.project, version.name)
            repo = ModelRepository(conn)
            pk = repo.version_pk(where.model_id, version.version)
            assert pk is not None
            return version, repo.files(pk)

    def get_model(self, name: str, project: str = DEFAULT_PROJECT) -> RegisteredModel:
        with self.db.read() as conn:
            where = locate(conn, project, name)
            return ModelRepository(conn).get_model(where.model_id, project)

    def list_models(self, project: str = DEFAULT_PROJECT) -> list[RegisteredModel]:
        with self.db.read() as conn:
            project_row = ProjectRepository(conn).get(project)
            return ModelRepository(conn).list_models(project_row.id, project)

    def list_versions(self, name: str, project: str = DEFAULT_PROJECT) -> list[ModelVersion]:
        with self.db.read() as conn:
            where = locate(conn, project, name)
            return ModelRepository(conn).list_versions(where.model_id, project, name)

    # -- approvals -----------------------------------------------------------------------

    def approve(
        self,
        ref: str,
        comment: str | None = None,
        *,
        project: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Approve a version (with a comment); recorded with the approver and time."""
        return self._decide(ref, Approval.APPROVED, comment, project, actor)

    def reject(
        self,
        ref: str,
        comment: str | None = None,
        *,
        project: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        return self._decide(ref, Approval.REJECTED, comment, project, actor)

    def _decide(
        self,
        ref: str,
        decision: Approval,
        comment: str | None,
        project: str | None,
        actor: str | None,
    ) -> ModelVersion:
        comment = check_optional_text(comment, "comment", 10_000)
        version = self.resolve(ref, project)
        with self.db.write() as tx:
            where = locate(tx.conn, version.project, version.name)
            repo = ModelRepository(tx.conn)
            repo.lock(where.model_id)
            if decision is Approval.REJECTED:
                guarded = [
                    a
                    for a, v in repo.aliases(where.model_id).items()
                    if v == version.version and a in repo.protected(where.model_id)
                ]
                if guarded:
                    raise Conflict(
                        f"{version} is the target of the protected alias "
                        f"{', '.join(guarded)}: move the alias before rejecting it",
                        details={"aliases": guarded, "version": version.version},
                    )
            pk = repo.version_pk(where.model_id, version.version)
            assert pk is not None
            repo.set_approval(pk, decision, comment, actor)
            EventRepository(tx.conn).add_many(
                actor,
                [
                    NewEvent(
                        f"model.version_{decision.value}",
                        "model_version",
                        f"{version.project}/{version.name}:{version.version}",
                        where.project_id,
                        before={"approval": version.approval.value},
                        after={"approval": decision.value, "comment": comment},
                    )
                ],
            )
            updated = repo.get_version(
                where.model_id, version.version, version.project, version.name
            )
        assert updated is not None
        return updated

    # -- runs using versions -------------------------------------------------------------

    def use_model(
        self, run_id: str, ref: str, role: str = "evaluate", *, actor: str | None = None
    ) -> ModelVersion:
        """Record that a run used a model version (evaluation, a pipeline's next step)."""
        check_role(role)
        with self.db.read() as conn:
            key = RunRepository(conn).keys([run_id]).get(run_id)
            project = ProjectRepository(conn).name_of(key.project_id) if key else None
        if key is None or project is None:
            raise NotFound(f"run {run_id} does not exist", details={"run_id": run_id})
        version = self.resolve(ref, project)
        with self.db.write() as tx:
            where = locate(tx.conn, version.project, version.name)
            repo = ModelRepository(tx.conn)
            pk = repo.version_pk(where.model_id, version.version)
            assert pk is not None
            if repo.add_input(key.pk, pk, role):
                EventRepository(tx.conn).add_many(
                    actor,
                    [
                        NewEvent(
                            "run.model_input_added",
                            "run",
                            run_id,
                            key.project_id,
                            after={"model": version.ref, "role": role},
                        )
                    ],
                )
        return version

    # -- cards and comparisons -----------------------------------------------------------

    def model_card(self, ref: str, project: str | None = None) -> dict[str, Any]:
        """Everything a reviewer needs about a version, as plain data: source run, params,
        metrics, training datasets (versions, batches), git, environment, signature."""
        version, files = self.files(ref, project)
        run = None
        if version.run_id is not None and self._runs is not None:
            try:
                run = self._runs(version.run_id)
            except NotFound:
                run = None
        card: dict[str, Any] = {
            "model": version.name,
            "project": version.project,
            "version": version.version,
            "semver": version.semver,
            "bump_reason": version.bump_reason,
            "flavor": version.flavor,
            "algorithm": version.algorithm,
            "signature": version.signature,
            "requirements": version.requirements,
            "description": version.description,
            "tags": version.tags,
            "aliases": version.aliases,
            "approval": {
                "state": version.approval.value,
                "comment": version.approval_comment,
                "by": version.approval_actor,
                "at": version.approval_at.isoformat() if version.approval_at else None,
            },
            "author": version.author,
            "created_at": version.created_at.isoformat(),
            "files": [{"path": f.path, "digest": f.digest, "size": f.size} for f in files],
            "run": None,
            "training_data": [],
        }
        if run is not None:
            card["run"] = {
                "id": run.id,
                "name": run.name,
                "status": run.status.value,
                "params": run.params,
                "metrics": {k: m.last for k, m in run.metrics.items()},
                "git": run.git,
                "environment": run.environment,
                "command": run.command,
            }
            with self.db.read() as conn:
                key = RunRepository(conn).keys([run.id]).get(run.id)
                inputs = DatasetRepository(conn).inputs_of_run(key.pk, run.id) if key else []
            card["training_data"] = [
                {
                    "dataset": f"{i.project}/{i.name}:{i.version}",
                    "role": i.role,
                    "batch": i.batch,
                    "digest": i.digest,
                }
                for i in inputs
            ]
        return card

    def compare(self, a: str, b: str, project: str | None = None) -> dict[str, Any]:
        """``cairn models compare iris:2 iris:3``: the two cards side by side."""
        return compare_cards(self.model_card(a, project), self.model_card(b, project))


def compare_cards(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two model cards side by side: params, metrics, training data and signature."""

    def side_by_side(key: str) -> dict[str, dict[str, Any]]:
        left = (a.get("run") or {}).get(key) or {}
        right = (b.get("run") or {}).get(key) or {}
        return {
            k: {"a": left.get(k), "b": right.get(k), "differs": left.get(k) != right.get(k)}
            for k in sorted(set(left) | set(right))
        }

    return {
        "a": f"{a['project']}/{a['model']}:{a['version']}",
        "b": f"{b['project']}/{b['model']}:{b['version']}",
        "semver": {"a": a["semver"], "b": b["semver"]},
        "flavor": {"a": a["flavor"], "b": b["flavor"]},
        "algorithm": {"a": a["algorithm"], "b": b["algorithm"]},
        "params": side_by_side("params"),
        "metrics": side_by_side("metrics"),
        "training_data": {
            "a": [d["dataset"] for d in a["training_data"] if d["role"] == "train"],
            "b": [d["dataset"] for d in b["training_data"] if d["role"] == "train"],
        },
        "signature": {
            "a": a["signature"],
            "b": b["signature"],
            "differs": a["signature"] != b["signature"],
        },
    }


def _traits(version: ModelVersion) -> ModelTraits:
    return ModelTraits(
        version.flavor, version.algorithm, version.signature, tuple(version.training_data)
    )


def _as_dataset_file(item: ModelFile) -> Any:
    from cairn.domain.datasets import DatasetFile

    return DatasetFile(item.path, item.digest, item.size)
