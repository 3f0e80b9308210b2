"""Datasets: versions that are content-addressed manifests, their profiles, diffs and users.

data = DataService(db, BlobService(db))
version, created = data.log_version("default", "wine", files, batch="2026-11", actor="ana")
data.use_dataset(run_id, "wine:2", role="train")
data.diff("wine:1", "wine:2", project="default")

The bytes of a ``files`` version are sent to the blob store first (the SDK asks which
digests are missing and sends only those); a version is then one transaction: the
manifest, its digest, the profile and an audit event. Logging content whose digest a
version already has returns that version: version numbers change only with content.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, BinaryIO

from cairn.domain.artifact_paths import normalize_artifact_path
from cairn.domain.datasets import (
    MAX_BATCH_LENGTH,
    MAX_MESSAGE_LENGTH,
    MAX_SOURCE_LENGTH,
    Dataset,
    DatasetDiff,
    DatasetFile,
    DatasetInput,
    DatasetKind,
    DatasetVersion,
    check_files,
    check_optional_text,
    check_role,
    diff_manifests,
    manifest_digest,
)
from cairn.domain.errors import Invalid, NotFound
from cairn.domain.profiles import check_profile, diff_profiles
from cairn.domain.refs import RefKind, parse_ref
from cairn.domain.validation import DEFAULT_PROJECT, check_name, check_project_name
from cairn.services.blobs import BlobService
from cairn.store.database import Database
from cairn.store.repositories.datasets import DatasetRepository
from cairn.store.repositories.events import EventRepository, NewEvent, project_created_event
from cairn.store.repositories.projects import ProjectRepository
from cairn.store.repositories.runs import RunRepository


def _not_found(project: str, name: str, version: int | None = None) -> NotFound:
    what = f"{name}:{version}" if version is not None else name
    return NotFound(
        f"dataset {what!r} does not exist in project {project!r}",
        details={"project": project, "dataset": name, "version": version},
    )


def _producer_pk(conn: Any, run_id: str | None) -> int | None:
    """The pk of the run that produced a version; ``NotFound`` when it does not exist."""
    if run_id is None:
        return None
    key = RunRepository(conn).keys([run_id]).get(run_id)
    if key is None:
        raise NotFound(f"run {run_id} does not exist", details={"run_id": run_id})
    return key.pk


class DataService:
    def __init__(self, db: Database, blobs: BlobService) -> None:
        self.db = db
        self.blobs = blobs

    # -- versions -----------------------------------------------------------------------

    def log_version(
        self,
        project: str,
        name: str,
        files: list[DatasetFile],
        *,
        kind: DatasetKind | str = DatasetKind.FILES,
        source: str | None = None,
        batch: str | None = None,
        message: str | None = None,
        profile: Any = None,
        actor: str | None = None,
        run_id: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """The version holding exactly ``files``; True when this call made it.

        ``run_id`` names the run that produced the data (a pipeline's preprocessing step).
        Content that is already a version keeps the producer it has: the first wins.
        """
        check_project_name(project)
        check_name(name, "dataset")
        try:
            kind = DatasetKind(kind)
        except ValueError:
            raise Invalid(
                f"kind must be 'files' or 'reference', not {kind!r}", field="kind"
            ) from None
        source = check_optional_text(source, "source", MAX_SOURCE_LENGTH)
        batch = check_optional_text(batch, "batch", MAX_BATCH_LENGTH)
        message = check_optional_text(message, "message", MAX_MESSAGE_LENGTH)
        if kind is DatasetKind.REFERENCE and not source:
            raise Invalid("a reference dataset needs its source URI", field="source")
        profile = check_profile(profile) if profile is not None else None
        files = check_files(files, kind)
        if kind is DatasetKind.FILES:
            self.blobs.check_stored((f.path, f.digest or "", f.size) for f in files)
        digest = manifest_digest(files, kind, source)
        with self.db.write() as tx:
            producer = _producer_pk(tx.conn, run_id)
            project_row, project_created = ProjectRepository(tx.conn).ensure(project)
            repo = DatasetRepository(tx.conn)
            dataset_id, dataset_created = repo.ensure(project_row.id, name)
            repo.lock(dataset_id)
            existing = repo.by_digest(dataset_id, digest)
            if existing is not None:
                found = repo.get_version(dataset_id, existing, project, name)
                assert found is not None
                return found, False
            parent = repo.latest_version(dataset_id)
            version = (parent or 0) + 1
            repo.add_version(
                dataset_id,
                version,
                digest=digest,
                kind=kind,
                files=files,
                batch=batch,
                message=message,
                author=actor,
                parent_version=parent,
                source=source,
                profile=profile,
                run_pk=producer,
            )
            events = []
            if project_created:
                events.append(project_created_event(project, project_row.id))
            if dataset_created:
                events.append(
                    NewEvent("dataset.created", "dataset", f"{project}/{name}", project_row.id)
                )
            after = {
                "version": version,
                "digest": digest,
                "kind": kind.value,
                "files": len(files),
                "size": sum(f.size for f in files),
                "batch": batch,
                "parent_version": parent,
            }
            if run_id is not None:
                after["run_id"] = run_id
            events.append(
                NewEvent(
                    "dataset.version_created",
                    "dataset_version",
                    f"{project}/{name}:{version}",
                    project_row.id,
                    after=after,
                )
            )
            EventRepository(tx.conn).add_many(actor, events)
            made = repo.get_version(dataset_id, version, project, name)
        assert made is not None
        return made, True

    def resolve(self, ref: str, project: str | None = None) -> DatasetVersion:
        """``wine`` (latest), ``wine:2``, ``wine@<batch label>`` (newest with it), ``p/wine:2``."""
        parsed = parse_ref(ref)
        if parsed.kind is RefKind.SEMVER:  # datasets have no semvers: 2024.11.01 is a batch
            parsed = replace(parsed, kind=RefKind.ALIAS, alias=parsed.semver, semver=None)
        if parsed.kind is RefKind.RUN:
            raise Invalid(
                f"{ref!r} is not a dataset reference: use name, name:N or name@batch",
                field="ref",
            )
        project = parsed.project or project or DEFAULT_PROJECT
        with self.db.read() as conn:
            project_row = ProjectRepository(conn).find(project)
            repo = DatasetRepository(conn)
            dataset_id = repo.find_id(project_row.id, parsed.name) if project_row else None
            if dataset_id is None:
                raise _not_found(project, parsed.name)
            if parsed.kind is RefKind.VERSION:
                version = parsed.version
            elif parsed.kind is RefKind.ALIAS:
                assert parsed.alias is not None
                version = repo.by_batch(dataset_id, parsed.alias)
                if version is None:
                    raise NotFound(
                        f"dataset {parsed.name!r} has no version labelled batch {parsed.alias!r}",
                        details={"project": project, "dataset": parsed.name, "batch": parsed.alias},
                    )
            else:
                version = repo.latest_version(dataset_id)
            found = (
                repo.get_version(dataset_id, version, project, parsed.name)
                if version is not None
                else None
            )
        if found is None:
            raise _not_found(project, parsed.name, parsed.version)
        return found

    def _version_pk(self, conn: Any, version: DatasetVersion) -> int:
        project_row = ProjectRepository(conn).get(version.project)
        repo = DatasetRepository(conn)
        dataset_id = repo.find_id(project_row.id, version.name)
        pk = repo.version_pk(dataset_id, version.version) if dataset_id is not None else None
        if pk is None:
            raise _not_found(version.project, version.name, version.version)
        return pk

    def list_datasets(self, project: str = DEFAULT_PROJECT) -> list[Dataset]:
        with self.db.read() as conn:
            project_row = ProjectRepository(conn).get(project)
            return DatasetRepository(conn).list_datasets(project_row.id, project)

    def list_versions(self, name: str, project: str = DEFAULT_PROJECT) -> list[DatasetVersion]:
        """Every version of a dataset, newest first (profiles left out)."""
        with self.db.read() as conn:
            project_row = ProjectRepository(conn).find(project)
            repo = DatasetRepository(conn)
            dataset_id = repo.find_id(project_row.id, name) if project_row else None
            if dataset_id is None:
                raise _not_found(project, name)
            return repo.list_versions(dataset_id, project, name)

    def list_files(
        self, ref: str, project: str | None = None, prefix: str | None = None
    ) -> tuple[DatasetVersion, list[DatasetFile]]:
        clean = normalize_artifact_path(prefix, "prefix") if prefix else None
        version = self.resolve(ref, project)
        with self.db.read() as conn:
            files = DatasetRepository(conn).files(self._version_pk(conn, version), clean)
        return version, files

    def stored_file(self, ref: str, path: str, project: str | None = None) -> DatasetFile:
        """A file of a version whose bytes Cairn holds (not one kept by reference)."""
        clean = normalize_artifact_path(path)
        version, files = self.list_files(ref, project, clean)
        match = next((f for f in files if f.path == clean), None)
        if match is None:
            raise NotFound(
                f"dataset version {version} has no file {clean!r}",
                details={"ref": str(version), "path": clean},
            )
        if match.digest is None:
            raise Invalid(
                f"{version} keeps {clean!r} by reference ({version.source}); "
                "its bytes were not copied into Cairn",
                field="path",
            )
        return match

    def open_file(
        self, ref: str, path: str, project: str | None = None
    ) -> tuple[DatasetFile, BinaryIO]:
        """A stored file of a version and a reader verified against its digest at EOF."""
        match = self.stored_file(ref, path, project)
        assert match.digest is not None
        return match, self.blobs.store.open(match.digest)

    def diff(self, old_ref: str, new_ref: str, project: str | None = None) -> DatasetDiff:
        old, old_files = self.list_files(old_ref, project)
        new, new_files = self.list_files(new_ref, project)
        added, removed, changed = diff_manifests(old_files, new_files)
        return DatasetDiff(
            old.ref,
            new.ref,
            added,
            removed,
            changed,
            diff_profiles(old.profile, new.profile),
        )

    # -- inputs -------------------------------------------------------------------------

    def use_dataset(
        self,
        run_id: str,
        ref: str,
        role: str = "train",
        *,
        actor: str | None = None,
    ) -> DatasetInput:
        """Record that the run used a dataset version (a bare name means its project's)."""
        check_role(role)
        with self.db.read() as conn:
            key = RunRepository(conn).keys([run_id]).get(run_id)
            project = ProjectRepository(conn).name_of(key.project_id) if key is not None else None
        if key is None or project is None:
            raise NotFound(f"run {run_id} does not exist", details={"run_id": run_id})
        version = self.resolve(ref, project)
        with self.db.write() as tx:
            pk = self._version_pk(tx.conn, version)
            repo = DatasetRepository(tx.conn)
            if repo.add_input(key.pk, pk, role):
                EventRepository(tx.conn).add_many(
                    actor,
                    [
                        NewEvent(
                            "run.input_added",
                            "run",
                            run_id,
                            key.project_id,
                            after={"dataset": version.ref, "digest": version.digest, "role": role},
                        )
                    ],
                )
            inputs = repo.inputs_of_run(key.pk, run_id)
        return next(
            i
            for i in inputs
            if (i.project, i.name, i.version, i.role)
            == (version.project, version.name, version.version, role)
        )

    def run_inputs(self, run_id: str) -> list[DatasetInput]:
        with self.db.read() as conn:
            key = RunRepository(conn).keys([run_id]).get(run_id)
            if key is None:
                raise NotFound(f"run {run_id} does not exist", details={"run_id": run_id})
            return DatasetRepository(conn).inputs_of_run(key.pk, run_id)

    def runs_using(self, ref: str, project: str | None = None) -> list[tuple[str, str]]:
        """(run id, role) of every run that used the version: "what did wine:3 feed?"."""
        version = self.resolve(ref, project)
        with self.db.read() as conn:
            return DatasetRepository(conn).runs_using(self._version_pk(conn, version))
