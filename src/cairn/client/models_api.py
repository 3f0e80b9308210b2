"""The SDK's model registry: what ``cairn.Client`` does with models.

    version = run.register_model("iris", clf, input_example=X[:5])   # iris:1, semver 1.0.0
    cairn.approve("iris:1", "validated on the holdout set")
    cairn.set_alias("iris", "production", 1, reason="first release")
    model = cairn.load_model("iris@production")                      # .predict(), .model
    cairn.resolve_alias("iris", "production", at=datetime(2026, 3, 3, tzinfo=UTC))

Model files live in the blob store like any artifact (identical bytes are stored once);
``load_model`` keeps a verified copy per version digest in the local cache.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.client import hash_cache
from cairn.client.artifacts import write_atomically
from cairn.client.transfer import folder_files
from cairn.domain.models import AliasMove, ModelFile, ModelVersion, RegisteredModel

if TYPE_CHECKING:
    from cairn.client.backend import Backend
    from cairn.flavors import LoadedModel

READ_WAIT_S = 30.0
_COMPLETE = ".complete"


class ModelsApi:
    """Mixed into ``Client``: needs ``backend``, ``_project`` and ``flush``."""

    backend: Backend

    def _project(self, project: str | None) -> str:
        raise NotImplementedError

    def flush(self, timeout: float | None = None) -> None:
        raise NotImplementedError

    def register_model(
        self,
        name: str,
        model: Any,
        *,
        run_id: str | None = None,
        flavor: str | None = None,
        input_example: Any = None,
        bump: str | None = None,
        semver: str | None = None,
        description: str | None = None,
        tags: dict[str, Any] | None = None,
        project: str | None = None,
    ) -> ModelVersion:
        """Save ``model`` with its flavor (detected when not given), send its files, and
        register a new version whose semver follows the rule (or ``bump``/``semver``).

        Example: ``client.register_model("iris", clf, run_id=run.id, input_example=X[:5])``.
        """
        from cairn.flavors import save_model

        if run_id is not None:
            self.flush(READ_WAIT_S)  # the run and its inputs must be stored first
        scratch = Path(tempfile.mkdtemp(prefix="cairn-model-"))
        try:
            info = save_model(model, scratch / "model", flavor=flavor, input_example=input_example)
            files = folder_files(scratch / "model")
            self.backend.upload_blobs(files)
            meta = {
                "flavor": info.flavor,
                "run_id": run_id,
                "algorithm": info.algorithm,
                "signature": info.signature,
                "requirements": info.requirements,
                "bump": bump,
                "semver": semver,
                "description": description,
                "tags": {k: str(v) for k, v in (tags or {}).items()},
            }
            manifest = [ModelFile(f.name, f.digest, f.size) for f in files]
            return self.backend.register_model_version(self._project(project), name, manifest, meta)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def load_model(self, ref: str, project: str | None = None) -> LoadedModel:
        """A registered version, ready to predict: ``iris@production``, ``iris:3``,
        ``iris@1.2.0`` or ``iris`` (latest). ``.model`` is the underlying object,
        ``.version`` the registry's record."""
        from cairn.flavors import load_model_dir

        version, files = self.backend.model_files(ref, self._project(project))
        folder = _fetch(self.backend, version, files)
        loaded = load_model_dir(folder)
        loaded.version = version
        return loaded

    def get_model_version(self, ref: str, project: str | None = None) -> ModelVersion:
        return self.backend.get_model_version(ref, self._project(project))

    def get_model(self, name: str, project: str | None = None) -> RegisteredModel:
        return self.backend.get_model(name, self._project(project))

    def list_models(self, project: str | None = None) -> list[RegisteredModel]:
        return self.backend.list_models(self._project(project))

    def list_model_versions(self, name: str, project: str | None = None) -> list[ModelVersion]:
        """Every version of a model, newest first."""
        return self.backend.list_model_versions(name, self._project(project))

    def approve(
        self, ref: str, comment: str | None = None, project: str | None = None
    ) -> ModelVersion:
        """Approve a version: ``cairn.approve("iris:3", "validated on holdout")``."""
        return self.backend.decide_model_version(ref, self._project(project), True, comment)

    def reject(
        self, ref: str, comment: str | None = None, project: str | None = None
    ) -> ModelVersion:
        return self.backend.decide_model_version(ref, self._project(project), False, comment)

    def set_alias(
        self,
        model: str,
        alias: str,
        version: int | str,
        reason: str | None = None,
        project: str | None = None,
    ) -> ModelVersion:
        """Point an alias at a version: ``cairn.set_alias("iris", "production", 3)``."""
        return self.backend.set_alias(model, alias, version, self._project(project), reason)

    def delete_alias(
        self, model: str, alias: str, reason: str | None = None, project: str | None = None
    ) -> None:
        self.backend.delete_alias(model, alias, self._project(project), reason)

    def alias_history(
        self, model: str, alias: str | None = None, project: str | None = None
    ) -> list[AliasMove]:
        """Every move of an alias (from, to, actor, time, reason), oldest first."""
        return self.backend.alias_history(model, alias, self._project(project))

    def resolve_alias(
        self,
        model: str,
        alias: str,
        at: datetime | None = None,
        project: str | None = None,
    ) -> ModelVersion | None:
        """The version an alias points to now, or pointed to at ``at`` (None: unset then)."""
        return self.backend.resolve_alias(model, alias, at, self._project(project))

    def rollback(
        self, model: str, alias: str, reason: str | None = None, project: str | None = None
    ) -> ModelVersion:
        """Move an alias back to its previous target, recorded like any move."""
        return self.backend.rollback_alias(model, alias, self._project(project), reason)

    def protect_alias(
        self, model: str, alias: str, protect: bool = True, project: str | None = None
    ) -> RegisteredModel:
        """From now on ``alias`` may point only to approved versions."""
        return self.backend.protect_alias(model, alias, protect, self._project(project))

    def model_card(self, ref: str, project: str | None = None) -> dict[str, Any]:
        return self.backend.model_card(ref, self._project(project))

    def compare_models(self, a: str, b: str, project: str | None = None) -> dict[str, Any]:
        return self.backend.compare_models(a, b, self._project(project))

    def use_model(self, run_id: str, ref: str, role: str = "evaluate") -> ModelVersion:
        self.flush(READ_WAIT_S)
        return self.backend.use_model(run_id, ref, role)


def _fetch(backend: Backend, version: ModelVersion, files: list[ModelFile]) -> Path:
    """The version's files in the local cache, downloaded and verified once per digest."""
    folder = hash_cache.cache_dir() / "models" / version.digest
    if (folder / _COMPLETE).is_file():
        return folder
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=_ensure(folder.parent)))
    try:
        for item in files:

            def fill(out: Any, path: str = item.path) -> None:
                backend.read_model_file(version, path, out)

            write_atomically(
                staging.joinpath(*item.path.split("/")),
                fill,
                item.digest,
                source=backend.local_blob_path(item.digest),
            )
        (staging / _COMPLETE).write_text(version.digest)
        if folder.exists() and not (folder / _COMPLETE).is_file():
            shutil.rmtree(folder, ignore_errors=True)  # left half-made by a killed process
        with contextlib.suppress(OSError):  # another process may have finished first
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it was moved
    return folder


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
