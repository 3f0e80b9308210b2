"""The SDK's production side: endpoints, served predictions and the feedback that follows.

    ids = cairn.log_predictions("iris:3", X_batch, model.predict(X_batch))  # request ids
    cairn.log_feedback(ids, y_true)                                         # joined by id
    cairn.create_endpoint("churn", ["champion=iris@production:90",
                                    "challenger=iris@staging:10"])
    cairn.list_predictions(model="iris", since=datetime(2026, 3, 1, tzinfo=UTC))

For models served elsewhere. ``cairn serve`` logs its own predictions in the background;
these calls send now and return once the predictions are stored, so a model served in
a latency-bound path should queue them (or use ``cairn serve``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cairn.domain.errors import Invalid
from cairn.domain.ids import new_ulid
from cairn.domain.production import (
    MAX_BATCH,
    Endpoint,
    NewPrediction,
    Prediction,
    Variant,
    parse_variant_spec,
)

if TYPE_CHECKING:
    from cairn.client.backend import Backend

VariantLike = Variant | str | Mapping[str, Any]


class ProductionApi:
    """Mixed into ``Client``: needs ``backend`` and ``_project``."""

    backend: Backend

    def _project(self, project: str | None) -> str:
        raise NotImplementedError

    def log_predictions(
        self,
        model_ref: str,
        inputs: Any,
        outputs: Any,
        request_ids: Sequence[str] | None = None,
        unit_ids: Sequence[str | None] | None = None,
        latencies_ms: Sequence[float | None] | float | None = None,
        *,
        endpoint: str | None = None,
        variant: str | None = None,
        at: datetime | None = None,
        project: str | None = None,
    ) -> list[str]:
        """Record predictions a model made, one per input row; returns their request ids
        (ULIDs made here when not given), which ``log_feedback`` joins on later.

        ``inputs``: a list of dicts, a DataFrame, or array rows; ``outputs``: one per row.
        ``model_ref`` names the version that answered (``iris:3``; an alias is resolved
        now). Sending the same request ids again stores nothing twice.

        Example: ``ids = cairn.log_predictions("iris:3", df, clf.predict(df))``.
        """
        rows = as_rows(inputs, "inputs")
        answers = as_rows(outputs, "outputs")
        n = len(rows)
        if len(answers) != n:
            raise Invalid(f"outputs has {len(answers)} rows; inputs has {n}", field="outputs")
        ids = _per_row(request_ids, n, "request_ids")
        ids = [i if i is not None else new_ulid() for i in ids]
        units = _per_row(unit_ids, n, "unit_ids")
        latencies = _per_row(latencies_ms, n, "latencies_ms")
        records = [
            NewPrediction(
                request_id=ids[i],
                inputs=rows[i],
                outputs=answers[i],
                unit_id=units[i],
                at=at,
                latency_ms=latencies[i],
                variant=variant or "",
            )
            for i in range(n)
        ]
        name = self._project(project)
        if n > MAX_BATCH:  # one version for every chunk, even if the alias moves meanwhile
            model_ref = self.backend.get_model_version(model_ref, name).ref
        for start in range(0, n, MAX_BATCH):
            chunk = records[start : start + MAX_BATCH]
            self.backend.log_predictions(name, model_ref, chunk, endpoint)
        return ids

    def log_feedback(
        self, request_ids: Sequence[str] | str, actuals: Any, project: str | None = None
    ) -> int:
        """The ground truth for earlier predictions, by request id (sent again: replaced).

        Example: ``cairn.log_feedback(ids, y_true)`` or ``cairn.log_feedback("01H…", 1)``.
        """
        if isinstance(request_ids, str):
            ids, values = [request_ids], [actuals]
        else:
            ids = list(request_ids)
            values = as_rows(actuals, "actuals")
            if len(values) != len(ids):
                raise Invalid(
                    f"actuals has {len(values)} values; request_ids has {len(ids)}",
                    field="actuals",
                )
        name = self._project(project)
        stored = 0
        for start in range(0, len(ids), MAX_BATCH):
            chunk = dict(
                zip(ids[start : start + MAX_BATCH], values[start : start + MAX_BATCH], strict=True)
            )
            stored += self.backend.log_feedback(name, chunk)
        return stored

    def create_endpoint(
        self,
        name: str,
        variants: Sequence[VariantLike],
        *,
        description: str = "",
        settings: Mapping[str, Any] | None = None,
        project: str | None = None,
    ) -> Endpoint:
        """An endpoint serving its variants by weight (an A/B test, a canary, a shadow).

        Example: ``cairn.create_endpoint("churn", ["champion=iris@production:90",
        "challenger=iris@staging:10", "next=iris:4:0:shadow"])``.
        """
        return self.backend.create_endpoint(
            self._project(project),
            name,
            as_variants(variants),
            description,
            dict(settings or {}),
        )

    def set_endpoint_variants(
        self, name: str, variants: Sequence[VariantLike], project: str | None = None
    ) -> Endpoint:
        """Replace an endpoint's variants: new weights, a new challenger (audited)."""
        return self.backend.set_endpoint_variants(
            self._project(project), name, as_variants(variants)
        )

    def update_endpoint_settings(
        self, name: str, settings: Mapping[str, Any], project: str | None = None
    ) -> Endpoint:
        """Set some of an endpoint's settings (alert thresholds, the rollback rule)."""
        return self.backend.update_endpoint_settings(self._project(project), name, dict(settings))

    def get_endpoint(self, name: str, project: str | None = None) -> Endpoint:
        return self.backend.get_endpoint(name, self._project(project))

    def list_endpoints(self, project: str | None = None) -> list[Endpoint]:
        return self.backend.list_endpoints(self._project(project))

    def list_predictions(
        self,
        model: str | None = None,
        *,
        endpoint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1_000,
        project: str | None = None,
    ) -> list[Prediction]:
        """A model's (every version) or an endpoint's predictions in a window, oldest
        first, each stamped with its version and joined with its feedback.

        Example: ``[p.version for p in cairn.list_predictions("iris", limit=10)]``.
        """
        return self.backend.list_predictions(
            self._project(project),
            model=model,
            endpoint=endpoint,
            since=since,
            until=until,
            limit=limit,
        )


