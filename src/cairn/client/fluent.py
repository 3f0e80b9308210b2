"""``Client`` and the module-level fluent API built on a default client.

    import cairn
    cairn.set_tracking_uri("http://127.0.0.1:5000")   # or a folder, sqlite:///…, postgresql://…
    cairn.set_project("translate")
    with cairn.start_run(name="baseline", params={"lr": 0.01}) as run:
        run.log({"loss": 0.3}, step=0)
    cairn.search_runs("metrics.loss < 0.5", order_by=["metrics.loss"])

No run is ever started implicitly: logging needs a run handle.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from cairn.client.artifacts import write_atomically
from cairn.client.backend import Backend, default_uri, open_backend
from cairn.client.batcher import PARAMS, START, TAGS, Batcher
from cairn.client.capture import capture_run_context
from cairn.client.data_api import DataApi
from cairn.client.lineage_api import EventList, LineageApi
from cairn.client.models_api import ModelsApi
from cairn.client.monitoring_api import MonitoringApi, When
from cairn.client.production_api import ProductionApi, VariantLike
from cairn.client.run import ActiveRun, clean_tags
from cairn.client.transfer import Progress
from cairn.domain.artifact_paths import normalize_artifact_path
from cairn.domain.datasets import Dataset, DatasetDiff, DatasetVersion
from cairn.domain.errors import Invalid, NotFound
from cairn.domain.experiments import ABReport, Promotion
from cairn.domain.ids import new_ulid
from cairn.domain.lineage import Direction, Lineage
from cairn.domain.models import AliasMove, ModelVersion, RegisteredModel
from cairn.domain.monitoring import MonitoringReport
from cairn.domain.production import Endpoint, Prediction
from cairn.domain.records import (
    ArtifactEntry,
    MetricHistory,
    Project,
    ProjectSummary,
    Run,
    RunStart,
    RunStatus,
)
from cairn.domain.validation import DEFAULT_PROJECT, check_project_name, check_text

if TYPE_CHECKING:
    import pandas  # type: ignore[import-untyped]

    from cairn.flavors import LoadedModel

# Open runs say they are alive this often; a server marks a run killed after
# CAIRN_HEARTBEAT_TIMEOUT (default 300 s) of silence.
HEARTBEAT_S = float(os.environ.get("CAIRN_HEARTBEAT_INTERVAL", "30"))
READ_WAIT_S = 30.0  # how long a read waits for queued writes before it goes ahead
_CAPTURE_PARTS = frozenset({"git", "environment", "command"})


class RunList(list[Run]):
    """Runs from a search: a list, plus ``next_cursor`` and ``to_pandas()``."""

    next_cursor: str | None = None

    def to_pandas(self) -> pandas.DataFrame:
        """One row per run: attributes, then ``params.*``, ``metrics.*`` (last), ``tags.*``."""
        import pandas as pd

        rows = []
        for run in self:
            row: dict[str, Any] = {
                "run_id": run.id,
                "name": run.name,
                "project": run.project,
                "experiment": run.experiment,
                "status": run.status.value,
                "start_time": run.start_time,
                "end_time": run.end_time,
                "parent_id": run.parent_id,
                "author": run.author,
            }
            row.update({f"params.{k}": v for k, v in run.params.items()})
            row.update({f"metrics.{k}": s.last for k, s in run.metrics.items()})
            row.update({f"tags.{k}": v for k, v in run.tags.items()})
            rows.append(row)
        return pd.DataFrame(rows)


def _capture_flags(capture: bool | Iterable[str]) -> dict[str, bool]:
    if isinstance(capture, bool):
        return dict.fromkeys(_CAPTURE_PARTS, capture)
    parts = set(capture)
    unknown = parts - _CAPTURE_PARTS
    if unknown:
        raise Invalid(
            f"capture: unknown part(s) {sorted(unknown)}; choose from {sorted(_CAPTURE_PARTS)}",
            field="capture",
        )
    return {part: part in parts for part in _CAPTURE_PARTS}


class Client(DataApi, ModelsApi, LineageApi, ProductionApi, MonitoringApi):
    """A connection to one store or server, with its own background sender.

    >>> client = cairn.Client("./.cairn")            # doctest: +SKIP
    >>> with client.start_run("trial") as run:       # doctest: +SKIP
    ...     run.log({"loss": 0.1})
    """

    def __init__(
        self,
        uri: str | os.PathLike[str] | None = None,
        *,
        project: str | None = None,
        flush_interval: float = 0.2,
    ) -> None:
        self.backend: Backend = open_backend(uri)
        self.uri = self.backend.uri
        self.project = check_project_name(project) if project else None
        spool = None
        if self.uri.startswith(("http://", "https://")):
            from cairn.client.spool import Spool

            spool = Spool(target=self.uri)  # batches the server cannot take wait here
        self.batcher = Batcher(self.backend.log_batch, interval=flush_interval, spool=spool)
        self.batcher.beat(HEARTBEAT_S, self._open_run_ids)
        self._open: dict[str, ActiveRun] = {}
        self._lock = threading.Lock()
        self._closed = False
        _CLIENTS.add(self)

    def __repr__(self) -> str:
        return f"<cairn.Client {self.uri}>"

    def _project(self, project: str | None) -> str:
        name = project or self.project or os.environ.get("CAIRN_PROJECT") or DEFAULT_PROJECT
        return check_project_name(name)

    # -- runs -----------------------------------------------------------------------

    def start_run(
        self,
        name: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        project: str | None = None,
        experiment: str | None = None,
        parent: str | ActiveRun | None = None,
        notes: str | None = None,
        capture: bool | Iterable[str] = True,
        system_metrics: bool | float = False,
    ) -> ActiveRun:
        """Start a run and return its handle; use it in a ``with`` block.

        The id is made here, so a run starts even while the server is away. ``capture``
        records git, command and environment (``False``, or a subset such as
        ``{"git"}``); ``system_metrics=True`` (or an interval in seconds) samples CPU,
        memory and GPU as ``system/…`` metrics.
        """
        if name is not None:
            check_text(name, "name", "name_length")
        if experiment is not None:
            check_text(experiment, "experiment", "name_length")
        parent_id = parent.id if isinstance(parent, ActiveRun) else parent
        flags = _capture_flags(capture)
        context = capture_run_context(
            git=flags["git"], environment=flags["environment"], command=flags["command"]
        )
        run_id = new_ulid()
        project_name = self._project(project)
        start = RunStart(
            id=run_id,
            project=project_name,
            start_time=datetime.now(tz=UTC),
            name=name,
            experiment=experiment,
            parent_id=parent_id,
            author=context.author,
            command=context.command,
            notes=notes,
            # Shared, read-only dicts from the capture cache: the store keeps one copy.
            git=context.git,  # type: ignore[arg-type]
            git_diff=context.git_diff,
            environment=context.environment,  # type: ignore[arg-type]
        )
        run = ActiveRun(self, run_id, project_name, name)
        # Validate everything before anything is queued: bad input starts no run.
        clean_params = run._clean_params(params) if params else {}
        tag_values = clean_tags(tags) if tags else {}
        self.batcher.put((START, start))
        if clean_params:
            self.batcher.put((PARAMS, run_id, clean_params))
        if tag_values:
            self.batcher.put((TAGS, run_id, tag_values))
        with self._lock:
            self._open[run_id] = run
        if system_metrics:
            from cairn.client.sysmetrics import SystemMetricsSampler

            interval = 10.0 if system_metrics is True else float(system_metrics)
            sampler = SystemMetricsSampler(lambda values: run.log(values, step=None), interval)
            run._sampler = sampler
            sampler.start()
        return run

    def _open_run_ids(self) -> list[str]:
        with self._lock:
            return list(self._open)

    def _forget(self, run: ActiveRun) -> None:
        with self._lock:
            self._open.pop(run.id, None)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything logged through this client is stored.

        Raises what the server refused since the last flush (bad input logged in the
        background), and ``Unavailable`` when ``timeout`` passes first.
        """
        self.batcher.flush(timeout)

    def _settle(self) -> None:
        """Before a read: let earlier writes land, but never wait forever for a server."""
        self.batcher.flush(READ_WAIT_S, raise_refused=False)

    def get_run(self, run_id: str) -> Run:
        """A run with its params, tags, metric summaries, status, git and environment."""
        self._settle()
        return self.backend.get_run(run_id)

    def update_run(
        self,
        run_id: str,
        *,
        name: str | None = None,
        experiment: str | None = None,
        notes: str | None = None,
    ) -> Run:
        self._settle()
        return self.backend.update_run(run_id, name=name, experiment=experiment, notes=notes)

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_points: int | None = None,
        *,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> MetricHistory:
        """A metric's points; with ``max_points`` at most that many, spikes kept."""
        self._settle()
        return self.backend.metric_history(
            run_id, key, max_points=max_points, min_step=min_step, max_step=max_step
        )

    def search_runs(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        *,
        project: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RunList:
        """Runs matching a filter in the search language, one page of ``limit``.

        ``project=None`` searches the client's project when one was set, else all.
        """
        self._settle()
        if isinstance(order_by, str):
            order_by = [order_by]
        page = self.backend.search_runs(
            project or self.project, filter, order_by, limit=limit, cursor=cursor
        )
        runs = RunList(page.runs)
        runs.next_cursor = page.next_cursor
        return runs

    def git_diff(self, run_id: str) -> str | None:
        self._settle()
        return self.backend.get_git_diff(run_id)

    # -- artifacts ------------------------------------------------------------------

    def log_artifact_stream(
        self, run_id: str, name: str, stream: BinaryIO, media_type: str | None = None
    ) -> ArtifactEntry:
        """Store a stream as the run's file ``name``, now (artifacts skip the batcher).

        Queued writes are sent first, so the run exists before its files arrive.
        """
        clean = normalize_artifact_path(name)
        self.flush(READ_WAIT_S)
        return self.backend.log_artifact(run_id, clean, stream, media_type)

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactEntry]:
        """A run's artifacts by path; ``prefix`` keeps the file it names or those under it."""
        clean = normalize_artifact_path(prefix, "prefix") if prefix else None
        self._settle()
        return self.backend.list_artifacts(run_id, clean)

    def download_artifacts(
        self,
        run_id: str,
        path: str = "",
        dest: str | os.PathLike[str] = ".",
        progress: Progress | None = None,
    ) -> Path:
        """Download one file, or every file under a folder (``path=""``: all of them).

        Files land at ``dest/<artifact path>``, each written atomically and checked
        against its digest; returns the local path of what ``path`` named.
        """
        prefix = normalize_artifact_path(path) if path else None
        entries = self.list_artifacts(run_id, prefix)
        if not entries:
            raise NotFound(
                f"run {run_id} has no artifact at {path!r}",
                details={"run_id": run_id, "path": path},
            )
        root = Path(dest)
        for entry in entries:
            parts = normalize_artifact_path(entry.path).split("/")

            def fill(out: BinaryIO, entry_path: str = entry.path) -> None:
                self.backend.read_artifact(run_id, entry_path, out)

            write_atomically(
                root.joinpath(*parts),
                fill,
                entry.digest,
                progress,
                source=self.backend.local_blob_path(entry.digest),
            )
        return root.joinpath(*prefix.split("/")) if prefix else root

    # -- projects -------------------------------------------------------------------

    def list_projects(self) -> list[ProjectSummary]:
        self._settle()
        return self.backend.list_projects()

    def create_project(self, name: str, description: str = "") -> Project:
        return self.backend.create_project(name, description)

    # -- lifecycle ------------------------------------------------------------------

    def close(self, *, status: RunStatus = RunStatus.KILLED, timeout: float | None = None) -> None:
        """End runs still open (``killed``), send what is queued, release the store.

        Waits at most ``timeout`` seconds (default ``CAIRN_CLOSE_TIMEOUT`` or 30) for an
        unreachable server. Closing twice does nothing.
        """
        if timeout is None:
            timeout = float(os.environ.get("CAIRN_CLOSE_TIMEOUT", "30"))
        with self._lock:
            if self._closed:
                return
            self._closed = True
            still_open = list(self._open.values())
        for run in still_open:
            run.end(status, "the process ended while the run was open")
        self.batcher.close(timeout)
        self.backend.close()
        _CLIENTS.discard(self)


