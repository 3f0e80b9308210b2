"""The inference server's core, with no web framework in it: routing, predicting, shadows,
following the registry, and handing every prediction to the log.

    server = InferenceServer(cairn.Client(uri), project="default", model_ref="iris@production")
    server.start()                       # loads, then polls the registry every 2 s
    server.predict(PredictIn(records=[{"sepal_length": 5.1, ...}]))
    server.stop()

With an endpoint, each request gets a variant by ``assign_variant`` (sticky per unit id,
random without); every shadow variant gets a copy of the request on a worker thread, and
its answers are logged (``shadow=True``), never returned and never waited for.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cairn.client.production_api import as_rows
from cairn.domain.errors import CairnError, Invalid, Unavailable
from cairn.domain.ids import new_ulid
from cairn.domain.production import Endpoint, NewPrediction, Variant, assign_variant
from cairn.schemas.production import PredictIn
from cairn.serving.metrics import ServingMetrics
from cairn.serving.payload import Rows, parse_rows, row_ids
from cairn.serving.prediction_log import PredictionLog
from cairn.serving.slots import ModelSlot, RegistryClient, Served

log = logging.getLogger("cairn.serve")
_MESSAGE_MAX = 500


@dataclass(frozen=True)
class Route:
    """What requests are routed by; replaced whole, never changed in place."""

    endpoint: Endpoint | None
    slots: dict[str, ModelSlot] = field(default_factory=dict)  # by target reference


@dataclass(frozen=True, slots=True)
class _Call:
    """One request's rows and identity, shared by the answer and its shadows."""

    rows: Rows
    ids: list[str]
    unit_id: str | None
    at: datetime
    endpoint: str | None


