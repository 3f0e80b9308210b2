"""A Cairn server over HTTP. Loads neither the store nor the services.

Errors come back as the same classes the services raise (the server's envelope is
turned back into ``NotFound``, ``Invalid`` …); an unreachable server or a 5xx is
``Unavailable``, which the batcher retries.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from cairn._version import __version__
from cairn.client.identity import login_name
from cairn.client.transfer import LocalFile, Progress, counting_reader
from cairn.domain.artifact_paths import normalize_artifact_path
from cairn.domain.audit import EventPage
from cairn.domain.datasets import (
    Dataset,
    DatasetDiff,
    DatasetFile,
    DatasetInput,
    DatasetKind,
    DatasetVersion,
    FileChange,
)
from cairn.domain.errors import (
    CairnError,
    Conflict,
    Invalid,
    NotFound,
    Unavailable,
    error_from_dict,
)
from cairn.domain.experiments import ABReport, Promotion
from cairn.domain.lineage import Lineage
from cairn.domain.models import AliasMove, ModelFile, ModelVersion, RegisteredModel
from cairn.domain.monitoring import MonitoringReport
from cairn.domain.production import Endpoint, NewPrediction, Prediction, Variant
from cairn.domain.records import (
    ArtifactEntry,
    Batch,
    BatchResult,
    MetricHistory,
    Project,
    ProjectSummary,
    Run,
    RunPage,
)
from cairn.domain.refs import RefKind, parse_ref
from cairn.schemas.artifacts import ArtifactOut
from cairn.schemas.audit import EventPageOut
from cairn.schemas.datasets import (
    DatasetDiffOut,
    DatasetFilesOut,
    DatasetInputOut,
    DatasetOut,
    DatasetVersionOut,
    DigestsOut,
    PresignOut,
    UploadOut,
)
from cairn.schemas.lineage import LineageOut
from cairn.schemas.models import AliasMoveOut, ModelFilesOut, ModelVersionOut, RegisteredModelOut
from cairn.schemas.monitoring import ABReportOut, MonitoringReportOut, PromotionOut
from cairn.schemas.production import EndpointOut, PredictionOut, StoredOut
from cairn.schemas.runs import (
    BatchOut,
    MetricHistoryOut,
    ProjectOut,
    ProjectSummaryOut,
    RunOut,
    RunPageOut,
)

_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
log = logging.getLogger("cairn")
_CHUNK = 1024 * 1024


_DIGESTS_PER_QUERY = 10_000
_SMALL_FILE = 8 * 1024 * 1024  # larger files go as resumable chunked uploads
_BUNDLE_BYTES = 32 * 1024 * 1024
_BUNDLE_FILES = 2_000
_UPLOAD_CHUNK = 16 * 1024 * 1024
_UPLOAD_RETRIES = 8


def _bundles(files: list[LocalFile]) -> Iterator[list[LocalFile]]:
    bundle: list[LocalFile] = []
    size = 0
    for item in files:
        if bundle and (size + item.size > _BUNDLE_BYTES or len(bundle) >= _BUNDLE_FILES):
            yield bundle
            bundle, size = [], 0
        bundle.append(item)
        size += item.size
    if bundle:
        yield bundle


def _bundle_body(files: list[LocalFile], progress: Progress | None) -> Iterator[bytes]:
    """Frames of ``<digest> <size>\n`` and the bytes, read as they are sent."""
    for item in files:
        yield f"{item.digest} {item.size}\n".encode("ascii")
        with open(item.path, "rb") as stream:
            sent = 0
            while chunk := stream.read(_CHUNK):
                sent += len(chunk)
                yield chunk
        if sent != item.size:
            raise Invalid(f"{item.path} changed while it was being sent", field="path")
        if progress is not None:
            progress(sent)


def _dataset_url(project: str, name: str) -> str:
    return f"/projects/{quote(project, safe='')}/datasets/{quote(name, safe='')}"


def _dataset_ref(ref: str, project: str) -> tuple[str, str, str]:
    """(project, name, version segment: N, 'latest' or '@batch') of a dataset reference."""
    parsed = parse_ref(ref)
    if parsed.kind is RefKind.VERSION:
        segment = str(parsed.version)
    elif parsed.kind is RefKind.ALIAS:
        segment = f"@{parsed.alias}"
    elif parsed.kind is RefKind.NAME:
        segment = "latest"
    else:
        raise Invalid(
            f"{ref!r} is not a dataset reference: use name, name:N or name@batch", field="ref"
        )
    return parsed.project or project, parsed.name, segment


def _model_url(project: str, name: str) -> str:
    return f"/projects/{quote(project, safe='')}/models/{quote(name, safe='')}"


def _model_version_url(ref: str, project: str) -> str:
    """``…/models/{name}/versions/{N | latest | @alias | @1.2.0}`` for a model reference."""
    parsed = parse_ref(ref)
    if parsed.kind is RefKind.VERSION:
        segment = str(parsed.version)
    elif parsed.kind is RefKind.ALIAS:
        segment = f"@{parsed.alias}"
    elif parsed.kind is RefKind.SEMVER:
        segment = f"@{parsed.semver}"
    elif parsed.kind is RefKind.NAME:
        segment = "latest"
    else:
        raise Invalid(f"{ref!r} names a run, not a model version", field="ref")
    return (
        f"{_model_url(parsed.project or project, parsed.name)}/versions/{quote(segment, safe='@')}"
    )


def _artifact_url(run_id: str, path: str) -> str:
    # Normalised here too: httpx would resolve ``..`` in a URL before the server saw it.
    clean = normalize_artifact_path(path)
    return f"/runs/{quote(run_id, safe='')}/artifacts/{quote(clean, safe='/')}"


def encode_batch(batch: Batch) -> bytes:
    """Column-wise JSON. NaN and +-inf travel as JSON tokens Python and pydantic accept."""
    runs = []
    for item in batch.runs:
        entry: dict[str, Any] = {"run_id": item.run_id}
        if item.start is not None:
            start = {f.name: getattr(item.start, f.name) for f in dataclasses.fields(item.start)}
            start["start_time"] = item.start.start_time.isoformat()
            entry["start"] = {k: v for k, v in start.items() if v is not None}
        if item.params:
            entry["params"] = item.params
        if item.tags:
            entry["tags"] = item.tags
        if item.metrics:
            entry["metrics"] = {
                k: {"steps": s.steps, "timestamps": s.timestamps, "values": s.values}
                for k, s in item.metrics.items()
            }
        if item.notes is not None:
            entry["notes"] = item.notes
        if item.end is not None:
            entry["end"] = {
                "status": item.end.status.value,
                "end_time": item.end.end_time.isoformat(),
                "error": item.end.error,
            }
        runs.append(entry)
    return json.dumps({"idempotency_key": batch.idempotency_key, "runs": runs}).encode()


class HttpBackend:
    def __init__(self, uri: str, *, token: str | None = None) -> None:
        self.uri = uri.rstrip("/")
        headers = {"User-Agent": f"cairn-python/{__version__}"}
        actor = login_name()
        if actor:
            headers["X-Cairn-Actor"] = actor  # the audit actor on a server without accounts
        token = token or os.environ.get("CAIRN_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.uri + "/api/v1", headers=headers, timeout=_TIMEOUT)
        self._presign_offered: bool | None = None  # learnt on the first large upload

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"cannot reach the Cairn server at {self.uri}: {exc}", details={"uri": self.uri}
            ) from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> CairnError:
        try:
            payload = response.json()["error"]
            error = error_from_dict(payload)
        except (ValueError, KeyError, TypeError):
            error = CairnError(f"HTTP {response.status_code} from {self.uri}")
        if response.status_code >= 500 and not isinstance(error, Unavailable):
            return Unavailable(
                f"the server answered {response.status_code}: {error.message}",
                details={"status": response.status_code, **error.details},
            )
        return error

    def log_batch(self, batch: Batch) -> BatchResult:
        response = self._request(
            "POST",
            "/batches",
            content=encode_batch(batch),
            headers={"Content-Type": "application/json"},
        )
        return BatchOut.model_validate_json(response.content).to_domain()

    def get_run(self, run_id: str) -> Run:
        response = self._request("GET", f"/runs/{run_id}")
        return RunOut.model_validate_json(response.content).to_domain()

    def update_run(
        self,
        run_id: str,
        *,
        name: str | None = None,
        experiment: str | None = None,
        notes: str | None = None,
    ) -> Run:
        body = {
            k: v
            for k, v in (("name", name), ("experiment", experiment), ("notes", notes))
            if v is not None
        }
        response = self._request("PATCH", f"/runs/{run_id}", json=body)
        return RunOut.model_validate_json(response.content).to_domain()

    def metric_history(
        self,
        run_id: str,
        key: str,
        *,
        max_points: int | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> MetricHistory:
        params: dict[str, Any] = {"key": key}
        for name, value in (
            ("max_points", max_points),
            ("min_step", min_step),
            ("max_step", max_step),
        ):
            if value is not None:
                params[name] = value
        response = self._request("GET", f"/runs/{run_id}/metrics/history", params=params)
        return MetricHistoryOut.model_validate_json(response.content).to_domain()

    def search_runs(
        self,
        project: str | None,
        filter: str | None,
        order_by: Sequence[str] | None,
        *,
        limit: int,
        cursor: str | None,
    ) -> RunPage:
        body = {
            "project": project,
            "filter": filter,
            "order_by": list(order_by or []),
            "limit": limit,
            "cursor": cursor,
        }
        response = self._request("POST", "/runs/search", json=body)
        return RunPageOut.model_validate_json(response.content).to_domain()

    def list_projects(self) -> list[ProjectSummary]:
        response = self._request("GET", "/projects")
        return [ProjectSummaryOut.model_validate(p).to_domain() for p in response.json()]

    def create_project(self, name: str, description: str = "") -> Project:
        response = self._request(
            "POST", "/projects", json={"name": name, "description": description}
        )
        return ProjectOut.model_validate_json(response.content).to_domain()

    def get_git_diff(self, run_id: str) -> str | None:
        response = self._request("GET", f"/runs/{run_id}/git-diff")
        return None if response.status_code == 204 else response.text

    def log_artifact(
        self, run_id: str, path: str, stream: BinaryIO, media_type: str | None = None
    ) -> ArtifactEntry:
        headers = {"Content-Type": media_type or "application/octet-stream"}
        # httpx reads a file object in chunks: the upload is streamed, never held whole.
        response = self._request(
            "PUT", _artifact_url(run_id, path), content=stream, headers=headers
        )
        return ArtifactOut.model_validate_json(response.content).to_domain()

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactEntry]:
        params = {"prefix": prefix} if prefix else {}
        response = self._request("GET", f"/runs/{quote(run_id, safe='')}/artifacts", params=params)
        return [ArtifactOut.model_validate(e).to_domain() for e in response.json()]

    def read_artifact(self, run_id: str, path: str, out: BinaryIO) -> None:
        self._download(_artifact_url(run_id, path), out, path)

    def _download(self, url: str, out: BinaryIO, what: str) -> None:
        try:
            with self.http.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"cannot read {what!r} from the Cairn server at {self.uri}: {exc}",
                details={"uri": self.uri},
            ) from exc

    # -- blobs ---------------------------------------------------------------------------

    def local_blob_path(self, digest: str) -> Path | None:
        return None  # the server's files are not ours to read

    def upload_blobs(self, files: Sequence[LocalFile], progress: Progress | None = None) -> None:
        """Ask which digests are missing; send small files in bundles, large ones as
        resumable chunked uploads. Bytes the server holds never travel."""
        wanted: dict[str, LocalFile] = {}
        for item in files:
            wanted.setdefault(item.digest, item)
        digests = list(wanted)
        missing: set[str] = set()
        for start in range(0, len(digests), _DIGESTS_PER_QUERY):
            response = self._request(
                "POST",
                "/blobs/missing",
                json={"digests": digests[start : start + _DIGESTS_PER_QUERY]},
            )
            missing.update(DigestsOut.model_validate_json(response.content).missing)
        if progress is not None:
            progress(sum(f.size for f in files if f.digest not in missing))
        small: list[LocalFile] = []
        for digest in digests:
            if digest not in missing:
                continue
            item = wanted[digest]
            if item.size > _SMALL_FILE:
                if not self._upload_presigned(item, progress):
                    self._upload_resumable(item, progress)
            else:
                small.append(item)
        for bundle in _bundles(small):
            self._request(
                "POST",
                "/blobs/bundle",
                content=_bundle_body(bundle, progress),
                headers={"Content-Type": "application/octet-stream"},
            )

    def _upload_presigned(self, item: LocalFile, progress: Progress | None) -> bool:
        """Send the bytes straight to the object store when the server offers a URL;
        False when it does not (or the store is unreachable from here)."""
        if self._presign_offered is False:
            return False
        body = {"digest": item.digest, "size": item.size}
        offer = PresignOut.model_validate_json(
            self._request("POST", "/blobs/presigned-uploads", json=body).content
        )
        self._presign_offered = offer.url is not None
        if offer.url is None or offer.token is None:
            return False
        try:
            with open(item.path, "rb") as raw, httpx.Client(timeout=_TIMEOUT) as direct:
                stream = raw if progress is None else counting_reader(raw, progress)
                response = direct.put(offer.url, content=stream, headers=offer.headers)
        except httpx.HTTPError as exc:
            log.warning(
                "cairn: the object store is unreachable (%s); uploading via the server", exc
            )
            self._presign_offered = False
            return False
        if response.status_code >= 300:
            log.warning(
                "cairn: the object store refused a presigned upload (HTTP %s); "
                "uploading via the server",
                response.status_code,
            )
            return False
        self._request(
            "POST",
            f"/blobs/presigned-uploads/{offer.token}/complete",
            json={"digest": item.digest},
        )
        return True

    def _upload_resumable(self, item: LocalFile, progress: Progress | None) -> None:
        started = self._request("POST", "/uploads", json={"size": item.size, "digest": item.digest})
        upload_id = UploadOut.model_validate_json(started.content).id
        offset = 0
        failures = 0
        with open(item.path, "rb") as stream:
            while offset < item.size:
                stream.seek(offset)
                chunk = stream.read(_UPLOAD_CHUNK)
                try:
                    response = self._request(
                        "PATCH",
                        f"/uploads/{upload_id}",
                        content=chunk,
                        headers={
                            "Upload-Offset": str(offset),
                            "Content-Type": "application/octet-stream",
                        },
                    )
                    reached = UploadOut.model_validate_json(response.content).offset
                except (Unavailable, Conflict) as exc:
                    failures += 1
                    if failures > _UPLOAD_RETRIES:
                        raise
                    if isinstance(exc, Unavailable):
                        time.sleep(min(8.0, 0.25 * 2**failures))
                    status = self._request("GET", f"/uploads/{upload_id}")
                    reached = UploadOut.model_validate_json(status.content).offset
                if progress is not None and reached > offset:
                    progress(reached - offset)
                offset = reached
        self._request("POST", f"/uploads/{upload_id}/complete")

    def record_artifacts(
        self, run_id: str, items: list[tuple[str, str, str | None]]
    ) -> list[ArtifactEntry]:
        body = [{"path": p, "digest": d, "media_type": m} for p, d, m in items]
        response = self._request("POST", f"/runs/{quote(run_id, safe='')}/artifacts", json=body)
        return [ArtifactOut.model_validate(e).to_domain() for e in response.json()]

    # -- datasets ------------------------------------------------------------------------

    def log_dataset_version(
        self,
        project: str,
        name: str,
        files: list[DatasetFile],
        *,
        kind: DatasetKind,
        source: str | None,
        batch: str | None,
        message: str | None,
        profile: dict[str, Any] | None,
        run_id: str | None = None,
    ) -> tuple[DatasetVersion, bool]:
        body = {
            "files": [
                {"path": f.path, "digest": f.digest, "size": f.size, "etag": f.etag} for f in files
            ],
            "kind": kind.value,
            "source": source,
            "batch": batch,
            "message": message,
            "profile": profile,
        }
        if run_id is not None:
            body["run_id"] = run_id
        response = self._request(
            "POST",
            f"{_dataset_url(project, name)}/versions",
            content=json.dumps(body, allow_nan=False).encode(),
            headers={"Content-Type": "application/json"},
        )
        out = DatasetVersionOut.model_validate_json(response.content)
        return out.to_domain(), bool(out.created)

    def get_dataset_version(self, ref: str, project: str) -> DatasetVersion:
        parsed = _dataset_ref(ref, project)
        response = self._request(
            "GET", f"{_dataset_url(parsed[0], parsed[1])}/versions/{quote(parsed[2], safe='@')}"
        )
        return DatasetVersionOut.model_validate_json(response.content).to_domain()

    def list_datasets(self, project: str) -> list[Dataset]:
        response = self._request("GET", f"/projects/{quote(project, safe='')}/datasets")
        return [DatasetOut.model_validate(d).to_domain() for d in response.json()]

    def list_dataset_versions(self, name: str, project: str) -> list[DatasetVersion]:
        response = self._request("GET", f"{_dataset_url(project, name)}/versions")
        return [DatasetVersionOut.model_validate(v).to_domain() for v in response.json()]

    def list_dataset_files(
        self, ref: str, project: str
    ) -> tuple[DatasetVersion, list[DatasetFile]]:
        parsed = _dataset_ref(ref, project)
        response = self._request(
            "GET",
            f"{_dataset_url(parsed[0], parsed[1])}/versions/{quote(parsed[2], safe='@')}/files",
        )
        out = DatasetFilesOut.model_validate_json(response.content)
        files = [DatasetFile(f.path, f.digest, f.size, f.etag) for f in out.files]
        return out.version.to_domain(), files

    def read_dataset_file(self, version: DatasetVersion, path: str, out: BinaryIO) -> None:
        clean = normalize_artifact_path(path)
        url = (
            f"{_dataset_url(version.project, version.name)}/versions/{version.version}"
            f"/files/{quote(clean, safe='/')}"
        )
        self._download(url, out, f"{version}:{clean}")

    def diff_datasets(self, old: str, new: str, project: str) -> DatasetDiff:
        response = self._request(
            "GET",
            f"/projects/{quote(project, safe='')}/dataset-diff",
            params={"old": old, "new": new},
        )
        out = DatasetDiffOut.model_validate_json(response.content)
        changed = [
            FileChange(c.path, c.old_digest, c.new_digest, c.old_size, c.new_size)
            for c in out.changed
        ]
        return DatasetDiff(out.old, out.new, out.added, out.removed, changed, out.profile)

    def use_dataset(self, run_id: str, ref: str, role: str) -> DatasetInput:
        response = self._request(
            "POST", f"/runs/{quote(run_id, safe='')}/inputs", json={"dataset": ref, "role": role}
        )
        return DatasetInputOut.model_validate_json(response.content).to_domain()

    def run_inputs(self, run_id: str) -> list[DatasetInput]:
        response = self._request("GET", f"/runs/{quote(run_id, safe='')}/inputs")
        return [DatasetInputOut.model_validate(i).to_domain() for i in response.json()]

    # -- model registry --------------------------------------------------------------------

    def register_model_version(
        self, project: str, name: str, files: list[ModelFile], meta: dict[str, Any]
    ) -> ModelVersion:
        body = {
            "files": [{"path": f.path, "digest": f.digest, "size": f.size} for f in files],
            **{k: v for k, v in meta.items() if v is not None},
        }
        response = self._request(
            "POST",
            f"{_model_url(project, name)}/versions",
            content=json.dumps(body, allow_nan=False).encode(),
            headers={"Content-Type": "application/json"},
        )
        return ModelVersionOut.model_validate_json(response.content).to_domain()

    def get_model_version(self, ref: str, project: str) -> ModelVersion:
        url = _model_version_url(ref, project)
        return ModelVersionOut.model_validate_json(self._request("GET", url).content).to_domain()

    def get_model(self, name: str, project: str) -> RegisteredModel:
        response = self._request("GET", _model_url(project, name))
        return RegisteredModelOut.model_validate_json(response.content).to_domain()

    def list_models(self, project: str) -> list[RegisteredModel]:
        response = self._request("GET", f"/projects/{quote(project, safe='')}/models")
        return [RegisteredModelOut.model_validate(m).to_domain() for m in response.json()]

    def list_model_versions(self, name: str, project: str) -> list[ModelVersion]:
        response = self._request("GET", f"{_model_url(project, name)}/versions")
        return [ModelVersionOut.model_validate(v).to_domain() for v in response.json()]

    def model_files(self, ref: str, project: str) -> tuple[ModelVersion, list[ModelFile]]:
        response = self._request("GET", _model_version_url(ref, project) + "/files")
        return ModelFilesOut.model_validate_json(response.content).to_domain()

    def read_model_file(self, version: ModelVersion, path: str, out: BinaryIO) -> None:
        clean = normalize_artifact_path(path)
        url = (
            f"{_model_url(version.project, version.name)}/versions/{version.version}"
            f"/files/{quote(clean, safe='/')}"
        )
        self._download(url, out, f"{version}:{clean}")

    def decide_model_version(
        self, ref: str, project: str, approve: bool, comment: str | None
    ) -> ModelVersion:
        verb = "approve" if approve else "reject"
        response = self._request(
            "POST", f"{_model_version_url(ref, project)}/{verb}", json={"comment": comment}
        )
        return ModelVersionOut.model_validate_json(response.content).to_domain()

    def set_alias(
        self, name: str, alias: str, version: int | str, project: str, reason: str | None
    ) -> ModelVersion:
        response = self._request(
            "PUT",
            f"{_model_url(project, name)}/aliases/{quote(alias, safe='')}",
            json={"version": version, "reason": reason},
        )
        return ModelVersionOut.model_validate_json(response.content).to_domain()

    def delete_alias(self, name: str, alias: str, project: str, reason: str | None) -> None:
        params = {"reason": reason} if reason else {}
        self._request(
            "DELETE", f"{_model_url(project, name)}/aliases/{quote(alias, safe='')}", params=params
        )

    def alias_history(self, name: str, alias: str | None, project: str) -> list[AliasMove]:
        params = {"alias": alias} if alias else {}
        response = self._request("GET", f"{_model_url(project, name)}/alias-history", params=params)
        return [AliasMoveOut.model_validate(m).to_domain() for m in response.json()]

    def resolve_alias(
        self, name: str, alias: str, at: datetime | None, project: str
    ) -> ModelVersion | None:
        params = {"at": at.isoformat()} if at is not None else {}
        try:
            response = self._request(
                "GET", f"{_model_url(project, name)}/aliases/{quote(alias, safe='')}", params=params
            )
        except NotFound as exc:
            if exc.details.get("alias") == alias and "model" in exc.details:
                return None  # the alias exists in no form then, or is unset now
            raise
        return ModelVersionOut.model_validate_json(response.content).to_domain()

    def rollback_alias(
        self, name: str, alias: str, project: str, reason: str | None
    ) -> ModelVersion:
        response = self._request(
            "POST",
            f"{_model_url(project, name)}/aliases/{quote(alias, safe='')}/rollback",
            json={"reason": reason},
        )
        return ModelVersionOut.model_validate_json(response.content).to_domain()

    def protect_alias(self, name: str, alias: str, protect: bool, project: str) -> RegisteredModel:
        response = self._request(
            "PUT" if protect else "DELETE",
            f"{_model_url(project, name)}/protected-aliases/{quote(alias, safe='')}",
        )
        return RegisteredModelOut.model_validate_json(response.content).to_domain()

    def model_card(self, ref: str, project: str) -> dict[str, Any]:
        card: dict[str, Any] = self._request(
            "GET", _model_version_url(ref, project) + "/card"
        ).json()
        return card

    def compare_models(self, a: str, b: str, project: str) -> dict[str, Any]:
        response = self._request(
            "GET", f"/projects/{quote(project, safe='')}/model-compare", params={"a": a, "b": b}
        )
        result: dict[str, Any] = response.json()
        return result

    def use_model(self, run_id: str, ref: str, role: str) -> ModelVersion:
        response = self._request(
            "POST",
            f"/runs/{quote(run_id, safe='')}/model-inputs",
            json={"model": ref, "role": role},
        )
        return ModelVersionOut.model_validate_json(response.content).to_domain()

    # -- lineage and audit -----------------------------------------------------------------

    def lineage(self, ref: str, direction: str, depth: int | None, project: str) -> Lineage:
        params: dict[str, Any] = {"ref": ref, "direction": direction, "project": project}
        if depth is not None:
            params["depth"] = depth
        response = self._request("GET", "/lineage", params=params)
        return LineageOut.model_validate_json(response.content).to_domain()

    def events(
        self,
        *,
        entity_type: str | None,
        entity_id: str | None,
        action: str | None,
        project: str | None,
        since: str | None,
        limit: int,
        cursor: str | None,
    ) -> EventPage:
        given = {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "action": action,
            "project": project,
            "since": since,
            "limit": limit,
            "cursor": cursor,
        }
        params = {k: v for k, v in given.items() if v is not None}
        response = self._request("GET", "/events", params=params)
        return EventPageOut.model_validate_json(response.content).to_domain()

    # -- production: endpoints, predictions, feedback ---------------------------------------

    def _send_json(self, method: str, path: str, body: Any, field: str) -> httpx.Response:
        try:
            content = json.dumps(body, allow_nan=False, default=_plain_json).encode()
        except (TypeError, ValueError) as exc:
            raise Invalid(f"{field} cannot be sent as JSON: {exc}", field=field) from None
        return self._request(
            method, path, content=content, headers={"Content-Type": "application/json"}
        )

    def create_endpoint(
        self,
        project: str,
        name: str,
        variants: list[Variant],
        description: str,
        settings: dict[str, Any],
    ) -> Endpoint:
        body = {
            "name": name,
            "variants": [_variant_json(v) for v in variants],
            "description": description,
            "settings": settings,
        }
        response = self._send_json("POST", _endpoints_url(project), body, "settings")
        return EndpointOut.model_validate_json(response.content).to_domain()

    def set_endpoint_variants(self, project: str, name: str, variants: list[Variant]) -> Endpoint:
        body = {"variants": [_variant_json(v) for v in variants]}
        response = self._request("PUT", _endpoints_url(project, name), json=body)
        return EndpointOut.model_validate_json(response.content).to_domain()

    def update_endpoint_settings(
        self, project: str, name: str, settings: dict[str, Any]
    ) -> Endpoint:
        url = _endpoints_url(project, name) + "/settings"
        response = self._send_json("PATCH", url, {"settings": settings}, "settings")
        return EndpointOut.model_validate_json(response.content).to_domain()

    def get_endpoint(self, name: str, project: str) -> Endpoint:
        response = self._request("GET", _endpoints_url(project, name))
        return EndpointOut.model_validate_json(response.content).to_domain()

    def list_endpoints(self, project: str) -> list[Endpoint]:
        response = self._request("GET", _endpoints_url(project))
        return [EndpointOut.model_validate(e).to_domain() for e in response.json()]

    def log_predictions(
        self, project: str, model_ref: str, records: list[NewPrediction], endpoint: str | None
    ) -> int:
        body = {
            "model": model_ref,
            "endpoint": endpoint,
            "records": [_prediction_json(r) for r in records],
        }
        url = f"/projects/{quote(project, safe='')}/predictions"
        response = self._send_json("POST", url, body, "records")
        return StoredOut.model_validate_json(response.content).stored

    def log_feedback(self, project: str, actuals: dict[str, Any]) -> int:
        url = f"/projects/{quote(project, safe='')}/feedback"
        response = self._send_json("POST", url, {"actuals": actuals}, "actuals")
        return StoredOut.model_validate_json(response.content).stored

    def list_predictions(
        self,
        project: str,
        *,
        model: str | None,
        endpoint: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[Prediction]:
        given = {
            "model": model,
            "endpoint": endpoint,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "limit": limit,
        }
        params = {k: v for k, v in given.items() if v is not None}
        url = f"/projects/{quote(project, safe='')}/predictions"
        response = self._request("GET", url, params=params)
        return [PredictionOut.model_validate(p).to_domain() for p in response.json()]

    # -- monitoring and A/B analysis ---------------------------------------------------------

    def monitoring_report(
        self,
        project: str,
        since: str | None,
        until: str | None,
        window: str,
        *,
        endpoint: str | None,
        model: str | None,
    ) -> MonitoringReport:
        given = {
            "endpoint": endpoint,
            "model": model,
            "since": since,
            "until": until,
            "window": window,
        }
        response = self._request(
            "GET",
            f"/projects/{quote(project, safe='')}/monitoring",
            params={k: v for k, v in given.items() if v is not None},
        )
        return MonitoringReportOut.model_validate_json(response.content).to_domain()

    def ab_report(
        self,
        project: str,
        endpoint: str,
        *,
        metric: str,
        since: str | None,
        until: str | None,
        baseline: str | None,
        mde: float | None,
    ) -> ABReport:
        given = {"metric": metric, "since": since, "until": until, "baseline": baseline, "mde": mde}
        response = self._request(
            "GET",
            f"{_ab_url(project, endpoint)}/ab",
            params={k: v for k, v in given.items() if v is not None},
        )
        return ABReportOut.model_validate_json(response.content).to_domain()

    def promote(
        self, project: str, endpoint: str, variant: str, *, reason: str | None, metric: str
    ) -> Promotion:
        response = self._request(
            "POST",
            f"{_ab_url(project, endpoint)}/promote",
            json={"variant": variant, "reason": reason, "metric": metric},
        )
        return PromotionOut.model_validate_json(response.content).to_domain()

    def close(self) -> None:
        self.http.close()


# -- production helpers ---------------------------------------------------------------------


def _endpoints_url(project: str, name: str | None = None) -> str:
    base = f"/projects/{quote(project, safe='')}/endpoints"
    return base if name is None else f"{base}/{quote(name, safe='')}"


def _variant_json(v: Variant) -> dict[str, Any]:
    return {"name": v.name, "target": v.target, "weight": v.weight, "shadow": v.shadow}


def _prediction_json(r: NewPrediction) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": r.inputs, "outputs": r.outputs}
    if r.request_id:
        body["request_id"] = r.request_id
    for name in ("unit_id", "latency_ms", "error"):
        value = getattr(r, name)
        if value is not None:
            body[name] = value
    if r.at is not None:
        body["at"] = r.at.isoformat()
    if r.variant:
        body["variant"] = r.variant
    if r.shadow:
        body["shadow"] = True
    return body


def _plain_json(value: Any) -> Any:
    """numpy scalars and arrays (and anything else with ``tolist``) as plain JSON."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _ab_url(project: str, endpoint: str) -> str:
    """Where an endpoint's A/B report and promotion live (``api/routes/monitoring.py``)."""
    return f"/projects/{quote(project, safe='')}/endpoints/{quote(endpoint, safe='')}"