_CLIENTS: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for client in list(_CLIENTS):
        # Exit must go on; the batcher has logged what it could not send.
        with contextlib.suppress(Exception):
            client.close()


# -- the module-level fluent API ----------------------------------------------------

_state_lock = threading.Lock()
_state: dict[str, Any] = {"uri": None, "client": None, "project": None}


def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Send everything from now on to another store or server (queued data goes first)."""
    with _state_lock:
        old = _state["client"]
        _state["uri"] = os.fspath(uri)
        _state["client"] = None
    if old is not None:
        old.close(status=RunStatus.KILLED)


def get_tracking_uri() -> str:
    return _state["uri"] or default_uri()


def set_project(name: str) -> None:
    """The project new runs go to and searches look in."""
    check_project_name(name)
    with _state_lock:
        _state["project"] = name
        if _state["client"] is not None:
            _state["client"].project = name


def client() -> Client:
    """The default client behind the fluent functions."""
    with _state_lock:
        current = _state["client"]
        if current is None:
            current = _state["client"] = Client(_state["uri"], project=_state["project"])
        return current  # type: ignore[no-any-return]


def start_run(name: str | None = None, **kwargs: Any) -> ActiveRun:
    """Start a run in the current project; see ``Client.start_run``."""
    return client().start_run(name, **kwargs)


def get_run(run_id: str) -> Run:
    return client().get_run(run_id)


def get_metric_history(
    run_id: str, key: str, max_points: int | None = None, **kwargs: Any
) -> MetricHistory:
    return client().get_metric_history(run_id, key, max_points, **kwargs)


def search_runs(
    filter: str | None = None, order_by: Sequence[str] | str | None = None, **kwargs: Any
) -> RunList:
    return client().search_runs(filter, order_by, **kwargs)


def flush(timeout: float | None = None) -> None:
    client().flush(timeout)


def list_artifacts(run_id: str, prefix: str | None = None) -> list[ArtifactEntry]:
    """A run's artifacts. Example: ``[e.path for e in cairn.list_artifacts(run.id)]``."""
    return client().list_artifacts(run_id, prefix)


