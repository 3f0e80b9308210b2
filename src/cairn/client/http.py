"""A Cairn server over HTTP. Loads neither the store nor the services.

Errors come back as the same classes the services raise (the server's envelope is
turned back into ``NotFound``, ``Invalid`` …); an unreachable server or a 5xx is
``Unavailable``, which the batcher retries.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from cairn._version import __version__
from cairn.domain.artifact_paths import normalize_artifact_path
from cairn.domain.errors import CairnError, Unavailable, error_from_dict
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
from cairn.schemas.artifacts import ArtifactOut
from cairn.schemas.runs import (
    BatchOut,
    MetricHistoryOut,
    ProjectOut,
    ProjectSummaryOut,
    RunOut,
    RunPageOut,
)

_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_CHUNK = 1024 * 1024


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
        token = token or os.environ.get("CAIRN_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.uri + "/api/v1", headers=headers, timeout=_TIMEOUT)

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
        try:
            with self.http.stream("GET", _artifact_url(run_id, path)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"cannot read {path!r} from the Cairn server at {self.uri}: {exc}",
                details={"uri": self.uri},
            ) from exc

    def close(self) -> None:
        self.http.close()
