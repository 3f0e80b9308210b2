"""Monitoring and A/B analysis through every interface: the REST API in-process (SQLite
and PostgreSQL), the server's periodic rollback check, the SDK embedded and over HTTP
against a real server, and the CLI.

Setup goes through the services on ``app.state`` (or the SDK); what is checked goes
through the interface under test, error envelopes included.
"""

from __future__ import annotations

import io
import json
import random
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.exceptions import StarletteDeprecationWarning

import cairn
from cairn.api.app import create_app
from cairn.cli.main import cli
from cairn.domain.models import ModelFile
from cairn.domain.production import NewPrediction, Variant
from cairn.settings import Settings
from cairn.store.database import Database

with warnings.catch_warnings():  # until the dev extra installs httpx2, starlette warns once
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

API = "/api/v1"
P = "shop"
T0 = datetime(2026, 1, 1, 10, tzinfo=UTC)
ROW = {"alcohol": 13.0, "proline": 700.0}


def make_app(db_url: str, tmp_path: Path) -> Any:
    folder = str(tmp_path / "server-blobs")
    return create_app(
        Settings(store=db_url, artifacts=folder), database=Database(db_url, artifacts=folder)
    )


def seed(state: Any, *, settings: dict[str, Any] | None = None, traffic: bool = True) -> None:
    """wine:1 (production) and wine:2 (staging) behind ``churn``; with ``traffic``, an
    hour of predictions with feedback where the challenger is clearly better."""
    blob = state.blobs.put(io.BytesIO(b"a model"))
    for _ in range(2):
        state.registry.register_version(
            P, "wine", [ModelFile("model.pkl", blob.digest, blob.size)], flavor="sklearn"
        )
    state.aliases.set_alias("wine", "production", 1, project=P)
    state.aliases.set_alias("wine", "staging", 2, project=P)
    state.endpoints.create(
        P,
        "churn",
        [Variant("champion", "wine@production", 50), Variant("challenger", "wine@staging", 50)],
        settings=settings or {},
    )
    if not traffic:
        return
    rng = random.Random(1)
    actuals = {}
    for variant, version, accuracy in (("champion", 1, 0.6), ("challenger", 2, 0.9)):
        records = []
        for i in range(300):
            truth = rng.randrange(2)
            request = f"{variant}-{i}"
            output = truth if rng.random() < accuracy else 1 - truth
            records.append(
                NewPrediction(
                    request,
                    ROW,
                    output,
                    at=T0 + timedelta(seconds=10 * i),
                    latency_ms=float(i % 50),
                    error="failed" if variant == "champion" and i % 5 == 0 else None,
                    variant=variant,
                )
            )
            actuals[request] = truth
        state.predictions.log_predictions(P, f"wine:{version}", records, endpoint="churn")
    state.predictions.log_feedback(P, actuals)


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(make_app(db_url, tmp_path), raise_server_exceptions=False) as client:
        seed(client.app.state, settings={"alerts": {"max_error_rate": 0.1}})  # type: ignore[attr-defined]
        yield client


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    return body


WINDOW = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()}


# ------------------------------------------------------------------------------- REST


