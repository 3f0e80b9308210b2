"""Monitoring: how each model version behaves on real traffic, window by window.

monitoring = MonitoringService(db, registry, data, aliases)
report = monitoring.report("default", endpoint="churn", since=now - timedelta(hours=24),
                           window=timedelta(hours=1))
report.windows[-1].groups[0].latency.p95, report.alerts
monitoring.check_rollbacks()        # what the server runs every minute

Per window (aligned to multiples of its length), and per model version (and variant, for
an endpoint): volume, error rate, latency percentiles, the distribution of the outputs,
quality once feedback has arrived, and the inputs' drift from the profile of the dataset
version the model was trained on. The arithmetic is ``domain/prediction_stats.py``; the
thresholds and settings are ``domain/monitoring.py``.

A report reads no prediction it need not: volume, errors, latencies and outputs come from
the per-minute rollups kept as predictions are logged (``domain/rollups.py``) plus the
predictions of the minute its end cuts; quality from the feedback joined to the
predictions it names; drift from a bounded sample of inputs read by time (``_strata``).
Windows that are not whole minutes, and outputs with more distinct classes than a rollup
keeps, are counted off the predictions instead (exact, slower).

A crossed threshold is an audit event ``monitoring.alert`` on the endpoint (or model),
written once per window, metric and version however often reports are made; webhooks
that want it are sent. An endpoint's rollback rule moves its alias back when the version
it points to crosses the rule on the predictions made since the alias moved there.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection

from cairn.domain.errors import CairnError, Invalid, NotFound
from cairn.domain.models import ModelVersion
from cairn.domain.monitoring import (
    Alert,
    Drift,
    GroupStats,
    MonitorConfig,
    MonitoringReport,
    Rollback,
    RollbackRule,
    Threshold,
    Window,
    as_utc,
    crossings,
    parse_duration,
    window_bounds,
)
from cairn.domain.prediction_stats import (
    DRIFT_SAMPLE,
    Counted,
    Reference,
    sampled_drift,
    summarize,
    summarize_counted,
    summarize_rollup,
)
from cairn.domain.production import Endpoint
from cairn.domain.records import datetime_to_ms
from cairn.domain.refs import RefKind, parse_ref
from cairn.domain.rollups import MINUTE_MS, Rollup, RollupIncomplete, fold
from cairn.domain.validation import check_project_name
from cairn.services.aliases import AliasService
from cairn.services.data import DataService
from cairn.services.production import EndpointService, PredictionService, endpoint_not_found
from cairn.services.registry import RegistryService, locate
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository, NewEvent
from cairn.store.repositories.models import ModelRepository
from cairn.store.repositories.prediction_rollups import RollupRepository
from cairn.store.repositories.production import PredictionScope, ProductionRepository
from cairn.store.repositories.projects import ProjectRepository

log = logging.getLogger("cairn.monitoring")

ALERT_ACTION = "monitoring.alert"
MONITOR_ACTOR = "cairn-monitor"  # who the rollback rule acts as, in the audit log
DEFAULT_SINCE = timedelta(hours=24)
DEFAULT_WINDOW = timedelta(hours=1)
WINDOW_LIMIT = 100_000  # predictions a rollback rule reads
# Input rows profiled for drift in one report, shared by its groups (each gets at least
# DRIFT_FLOOR, at most DRIFT_SAMPLE): profiling and KS in plain Python are a report's slow
# part (a day of hourly windows: 25 groups of 1,000). KS against a 5,000-row profile from
# 1,000 rows has noise about 0.03, and P(KS > 0.1) under no drift about 1e-7 (threshold 0.1).
DRIFT_BUDGET = 25_000
DRIFT_FLOOR = 1_000
# Reading from rollups, a group's sample is the earliest successful predictions of each
# of at most STRATA runs of the window's minutes (an hour: of each 5 minutes), read by the
# index on time: it costs the sample, not the window, and spans the window. Deterministic,
# so a report made again finds the same drift.
STRATA = 12
SAMPLE_HOW = ", the earliest in each part of the window"


@dataclass(frozen=True, slots=True)
class _Subject:
    """What a report is about, and where its alerts are recorded."""

    project: str
    endpoint: Endpoint | None
    model: str | None
    version: int | None  # a model report restricted to one version
    config: MonitorConfig

    @property
    def entity(self) -> tuple[str, str]:
        if self.endpoint is not None:
            return "endpoint", f"{self.project}/{self.endpoint.name}"
        return "model", f"{self.project}/{self.model}"


class MonitoringService:
    def __init__(
        self,
        db: Database,
        registry: RegistryService,
        data: DataService,
        aliases: AliasService,
        *,
        window_limit: int = WINDOW_LIMIT,
    ) -> None:
        self.db = db
        self.registry = registry
        self.data = data
        self.aliases = aliases
        self.predictions = PredictionService(db, registry)
        self.endpoints = EndpointService(db, registry)
        self.window_limit = window_limit

    # -- the report -----------------------------------------------------------------------

    def report(
        self,
        project: str,
        *,
        endpoint: str | None = None,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        window: timedelta | str = DEFAULT_WINDOW,
        record: bool = True,
        actor: str | None = None,
    ) -> MonitoringReport:
        """Statistics per window and version of an endpoint's or a model's predictions
        (``model`` may name one version: ``iris:3``, ``iris@production``). With ``record``,
        alerts are written (once each) and the endpoint's rollback rule is applied.

        Example: ``monitoring.report("default", endpoint="churn", since=day_ago)``.
        """
        check_project_name(project)
        if (endpoint is None) == (model is None):
            raise Invalid("name an endpoint or a model (one of them)", field="endpoint")
        size = parse_duration(window)
        until = as_utc(until, "until") if until is not None else datetime.now(UTC)
        since = as_utc(since) if since is not None else _earlier(until, DEFAULT_SINCE)
        if since >= until:
            raise Invalid("since must be earlier than until", field="since")
        bounds = window_bounds(since, until, size)
        subject = self._subject(project, endpoint, model)
        windows = None
        if round(size.total_seconds() * 1000) % MINUTE_MS == 0:
            try:
                windows = self._from_rollups(subject, bounds, until, size)
            except RollupIncomplete as exc:
                log.info("cairn: report of %s reads predictions: %s", subject.entity[1], exc)
        if windows is None:
            windows = self._from_predictions(subject, bounds, until, size)
        alerts = [a for w in windows for g in w.groups for a in crossings(g, subject.config, w)]
        rollbacks: list[Rollback] = []
        if record:
            alerts = self._record(subject, alerts, actor)
            rule = subject.config.rollback
            if subject.endpoint is not None and rule is not None:
                rollbacks = self._apply_rollback(subject, rule, since, until)
        return MonitoringReport(
            project=project,
            endpoint=endpoint,
            model=model,
            since=since,
            until=until,
            window_s=size.total_seconds(),
            windows=windows,
            alerts=alerts,
            rollbacks=rollbacks,
        )

    def _from_predictions(
        self, subject: _Subject, bounds: list[datetime], until: datetime, size: timedelta
    ) -> list[Window]:
        """The windows counted off the predictions themselves: for windows that are not
        whole minutes, and outputs the rollups no longer tell apart."""
        counted = self._count(subject, bounds, until, size)
        references: dict[tuple[str, int], Reference] = {}
        sample = _sample_size(sum(len(g) for g in counted.values()))
        windows = []
        for index, (start, end) in enumerate(pairwise(bounds)):
            groups = [
                self._summarize(subject, key, found, references, sample)
                for key, found in sorted(counted.get(index, {}).items())
            ]
            windows.append(Window(start, end, groups))
        return windows

    def _from_rollups(
        self, subject: _Subject, bounds: list[datetime], until: datetime, size: timedelta
    ) -> list[Window]:
        """The windows added up from the per-minute rollups (feedback counted in them as
        it arrived), the minute ``until`` cuts from its predictions, drift from a sample
        of the inputs."""
        by_variant = subject.endpoint is not None
        with self.db.read() as conn:
            scope = self._scope(conn, subject, bounds, until, size)
        found, names = self._rollups(scope)
        groups = _gather(scope, found, names, by_variant=by_variant)
        references: dict[tuple[str, int], Reference] = {}
        sample = _sample_size(sum(len(g) for g in groups.values()))
        drifts = {
            (index, key): self._drift(subject, key, group, references, sample)
            for index, window in groups.items()
            for key, group in window.items()
        }
        windows = []
        for index, (start, end) in enumerate(pairwise(bounds)):
            stats = [
                summarize_rollup(
                    group.rollup,
                    model=key[1],
                    version=key[2],
                    variant=key[0],
                    shadow=group.shadow,
                    task=subject.config.task,
                    drift=drifts[index, key],
                )
                for key, group in sorted(groups.get(index, {}).items())
            ]
            windows.append(Window(start, end, stats))
        return windows

    def _rollups(
        self, scope: PredictionScope
    ) -> tuple[list[tuple[int, str, int, int, bool, Rollup]], dict[int, str]]:
        """The scope's minutes' rollups, those of the minute its end cuts (added up from
        its predictions), and the names of their models."""
        with self.db.read() as conn:
            edge = max(scope.origin_ms, scope.until_ms // MINUTE_MS * MINUTE_MS)
            found = RollupRepository(conn).read(
                scope.project_id,
                scope.origin_ms,
                edge,
                model_id=scope.model_id,
                endpoint_id=scope.endpoint_id,
                version=scope.version,
            )
            models = ModelRepository(conn)
            versions = None
            if scope.model_id is not None and scope.version is None:
                versions = range(1, (models.latest_version(scope.model_id) or 0) + 1)
            production = ProductionRepository(conn)
            tail = production.rollup_sources(replace(scope, since_ms=edge), versions)
            for key, rollup in fold(tail, production.actuals_of(tail)).items():
                found.append((key[6], key[4], key[1], key[2], key[5], rollup))
            names = models.names({r[2] for r in found})
        return found, names

    def _drift(
        self,
        subject: _Subject,
        key: _Key,
        group: _Group,
        references: dict[tuple[str, int], Reference],
        sample: int,
    ) -> Drift | None:
        """A group's drift, from a sample of its inputs (see ``_strata``)."""
        _variant, model, version = key
        reference = self._reference(subject, model, version, references)
        inputs: list[Any] = []
        ok = group.rollup.volume - group.rollup.errors
        if reference is not None and reference.profile is not None and ok:
            strata, per = _strata(group, sample)
            with self.db.read() as conn:
                texts = ProductionRepository(conn).inputs_strata(
                    group.scope, group.variant, group.model_id, version, strata, per
                )
            inputs = json.loads("[" + ",".join(texts) + "]")  # one call: faster
        return sampled_drift(inputs, ok, reference, subject.config.drift, SAMPLE_HOW)

    def _reference(
        self,
        subject: _Subject,
        model: str,
        version: int,
        references: dict[tuple[str, int], Reference],
    ) -> Reference | None:
        if subject.config.drift is None:
            return None
        if (model, version) not in references:
            references[model, version] = self.reference(subject.project, model, version)
        return references[model, version]

    def _scope(
        self,
        conn: Connection,
        subject: _Subject,
        bounds: list[datetime],
        until: datetime,
        size: timedelta,
    ) -> PredictionScope:
        """What a report reads: the subject's rows by id, from the first window's start."""
        project_row = ProjectRepository(conn).get(subject.project)
        model_id = locate(conn, subject.project, subject.model).model_id if subject.model else None
        endpoint_id = None
        if subject.endpoint is not None:
            endpoint_id = ProductionRepository(conn).endpoint_id(
                project_row.id, subject.endpoint.name
            )
            if endpoint_id is None:
                raise endpoint_not_found(subject.project, subject.endpoint.name)
        origin = _ms(bounds[0])
        return PredictionScope(
            project_row.id,
            since_ms=origin,
            until_ms=_ms(until),
            origin_ms=origin,
            size_ms=max(1, round(size.total_seconds() * 1000)),
            model_id=model_id,
            endpoint_id=endpoint_id,
            version=subject.version,
        )

    def _subject(self, project: str, endpoint: str | None, model: str | None) -> _Subject:
        if endpoint is not None:
            found = self.endpoints.get(endpoint, project)
            return _Subject(project, found, None, None, _config(found.settings))
        assert model is not None
        ref = parse_ref(model)
        if ref.kind is RefKind.RUN:
            raise Invalid(f"{model!r} names a run, not a model", field="model")
        if ref.project is not None and ref.project != project:
            raise Invalid(
                f"{model!r} is in project {ref.project!r}, not {project!r}", field="model"
            )
        version = None
        if ref.kind is not RefKind.NAME:
            version = self.registry.resolve(model, project).version
        else:
            self.registry.get_model(ref.name, project)  # NotFound names the model
        return _Subject(project, None, ref.name, version, MonitorConfig())

    def _count(
        self, subject: _Subject, bounds: list[datetime], until: datetime, size: timedelta
    ) -> dict[int, dict[_Key, _Counting]]:
        """Each window's groups, counted by the database: a report reads no row whole
        (see ``ProductionRepository.outcome_counts``), whatever the traffic."""
        with self.db.read() as conn:
            scope = self._scope(conn, subject, bounds, until, size)
            rows = ProductionRepository(conn).outcome_counts(scope)
            names = ModelRepository(conn).names({int(r[2]) for r in rows})
        by_variant = subject.endpoint is not None
        decoded: dict[str, Any] = {}
        counted: dict[int, dict[_Key, _Counting]] = {}
        for w, variant, mid, version, shadow, failed, outputs, actual, n in rows:
            key = (variant if by_variant else "", names.get(int(mid), "?"), int(version))
            group = counted.setdefault(int(w), {}).get(key)
            if group is None:
                group = counted[int(w)][key] = _Counting(
                    scope, int(w), variant if by_variant else None, int(mid)
                )
            group.volume += n
            if failed:
                group.errors += n
            else:
                group.outcomes.append((_decoded(outputs, decoded), _decoded(actual, decoded), n))
            group.shadow = group.shadow or bool(shadow)
        return counted

    def _summarize(
        self,
        subject: _Subject,
        key: _Key,
        found: _Counting,
        references: dict[tuple[str, int], Reference],
        sample: int,
    ) -> GroupStats:
        variant, model, version = key
        config = subject.config
        reference = self._reference(subject, model, version, references)
        window = _window_scope(found.scope, found.index)
        ok = found.volume - found.errors
        with self.db.read() as conn:
            repo = ProductionRepository(conn)
            latencies = repo.latencies(window, found.variant, found.model_id, version)
            inputs: list[Any] = []
            if reference is not None and reference.profile is not None and ok:
                texts = repo.inputs_sample(
                    window,
                    found.variant,
                    found.model_id,
                    version,
                    every=math.ceil(ok / sample),
                    limit=sample,
                )
                inputs = json.loads("[" + ",".join(texts) + "]")  # one call: faster
        counted = Counted(
            found.volume, found.errors, found.shadow, latencies, found.outcomes, inputs
        )
        return summarize_counted(
            counted,
            model=model,
            version=version,
            variant=variant,
            task=config.task,
            reference=reference,
            drift=config.drift,
        )

    def reference(self, project: str, model: str, version: int) -> Reference:
        """The profile a version's inputs are compared with: that of the first dataset
        version its source run trained on (role ``train``) that has one."""
        try:
            found = self.registry.resolve(f"{model}:{version}", project)
        except NotFound:
            return Reference(None, None, note=f"{model}:{version} is not registered")
        names = _input_names(found)
        if not found.training_data:
            note = f"{found} has no training dataset (its run used none with role 'train')"
            return Reference(None, None, names, note)
        for ref in found.training_data:
            try:
                dataset = self.data.resolve(ref, project)
            except NotFound:
                continue
            if dataset.profile is not None:
                return Reference(ref, dataset.profile, names)
        refs = ", ".join(found.training_data)
        return Reference(refs, None, names, f"no profile for the training data {refs}")

    # -- alerts -----------------------------------------------------------------------------

    def _record(
        self,
        subject: _Subject,
        alerts: Sequence[Alert],
        actor: str | None,
        extra: dict[str, Any] | None = None,
    ) -> list[Alert]:
        """Write the alerts no earlier report wrote; return them all, the new ones marked."""
        if not alerts:
            return []
        entity_type, entity_id = subject.entity
        with self.db.write() as tx:
            project_row = ProjectRepository(tx.conn).get(subject.project)
            models = ModelRepository(tx.conn)
            for name in sorted({a.model for a in alerts}):  # one report at a time (PostgreSQL)
                models.lock(locate(tx.conn, subject.project, name).model_id)
            events = EventRepository(tx.conn)
            seen = {
                str((e.after or {}).get("key"))
                for e in events.for_entity(entity_type, entity_id)
                if e.action == ALERT_ACTION
            }
            out, fresh = [], []
            for alert in alerts:
                new = alert.key not in seen
                seen.add(alert.key)
                out.append(replace(alert, new=new))
                if new:
                    fresh.append(
                        NewEvent(
                            ALERT_ACTION,
                            entity_type,
                            entity_id,
                            project_row.id,
                            after={**alert_event(alert), **(extra or {})},
                        )
                    )
            events.add_many(actor or MONITOR_ACTOR, fresh)
        return out

    # -- the rollback rule ------------------------------------------------------------------

    def check_rollbacks(self, *, now: datetime | None = None) -> list[Rollback]:
        """Apply every endpoint's rollback rule to its last ``lookback`` of traffic (the
        server runs this periodically). A broken rule is logged and skipped."""
        now = as_utc(now) if now is not None else datetime.now(UTC)
        with self.db.read() as conn:
            projects = [p.project.name for p in ProjectRepository(conn).list_summaries()]
        done: list[Rollback] = []
        for project in projects:
            for endpoint in self.endpoints.list(project):
                if not endpoint.settings.get("rollback"):
                    continue
                try:
                    config = _config(endpoint.settings)
                    assert config.rollback is not None
                    subject = _Subject(project, endpoint, None, None, config)
                    since = now - config.rollback.lookback
                    done += self._apply_rollback(subject, config.rollback, since, now)
                except CairnError as exc:
                    log.warning(
                        "cairn: rollback rule of %s/%s: %s", project, endpoint.name, exc.message
                    )
        return done

    def _apply_rollback(
        self, subject: _Subject, rule: RollbackRule, since: datetime, until: datetime
    ) -> list[Rollback]:
        endpoint = subject.endpoint
        assert endpoint is not None
        done = []
        for model in _models_behind(endpoint, rule.alias, subject.project):
            result = self._rollback_one(subject, rule, model, since, until)
            if result is not None:
                done.append(result)
        return done

    def _rollback_one(
        self, subject: _Subject, rule: RollbackRule, model: str, since: datetime, until: datetime
    ) -> Rollback | None:
        project, endpoint = subject.project, subject.endpoint
        assert endpoint is not None
        moves = self.aliases.history(model, rule.alias, project=project)
        if not moves or moves[-1].to_version is None:
            return None
        last = moves[-1]
        current = last.to_version
        assert current is not None
        start = max(since, as_utc(last.at))
        if start >= until:
            return None
        found = self.predictions.predictions(
            project, endpoint=endpoint.name, since=start, until=until, limit=self.window_limit
        )
        mine = [p for p in found if p.model == model and p.version == current and not p.shadow]
        stats = summarize(mine, model=model, version=current, task=subject.config.task)
        crossed = _first_crossing(stats, rule)
        if crossed is None:
            return None
        threshold, value, samples = crossed
        word = "above" if threshold.bound == "max" else "below"
        reason = (
            f"rollback rule of endpoint {endpoint.name}: {threshold.metric} {value:.4g} is "
            f"{word} {threshold.value:g} over {samples} predictions of {model}:{current} "
            f"since {start.isoformat(timespec='seconds')}"
        )
        previous, moved = last.from_version, False
        if previous is None:
            reason += f"; alias {rule.alias!r} had no earlier version to go back to"
        else:
            try:
                self.aliases.set_alias(
                    model, rule.alias, previous, project=project, reason=reason, actor=MONITOR_ACTOR
                )
                moved = True
            except CairnError as exc:  # a protected alias and an unapproved version, say
                reason += f"; moving {model}@{rule.alias} back to {previous} failed: {exc.message}"
        alert = Alert(
            metric=f"rollback.{threshold.metric}",
            value=value,
            threshold=threshold.value,
            bound=threshold.bound,
            # One alert per move of the alias onto the version: its window is that move.
            window_start=as_utc(last.at),
            window_end=as_utc(last.at),
            model=model,
            version=current,
        )
        extra = {
            "rollback": {
                "alias": rule.alias,
                "from_version": current,
                "to_version": previous,
                "moved": moved,
            },
            "evaluated": {"since": start.isoformat(), "until": until.isoformat()},
            "reason": reason,
        }
        self._record(subject, [alert], MONITOR_ACTOR, extra)
        return Rollback(
            model=model,
            alias=rule.alias,
            from_version=current,
            to_version=previous,
            metric=threshold.metric,
            value=value,
            threshold=threshold.value,
            samples=samples,
            reason=reason,
            moved=moved,
        )


