"""What a batch must satisfy before anything of it is written."""

from __future__ import annotations

from cairn.domain.errors import Invalid, TooLarge
from cairn.domain.ids import is_ulid
from cairn.domain.records import Batch, RunBatch, RunStatus
from cairn.domain.validation import (
    LIMITS,
    STEP_MAX,
    STEP_MIN,
    check_key,
    check_project_name,
    check_text,
)


def _too_large(what: str, count: int, limit: str) -> TooLarge:
    return TooLarge(
        f"a batch may carry at most {LIMITS[limit]} {what} ({limit}); this one has {count}",
        details={"limit": limit, "max": LIMITS[limit], "field": what},
    )


def check_batch(batch: Batch) -> Batch:
    """Validate a batch and merge entries of the same run; raises before any write."""
    key = batch.idempotency_key
    if not isinstance(key, str) or not 8 <= len(key) <= 100:
        raise Invalid("idempotency_key must be 8 to 100 characters", field="idempotency_key")
    if len(batch.runs) > LIMITS["batch_runs"]:
        raise _too_large("runs", len(batch.runs), "batch_runs")
    merged: dict[str, RunBatch] = {}
    params = tags = points = 0
    for i, item in enumerate(batch.runs):
        where = f"runs[{i}]"
        if not is_ulid(item.run_id):
            raise Invalid(
                f"{where}.run_id {item.run_id!r} is not a run id (a ULID)", field=f"{where}.run_id"
            )
        _check_item(item, where)
        params += len(item.params)
        tags += len(item.tags)
        points += sum(len(s) for s in item.metrics.values())
        if item.run_id in merged:
            _merge_into(merged[item.run_id], item, where)
        else:
            merged[item.run_id] = item
    if params > LIMITS["batch_params"]:
        raise _too_large("params", params, "batch_params")
    if tags > LIMITS["batch_tags"]:
        raise _too_large("tags", tags, "batch_tags")
    if points > LIMITS["batch_points"]:
        raise _too_large("metric points", points, "batch_points")
    return Batch(key, list(merged.values()))


def _check_item(item: RunBatch, where: str) -> None:
    if item.start is not None:
        start = item.start
        if start.id != item.run_id:
            raise Invalid(f"{where}.start.id must equal run_id", field=f"{where}.start.id")
        check_project_name(start.project)
        if start.name is not None:
            check_text(start.name, f"{where}.start.name", "name_length")
        if start.experiment is not None:
            check_text(start.experiment, f"{where}.start.experiment", "name_length")
        if start.parent_id is not None and not is_ulid(start.parent_id):
            raise Invalid(
                f"{where}.start.parent_id is not a run id", field=f"{where}.start.parent_id"
            )
    for key, value in item.params.items():
        check_key(key, f"{where}.params key")
        check_text(value, f"params.{key}", "param_value_length")
    for key, value in item.tags.items():
        check_key(key, f"{where}.tags key")
        check_text(value, f"tags.{key}", "tag_value_length")
    for key, series in item.metrics.items():
        check_key(key, f"{where}.metrics key")
        n = len(series.values)
        if len(series.steps) != n or len(series.timestamps) != n:
            raise Invalid(
                f"metrics.{key}: steps, timestamps and values must have the same length "
                f"(got {len(series.steps)}, {len(series.timestamps)}, {n})",
                field=f"metrics.{key}",
            )
        for name, column in (("steps", series.steps), ("timestamps", series.timestamps)):
            if column and (min(column) < STEP_MIN or max(column) > STEP_MAX):
                raise Invalid(
                    f"metrics.{key}.{name}: every value must fit in a signed 64-bit integer",
                    field=f"metrics.{key}.{name}",
                )
    if item.notes is not None:
        check_text(item.notes, f"{where}.notes", "notes_length")
    if item.end is not None and item.end.status is RunStatus.RUNNING:
        raise Invalid(
            f"{where}.end.status: a run ends finished, failed or killed, not running",
            field=f"{where}.end.status",
        )


def _merge_into(target: RunBatch, item: RunBatch, where: str) -> None:
    if item.start is not None:
        if target.start is not None and target.start != item.start:
            raise Invalid(
                f"{where}: run {item.run_id} is started twice in one batch", field=f"{where}.start"
            )
        target.start = target.start or item.start
    for key, value in item.params.items():
        if target.params.get(key, value) != value:
            raise Invalid(
                f"{where}: param {key!r} has two values in one batch", field=f"params.{key}"
            )
        target.params[key] = value
    target.tags.update(item.tags)
    for key, series in item.metrics.items():
        into = target.metrics.setdefault(key, type(series)())
        into.steps = into.steps + series.steps
        into.timestamps = into.timestamps + series.timestamps
        into.values = into.values + series.values
    if item.notes:
        target.notes = f"{target.notes}\n\n{item.notes}" if target.notes else item.notes
    if item.end is not None:
        target.end = item.end
