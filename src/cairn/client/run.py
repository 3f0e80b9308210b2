"""``ActiveRun``: the handle a training loop logs through.

    with cairn.start_run(name="baseline", params={"lr": 0.01}) as run:
        for step in range(100):
            run.log({"loss": loss, "acc": acc}, step=step)

``log`` validates and enqueues, nothing more (a few microseconds); the batcher sends.
An exception inside the ``with`` ends the run ``failed`` and records the error.
"""

from __future__ import annotations

import io
import os
import threading
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cairn.client import artifacts as _artifacts
from cairn.client.batcher import END, METRIC, NOTES, PARAMS, TAGS
from cairn.domain.artifact_paths import normalize_artifact_path
from cairn.domain.datasets import DatasetInput, DatasetVersion
from cairn.domain.errors import Conflict, Invalid
from cairn.domain.models import ModelVersion
from cairn.domain.records import ArtifactEntry, MetricHistory, Run, RunEnd, RunStatus
from cairn.domain.validation import (
    KNOWN_GOOD_KEYS,
    check_key,
    check_text,
    metric_value,
    param_value,
    step_value,
    tag_value,
)

if TYPE_CHECKING:
    from cairn.client.fluent import Client
    from cairn.client.sysmetrics import SystemMetricsSampler


def clean_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {check_key(k, "tag key"): tag_value(v, f"tags.{k}") for k, v in tags.items()}