def _first_crossing(stats: GroupStats, rule: RollbackRule) -> tuple[Threshold, float, int] | None:
    for threshold in rule.thresholds:
        value = stats.metric(threshold.metric)
        samples = stats.samples(threshold.metric)
        if value is not None and samples >= rule.min_samples and threshold.crossed(value):
            return threshold, value, samples
    return None


def _earlier(moment: datetime, span: timedelta) -> datetime:
    try:
        return moment - span
    except OverflowError:
        raise Invalid(f"until {moment.isoformat()} is out of range", field="until") from None


def _config(settings: dict[str, Any]) -> MonitorConfig:
    return MonitorConfig.parse(settings)


_Key = tuple[str, str, int]  # variant ("" in a model's report), model, version


@dataclass(slots=True)
class _Counting:
    """One group of one window while its counts are gathered."""

    scope: PredictionScope
    index: int  # of the window
    variant: str | None  # None: all variants (a model's report)
    model_id: int
    volume: int = 0
    errors: int = 0
    shadow: bool = False
    outcomes: list[tuple[Any, Any, int]] = field(default_factory=list)


@dataclass(slots=True)
class _Group:
    """One group of one window while its rollups are added up."""

    scope: PredictionScope  # that window's
    variant: str | None  # None: all variants (a model's report)
    model_id: int
    rollup: Rollup = field(default_factory=Rollup)
    shadow: bool = False
    ok_by_minute: dict[int, int] = field(default_factory=dict)  # successful predictions