def as_variants(variants: Sequence[VariantLike]) -> list[Variant]:
    """Variants from ``Variant``, ``"name=ref:weight[:shadow]"`` or dicts."""
    if isinstance(variants, str | Mapping):
        raise Invalid("variants must be a list", field="variants")
    out = []
    for index, item in enumerate(variants):
        if isinstance(item, Variant):
            out.append(item)
        elif isinstance(item, str):
            out.append(parse_variant_spec(item))
        elif isinstance(item, Mapping):
            try:
                out.append(
                    Variant(
                        str(item["name"]),
                        str(item["target"]),
                        item["weight"],
                        bool(item.get("shadow", False)),
                    )
                )
            except KeyError as exc:
                raise Invalid(
                    f"variants[{index}] lacks {exc.args[0]!r}", field=f"variants[{index}]"
                ) from None
        else:
            raise Invalid(
                f"variants[{index}] must be a Variant, 'name=ref:weight' or a dict",
                field=f"variants[{index}]",
            )
    return out


def as_rows(data: Any, field: str) -> list[Any]:
    """One JSON-ready value per row: a DataFrame's records, an array's rows (as lists),
    a Series' values, or the items of a list. Missing numbers (NaN) become null."""
    if type(data).__name__ == "DataFrame":
        return [_plain(row) for row in data.to_dict("records")]
    if isinstance(data, str | bytes | Mapping) or data is None:
        raise Invalid(
            f"{field} must hold one item per row: a list, an array or a DataFrame", field=field
        )
    tolist = getattr(data, "tolist", None)  # numpy arrays, pandas Series
    if callable(tolist):
        data = tolist()
    try:
        return [_plain(item) for item in data]
    except TypeError:
        raise Invalid(
            f"{field} must hold one item per row: a list, an array or a DataFrame", field=field
        ) from None


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, pandas timestamps
    if callable(tolist):
        return _plain(tolist())
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return value


def _per_row(values: Any, n: int, field: str) -> list[Any]:
    if values is None:
        return [None] * n
    if isinstance(values, int | float) and field == "latencies_ms":
        return [float(values)] * n
    items = list(values)
    if len(items) != n:
        raise Invalid(f"{field} has {len(items)} items; inputs has {n} rows", field=field)
    return items
