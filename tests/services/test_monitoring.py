"""Monitoring on a real database (SQLite, and PostgreSQL when configured).

Two versions of a model are registered through ``RegistryService.register_version``,
their run having used scikit-learn's wine table (profiled) as training data; the outputs
come from a logistic regression trained on it. Predictions are
written through ``PredictionService.log_predictions`` with times chosen by the test, so
every window holds known values: volume, errors, latency percentiles (against numpy),
quality (against scikit-learn), drift (shifted inputs against inputs drawn from the
training data), alerts written once, and the rollback rule, from a report and from the
periodic check.
"""

from __future__ import annotations

import io
import logging
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    recall_score,
)

from cairn.client.profiling import profile_dataframe
from cairn.domain.datasets import DatasetFile
from cairn.domain.errors import Invalid, NotFound
from cairn.domain.ids import new_ulid
from cairn.domain.models import ModelFile
from cairn.domain.monitoring import DriftSettings, MonitorConfig, parse_duration, window_bounds
from cairn.domain.prediction_stats import (
    DRIFT_SAMPLE,
    Reference,
    input_record,
    prediction_value,
    profile_records,
    summarize,
)
from cairn.domain.production import NewPrediction, Prediction, Variant
from cairn.domain.profiles import check_profile
from cairn.domain.records import Batch, RunBatch, RunStart
from cairn.domain.rollups import RELATIVE_ERROR
from cairn.services.aliases import AliasService
from cairn.services.blobs import BlobService
from cairn.services.data import DataService
from cairn.services.lineage import LineageService
from cairn.services.monitoring import ALERT_ACTION, MONITOR_ACTOR, MonitoringService
from cairn.services.production import EndpointService, PredictionService
from cairn.services.registry import RegistryService
from cairn.services.tracking import TrackingService
from cairn.services.webhooks import DeliveryPolicy, WebhookService
from cairn.store.database import Database
from cairn.store.repositories.events import Event, EventRepository

