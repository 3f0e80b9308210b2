"""``cairn demo`` on an embedded store: what it logs, that it is the same every time, and
that the pages built on it (endpoints, monitoring, A/B, lineage) render its content.
(``test_browser.py`` runs it against a real server and looks at the pages in Chromium.)"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import cairn
from cairn.cli.main import cli
from cairn.demo import CANCER_MODEL, ENDPOINT, PROJECT, WINE_MODEL, fill


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("demo-store")
    result = CliRunner().invoke(cli, ["demo", "--uri", str(store)])
    assert result.exit_code == 0, result.output
    assert "done:" in result.output
    return store


@pytest.fixture
def client(demo_store: Path) -> Iterator[Any]:
    sdk = cairn.Client(str(demo_store), project=PROJECT)
    yield sdk
    sdk.close()


def test_the_demo_logs_a_history(client: Any) -> None:
    assert {d.name for d in client.list_datasets()} == {"wine", "breast-cancer", "digits"}
    assert [v.batch for v in client.list_dataset_versions("wine")][::-1] == [
        "2026-01",
        "2026-02",
        "2026-03",
    ]
    sweep = client.search_runs("name = 'wine-sweep'")[0]
    children = [r for r in client.search_runs(limit=100) if r.parent_id == sweep.id]
    assert len(children) == 8
    versions = client.list_model_versions(WINE_MODEL)
    assert [v.semver for v in versions] == ["1.1.1", "1.1.0", "1.0.0"]
    assert [v.approval.value for v in versions] == ["rejected", "approved", "approved"]
    moves = client.alias_history(WINE_MODEL, "production")
    assert [m.to_version for m in moves] == [1, 2, 1]  # deployed, promoted, rolled back
    assert client.resolve_alias(CANCER_MODEL, "production") is not None
    endpoint = client.get_endpoint(ENDPOINT)
    assert sorted(v.name for v in endpoint.variants) == ["challenger", "champion"]
    report = client.monitoring_report(ENDPOINT, since="24h", window="1h")
    volume = sum(g.volume for w in report.windows for g in w.groups)
    assert volume > 400
    drifted = {
        f.feature
        for w in report.windows[-3:]
        for g in w.groups
        if g.drift
        for f in g.drift.features
        if f.drifted
    }
    assert "alcohol" in drifted
    ab = client.ab_report(ENDPOINT)
    assert {v.variant for v in ab.variants} == {"champion", "challenger"}
    assert all(v.interval is not None for v in ab.variants)


def test_the_demo_is_the_same_every_time(demo_store: Path, client: Any) -> None:
    again = cairn.Client(str(demo_store), project="demo-again")
    try:
        fill(again, say=lambda _line: None)
        first = client.search_runs("name = 'trial-2'")[0]
        second = again.search_runs("name = 'trial-2'")[0]
        assert first.params == second.params
        a = client.get_metric_history(first.id, "val/loss").points
        b = again.get_metric_history(second.id, "val/loss").points
        assert [p.value for p in a] == [p.value for p in b]
        assert len(again.list_predictions(endpoint=ENDPOINT, limit=1000)) == len(
            client.list_predictions(endpoint=ENDPOINT, limit=1000)
        )
    finally:
        again.close()


def test_a_second_demo_in_the_same_project_is_refused(demo_store: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--uri", str(demo_store)])
    assert result.exit_code != 0
    assert "already has runs" in result.output


def test_the_pages_show_the_demo(demo_store: Path, client: Any) -> None:
    from cairn.api.app import create_app
    from cairn.settings import Settings
    from cairn.store.database import Database

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's deprecation notice about httpx
        from fastapi.testclient import TestClient

    store = str(demo_store)
    app = create_app(Settings(store=store), database=Database(store))
    run = client.search_runs("name = 'trial-1'")[0]
    pages = {
        f"/projects/{PROJECT}/endpoints": ["wine-clf@production", "80.0%"],
        f"/projects/{PROJECT}/endpoints/{ENDPOINT}": ["champion", "95% interval", "Alerts"],
        f"/projects/{PROJECT}/endpoints/{ENDPOINT}?metric=latency&since=7d&window=6h": ["latency"],
        f"/lineage?ref=models/{WINE_MODEL}@production&project={PROJECT}": ["wine:3", "trial-1"],
        f"/lineage?ref=runs/{run.id}&direction=up&depth=1": ["wine:3", "wine-sweep"],
        "/lineage": ["Pick a starting point"],
    }
    with TestClient(app, raise_server_exceptions=False) as http:
        for path, expected in pages.items():
            response = http.get(path)
            assert response.status_code == 200, (path, response.text[:500])
            for text in expected:
                assert text in response.text, (path, text)
        missing = http.get(f"/lineage?ref=models/nope:1&project={PROJECT}")
        assert missing.status_code == 404
        assert "nope" in missing.text
        assert http.get(f"/projects/{PROJECT}/endpoints/nope").status_code == 404
        assert http.get("/lineage?ref=runs/x&depth=-1").status_code == 400