def download_artifacts(run_id: str, path: str = "", dest: str | os.PathLike[str] = ".") -> Path:
    """Download a run's file or folder. Example: ``cairn.download_artifacts(rid, "plots")``."""
    return client().download_artifacts(run_id, path, dest)


def log_dataset(
    name: str,
    source: Any,
    batch: str | None = None,
    message: str | None = None,
    project: str | None = None,
    run_id: str | None = None,
) -> DatasetVersion:
    """Version data: ``cairn.log_dataset("wine", df, batch="2026-11")``; see ``Client``.
    ``run_id`` records the run that produced it."""
    return client().log_dataset(name, source, batch, message, project, run_id=run_id)


def get_dataset(ref: str, dest: str | os.PathLike[str], project: str | None = None) -> Path:
    """Materialise a version's files: ``cairn.get_dataset("wine:2", "data/wine")``."""
    return client().get_dataset(ref, dest, project)


def get_dataset_version(ref: str, project: str | None = None) -> DatasetVersion:
    """A version with its profile: ``cairn.get_dataset_version("wine:2").profile``."""
    return client().get_dataset_version(ref, project)


def list_datasets(project: str | None = None) -> list[Dataset]:
    return client().list_datasets(project)


def diff_datasets(old: str, new: str, project: str | None = None) -> DatasetDiff:
    """How two versions differ: ``cairn.diff_datasets("wine:1", "wine:2")``."""
    return client().diff_datasets(old, new, project)