def _gather(
    scope: PredictionScope,
    found: list[tuple[int, str, int, int, bool, Rollup]],
    names: dict[int, str],
    *,
    by_variant: bool,
) -> dict[int, dict[_Key, _Group]]:
    """Minutes' rollups added up per window and group."""
    groups: dict[int, dict[_Key, _Group]] = {}
    for minute, variant, model_id, version, shadow, rollup in found:
        index = (minute - scope.origin_ms) // scope.size_ms
        key = (variant if by_variant else "", names.get(model_id, "?"), version)
        window = groups.setdefault(index, {})
        group = window.get(key)
        if group is None:
            group = window[key] = _Group(
                _window_scope(scope, index), variant if by_variant else None, model_id
            )
        group.rollup.merge(rollup)
        group.shadow = group.shadow or shadow
        ok = rollup.volume - rollup.errors
        group.ok_by_minute[minute] = group.ok_by_minute.get(minute, 0) + ok
    return groups


def _sample_size(groups: int) -> int:
    """Input rows profiled per group: a report's budget shared, within bounds."""
    return max(DRIFT_FLOOR, min(DRIFT_SAMPLE, DRIFT_BUDGET // max(1, groups)))


def _strata(group: _Group, sample: int) -> tuple[list[tuple[int, int]], int]:
    """Time ranges to sample a group's inputs from, and how many rows to read from each:
    the whole window when it has no more rows than the sample, else its minutes (at most
    ``STRATA`` runs of them), so the sample covers the window evenly (see SAMPLE_HOW)."""
    scope = group.scope
    ok = sum(group.ok_by_minute.values())
    if ok <= sample:
        return [(scope.since_ms, scope.until_ms)], sample
    minutes = sorted(m for m, n in group.ok_by_minute.items() if n > 0)
    step = math.ceil(len(minutes) / STRATA)
    strata = []
    for i in range(0, len(minutes), step):
        low = max(scope.since_ms, minutes[i])
        high = min(scope.until_ms, minutes[min(i + step, len(minutes)) - 1] + MINUTE_MS)
        strata.append((low, high))
    return strata, max(1, sample // len(strata))


def _window_scope(scope: PredictionScope, index: int) -> PredictionScope:
    return replace(
        scope,
        since_ms=max(scope.since_ms, scope.origin_ms + index * scope.size_ms),
        until_ms=min(scope.until_ms, scope.origin_ms + (index + 1) * scope.size_ms),
    )


def _decoded(text: str | None, seen: dict[str, Any]) -> Any:
    """JSON decoded once per distinct text (a report meets few distinct outputs)."""
    if text is None:
        return None
    if text not in seen:
        seen[text] = json.loads(text)
    return seen[text]


def _ms(moment: datetime) -> int:
    found = datetime_to_ms(moment)
    assert found is not None
    return found


def _input_names(version: ModelVersion) -> list[str]:
    inputs = (version.signature or {}).get("inputs")
    if isinstance(inputs, list):
        return [str(c.get("name")) for c in inputs if isinstance(c, dict) and "name" in c]
    return []


def _models_behind(endpoint: Endpoint, alias: str, project: str) -> list[str]:
    """The models whose ``alias`` an endpoint's serving variants point to."""
    names = []
    for variant in endpoint.serving():
        try:
            ref = parse_ref(variant.target)
        except Invalid:
            continue
        ours = ref.kind is RefKind.ALIAS and ref.alias == alias and ref.project in (None, project)
        if ours and ref.name not in names:
            names.append(ref.name)
    return names


def alert_event(alert: Alert) -> dict[str, Any]:
    """The ``after`` of a ``monitoring.alert`` event (what webhooks receive)."""
    event: dict[str, Any] = {
        "metric": alert.metric,
        "value": alert.value,
        "threshold": alert.threshold,
        "bound": alert.bound,
        "window": {"start": alert.window_start.isoformat(), "end": alert.window_end.isoformat()},
        "model": alert.model,
        "version": alert.version,
        "key": alert.key,
    }
    if alert.variant:
        event["variant"] = alert.variant
    if alert.feature is not None:
        event["feature"] = alert.feature
    return event


def rollback_check_interval() -> float:
    """Seconds between the server's checks of rollback rules: ``CAIRN_ROLLBACK_CHECK_S``
    (default 60; 0 turns the check off)."""
    text = os.environ.get("CAIRN_ROLLBACK_CHECK_S", "60")
    try:
        seconds = float(text)
    except ValueError:
        log.warning("cairn: CAIRN_ROLLBACK_CHECK_S=%r is not a number; using 60", text)
        return 60.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0