class InferenceServer:
    def __init__(
        self,
        registry: RegistryClient,
        *,
        project: str,
        model_ref: str | None = None,
        endpoint: str | None = None,
        log: PredictionLog | None = None,
        metrics: ServingMetrics | None = None,
        poll_interval_s: float = 2.0,
        workers: int = 40,
        shadow_workers: int = 2,
        shadow_backlog: int = 1_000,
    ) -> None:
        if (model_ref is None) == (endpoint is None):
            raise Invalid("serve either a model reference or an endpoint", field="model")
        self.registry = registry
        self.project = project
        self.model_ref = model_ref
        self.endpoint_name = endpoint
        self.log = log
        self.metrics = metrics or ServingMetrics()
        self.poll_interval_s = poll_interval_s
        self.shadow_backlog = shadow_backlog
        slots = {model_ref: ModelSlot(model_ref, project)} if model_ref else {}
        self._route = Route(None, slots)
        self._stop = threading.Event()
        self._follower = threading.Thread(target=self._follow, name="cairn-follow", daemon=True)
        # Calls that do not run on the event loop (see loop_budget.py) run here; as many
        # at once as Starlette's thread pool, which ran them all before.
        self.workers = ThreadPoolExecutor(workers, thread_name_prefix="cairn-predict")
        self._shadows = ThreadPoolExecutor(shadow_workers, thread_name_prefix="cairn-shadow")
        self._shadow_lock = threading.Lock()
        self._shadow_pending = 0
        self._info: set[tuple[str, str, str, str]] = set()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start following the registry (the first look loads the models) and logging."""
        if self.log is not None:
            self.log.start()
        self._follower.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling, let running calls and shadows finish, send the queued predictions."""
        self._stop.set()
        if self._follower.is_alive():
            self._follower.join(timeout)
        self.workers.shutdown(wait=True)
        self._shadows.shutdown(wait=True, cancel_futures=True)
        if self.log is not None:
            self.log.close(timeout)

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # the registry is away: serve what is loaded, try again
                self.metrics.load_errors.inc()
                log.warning("cairn serve: cannot read the registry: %s", exc)
            self._stop.wait(self.poll_interval_s)

    # -- following the registry -----------------------------------------------------------

    def refresh(self) -> None:
        """One look at the registry: the endpoint's variants, then every target's version."""
        if self.endpoint_name is not None:
            self._refresh_endpoint(self.endpoint_name)
        route = self._route
        for target, slot in route.slots.items():
            try:
                changed = slot.refresh(self.registry)
            except Exception as exc:
                self.metrics.load_errors.inc()
                log.warning("cairn serve: cannot load %s: %s", target, exc)
                continue
            if changed and slot.current is not None:
                for name in self._variants_of(route, target):
                    self.metrics.swaps.inc(name)
                log.info("cairn serve: %s now serves %s", target, slot.current.version)
        self._publish_info(route)

    def _refresh_endpoint(self, name: str) -> None:
        found = self.registry.get_endpoint(name, self.project)
        old = self._route
        if old.endpoint is not None and old.endpoint.variants == found.variants:
            return
        slots = {
            v.target: old.slots.get(v.target) or ModelSlot(v.target, self.project)
            for v in found.variants
        }
        serving = {v.target for v in found.serving()}
        for target, slot in slots.items():
            if slot.current is not None:
                continue
            try:
                slot.refresh(self.registry)
            except Exception as exc:
                self.metrics.load_errors.inc()
                log.warning("cairn serve: cannot load %s: %s", target, exc)
                if target in serving and old.endpoint is not None:
                    return  # keep the old variants until the new ones can answer
        self._route = Route(found, slots)
        log.info("cairn serve: endpoint %s routes %s", name, found.variants)

    @staticmethod
    def _variants_of(route: Route, target: str) -> list[str]:
        if route.endpoint is None:
            return [""]
        return [v.name for v in route.endpoint.variants if v.target == target]

    def _publish_info(self, route: Route) -> None:
        now = set()
        for target, slot in route.slots.items():
            served = slot.current
            if served is None:
                continue
            v = served.version
            for name in self._variants_of(route, target):
                now.add((v.name, str(v.version), v.semver, name))
        for labels in self._info - now:
            self.metrics.model_info.remove(*labels)
        for labels in now:
            self.metrics.model_info.set(*labels, value=1)
        self._info = now

    def ready(self) -> bool:
        """Every variant that answers has a model loaded."""
        route = self._route
        if self.endpoint_name is None:
            return all(s.current is not None for s in route.slots.values())
        if route.endpoint is None:
            return False
        return all(route.slots[v.target].current is not None for v in route.endpoint.serving())

    def status(self) -> list[dict[str, Any]]:
        """What each variant serves now (``/readyz``)."""
        route = self._route
        if route.endpoint is None:
            variants = [Variant("", t, 1) for t in route.slots]
        else:
            variants = route.endpoint.variants
        out = []
        for v in variants:
            served = route.slots[v.target].current
            entry: dict[str, Any] = {"variant": v.name or None, "target": v.target}
            if route.endpoint is not None:
                entry.update(weight=v.weight, shadow=v.shadow)
            entry.update(served.describe() if served else {"loaded": False})
            out.append(entry)
        return out

    # -- answering --------------------------------------------------------------------------

    def predict(self, body: PredictIn) -> dict[str, Any]:
        """Answer one request; raises ``Invalid`` (bad rows) or ``Unavailable`` (no model)."""
        started = time.perf_counter()
        at = datetime.now(UTC)
        route = self._route
        variant = self._assign(route, body.unit_id)
        target = variant.target if variant else self.model_ref
        slot = route.slots.get(target) if target else None
        served = slot.current if slot is not None else None
        name = variant.name if variant else ""
        if served is None:
            self.metrics.requests.inc(target or "", "", name)
            self.metrics.errors.inc(target or "", "", name)
            raise Unavailable(
                f"no model is loaded yet for {target or self.endpoint_name}",
                details={"target": target or self.endpoint_name},
            )
        request_id = body.request_id or new_ulid()
        endpoint = route.endpoint.name if route.endpoint else None
        labels = (served.version.name, str(served.version.version), name)
        call: _Call | None = None
        try:
            rows = parse_rows(body, served.names)
            call = _Call(rows, row_ids(request_id, len(rows.logged)), body.unit_id, at, endpoint)
            outputs = _predict(served, rows)
        except Exception as exc:
            elapsed = time.perf_counter() - started
            self._count(self.metrics, labels, elapsed, 0, error=True)
            if call is not None:
                self._log(served, name, call, None, elapsed, _message(exc), shadow=False)
            error = _as_error(exc)
            if error is exc:
                raise
            raise error from exc
        elapsed = time.perf_counter() - started
        served.timing.add(elapsed)
        self._count(self.metrics, labels, elapsed, len(outputs), error=False)
        self._log(served, name, call, outputs, elapsed, None, shadow=False)
        if route.endpoint is not None:
            for shadow in route.endpoint.shadows():
                self._copy_to_shadow(route, shadow, call)
        v = served.version
        return {
            "predictions": outputs,
            "model": v.name,
            "version": v.version,
            "semver": v.semver,
            "request_id": request_id,
            "request_ids": call.ids,
            "variant": variant.name if variant else None,
        }

    def expected_s(self) -> float:
        """How long a call is expected to take: the recent average of the slowest model
        that answers (shadows run apart); infinite until each has answered once."""
        route = self._route
        if route.endpoint is not None:
            targets = [v.target for v in route.endpoint.serving()]
        elif self.endpoint_name is None:
            targets = list(route.slots)
        else:
            return math.inf  # the endpoint is not loaded yet
        worst = 0.0
        for target in targets:
            served = route.slots[target].current
            if served is None:
                return math.inf
            worst = max(worst, served.timing.seconds)
        return worst

    def refused(self) -> None:
        """Count a request refused before it reached a model (a body that is not valid)."""
        what = self.model_ref or self.endpoint_name or ""
        self.metrics.requests.inc(what, "", "")
        self.metrics.errors.inc(what, "", "")

    def _assign(self, route: Route, unit_id: str | None) -> Variant | None:
        if self.endpoint_name is None:
            return None
        if route.endpoint is None:
            raise Unavailable(
                f"endpoint {self.endpoint_name!r} is not loaded yet",
                details={"endpoint": self.endpoint_name},
            )
        return assign_variant(route.endpoint.name, route.endpoint.variants, unit_id)

    @staticmethod
    def _count(
        metrics: ServingMetrics,
        labels: tuple[str, str, str],
        elapsed: float,
        rows: int,
        *,
        error: bool,
        shadow: bool = False,
    ) -> None:
        if shadow:
            metrics.shadow_requests.inc(*labels)
            if error:
                metrics.shadow_errors.inc(*labels)
            return
        metrics.requests.inc(*labels)
        metrics.latency.observe(*labels, value=elapsed)
        if error:
            metrics.errors.inc(*labels)
        else:
            metrics.rows.inc(*labels, amount=rows)

    def _log(
        self,
        served: Served,
        variant: str,
        call: _Call,
        outputs: list[Any] | None,
        elapsed: float,
        error: str | None,
        *,
        shadow: bool,
    ) -> None:
        if self.log is None:
            return
        latency = round(elapsed * 1000, 3)
        records = [
            NewPrediction(
                request_id=rid,
                inputs=inputs,
                outputs=outputs[i] if outputs is not None else None,
                unit_id=call.unit_id,
                at=call.at,
                latency_ms=latency,
                error=error,
                variant=variant,
                shadow=shadow,
            )
            for i, (rid, inputs) in enumerate(zip(call.ids, call.rows.logged, strict=True))
        ]
        v = served.version
        self.log.put(v.project, v.ref, call.endpoint, records)

    # -- shadows --------------------------------------------------------------------------

    def _copy_to_shadow(self, route: Route, shadow: Variant, call: _Call) -> None:
        slot = route.slots.get(shadow.target)
        served = slot.current if slot is not None else None
        with self._shadow_lock:
            if served is None or self._shadow_pending >= self.shadow_backlog:
                self.metrics.shadow_skipped.inc(shadow.name)
                return
            self._shadow_pending += 1
        try:
            self._shadows.submit(self._run_shadow, served, shadow.name, call)
        except RuntimeError:  # shutting down
            self._shadow_done()
            self.metrics.shadow_skipped.inc(shadow.name)

    def _run_shadow(self, served: Served, name: str, call: _Call) -> None:
        labels = (served.version.name, str(served.version.version), name)
        started = time.perf_counter()
        try:
            outputs = _predict(served, call.rows)
        except Exception as exc:
            self._count(self.metrics, labels, 0.0, 0, error=True, shadow=True)
            elapsed = time.perf_counter() - started
            self._log(served, name, call, None, elapsed, _message(exc), shadow=True)
        else:
            self._count(self.metrics, labels, 0.0, len(outputs), error=False, shadow=True)
            elapsed = time.perf_counter() - started
            self._log(served, name, call, outputs, elapsed, None, shadow=True)
        finally:
            self._shadow_done()

    def _shadow_done(self) -> None:
        with self._shadow_lock:
            self._shadow_pending -= 1


def _predict(served: Served, rows: Rows) -> list[Any]:
    outputs = as_rows(served.model.predict(rows.data), "outputs")
    if len(outputs) != len(rows.logged):
        raise CairnError(f"the model answered {len(outputs)} rows for {len(rows.logged)}")
    return outputs


def _message(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, CairnError) else f"{type(exc).__name__}: {exc}"
    return text[:_MESSAGE_MAX]


def _as_error(exc: Exception) -> Exception:
    """A model that refuses its input (ValueError, TypeError) is the caller's 400."""
    if isinstance(exc, CairnError):
        return exc
    if isinstance(exc, ValueError | TypeError):
        return Invalid(f"the model cannot predict these rows: {_message(exc)}", field="body")
    return exc
