"""Production: endpoints with weighted variants, and the record of served predictions.

endpoints = EndpointService(db, registry)
endpoints.create("default", "churn", [Variant("champion", "iris@production", 90),
                                      Variant("challenger", "iris@staging", 10)])
predictions = PredictionService(db, registry)
predictions.log_predictions("default", "iris@production", [NewPrediction("req-1", {...}, 0)])
predictions.log_feedback("default", {"req-1": 1})

Every prediction names the model version that made it (an alias is resolved when the
batch is logged, so a later move of the alias never rewrites history). A resent batch
is harmless: one row per (request id, variant).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic_core import PydanticSerializationError, to_json

from cairn.domain.datasets import check_optional_text
from cairn.domain.errors import AlreadyExists, Invalid, NotFound, TooLarge
from cairn.domain.ids import new_ulid
from cairn.domain.production import (
    MAX_BATCH,
    MAX_RECORD_BYTES,
    Endpoint,
    Prediction,
    PredictionRecord,
    Variant,
    check_variants,
)
from cairn.domain.records import datetime_to_ms, ms_to_datetime, now_ms
from cairn.domain.validation import DEFAULT_PROJECT, check_name, check_project_name
from cairn.services.registry import RegistryService, find_version, locate
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository, NewEvent
from cairn.store.repositories.models import ModelRepository
from cairn.store.repositories.production import ProductionRepository
from cairn.store.repositories.projects import ProjectRepository


def endpoint_not_found(project: str, name: str) -> NotFound:
    return NotFound(
        f"endpoint {name!r} does not exist in project {project!r}",
        details={"project": project, "endpoint": name},
    )


def _json(value: Any, field: str) -> str:
    """``value`` as JSON text; NaN and infinities are refused (JSON has no such numbers)."""
    try:
        encoded = to_json(value, fallback=_plain, inf_nan_mode="constants")
        if b"NaN" in encoded or b"Infinity" in encoded:
            # A non-finite number, or only text that reads so: the standard encoder knows.
            encoded = _STRICT.encode(value).encode()
    except (TypeError, ValueError, PydanticSerializationError) as exc:
        raise Invalid(f"{field} cannot be stored as JSON: {exc}", field=field) from None
    if len(encoded) > MAX_RECORD_BYTES:
        raise TooLarge(
            f"{field} is {len(encoded):,} bytes as JSON; the limit is {MAX_RECORD_BYTES:,}",
            details={"field": field, "max": MAX_RECORD_BYTES},
        )
    return encoded.decode()


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# pydantic-core's encoder is ten times the standard one's speed on a row of features (most
# of the cost of logging a prediction); the standard one decides only when a value may
# hold a non-finite number.
_STRICT = json.JSONEncoder(allow_nan=False, default=_plain)


class EndpointService:
    def __init__(self, db: Database, registry: RegistryService) -> None:
        self.db = db
        self.registry = registry

    def create(
        self,
        project: str,
        name: str,
        variants: list[Variant],
        *,
        description: str = "",
        settings: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Endpoint:
        """An endpoint serving its variants by weight; every target must resolve now."""
        check_project_name(project)
        check_name(name, "endpoint")
        check_variants(variants)
        description = check_optional_text(description, "description", 10_000) or ""
        for index, variant in enumerate(variants):
            self._check_target(variant, index, project)
        with self.db.write() as tx:
            project_row, _created = ProjectRepository(tx.conn).ensure(project)
            repo = ProductionRepository(tx.conn)
            if repo.endpoint_id(project_row.id, name) is not None:
                raise AlreadyExists(
                    f"endpoint {name!r} already exists in project {project!r}",
                    details={"project": project, "endpoint": name},
                )
            endpoint_id = repo.create_endpoint(
                project_row.id, name, description, dict(settings or {})
            )
            repo.set_variants(endpoint_id, variants)
            EventRepository(tx.conn).add_many(
                actor,
                [
                    NewEvent(
                        "endpoint.created",
                        "endpoint",
                        f"{project}/{name}",
                        project_row.id,
                        after={"variants": [_variant_dict(v) for v in variants]},
                    )
                ],
            )
            return repo.get_endpoint(endpoint_id, project)

    def _check_target(self, variant: Variant, index: int, project: str) -> None:
        try:
            self.registry.resolve(variant.target, project)
        except (NotFound, Invalid) as exc:
            raise Invalid(
                f"variants[{index}] ({variant.name}): {exc.message}",
                field=f"variants[{index}].target",
            ) from None

    def set_variants(
        self, project: str, name: str, variants: list[Variant], *, actor: str | None = None
    ) -> Endpoint:
        """Replace the variants (new weights, a new challenger); audited with before/after."""
        check_variants(variants)
        for index, variant in enumerate(variants):
            self._check_target(variant, index, project)
        with self.db.write() as tx:
            project_row = ProjectRepository(tx.conn).find(project)
            repo = ProductionRepository(tx.conn)
            endpoint_id = repo.endpoint_id(project_row.id, name) if project_row else None
            if project_row is None or endpoint_id is None:
                raise endpoint_not_found(project, name)
            before = repo.get_endpoint(endpoint_id, project)
            repo.set_variants(endpoint_id, variants)
            EventRepository(tx.conn).add_many(
                actor,
                [
                    NewEvent(
                        "endpoint.variants_changed",
                        "endpoint",
                        f"{project}/{name}",
                        project_row.id,
                        before={"variants": [_variant_dict(v) for v in before.variants]},
                        after={"variants": [_variant_dict(v) for v in variants]},
                    )
                ],
            )
            return repo.get_endpoint(endpoint_id, project)

    def update_settings(
        self, project: str, name: str, settings: Mapping[str, Any], *, actor: str | None = None
    ) -> Endpoint:
        """Alert thresholds and the rollback rule (see services/monitoring.py)."""
        with self.db.write() as tx:
            project_row = ProjectRepository(tx.conn).find(project)
            repo = ProductionRepository(tx.conn)
            endpoint_id = repo.endpoint_id(project_row.id, name) if project_row else None
            if project_row is None or endpoint_id is None:
                raise endpoint_not_found(project, name)
            before = repo.get_endpoint(endpoint_id, project)
            merged = {**before.settings, **dict(settings)}
            repo.update_endpoint(endpoint_id, description=None, settings=merged)
            EventRepository(tx.conn).add_many(
                actor,
                [
                    NewEvent(
                        "endpoint.settings_changed",
                        "endpoint",
                        f"{project}/{name}",
                        project_row.id,
                        before={"settings": before.settings},
                        after={"settings": merged},
                    )
                ],
            )
            return repo.get_endpoint(endpoint_id, project)

    def get(self, name: str, project: str = DEFAULT_PROJECT) -> Endpoint:
        with self.db.read() as conn:
            project_row = ProjectRepository(conn).find(project)
            repo = ProductionRepository(conn)
            endpoint_id = repo.endpoint_id(project_row.id, name) if project_row else None
            if endpoint_id is None:
                raise endpoint_not_found(project, name)
            return repo.get_endpoint(endpoint_id, project)

    def list(self, project: str = DEFAULT_PROJECT) -> list[Endpoint]:
        with self.db.read() as conn:
            project_row = ProjectRepository(conn).get(project)
            return ProductionRepository(conn).list_endpoints(project_row.id, project)


class PredictionService:
    def __init__(self, db: Database, registry: RegistryService) -> None:
        self.db = db
        self.registry = registry

    def log_predictions(
        self,
        project: str,
        model_ref: str,
        records: Sequence[PredictionRecord],
        *,
        endpoint: str | None = None,
    ) -> int:
        """Record predictions of one model version (the ref is resolved now); returns how
        many were new (a resent request id is skipped)."""
        if not records:
            return 0
        if len(records) > MAX_BATCH:
            raise TooLarge(
                f"log at most {MAX_BATCH:,} predictions per call; got {len(records):,}",
                details={"field": "records", "max": MAX_BATCH},
            )
        now = now_ms()
        rows = [_row(r, i, now) for i, r in enumerate(records)]
        with self.db.write() as tx:
            where, version = find_version(tx.conn, model_ref, project)
            repo = ProductionRepository(tx.conn)
            endpoint_id = None
            if endpoint is not None:
                endpoint_id = repo.endpoint_id(where.project_id, endpoint)
                if endpoint_id is None:
                    raise endpoint_not_found(where.project, endpoint)
            head = (where.project_id, where.model_id, version, endpoint_id)
            return repo.add_predictions([head + row for row in rows])

    def log_feedback(self, project: str, actuals: Mapping[str, Any]) -> int:
        """Ground truth by request id; sending it again replaces it."""
        check_project_name(project)
        if len(actuals) > MAX_BATCH:
            raise TooLarge(
                f"log at most {MAX_BATCH:,} feedback values per call",
                details={"field": "actuals", "max": MAX_BATCH},
            )
        items = []
        for request_id, actual in actuals.items():
            if not isinstance(request_id, str) or not request_id or len(request_id) > 100:
                raise Invalid(
                    "request ids are non-empty text of at most 100 characters", field="request_ids"
                )
            items.append((request_id, _json(actual, f"actuals[{request_id}]")))
        with self.db.write() as tx:
            project_row, _created = ProjectRepository(tx.conn).ensure(project)
            ProductionRepository(tx.conn).upsert_feedback(project_row.id, items)
        return len(items)

    def predictions(
        self,
        project: str,
        *,
        model: str | None = None,
        endpoint: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100_000,
    ) -> list[Prediction]:
        """A model's (all versions) or an endpoint's predictions in a window, oldest first,
        with the feedback that arrived for each."""
        with self.db.read() as conn:
            project_row = ProjectRepository(conn).get(project)
            repo = ProductionRepository(conn)
            model_id = locate(conn, project, model).model_id if model else None
            endpoint_id = repo.endpoint_id(project_row.id, endpoint) if endpoint else None
            if endpoint and endpoint_id is None:
                raise endpoint_not_found(project, endpoint)
            rows = repo.predictions(
                project_row.id,
                model_id=model_id,
                endpoint_id=endpoint_id,
                since_ms=datetime_to_ms(since),
                until_ms=datetime_to_ms(until),
                limit=limit,
            )
            names = ModelRepository(conn).names({r.model_id for r in rows})
        out = []
        for r in rows:
            at = ms_to_datetime(r.at)
            assert at is not None
            out.append(
                Prediction(
                    project=project,
                    model=names.get(r.model_id, "?"),
                    version=int(r.model_version),
                    request_id=r.request_id,
                    at=at,
                    inputs=json.loads(r.inputs),
                    outputs=json.loads(r.outputs) if r.outputs is not None else None,
                    unit_id=r.unit_id,
                    latency_ms=r.latency_ms,
                    error=r.error,
                    endpoint=endpoint,
                    variant=r.variant,
                    shadow=bool(r.shadow),
                    actual=json.loads(r.actual) if r.actual is not None else None,
                )
            )
        return out


def _row(record: PredictionRecord, index: int, now: int) -> tuple[Any, ...]:
    """A prediction's columns after the four of its model version and endpoint (in the
    order of ``PREDICTION_COLUMNS``), checked."""
    request_id = record.request_id or new_ulid()
    if not isinstance(request_id, str) or len(request_id) > 100:
        raise Invalid(
            f"records[{index}].request_id must be text of at most 100 characters",
            field=f"records[{index}].request_id",
        )
    latency = record.latency_ms
    if latency is not None and (not isinstance(latency, (int, float)) or latency < 0):
        field = f"records[{index}].latency_ms"
        raise Invalid(f"{field} must be a number >= 0", field=field)
    return (
        record.variant or "",
        bool(record.shadow),
        request_id,
        check_optional_text(record.unit_id, f"records[{index}].unit_id", 250),
        datetime_to_ms(record.at) if record.at is not None else now,
        _json(record.inputs, f"records[{index}].inputs"),
        _json(record.outputs, f"records[{index}].outputs"),
        float(latency) if latency is not None else None,
        check_optional_text(record.error, f"records[{index}].error", 10_000),
    )


def _variant_dict(v: Variant) -> dict[str, Any]:
    return {"name": v.name, "target": v.target, "weight": v.weight, "shadow": v.shadow}