class ActiveRun:
    def __init__(self, client: Client, run_id: str, project: str, name: str | None) -> None:
        self.client = client
        self.id = run_id
        self.project = project
        self.name = name
        self._put = client.batcher.put
        self._step = 0
        self._params: dict[str, str] = {}
        self._ended = False
        self._lock = threading.Lock()
        self._sampler: SystemMetricsSampler | None = None

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} {self.name or ''} in {self.project}>"

    # -- the hot path ---------------------------------------------------------------

    def log(
        self,
        metrics: Mapping[str, float],
        step: int | None = None,
        *,
        timestamp: float | None = None,
    ) -> None:
        """Log metric values at a step (default: one past the previous step).

        NaN and +-inf are kept. Returns at once; a background thread sends.
        """
        if step is None:
            step = self._step
        elif type(step) is not int:
            step = step_value(step, "step")  # numpy and torch integers too; never bool
        self._step = step + 1
        ts = time.time_ns() // 1_000_000 if timestamp is None else int(timestamp * 1000)
        values: dict[str, float] = {}
        for key, value in metrics.items():
            if key not in KNOWN_GOOD_KEYS:
                check_key(key, "metric key")
            values[key] = value if type(value) is float else metric_value(value, f"metrics.{key}")
        if values:
            self._put((METRIC, self.id, step, ts, values))

    # -- the rest -------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record input settings. Params are immutable: a different value is a ``Conflict``."""
        clean = self._clean_params(params)
        if clean:
            self._put((PARAMS, self.id, clean))

    def _clean_params(self, params: Mapping[str, Any]) -> dict[str, str]:
        clean: dict[str, str] = {}
        for key, value in params.items():
            check_key(key, "param key")
            clean[key] = param_value(value, f"params.{key}")
        with self._lock:
            for key, text in clean.items():
                old = self._params.get(key)
                if old is not None and old != text:
                    raise Conflict(
                        f"param {key!r} of run {self.id} is already {old!r}; params are "
                        f"immutable, so it cannot become {text!r}",
                        details={"field": f"params.{key}", "old": old, "new": text},
                    )
            self._params.update(clean)
        return clean

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set mutable labels; a tag set again takes the new value."""
        clean = clean_tags(tags)
        if clean:
            self._put((TAGS, self.id, clean))

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def note(self, text: str) -> None:
        """Append to the run's notes: why it was run, what was learnt."""
        check_text(text, "notes", "notes_length", allow_empty=False)
        self._put((NOTES, self.id, text))

    # -- artifacts: sent at once, not through the batcher ----------------------------

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> ArtifactEntry:
        """Store a file as this run's artifact ``name`` (default: the file's own name).

        Example: ``run.log_artifact("out/model.pkl", "model/model.pkl")``. The file is
        hashed first and its bytes sent only if Cairn does not hold them yet: the same
        bytes logged by any number of runs are stored once.
        """
        local = Path(path)
        return self.client.log_artifact_file(self.id, local, local.name if name is None else name)

    def log_artifacts(
        self, folder: str | os.PathLike[str], prefix: str | None = None
    ) -> list[ArtifactEntry]:
        """Store every file under ``folder``, keeping relative paths (under ``prefix``).

        Example: ``run.log_artifacts("plots", prefix="eval/plots")``. Every name is
        checked before any byte is sent: a bad one stores nothing.
        """
        return self.client.log_artifact_folder(self.id, folder, prefix)

    def use_dataset(self, ref: str | DatasetVersion, role: str = "train") -> DatasetInput:
        """Record this run's input: ``run.use_dataset("wine:2", role="train")``."""
        return self.client.use_dataset(self.id, ref, role)

    def log_dataset(
        self,
        name: str,
        source: Any,
        role: str = "train",
        batch: str | None = None,
        message: str | None = None,
        output: bool = False,
    ) -> DatasetVersion:
        """Version ``source`` in this run's project and record it as this run's input,
        or with ``output=True`` as what this run produced (``role`` is then unused).

        Example: ``run.log_dataset("wine", df, role="train", batch="2026-11")``;
        ``run.log_dataset("clean", cleaned, output=True)`` in a preprocessing step.
        """
        if output:
            return self.client.log_dataset(
                name, source, batch, message, self.project, run_id=self.id
            )
        version = self.client.log_dataset(name, source, batch, message, self.project)
        self.use_dataset(version, role)
        return version

    def register_model(
        self,
        name: str,
        model: Any,
        flavor: str | None = None,
        input_example: Any = None,
        bump: str | None = None,
        semver: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register ``model`` as a new version of ``name``, made by this run.

        Example: ``run.register_model("iris", clf, input_example=X_train[:5])``. The
        semver follows the rule (signature -> major; flavor, algorithm or this run's
        training data -> minor; else patch) unless ``bump`` or ``semver`` is given.
        """
        return self.client.register_model(
            name,
            model,
            run_id=self.id,
            flavor=flavor,
            input_example=input_example,
            bump=bump,
            semver=semver,
            description=description,
            tags=dict(tags) if tags else None,
            project=self.project,
        )

    def use_model(self, ref: str, role: str = "evaluate") -> ModelVersion:
        """Record that this run used a model version: ``run.use_model("iris@staging")``."""
        return self.client.use_model(self.id, ref, role)

    def _log_bytes(self, data: bytes, name: str, media_type: str) -> ArtifactEntry:
        clean = normalize_artifact_path(name)
        return self.client.log_artifact_stream(self.id, clean, io.BytesIO(data), media_type)

    def log_text(self, text: str, name: str) -> ArtifactEntry:
        """Store text (UTF-8) as artifact ``name``. Example: ``run.log_text(md, "report.md")``."""
        media = _artifacts.media_type_for(name, "text/plain")
        return self._log_bytes(_artifacts.text_bytes(text), name, media)

    def log_json(self, obj: Any, name: str) -> ArtifactEntry:
        """Store an object as JSON. Example: ``run.log_json({"classes": 3}, "meta.json")``."""
        return self._log_bytes(_artifacts.json_bytes(obj), name, "application/json")

    def log_figure(self, fig: Any, name: str) -> ArtifactEntry:
        """Store a matplotlib figure (PNG, or SVG/PDF by the name's extension).

        Example: ``run.log_figure(fig, "plots/loss.png")``.
        """
        data, media = _artifacts.figure_bytes(fig, normalize_artifact_path(name))
        return self._log_bytes(data, name, media)

    def log_table(self, df: Any, name: str) -> ArtifactEntry:
        """Store a pandas DataFrame as CSV, or parquet when ``name`` ends ``.parquet``.

        Example: ``run.log_table(predictions, "eval/predictions.csv")``.
        """
        data, media = _artifacts.table_bytes(df, normalize_artifact_path(name))
        return self._log_bytes(data, name, media)

    def child(self, name: str | None = None, **kwargs: Any) -> ActiveRun:
        """Start a nested run (a pipeline step, a trial of a sweep) under this one."""
        kwargs.setdefault("project", self.project)
        return self.client.start_run(name, parent=self.id, **kwargs)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything logged so far is stored."""
        self.client.flush(timeout)

    def end(self, status: RunStatus | str = RunStatus.FINISHED, error: str | None = None) -> None:
        """End the run (finished, failed or killed). A second call does nothing."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise Invalid("a run ends finished, failed or killed", field="status")
        if self._sampler is not None:
            self._sampler.stop()
        self._put((END, self.id, RunEnd(status, datetime.now(tz=UTC), error)))
        self.client._forget(self)

    @property
    def ended(self) -> bool:
        return self._ended

    def get(self) -> Run:
        """The run as stored (after a flush)."""
        return self.client.get_run(self.id)

    def history(self, key: str, max_points: int | None = None) -> MetricHistory:
        return self.client.get_metric_history(self.id, key, max_points=max_points)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end(RunStatus.FINISHED)
        elif isinstance(exc, KeyboardInterrupt):
            self.end(RunStatus.KILLED, "KeyboardInterrupt")
        else:
            text = "".join(traceback.format_exception(exc_type, exc, tb, limit=20))
            self.end(RunStatus.FAILED, text[-20_000:])