def load_model(ref: str, project: str | None = None) -> LoadedModel:
    """A registered version ready to predict: ``cairn.load_model("iris@production")``."""
    return client().load_model(ref, project)


def get_model_version(ref: str, project: str | None = None) -> ModelVersion:
    return client().get_model_version(ref, project)


def list_models(project: str | None = None) -> list[RegisteredModel]:
    return client().list_models(project)


def approve(ref: str, comment: str | None = None, project: str | None = None) -> ModelVersion:
    """Approve a version: ``cairn.approve("iris:3", "validated on holdout")``."""
    return client().approve(ref, comment, project)


def reject(ref: str, comment: str | None = None, project: str | None = None) -> ModelVersion:
    return client().reject(ref, comment, project)


def set_alias(
    model: str,
    alias: str,
    version: int | str,
    reason: str | None = None,
    project: str | None = None,
) -> ModelVersion:
    """Point an alias at a version: ``cairn.set_alias("iris", "production", 3)``."""
    return client().set_alias(model, alias, version, reason, project)


def delete_alias(
    model: str, alias: str, reason: str | None = None, project: str | None = None
) -> None:
    client().delete_alias(model, alias, reason, project)


def alias_history(
    model: str, alias: str | None = None, project: str | None = None
) -> list[AliasMove]:
    """Every move of an alias: ``cairn.alias_history("iris", "production")``."""
    return client().alias_history(model, alias, project)