P = "shop"
T0 = datetime(2026, 1, 1, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass
class World:
    db: Database
    registry: RegistryService
    aliases: AliasService
    endpoints: EndpointService
    predictions: PredictionService
    monitoring: MonitoringService
    rows: list[dict[str, float]]
    y: list[int]
    predicted: list[int]

    def log(self, ref: str, records: list[NewPrediction], endpoint: str | None = None) -> None:
        for i in range(0, len(records), 500):
            self.predictions.log_predictions(P, ref, records[i : i + 500], endpoint=endpoint)

    def events(self, entity_type: str, entity_id: str, action: str = ALERT_ACTION) -> list[Event]:
        with self.db.read() as conn:
            found = EventRepository(conn).for_entity(entity_type, entity_id)
        return [e for e in found if e.action == action]


@pytest.fixture(scope="module")
def wine() -> tuple[Any, Any, LogisticRegression]:
    data = load_wine(as_frame=True)
    clf = LogisticRegression(max_iter=5000).fit(data.data, data.target)
    return data.data, data.target, clf


def register_wine(
    db: Database, registry: RegistryService, data: DataService, X: Any, name: str = "wine"
) -> None:
    """Two versions of ``name`` whose run trained on the wine table (profiled, as pandas
    profiles it). The model files are placeholders: monitoring never loads a model."""
    run = RunStart(new_ulid(), P, T0)
    TrackingService(db).log_batch(Batch(new_ulid(), [RunBatch(run.id, start=run)]))
    table = data.blobs.put(io.BytesIO(X.to_csv(index=False).encode()))
    data.log_version(
        P,
        "wine",
        [DatasetFile("wine.csv", table.digest, table.size)],
        profile=profile_dataframe(X),
    )
    data.use_dataset(run.id, "wine:1", "train")
    model = data.blobs.put(io.BytesIO(b"a model"))
    signature = {"inputs": [{"name": c, "type": "float64"} for c in X.columns], "outputs": None}
    for _ in range(2):
        registry.register_version(
            P,
            name,
            [ModelFile("model.pkl", model.digest, model.size)],
            flavor="sklearn",
            run_id=run.id,
            signature=signature,
        )


@pytest.fixture
def world(
    db_url: str, wine: tuple[Any, Any, LogisticRegression], tmp_path: Path
) -> Iterator[World]:
    """Two versions of ``wine`` in project ``shop``, trained on the profiled wine table."""
    X, y, clf = wine
    db = Database(db_url, artifacts=str(tmp_path / "blobs"))
    blobs = BlobService(db)
    registry = RegistryService(db, blobs)
    data = DataService(db, blobs)
    aliases = AliasService(db, registry)
    register_wine(db, registry, data, X)
    yield World(
        db=db,
        registry=registry,
        aliases=aliases,
        endpoints=EndpointService(db, registry),
        predictions=PredictionService(db, registry),
        monitoring=MonitoringService(db, registry, data, aliases),
        rows=X.to_dict("records"),
        y=[int(v) for v in y],
        predicted=[int(v) for v in clf.predict(X)],
    )
    db.close()


def at(start: datetime, i: int) -> datetime:
    return start + timedelta(seconds=i)


# ---------------------------------------------------------------------------- volume


def test_volume_errors_and_latency_percentiles_per_window_and_version(world: World) -> None:
    rows = world.rows
    v1 = [
        NewPrediction(
            f"a{i}",
            rows[i],
            world.predicted[i],
            at=at(T0, i),
            latency_ms=float(i + 1),
            error="boom" if i % 20 == 0 else None,
        )
        for i in range(100)
    ]
    v2 = [
        NewPrediction(f"b{i}", rows[i], world.predicted[i], at=at(T0, i), latency_ms=10.0 * i)
        for i in range(40)
    ]
    later = [NewPrediction(f"c{i}", rows[i], 0, at=at(T0 + HOUR, i)) for i in range(10)]
    world.log("wine:1", v1)
    world.log("wine:2", v2)
    world.log("wine:1", later)

    report = world.monitoring.report(P, model="wine", since=T0, until=T0 + 2 * HOUR, window="1h")

    assert [w.start for w in report.windows] == [T0, T0 + HOUR]
    first, second = report.windows
    g1, g2 = first.groups
    assert (g1.version, g1.volume, g1.errors, g1.error_rate) == (1, 100, 5, 0.05)
    expected = np.percentile(np.arange(1, 101, dtype=float), [50, 95, 99])
    assert g1.latency is not None
    assert [g1.latency.p50, g1.latency.p95, g1.latency.p99] == pytest.approx(
        expected.tolist(), rel=RELATIVE_ERROR
    )
    assert g1.latency.max == 100.0
    ok = [world.predicted[i] for i in range(100) if i % 20]
    assert g1.outputs is not None and g1.outputs.classes == {
        str(k): n for k, n in Counter(ok).items()
    }
    assert g1.task == "classification" and g1.quality is None  # no feedback yet
    assert (g2.version, g2.volume, g2.errors) == (2, 40, 0)
    assert g2.latency is not None
    expected2 = np.percentile(10.0 * np.arange(40), [50, 95, 99])
    assert [g2.latency.p50, g2.latency.p95, g2.latency.p99] == pytest.approx(
        expected2.tolist(), rel=RELATIVE_ERROR
    )
    assert [(g.version, g.volume) for g in second.groups] == [(1, 10)]
    assert g1.latency.mean == pytest.approx(50.5)

    one = world.monitoring.report(P, model="wine:2", since=T0, until=T0 + 2 * HOUR)
    assert [[g.version for g in w.groups] for w in one.windows] == [[2], []]


def test_windows_are_aligned_and_arguments_checked(world: World) -> None:
    bounds = window_bounds(T0 + timedelta(minutes=17), T0 + timedelta(minutes=75), HOUR)
    assert bounds == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("90") == timedelta(seconds=90)
    report = world.monitoring.report(P, model="wine", since=T0, until=T0 + HOUR, window="15m")
    assert len(report.windows) == 4 and all(not w.groups for w in report.windows)

    bad: list[dict[str, Any]] = [
        {},
        {"model": "wine", "endpoint": "churn"},
        {"model": "wine", "window": "0s"},
        {"model": "wine", "window": "soon"},
        {"model": "wine", "window": "1s", "since": T0 - timedelta(days=3)},
        {"model": "wine", "since": T0 + HOUR},
        {"model": "runs/01HZZZZZZZZZZZZZZZZZZZZZZZ"},
    ]
    for kwargs in bad:
        kwargs.setdefault("since", T0)
        with pytest.raises(Invalid):
            world.monitoring.report(P, until=T0 + HOUR, **kwargs)
    with pytest.raises(NotFound):
        world.monitoring.report(P, model="nope", since=T0, until=T0 + HOUR)
    with pytest.raises(NotFound):
        world.monitoring.report(P, endpoint="nope", since=T0, until=T0 + HOUR)


# --------------------------------------------------------------------------- quality


def test_classification_quality_from_feedback(world: World) -> None:
    rng = random.Random(3)
    outputs = [p if rng.random() < 0.8 else rng.randrange(3) for p in world.predicted]
    records = []
    for i, out in enumerate(outputs):
        shaped: Any = {"prediction": out, "proba": [0.1, 0.2, 0.7]} if i % 2 else [out]
        records.append(NewPrediction(f"q{i}", world.rows[i], shaped, at=at(T0, i)))
    world.log("wine:1", records)
    labeled = list(range(0, len(outputs), 1))[:150]
    world.predictions.log_feedback(P, {f"q{i}": world.y[i] for i in labeled})

    report = world.monitoring.report(P, model="wine", since=T0, until=T0 + HOUR)
    (group,) = report.windows[0].groups
    quality = group.quality
    assert quality is not None and quality.task == "classification"
    y_true = [world.y[i] for i in labeled]
    y_pred = [outputs[i] for i in labeled]
    assert quality.labeled == 150
    assert quality.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    macro = {"average": "macro", "zero_division": 0}
    assert quality.precision == pytest.approx(precision_score(y_true, y_pred, **macro))
    assert quality.recall == pytest.approx(recall_score(y_true, y_pred, **macro))
    assert quality.f1 == pytest.approx(f1_score(y_true, y_pred, **macro))


def test_regression_quality_and_numeric_outputs(world: World) -> None:
    rng = random.Random(5)
    actual = [row["alcohol"] for row in world.rows]
    outputs = [a + rng.gauss(0, 0.3) for a in actual]
    world.log(
        "wine:1",
        [NewPrediction(f"r{i}", world.rows[i], o, at=at(T0, i)) for i, o in enumerate(outputs)],
    )
    world.predictions.log_feedback(P, {f"r{i}": a for i, a in enumerate(actual)})

    (group,) = world.monitoring.report(P, model="wine", since=T0, until=T0 + HOUR).windows[0].groups
    assert group.task == "regression"
    assert group.quality is not None
    assert group.quality.mae == pytest.approx(mean_absolute_error(actual, outputs))
    assert group.quality.rmse == pytest.approx(np.sqrt(mean_squared_error(actual, outputs)))
    assert group.outputs is not None and group.outputs.numeric is not None
    assert group.outputs.numeric.mean == pytest.approx(float(np.mean(outputs)))
    assert group.outputs.numeric.p50 == pytest.approx(float(np.median(outputs)), rel=RELATIVE_ERROR)


# ----------------------------------------------------------------------------- drift


def test_drift_found_on_shifted_inputs_and_not_on_training_data(world: World) -> None:
    rows, predicted = world.rows, world.predicted
    same = [NewPrediction(f"d{i}", r, predicted[i], at=at(T0, i)) for i, r in enumerate(rows)]
    shifted = [
        NewPrediction(f"s{i}", {**r, "proline": r["proline"] * 10}, 0, at=at(T0 + HOUR, i))
        for i, r in enumerate(rows)
    ]
    # Inputs as plain lists, in the signature's column order, mean the same columns.
    names = list(rows[0])
    positional = [
        NewPrediction(f"l{i}", [r[n] for n in names], 0, at=at(T0 + 2 * HOUR, i))
        for i, r in enumerate(rows)
    ]
    world.log("wine:1", same + shifted + positional)

    report = world.monitoring.report(P, model="wine", since=T0, until=T0 + 3 * HOUR)
    drifts = [w.groups[0].drift for w in report.windows]
    assert all(d is not None for d in drifts)
    calm, moved, listed = drifts
    assert calm is not None and moved is not None and listed is not None
    assert calm.reference == f"{P}/wine:1" and calm.rows == len(rows)
    assert len(calm.features) == len(names) and calm.drifted == []
    assert all((f.psi or 0) < 1e-6 and (f.ks or 0) < 1e-6 for f in calm.features)
    assert moved.drifted == ["proline"]
    proline = next(f for f in moved.features if f.feature == "proline")
    assert proline.psi is not None and proline.psi > 1 and proline.ks == pytest.approx(1.0)
    assert listed.drifted == [] and len(listed.features) == len(names)

    # One alert: the shifted feature in its window, as an event on the model.
    (alert,) = report.alerts
    assert (alert.metric, alert.feature, alert.window_start, alert.new) == (
        "psi",
        "proline",
        T0 + HOUR,
        True,
    )
    (event,) = world.events("model", f"{P}/wine")
    assert event.actor is not None
    assert event.after is not None
    assert event.after["metric"] == "psi" and event.after["feature"] == "proline"
    assert event.after["threshold"] == 0.2 and event.after["version"] == 1
    assert event.after["window"]["start"] == (T0 + HOUR).isoformat()

    # Reported again (another since, same windows): no second event.
    again = world.monitoring.report(P, model="wine", since=T0 + HOUR, until=T0 + 3 * HOUR)
    assert [a.new for a in again.alerts] == [False]
    assert len(world.events("model", f"{P}/wine")) == 1


def test_an_alert_fires_the_webhooks_that_want_it(world: World) -> None:
    hooks = WebhookService(world.db, DeliveryPolicy())
    hook = hooks.create("http://127.0.0.1:9/hook", ["monitoring.*"], project=P)
    shifted = [
        NewPrediction(f"w{i}", {**r, "alcohol": r["alcohol"] * 10}, 0, at=at(T0, i))
        for i, r in enumerate(world.rows)
    ]
    world.log("wine:1", shifted)
    world.monitoring.report(P, model="wine", since=T0, until=T0 + HOUR)
    world.monitoring.report(P, model="wine", since=T0, until=T0 + HOUR)
    (delivery,) = hooks.deliveries(hook.id)
    assert (delivery.action, delivery.status) == (ALERT_ACTION, "pending")


def test_drift_sampled_from_the_training_data_stays_below_thresholds(world: World) -> None:
    """500 rows drawn with replacement from the training table: no feature drifts."""
    rng = random.Random(11)
    picks = [rng.randrange(len(world.rows)) for _ in range(500)]
    world.log(
        "wine:1",
        [NewPrediction(f"x{i}", world.rows[k], 0, at=at(T0, i)) for i, k in enumerate(picks)],
    )
    report = world.monitoring.report(P, model="wine", since=T0, until=T0 + HOUR)
    drift = report.windows[0].groups[0].drift
    assert drift is not None and drift.drifted == [] and report.alerts == []
    assert max(f.ks or 0 for f in drift.features) < 0.1


def test_profile_of_records_is_the_profile_pandas_makes(
    wine: tuple[Any, Any, LogisticRegression],
) -> None:
    X = wine[0]
    ours = check_profile(profile_records(X.to_dict("records")))
    theirs = profile_dataframe(X)
    assert ours["rows"] == theirs["rows"]
    for mine, pandas in zip(ours["columns"], theirs["columns"], strict=True):
        assert (mine["name"], mine["kind"], mine["count"]) == (
            pandas["name"],
            pandas["kind"],
            pandas["count"],
        )
        assert mine["quantiles"] == pytest.approx(pandas["quantiles"], rel=1e-12)
        assert mine["histogram"]["counts"] == pandas["histogram"]["counts"]
        assert mine["mean"] == pytest.approx(pandas["mean"])
        assert mine["std"] == pytest.approx(pandas["std"])
    mixed = profile_records([{"a": "x", "b": True, "c": None}, {"a": "y", "b": False, "c": 2}])
    assert [c["kind"] for c in check_profile(mixed)["columns"]] == [
        "categorical",
        "boolean",
        "numeric",
    ]


def test_a_version_without_training_data_says_why(world: World) -> None:
    model = world.registry.blobs.put(io.BytesIO(b"bare"))
    world.registry.register_version(
        P, "bare", [ModelFile("m", model.digest, model.size)], flavor="sklearn"
    )
    world.log("bare:1", [NewPrediction("n1", {"x": 1.0}, 1, at=T0)])
    (group,) = world.monitoring.report(P, model="bare", since=T0, until=T0 + HOUR).windows[0].groups
    assert group.drift is not None and group.drift.reference is None
    assert group.drift.note is not None and "training dataset" in group.drift.note


def test_output_and_input_shapes() -> None:
    assert prediction_value([[2]]) == 2
    assert prediction_value({"label": "cat", "score": 0.9}) == "cat"
    assert prediction_value(3.0) == 3 and prediction_value(2.5) == 2.5
    assert input_record([[1, 2]], ["a", "b"]) == {"a": 1, "b": 2}
    assert input_record([1, 2, 3], ["a"]) == {"a": 1, "1": 2, "2": 3}
    assert input_record(7) == {"value": 7}


# ------------------------------------------------------------------- endpoint alerts


def make_endpoint(world: World, name: str, settings: dict[str, Any], *variants: Variant) -> None:
    world.endpoints.create(P, name, list(variants), settings=settings)


def test_endpoint_thresholds_alert_once_per_window_metric_and_variant(world: World) -> None:
    world.aliases.set_alias("wine", "production", 1, project=P)
    world.aliases.set_alias("wine", "staging", 2, project=P)
    settings = {
        "alerts": {"max_error_rate": 0.1, "max_latency_p95_ms": 100, "min_samples": 20},
        "drift": False,
    }
    make_endpoint(
        world,
        "churn",
        settings,
        Variant("champion", "wine@production", 50),
        Variant("challenger", "wine@staging", 50),
    )
    rows = world.rows
    champion = [
        NewPrediction(f"e{i}", rows[i], 0, at=at(T0, i), latency_ms=5.0, variant="champion")
        for i in range(50)
    ]
    challenger = [
        NewPrediction(
            f"e{i}",
            rows[i],
            0,
            at=at(T0, i),
            latency_ms=500.0,
            variant="challenger",
            error="bad input" if i % 4 == 0 else None,
        )
        for i in range(50)
    ]
    world.log("wine:1", champion, endpoint="churn")
    world.log("wine:2", challenger, endpoint="churn")

    report = world.monitoring.report(P, endpoint="churn", since=T0, until=T0 + HOUR)
    groups = {g.variant: g for g in report.windows[0].groups}
    assert set(groups) == {"champion", "challenger"}
    assert (groups["challenger"].version, groups["challenger"].error_rate) == (2, 0.26)
    assert groups["champion"].drift is None  # drift turned off
    assert sorted((a.variant, a.metric) for a in report.alerts) == [
        ("challenger", "error_rate"),
        ("challenger", "latency_p95_ms"),
    ]
    events = world.events("endpoint", f"{P}/churn")
    assert len(events) == 2
    after = next(e.after for e in events if e.after and e.after["metric"] == "error_rate")
    assert after is not None
    assert after["value"] == 0.26 and after["threshold"] == 0.1 and after["bound"] == "max"
    assert (after["variant"], after["model"], after["version"]) == ("challenger", "wine", 2)

    world.monitoring.report(P, endpoint="churn", since=T0, until=T0 + HOUR)
    assert len(world.events("endpoint", f"{P}/churn")) == 2
    # record=False looks without writing.
    looked = world.monitoring.report(P, endpoint="churn", since=T0, until=T0 + HOUR, record=False)
    assert len(looked.alerts) == 2 and not any(a.new for a in looked.alerts)


def test_bad_settings_are_named() -> None:
    for settings, field in [
        ({"alerts": {"max_accuracy_typo": 1}}, "settings.alerts.max_accuracy_typo"),
        ({"alerts": {"min_accuracy": "high"}}, "settings.alerts.min_accuracy"),
        ({"drift": {"psi": 0.2, "chi2": 1}}, "settings.drift"),
        ({"task": "ranking"}, "settings.task"),
        ({"rollback": {"alias": "production"}}, "settings.rollback"),
        ({"rollback": {"alias": "production", "max_error_rate": 0.1, "lookback": "x"}}, None),
    ]:
        with pytest.raises(Invalid) as caught:
            MonitorConfig.parse(settings)
        if field is not None:
            assert caught.value.field == field
    config = MonitorConfig.parse({"rollback": {"alias": "production", "min_accuracy": 0.8}})
    assert config.rollback is not None and config.rollback.min_samples == 100


# -------------------------------------------------------------------------- rollback


def rollback_world(world: World, rule: dict[str, Any]) -> None:
    world.aliases.set_alias("wine", "production", 1, project=P, reason="first")
    world.aliases.set_alias("wine", "production", 2, project=P, reason="retrained")
    make_endpoint(world, "churn", {"rollback": rule}, Variant("champion", "wine@production", 100))


def bad_traffic(world: World, n: int, error_every: int = 0, prefix: str = "t") -> None:
    """``n`` predictions of the alias's version now; every ``error_every``-th one failed."""
    now = datetime.now(UTC)
    records = [
        NewPrediction(
            f"{prefix}{i}",
            world.rows[i % len(world.rows)],
            world.predicted[i % len(world.rows)],
            at=now,
            latency_ms=3.0,
            variant="champion",
            error="failed" if error_every and i % error_every == error_every - 1 else None,
        )
        for i in range(n)
    ]
    world.log("wine@production", records, endpoint="churn")


def test_rollback_rule_fires_from_a_report_and_is_audited(world: World) -> None:
    rollback_world(world, {"alias": "production", "max_error_rate": 0.05, "min_samples": 100})
    bad_traffic(world, 120, error_every=5)  # 20% errors on version 2

    since = datetime.now(UTC) - HOUR
    report = world.monitoring.report(P, endpoint="churn", since=since)
    (done,) = report.rollbacks
    assert (done.model, done.alias, done.from_version, done.to_version, done.moved) == (
        "wine",
        "production",
        2,
        1,
        True,
    )
    assert done.metric == "error_rate" and done.value == pytest.approx(0.2) and done.samples == 120
    current = world.aliases.resolve_alias("wine", "production", project=P)
    assert current is not None and current.version == 1
    move = world.aliases.history("wine", "production", project=P)[-1]
    assert (move.from_version, move.to_version, move.actor) == (2, 1, MONITOR_ACTOR)
    assert move.reason is not None and "rollback rule of endpoint churn" in move.reason
    assert "error_rate 0.2" in move.reason
    (alert,) = [e.after for e in world.events("endpoint", f"{P}/churn") if e.after is not None]
    assert alert["metric"] == "rollback.error_rate"
    assert alert["rollback"] == {
        "alias": "production",
        "from_version": 2,
        "to_version": 1,
        "moved": True,
    }

    # The alias now points to version 1, which did nothing wrong: nothing moves again.
    again = world.monitoring.report(P, endpoint="churn", since=since)
    assert again.rollbacks == []
    assert len(world.aliases.history("wine", "production", project=P)) == 3
    assert len(world.events("endpoint", f"{P}/churn")) == 1


def test_rollback_rule_fires_from_the_periodic_check_on_quality(world: World) -> None:
    rollback_world(world, {"alias": "production", "min_accuracy": 0.9, "min_samples": 50})
    bad_traffic(world, 60)
    # Feedback: only half the predictions were right.
    world.predictions.log_feedback(
        P,
        {f"t{i}": world.predicted[i] if i % 2 else (world.predicted[i] + 1) % 3 for i in range(60)},
    )
    (done,) = world.monitoring.check_rollbacks()
    assert (done.metric, done.from_version, done.to_version) == ("accuracy", 2, 1)
    assert done.value == pytest.approx(0.5)
    assert world.monitoring.check_rollbacks() == []
    current = world.aliases.resolve_alias("wine", "production", project=P)
    assert current is not None and current.version == 1


def test_rollback_rule_waits_for_enough_samples_and_skips_broken_rules(world: World) -> None:
    rollback_world(world, {"alias": "production", "max_error_rate": 0.05, "min_samples": 100})
    bad_traffic(world, 50, error_every=2)  # bad, but only 50 predictions
    make_endpoint(
        world, "broken", {"rollback": {"alias": 3}}, Variant("only", "wine@production", 1)
    )
    assert world.monitoring.check_rollbacks() == []
    current = world.aliases.resolve_alias("wine", "production", project=P)
    assert current is not None and current.version == 2


def test_rollback_without_an_earlier_version_alerts_but_moves_nothing(world: World) -> None:
    world.aliases.set_alias("wine", "production", 2, project=P)
    make_endpoint(
        world,
        "churn",
        {"rollback": {"alias": "production", "max_error_rate": 0.05, "min_samples": 10}},
        Variant("champion", "wine@production", 100),
    )
    bad_traffic(world, 20, error_every=2)
    (done,) = world.monitoring.check_rollbacks()
    assert done.moved is False and done.to_version is None
    assert "no earlier version" in done.reason
    world.monitoring.check_rollbacks()
    assert len(world.events("endpoint", f"{P}/churn")) == 1


def test_a_refused_rollback_is_reported_not_raised(world: World) -> None:
    """production is protected and version 1 was never approved: the rule cannot move
    the alias back; the report says so, and an alert records it."""
    world.aliases.set_alias("wine", "production", 1, project=P)
    world.registry.approve("wine:2", "ok", project=P)
    world.aliases.protect("wine", "production", project=P)
    world.aliases.set_alias("wine", "production", 2, project=P)
    make_endpoint(
        world,
        "churn",
        {"rollback": {"alias": "production", "max_error_rate": 0.05, "min_samples": 10}},
        Variant("champion", "wine@production", 100),
    )
    bad_traffic(world, 20, error_every=2)
    report = world.monitoring.report(P, endpoint="churn", since=datetime.now(UTC) - HOUR)
    (done,) = report.rollbacks
    assert done.moved is False and "failed" in done.reason and "protected" in done.reason
    current = world.aliases.resolve_alias("wine", "production", project=P)
    assert current is not None and current.version == 2
    (event,) = world.events("endpoint", f"{P}/churn")
    assert event.after is not None and event.after["rollback"]["moved"] is False


def test_drift_of_a_large_window_is_read_off_a_sample() -> None:
    rng = random.Random(0)
    reference = profile_records([{"x": rng.gauss(0, 1)} for _ in range(5000)])
    predictions = [
        Prediction(P, "m", 1, f"r{i}", T0, {"x": rng.gauss(0, 1)}, 0) for i in range(12_000)
    ]
    stats = summarize(
        predictions,
        model="m",
        version=1,
        reference=Reference("p/d:1", reference),
        drift=DriftSettings(),
    )
    assert stats.drift is not None and stats.drift.rows == DRIFT_SAMPLE
    assert stats.drift.note == "a random sample of 10,000 of 12,000 predictions"
    assert stats.drift.drifted == []
    again = summarize(
        predictions,
        model="m",
        version=1,
        reference=Reference("p/d:1", reference),
        drift=DriftSettings(),
    )
    assert again.drift == stats.drift  # the same sample: a report can be made again


# ---------------------------------------------------------------------------- rollups


def mixed_traffic(world: World, n: int, seed: int, span: timedelta) -> list[NewPrediction]:
    """``n`` predictions of the endpoint ``churn``'s two variants at random times over
    ``span`` from T0: errors, latencies from 0 to seconds, and some with no latency."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        row = rng.randrange(len(world.rows))
        challenger = rng.random() < 0.3
        records.append(
            NewPrediction(
                f"m{seed}-{i}",
                world.rows[row],
                world.predicted[row] if rng.random() < 0.9 else rng.randrange(3),
                at=T0 + timedelta(seconds=rng.uniform(0, span.total_seconds())),
                latency_ms=None
                if rng.random() < 0.05
                else rng.choice([0.0, rng.lognormvariate(1, 1.5)]),
                error="boom" if rng.random() < 0.07 else None,
                variant="challenger" if challenger else "champion",
                shadow=challenger,
            )
        )
    return records


def log_mixed(world: World, records: list[NewPrediction]) -> None:
    by_variant: dict[str, list[NewPrediction]] = {}
    for record in records:
        by_variant.setdefault(record.variant, []).append(record)
    for variant, mine in by_variant.items():
        world.log("wine:1" if variant == "champion" else "wine:2", mine, endpoint="churn")


def direct_stats(world: World, report: Any, task: str | None = None) -> dict[tuple[Any, ...], Any]:
    """The report's groups computed by ``summarize`` straight from the raw rows."""
    out = {}
    for window in report.windows:
        rows = world.predictions.predictions(
            P,
            endpoint=report.endpoint,
            model=report.model,
            since=window.start,
            until=min(window.end, report.until),
        )
        groups: dict[tuple[str, str, int], list[Prediction]] = {}
        for p in rows:
            variant = p.variant if report.endpoint else ""
            groups.setdefault((variant, p.model, p.version), []).append(p)
        for (variant, model, version), found in groups.items():
            stats = summarize(found, model=model, version=version, variant=variant, task=task)
            out[(window.start, variant, model, version)] = stats
    return out


def assert_same_stats(report: Any, expected: dict[tuple[Any, ...], Any]) -> None:
    got = {(w.start, g.variant, g.model, g.version): g for w in report.windows for g in w.groups}
    assert set(got) == set(expected)
    for key, want in expected.items():
        mine = got[key]
        counts = ("volume", "errors", "error_rate", "shadow", "task", "quality")
        assert [getattr(mine, c) for c in counts] == [getattr(want, c) for c in counts], key
        if want.latency is None:
            assert mine.latency is None
        else:
            assert mine.latency is not None
            assert mine.latency.max == want.latency.max
            assert mine.latency.mean == pytest.approx(want.latency.mean, rel=1e-9)
            for q in ("p50", "p95", "p99"):
                assert getattr(mine.latency, q) == pytest.approx(
                    getattr(want.latency, q), rel=RELATIVE_ERROR, abs=1e-9
                ), (key, q)
        if want.outputs is not None and want.outputs.numeric is not None:
            assert mine.outputs is not None and mine.outputs.numeric is not None
            a, b = mine.outputs.numeric, want.outputs.numeric
            assert (a.count, a.min, a.max) == (b.count, b.min, b.max)
            assert [a.mean, a.std] == pytest.approx([b.mean, b.std], rel=1e-9)
            assert a.p50 == pytest.approx(b.p50, rel=RELATIVE_ERROR)
        else:
            assert mine.outputs == want.outputs, key


def test_report_from_rollups_equals_the_scan_of_the_raw_rows(world: World) -> None:
    """Counts exact, quantiles within the sketch's error, whatever the windows: errors,
    feedback (some wrong, some resent, some sent before its prediction, some replaced by
    another value), shadow traffic, a resent batch (not counted twice), and an end in the
    middle of a minute (read off the predictions)."""
    world.aliases.set_alias("wine", "production", 1, project=P)
    world.aliases.set_alias("wine", "staging", 2, project=P)
    make_endpoint(
        world,
        "churn",
        {"drift": False},
        Variant("champion", "wine@production", 100),
        Variant("challenger", "wine@staging", 0, shadow=True),
    )
    records = mixed_traffic(world, 3000, seed=7, span=3 * HOUR)
    rng = random.Random(8)
    truth = {
        r.request_id: r.outputs if rng.random() < 0.8 else (r.outputs or 0) + 1 for r in records
    }
    early = dict(list(truth.items())[-300::2])
    world.predictions.log_feedback(P, early)  # before the predictions it names
    log_mixed(world, records)
    log_mixed(world, records[:700])  # resent: skipped, and not counted again
    labeled = dict(list(truth.items())[::3])
    world.predictions.log_feedback(P, labeled)
    world.predictions.log_feedback(P, dict(list(labeled.items())[:50]))  # sent again
    corrected = {r: [9] for r in list(labeled)[50:120]}  # another value replaces the first
    world.predictions.log_feedback(P, corrected)
    until = T0 + 2 * HOUR + timedelta(minutes=17, seconds=30.5)

    for window in ("1h", "15m", "1m", "90s"):  # 90 s: not whole minutes, read off the rows
        report = world.monitoring.report(
            P, endpoint="churn", since=T0, until=until, window=window, record=False
        )
        assert sum(g.volume for w in report.windows for g in w.groups) == sum(
            1 for r in records if r.at is not None and r.at < until
        )
        assert_same_stats(report, direct_stats(world, report))
    model_report = world.monitoring.report(P, model="wine", since=T0, until=until, record=False)
    assert_same_stats(model_report, direct_stats(world, model_report))


def test_regression_outputs_from_rollups(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """Many distinct fractional outputs: moments and a histogram, not class counts; a
    report that must show them as classes reads the predictions instead."""
    rng = random.Random(3)
    records = [
        NewPrediction(
            f"r{i}",
            world.rows[i % len(world.rows)],
            rng.gauss(100, 0.01),
            at=at(T0, i),
            latency_ms=rng.uniform(1, 2),
        )
        for i in range(600)
    ]
    world.log("wine:1", records)
    world.predictions.log_feedback(P, {r.request_id: rng.gauss(100, 0.01) for r in records[:90]})
    report = world.monitoring.report(P, model="wine", since=T0, until=T0 + HOUR, record=False)
    assert_same_stats(report, direct_stats(world, report))
    (group,) = report.windows[0].groups
    assert group.task == "regression" and group.outputs is not None
    assert group.outputs.numeric is not None and group.outputs.numeric.count == 600
    world.endpoints.create(
        P,
        "reg",
        [Variant("only", "wine:1", 100)],
        settings={"task": "classification", "drift": False},
    )
    world.log(
        "wine:1",
        [
            NewPrediction(f"e{i}", {}, rng.random(), at=at(T0, i % 50), variant="only")
            for i in range(300)  # in one minute: more distinct outputs than a rollup keeps
        ],
        endpoint="reg",
    )
    with caplog.at_level(logging.INFO, logger="cairn.monitoring"):
        as_classes = world.monitoring.report(
            P, endpoint="reg", since=T0, until=T0 + HOUR, record=False
        )
    assert "reads predictions" in caplog.text
    assert_same_stats(as_classes, direct_stats(world, as_classes, task="classification"))


def test_drift_sample_from_rollups_spans_the_window(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the sample size, a group's inputs are read a few from each part of the window."""
    monkeypatch.setattr("cairn.services.monitoring.DRIFT_FLOOR", 50)
    monkeypatch.setattr("cairn.services.monitoring.DRIFT_BUDGET", 50)
    records = [
        NewPrediction(f"s{i}", world.rows[i % len(world.rows)], 0, at=at(T0, i))
        for i in range(600)  # ten minutes
    ]
    world.log("wine:1", records)
    report = world.monitoring.report(P, model="wine", since=T0, until=T0 + HOUR, record=False)
    (group,) = report.windows[0].groups
    assert group.drift is not None and group.drift.rows == 50
    assert (
        group.drift.note
        == "a sample of 50 of 600 predictions, the earliest in each part of the window"
    )


# ---------------------------------------------------------------------------- lineage


def test_lineage_reaches_the_endpoints_a_version_served(world: World) -> None:
    """Up from an endpoint: the versions that answered its traffic (shadows too), then
    the run and data behind them; down from a version: the endpoints it served."""
    world.aliases.set_alias("wine", "production", 1, project=P)
    make_endpoint(
        world,
        "churn",
        {},
        Variant("champion", "wine@production", 100),
        Variant("trial", "wine:2", 0, shadow=True),
    )
    now = datetime.now(UTC)

    def traffic(variant: str, shadow: bool) -> list[NewPrediction]:
        return [
            NewPrediction(
                f"{variant}-{i}", world.rows[i], 0, at=now, variant=variant, shadow=shadow
            )
            for i in range(3)
        ]

    world.log("wine@production", traffic("champion", False), endpoint="churn")
    world.log("wine:2", traffic("trial", True), endpoint="churn")
    blobs = BlobService(world.db)
    lineage = LineageService(world.db, DataService(world.db, blobs), world.registry)

    up = lineage.lineage("endpoints/churn", "up", project=P)
    assert up.root == f"endpoint:{P}/churn"
    assert {n.label for n in up.models()} == {"wine:1", "wine:2"}
    assert {n.label for n in up.datasets()} == {"wine:1"}  # what trained them
    served = {(e.source, e.role) for e in up.edges if e.relation.value == "served"}
    assert served == {(f"model:{P}/wine:1", "champion"), (f"model:{P}/wine:2", "trial (shadow)")}

    down = lineage.lineage(f"models/{P}/wine:1", "down", project=P)
    assert [n.label for n in down.endpoints()] == ["churn"]
    with pytest.raises(NotFound, match="no endpoint 'nope'"):
        lineage.lineage("endpoints/nope", project=P)