def test_monitoring_report_of_an_endpoint_and_of_a_model(api: TestClient) -> None:
    response = api.get(
        f"{API}/projects/{P}/monitoring",
        params={"endpoint": "churn", "window": "30m", **WINDOW},
        headers={"X-Cairn-Actor": "ana"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["endpoint"] == "churn" and report["window_s"] == 1800
    assert len(report["windows"]) == 2
    first = {g["variant"]: g for g in report["windows"][0]["groups"]}
    assert set(first) == {"champion", "challenger"}
    champion = first["champion"]
    assert champion["version"] == 1 and champion["volume"] == 180
    assert champion["error_rate"] == pytest.approx(36 / 180)
    assert set(champion["latency"]) == {"p50", "p95", "p99", "mean", "max"}
    assert champion["quality"]["task"] == "classification"
    assert first["challenger"]["quality"]["accuracy"] > champion["quality"]["accuracy"]
    assert champion["drift"]["reference"] is None  # no training data: said, not failed
    alerts = report["alerts"]
    assert {(a["variant"], a["metric"], a["new"]) for a in alerts} == {
        ("champion", "error_rate", True)
    }
    assert len(alerts) == 2  # one per window

    again = api.get(
        f"{API}/projects/{P}/monitoring", params={"endpoint": "churn", "window": "30m", **WINDOW}
    )
    assert [a["new"] for a in again.json()["alerts"]] == [False, False]
    hourly = api.get(f"{API}/projects/{P}/monitoring", params={"endpoint": "churn", **WINDOW})
    assert [a["new"] for a in hourly.json()["alerts"]] == [True]  # another window

    by_model = api.get(f"{API}/projects/{P}/monitoring", params={"model": "wine:2", **WINDOW})
    assert by_model.status_code == 200, by_model.text
    (group,) = by_model.json()["windows"][0]["groups"]
    assert (group["version"], group["variant"], group["volume"]) == (2, "", 300)


def test_monitoring_errors_are_the_envelope(api: TestClient) -> None:
    url = f"{API}/projects/{P}/monitoring"
    assert error_of(api.get(url), 400)["details"]["field"] == "endpoint"
    both = api.get(url, params={"endpoint": "churn", "model": "wine"})
    assert error_of(both, 400)["code"] == "invalid"
    bad_window = api.get(url, params={"endpoint": "churn", "window": "soon"})
    assert error_of(bad_window, 400)["details"]["field"] == "window"
    bad_since = api.get(url, params={"endpoint": "churn", "since": "yesterday-ish"})
    assert error_of(bad_since, 400)["details"]["field"] == "since"
    tiny = api.get(url, params={"endpoint": "churn", "since": "30d", "window": "1s"})
    assert error_of(tiny, 400)["details"]["field"] == "window"
    assert error_of(api.get(url, params={"endpoint": "nope"}), 404)["code"] == "not_found"
    assert error_of(api.get(url, params={"model": "nope"}), 404)["code"] == "not_found"
    other = api.get(f"{API}/projects/elsewhere/monitoring", params={"model": "wine"})
    assert error_of(other, 404)["code"] == "not_found"


def test_ab_report_and_promote(api: TestClient) -> None:
    base = f"{API}/projects/{P}/endpoints/churn"
    response = api.get(f"{base}/ab", params={"metric": "accuracy"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["baseline"], report["winner"]) == ("champion", "challenger")
    challenger = next(v for v in report["variants"] if v["variant"] == "challenger")
    assert challenger["significant"] and challenger["p_value"] < 0.001
    assert challenger["interval"]["low"] < challenger["value"] < challenger["interval"]["high"]
    errors = api.get(f"{base}/ab", params={"metric": "error_rate", "since": WINDOW["since"]})
    assert errors.json()["winner"] == "challenger"

    assert error_of(api.get(f"{base}/ab", params={"metric": "vibes"}), 400)["details"] == {
        "field": "metric"
    }
    assert error_of(api.get(f"{base}/ab", params={"mde": "-1"}), 400)["code"] == "invalid"
    missing = api.get(f"{API}/projects/{P}/endpoints/nope/ab")
    assert error_of(missing, 404)["code"] == "not_found"

    done = api.post(
        f"{base}/promote",
        json={"variant": "challenger", "reason": "clear win"},
        headers={"X-Cairn-Actor": "lee"},
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["alias"], body["from_version"], body["to_version"]) == ("production", 1, 2)
    assert body["report"]["winner"] == "challenger"
    history = api.get(f"{API}/projects/{P}/models/wine/alias-history?alias=production").json()
    assert history[-1]["actor"] == "lee" and "clear win" in history[-1]["reason"]

    assert error_of(api.post(f"{base}/promote", json={"variant": "nobody"}), 400)
    assert error_of(api.post(f"{base}/promote", json={"variant": "champion"}), 409)
    extra = api.post(f"{base}/promote", json={"variant": "challenger", "force": True})
    assert error_of(extra, 400)["code"] == "invalid"


def test_the_server_checks_rollback_rules_periodically(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_ROLLBACK_CHECK_S", "0.1")
    rule = {"alias": "production", "max_error_rate": 0.05, "min_samples": 20}
    with TestClient(make_app(db_url, tmp_path), raise_server_exceptions=False) as client:
        state = client.app.state  # type: ignore[attr-defined]
        seed(state, settings={"rollback": rule}, traffic=False)
        state.aliases.set_alias("wine", "production", 2, project=P, reason="try v2")
        bad = [
            NewPrediction(f"r{i}", ROW, 1, error="failed" if i % 3 == 0 else None)
            for i in range(30)
        ]
        state.predictions.log_predictions(P, "wine@production", bad, endpoint="churn")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            current = state.aliases.resolve_alias("wine", "production", project=P)
            if current.version == 1:
                break
            time.sleep(0.05)
        assert current.version == 1
        move = state.aliases.history("wine", "production", project=P)[-1]
        assert move.actor == "cairn-monitor"
        assert move.reason is not None and "rollback rule of endpoint churn" in move.reason


# -------------------------------------------------------------------------- SDK, CLI


def test_sdk_reports_and_promotes_on_both_transports(sdk_uri: str) -> None:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], [0, 1, 1])
    example = [{"a": 0.0, "b": 1.0}]
    for _ in range(2):
        cairn.client().register_model("wine", clf, input_example=example)
    cairn.set_alias("wine", "production", 1)
    cairn.set_alias("wine", "staging", 2)
    cairn.create_endpoint("churn", ["champion=wine@production:50", "challenger=wine@staging:50"])
    rng = random.Random(2)
    for variant, version, accuracy in (("champion", 1, 0.5), ("challenger", 2, 0.95)):
        truth = [rng.randrange(2) for _ in range(200)]
        outputs = [t if rng.random() < accuracy else 1 - t for t in truth]
        inputs = [{"a": rng.random(), "b": rng.random()} for _ in truth]
        ids = cairn.log_predictions(
            f"wine:{version}", inputs, outputs, latencies_ms=3.0, endpoint="churn", variant=variant
        )
        cairn.log_feedback(ids, truth)

    report = cairn.monitoring_report("churn", since="1h", window="1h")
    assert isinstance(report, cairn.MonitoringReport)
    groups = {g.variant: g for w in report.windows for g in w.groups}
    assert groups["challenger"].volume == 200 and groups["challenger"].quality is not None
    assert groups["challenger"].quality.accuracy > 0.85
    by_model = cairn.monitoring_report("wine:1", since=timedelta(hours=1))
    assert {g.version for w in by_model.windows for g in w.groups} == {1}
    with pytest.raises(cairn.NotFound):
        cairn.monitoring_report("nothing-here")

    ab = cairn.ab_report("churn", since="1h")
    assert isinstance(ab, cairn.ABReport) and ab.winner == "challenger"
    done = cairn.promote("churn", "challenger")
    assert isinstance(done, cairn.Promotion) and (done.from_version, done.to_version) == (1, 2)
    assert cairn.resolve_alias("wine", "production").version == 2  # type: ignore[union-attr]
    with pytest.raises(cairn.Conflict):
        cairn.promote("churn", "champion")


def test_cli_monitor_and_ab(tmp_path: Path, sqlite_template: Path) -> None:
    import shutil

    store = tmp_path / "store"
    store.mkdir()
    shutil.copy(sqlite_template, store / "cairn.db")
    db = Database(str(store))
    app = create_app(Settings(store=str(store)), database=db)
    seed(app.state, settings={"alerts": {"max_error_rate": 0.1}})
    db.close()
    runner = CliRunner()
    common = ["--uri", str(store), "--project", P]
    since = ["--since", WINDOW["since"], "--until", WINDOW["until"]]

    shown = runner.invoke(cli, ["monitor", "churn", *since, *common])
    assert shown.exit_code == 0, shown.output
    assert "endpoint churn" in shown.output and "challenger" in shown.output
    assert "p95 ms" in shown.output and "alerts:" in shown.output
    as_json = runner.invoke(cli, ["monitor", "churn", *since, "--json", *common])
    assert json.loads(as_json.output)["windows"][0]["groups"][0]["volume"] > 0
    missing = runner.invoke(cli, ["monitor", "nothing", *common])
    assert missing.exit_code == 4 and "not_found" in missing.output

    ab = runner.invoke(cli, ["ab", "report", "churn", *common])
    assert ab.exit_code == 0, ab.output
    assert "winner: challenger" in ab.output and "95% CI" in ab.output
    promoted = runner.invoke(cli, ["endpoints", "promote", "churn", "challenger", *common])
    assert promoted.exit_code == 0, promoted.output
    assert "wine@production: 1 → 2" in promoted.output
    again = runner.invoke(cli, ["ab", "promote", "churn", "champion", *common])
    assert again.exit_code == 5  # conflict: the champion is the champion