def resolve_alias(
    model: str, alias: str, at: datetime | None = None, project: str | None = None
) -> ModelVersion | None:
    """Which version an alias pointed to at a time: ``cairn.resolve_alias("iris",
    "production", at=datetime(2026, 3, 3, tzinfo=UTC))``."""
    return client().resolve_alias(model, alias, at, project)


def rollback(
    model: str, alias: str, reason: str | None = None, project: str | None = None
) -> ModelVersion:
    """Move an alias back to its previous target: ``cairn.rollback("iris", "production")``."""
    return client().rollback(model, alias, reason, project)


def protect_alias(
    model: str, alias: str, protect: bool = True, project: str | None = None
) -> RegisteredModel:
    return client().protect_alias(model, alias, protect, project)


def model_card(ref: str, project: str | None = None) -> dict[str, Any]:
    return client().model_card(ref, project)


def compare_models(a: str, b: str, project: str | None = None) -> dict[str, Any]:
    return client().compare_models(a, b, project)


def lineage(
    ref: str,
    direction: Direction | str = Direction.UP,
    depth: int | None = None,
    project: str | None = None,
) -> Lineage:
    """Which data and runs made a model version, or what a dataset version fed:
    ``cairn.lineage("iris@production").datasets()``; see ``Client.lineage``."""
    return client().lineage(ref, direction, depth, project)


def audit(
    entity: str | None = None,
    since: str | datetime | timedelta | None = None,
    action: str | None = None,
    project: str | None = None,
    limit: int = 1000,
) -> EventList:
    """Who changed what, when: ``cairn.audit("models/iris", since="7d")``; see
    ``Client.audit``."""
    return client().audit(entity, since, action, project, limit)


# -- production: predictions served elsewhere, feedback, endpoints --------------------------


def log_predictions(
    model_ref: str,
    inputs: Any,
    outputs: Any,
    request_ids: Sequence[str] | None = None,
    unit_ids: Sequence[str | None] | None = None,
    latencies_ms: Sequence[float | None] | float | None = None,
    **kwargs: Any,
) -> list[str]:
    """Record served predictions, one per row; returns their request ids:
    ``ids = cairn.log_predictions("iris:3", df, clf.predict(df))``."""
    return client().log_predictions(
        model_ref, inputs, outputs, request_ids, unit_ids, latencies_ms, **kwargs
    )


def log_feedback(request_ids: Sequence[str] | str, actuals: Any, project: str | None = None) -> int:
    """Ground truth by request id, arriving later: ``cairn.log_feedback(ids, y_true)``."""
    return client().log_feedback(request_ids, actuals, project)


def create_endpoint(name: str, variants: Sequence[VariantLike], **kwargs: Any) -> Endpoint:
    """Weighted variants (A/B, canary, shadow): ``cairn.create_endpoint("churn",
    ["champion=iris@production:90", "challenger=iris@staging:10"])``."""
    return client().create_endpoint(name, variants, **kwargs)


def get_endpoint(name: str, project: str | None = None) -> Endpoint:
    """An endpoint and its variants: ``cairn.get_endpoint("churn").variants``."""
    return client().get_endpoint(name, project)


def list_predictions(model: str | None = None, **kwargs: Any) -> list[Prediction]:
    """Predictions stamped with their versions: ``cairn.list_predictions("iris")``."""
    return client().list_predictions(model, **kwargs)


# -- monitoring and A/B analysis ------------------------------------------------------------


def monitoring_report(
    endpoint_or_model: str,
    *,
    since: When = "24h",
    until: When = None,
    window: timedelta | str | float = "1h",
    project: str | None = None,
) -> MonitoringReport:
    """Volume, errors, latency, quality and drift per window and version:
    ``cairn.monitoring_report("churn", since="24h", window="1h")``."""
    return client().monitoring_report(
        endpoint_or_model, since=since, until=until, window=window, project=project
    )


def ab_report(endpoint: str, *, metric: str = "accuracy", **kwargs: Any) -> ABReport:
    """Variants compared with confidence intervals and p-values:
    ``cairn.ab_report("churn", metric="accuracy", since="7d").winner``."""
    return client().ab_report(endpoint, metric=metric, **kwargs)


def promote(
    endpoint: str,
    variant: str,
    *,
    reason: str | None = None,
    metric: str = "accuracy",
    project: str | None = None,
) -> Promotion:
    """Move the champion's alias to a variant's version (audited, with the A/B result):
    ``cairn.promote("churn", "challenger")``."""
    return client().promote(endpoint, variant, reason=reason, metric=metric, project=project)
