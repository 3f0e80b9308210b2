"""The SDK's datasets and file transfers: what ``cairn.Client`` does with bytes.

    version = cairn.log_dataset("wine", df, batch="2026-11")     # -> DatasetVersion wine:1
    cairn.diff_datasets("wine:1", "wine:2").columns               # PSI and KS per column
    cairn.get_dataset("wine:2", "data/wine")                      # files, verified
    run.use_dataset("wine:2", role="train")

Files are hashed on this machine first; only bytes the store lacks are sent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.client.artifacts import media_type_for, write_atomically
from cairn.client.datasets import prepared
from cairn.client.transfer import Progress, folder_files, hash_file, local_file
from cairn.domain.datasets import (
    Dataset,
    DatasetDiff,
    DatasetFile,
    DatasetInput,
    DatasetKind,
    DatasetVersion,
)
from cairn.domain.errors import Invalid
from cairn.domain.records import ArtifactEntry

if TYPE_CHECKING:
    from cairn.client.backend import Backend

READ_WAIT_S = 30.0
DEFAULT_MEDIA_TYPE = "application/octet-stream"


class DataApi:
    """Mixed into ``Client``: needs ``backend``, ``_project``, ``flush`` and ``_settle``."""

    backend: Backend

    def _project(self, project: str | None) -> str:
        raise NotImplementedError

    def flush(self, timeout: float | None = None) -> None:
        raise NotImplementedError

    def _settle(self) -> None:
        raise NotImplementedError

    # -- run artifacts from files -------------------------------------------------------

    def log_artifact_file(
        self,
        run_id: str,
        path: str | os.PathLike[str],
        name: str,
        media_type: str | None = None,
        progress: Progress | None = None,
    ) -> ArtifactEntry:
        """Store a file as the run's artifact ``name``; bytes already stored are not sent."""
        item = local_file(path, name)
        self.flush(READ_WAIT_S)  # the run must exist before its files are recorded
        self.backend.upload_blobs([item], progress)
        media = media_type or media_type_for(item.name, DEFAULT_MEDIA_TYPE)
        return self.backend.record_artifacts(run_id, [(item.name, item.digest, media)])[0]

    def log_artifact_folder(
        self,
        run_id: str,
        folder: str | os.PathLike[str],
        prefix: str | None = None,
        progress: Progress | None = None,
    ) -> list[ArtifactEntry]:
        """Store every file under ``folder`` (relative paths under ``prefix``), recorded in
        one transaction once all bytes are stored."""
        files = folder_files(folder, prefix)
        if not files:
            return []
        self.flush(READ_WAIT_S)
        self.backend.upload_blobs(files, progress)
        items: list[tuple[str, str, str | None]] = [
            (f.name, f.digest, media_type_for(f.name, DEFAULT_MEDIA_TYPE)) for f in files
        ]
        return self.backend.record_artifacts(run_id, items)

    # -- datasets -----------------------------------------------------------------------

    def log_dataset(
        self,
        name: str,
        source: Any,
        batch: str | None = None,
        message: str | None = None,
        project: str | None = None,
        progress: Progress | None = None,
        run_id: str | None = None,
    ) -> DatasetVersion:
        """Version ``source`` (file, folder, DataFrame, numpy array, or a URI kept by
        reference) as dataset ``name``. Unchanged content returns its existing version.
        ``run_id`` records the run that produced the data (a new version only: an
        existing one keeps its first producer).

        Example: ``cairn.log_dataset("wine", df, batch="2026-11").version``.
        """
        if run_id is not None:
            self.flush(READ_WAIT_S)  # the producing run must be stored first
        with prepared(source, progress) as found:
            if found.kind is DatasetKind.FILES:
                self.backend.upload_blobs(found.files)
            version, _created = self.backend.log_dataset_version(
                self._project(project),
                name,
                found.manifest(),
                kind=found.kind,
                source=found.source,
                batch=batch,
                message=message,
                profile=found.profile,
                run_id=run_id,
            )
        return version

    def get_dataset_version(self, ref: str, project: str | None = None) -> DatasetVersion:
        """A version with its profile: ``wine`` (latest), ``wine:2``, ``wine@<batch>``."""
        return self.backend.get_dataset_version(ref, self._project(project))

    def list_datasets(self, project: str | None = None) -> list[Dataset]:
        return self.backend.list_datasets(self._project(project))

    def list_dataset_versions(self, name: str, project: str | None = None) -> list[DatasetVersion]:
        """Every version of a dataset, newest first."""
        return self.backend.list_dataset_versions(name, self._project(project))

    def list_dataset_files(
        self, ref: str, project: str | None = None
    ) -> tuple[DatasetVersion, list[DatasetFile]]:
        return self.backend.list_dataset_files(ref, self._project(project))

    def get_dataset(
        self,
        ref: str,
        dest: str | os.PathLike[str],
        project: str | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Materialise a version's files under ``dest``, each written atomically and checked
        against its digest; files already there with the right bytes are kept as they are.

        Example: ``cairn.get_dataset("wine:2", "data/wine")``.
        """
        version, files = self.list_dataset_files(ref, project)
        if version.kind is DatasetKind.REFERENCE:
            raise Invalid(
                f"{version} is kept by reference to {version.source}: Cairn holds its identity "
                "(sizes, ETags), not its bytes; read it from there",
                field="ref",
            )
        root = Path(dest)
        for item in files:
            assert item.digest is not None
            target = root.joinpath(*item.path.split("/"))
            if _holds(target, item.size, item.digest):
                if progress is not None:
                    progress(item.size)
                continue

            def fill(out: Any, path: str = item.path) -> None:
                self.backend.read_dataset_file(version, path, out)

            write_atomically(
                target,
                fill,
                item.digest,
                progress,
                source=self.backend.local_blob_path(item.digest),
            )
        return root

    def diff_datasets(self, old: str, new: str, project: str | None = None) -> DatasetDiff:
        """Files added, removed and changed; schema changes; per-column PSI and KS.

        Example: ``cairn.diff_datasets("wine:1", "wine:2").unchanged``.
        """
        return self.backend.diff_datasets(old, new, self._project(project))

    def use_dataset(
        self, run_id: str, ref: str | DatasetVersion, role: str = "train"
    ) -> DatasetInput:
        """Record that a run used a dataset version (a ``DatasetVersion`` or a reference)."""
        text = ref.ref if isinstance(ref, DatasetVersion) else ref
        self.flush(READ_WAIT_S)
        return self.backend.use_dataset(run_id, text, role)

    def run_inputs(self, run_id: str) -> list[DatasetInput]:
        self._settle()
        return self.backend.run_inputs(run_id)


def _holds(target: Path, size: int, digest: str) -> bool:
    """Whether a local file already has exactly these bytes."""
    return target.is_file() and target.stat().st_size == size and hash_file(target)[0] == digest
