"""The web UI in a real headless Chromium (the system's, driven by Playwright), against a
real ``cairn server`` subprocess on a store filled through the SDK.

Every page loads with no console error and no uncaught exception; filtering, sorting,
selecting runs to compare and approving a version work by clicking. A screenshot of each
page lands in ``tests/ui/screenshots/`` (git-ignored) for people to look at.

Without Chromium (``/usr/bin/chromium``, which ``.ci/run`` installs) or the playwright
package these tests skip, and fail under ``CAIRN_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from browser_kit import Console, browser, page, shot, visit
from ui_seed import MODEL, PROJECT, Seeded, seed_demo

from cairn.demo import ENDPOINT, WINE_MODEL
from cairn.demo import PROJECT as DEMO
from conftest import start_server, stop_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[tuple[str, Seeded]]:
    store = tmp_path_factory.mktemp("ui-store")
    proc, url = start_server(str(store))
    seeded: Seeded | None = None
    try:
        seeded = seed_demo(url)
        demo = subprocess.run(  # ``cairn demo`` against the server, as the README says
            [sys.executable, "-m", "cairn", "demo", "--uri", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert demo.returncode == 0, demo.stderr
        yield url, seeded
    finally:
        if seeded is not None:
            seeded.client.close()
        stop_server(proc)


def charts_drawn(tab: Any, selector: str, count: int | None = None) -> None:
    """Wait until Plotly drew into ``count`` (default: every) matching chart."""
    charts = tab.locator(selector)
    total = count if count is not None else charts.count()
    for chart in charts.all():  # charts load as they scroll into view
        chart.scroll_into_view_if_needed()
    tab.wait_for_function(
        "([sel, n]) => document.querySelectorAll("
        "sel.split(',').map((s) => s + ' .main-svg').join(',')).length >= n",
        arg=[selector, total],
    )


def test_every_page_loads_without_errors(site: tuple[str, Seeded], page: Any) -> None:
    url, seeded = site
    tab, console = page
    trial = seeded.trials[0]
    pages: list[tuple[str, str, str | None]] = [
        ("projects", "/", None),
        ("runs", f"/projects/{PROJECT}/runs", None),
        ("run", f"/runs/{trial}", "[data-run-charts] .chart"),
        ("run-live", f"/runs/{seeded.live}", "[data-run-charts] .chart"),
        ("run-failed", f"/runs/{seeded.failed}", "[data-run-charts] .chart"),
        ("run-diff", f"/runs/{trial}/diff", None),
        (
            "compare",
            f"/compare?runs={','.join(seeded.trials)}",
            "[data-scatter], [data-overlay-charts] .chart",
        ),
        ("models", f"/projects/{PROJECT}/models", None),
        ("model", f"/projects/{PROJECT}/models/{MODEL}", None),
        ("model-compare", f"/projects/{PROJECT}/models/{MODEL}/compare?a=1&b=2", None),
        ("datasets", f"/projects/{PROJECT}/datasets", None),
        ("dataset", f"/projects/{PROJECT}/datasets/wine", "[data-profile-column]"),
        (
            "dataset-diff",
            f"/projects/{PROJECT}/datasets/wine/diff?old=1&new=2",
            "[data-diff-column]",
        ),
    ]
    for name, path, charts in pages:
        visit(tab, url + path)
        assert tab.locator("h1").count() == 1, name
        twin = tab.locator("a.twin").first
        assert twin.get_attribute("href"), f"{name} links no JSON twin"
        if charts:
            charts_drawn(tab, charts)
        if name == "run":  # the first artifact's preview has loaded
            tab.wait_for_selector(
                "[data-preview-pane] img, [data-preview-pane] table, [data-preview-pane] pre"
            )
        tab.wait_for_load_state("networkidle")
        shot(tab, name, full_page=name != "run-diff")  # a diff can be very long
        assert console.errors == [], f"{name}: {console.errors}"
    for name, path in [("json-twin-runs", f"/projects/{PROJECT}/runs")]:
        visit(tab, url + path)
        href = tab.locator("a.twin").first.get_attribute("href")
        assert tab.request.get(url + href).json()["runs"], name


def test_filter_by_typing_and_a_bad_filter_points_at_its_column(
    site: tuple[str, Seeded], page: Any
) -> None:
    url, _ = site
    tab, console = page
    visit(tab, f"{url}/projects/{PROJECT}/runs")
    assert tab.locator("tbody tr").count() == 5
    tab.get_by_label("Filter", exact=True).fill("params.solver = 'saga'")
    tab.get_by_role("button", name="Search").click()
    tab.wait_for_url(re.compile(r"filter="))
    rows = tab.locator("table.runs-table tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("a.strong").inner_text() == "trial-2"

    tab.get_by_label("Filter", exact=True).fill("metrics.acc > 0.5 and params.lr ~ 1")
    tab.get_by_role("button", name="Search").click()
    alert = tab.get_by_role("alert")
    assert "column 33" in alert.inner_text()
    assert tab.locator("mark.bad-token").inner_text() == "~"
    assert tab.get_by_label("Filter", exact=True).get_attribute("aria-invalid") == "true"
    shot(tab, "runs-filter-error")
    assert console.errors == []


def test_sort_by_clicking_a_header_and_choose_columns(site: tuple[str, Seeded], page: Any) -> None:
    url, _ = site
    tab, console = page
    visit(tab, f"{url}/projects/{PROJECT}/runs")
    header = tab.locator("th", has=tab.get_by_role("link", name=re.compile(r"^\s*metric\s+loss")))
    header.get_by_role("link").click()
    tab.wait_for_url(re.compile(r"order=metrics\.loss\+desc"))
    header = tab.locator("th", has=tab.get_by_role("link", name=re.compile(r"^\s*metric\s+loss")))
    assert header.get_attribute("aria-sort") == "descending"
    names = tab.locator("table.runs-table tbody td.run-cell a.strong").all_inner_texts()
    assert names[0] == "diverged"  # the largest last loss
    header.get_by_role("link").click()
    tab.wait_for_url(re.compile(r"order=metrics\.loss(&|$)"))
    names = tab.locator("table.runs-table tbody td.run-cell a.strong").all_inner_texts()
    assert names[-1] == "diverged" and names[0] != "diverged"

    # Choose columns: only the `solver` param and `val/loss`.
    tab.get_by_text("Columns").first.click()
    panel = tab.get_by_role("form", name="Choose columns")
    checked = panel.locator("input[type=checkbox]:checked")
    while checked.count():
        checked.first.uncheck()
    panel.get_by_label("solver").check()
    panel.get_by_label("val/loss").check()
    panel.get_by_role("button", name="Apply").click()
    tab.wait_for_url(re.compile(r"col="))
    headers = tab.locator("table.runs-table thead th").all_inner_texts()
    assert [" ".join(h.strip(" ▲▼").split()) for h in headers[5:]] == [
        "param solver",
        "metric val/loss",
    ]

    # Keyboard: Down moves from one row's checkbox to the next row's.
    first = tab.locator("table.runs-table tbody tr").nth(0).locator("input[type=checkbox]")
    first.focus()
    tab.keyboard.press("ArrowDown")
    focused = tab.evaluate("document.activeElement.closest('tr').rowIndex")
    assert focused == 2
    assert console.errors == []


def test_select_runs_and_compare(site: tuple[str, Seeded], page: Any) -> None:
    url, seeded = site
    tab, console = page
    visit(tab, f"{url}/projects/{PROJECT}/runs")
    compare = tab.locator("#compare-button")
    assert compare.is_disabled()
    for name in ("trial-0", "trial-2"):
        tab.get_by_label(f"Select {name}").check()
    assert compare.is_enabled()
    compare.click()
    tab.wait_for_url(re.compile(r"/compare\?runs="))
    assert set(tab.url.split("runs=")[1].split(",")) == {seeded.trials[0], seeded.trials[2]}
    differing = tab.locator("[data-compare-table] tr.differs th").all_inner_texts()
    assert any("solver" in d for d in differing) and any("lr" in d for d in differing)
    assert not any("epochs" in d for d in differing)
    charts_drawn(tab, "[data-parcoords]", 1)
    charts_drawn(tab, "[data-scatter]", 1)
    charts_drawn(tab, "[data-overlay-charts] .chart")
    tab.get_by_label("Show only rows that differ").check()
    assert tab.locator("[data-compare-table] tr.same").first.is_hidden()
    assert console.errors == []


def test_approve_and_reject_a_version_by_clicking(site: tuple[str, Seeded], page: Any) -> None:
    url, _ = site
    tab, console = page
    visit(tab, f"{url}/projects/{PROJECT}/models/{MODEL}")
    card = tab.locator("#card")
    assert "v2" in card.locator("h2").inner_text()
    assert card.locator(".approval-pending").count() == 1
    tab.get_by_label("Comment").fill("Validated on the holdout set")
    tab.get_by_role("button", name="Approve v2").click()
    tab.wait_for_url(re.compile(r"done=approved"))
    assert tab.get_by_role("status").inner_text().strip() == "Version 2 approved."
    assert tab.locator("#card .approval-approved").count() >= 1
    assert "Validated on the holdout set" in tab.locator("#card").inner_text()
    shot(tab, "model-approved")

    tab.get_by_role("link", name="v1", exact=True).first.click()
    tab.get_by_role("button", name="Reject").click()
    tab.wait_for_url(re.compile(r"done=rejected"))
    row = tab.locator("tbody tr", has=tab.get_by_role("link", name="v1", exact=True))
    assert row.locator(".approval-rejected").count() == 1
    assert console.errors == []


def test_run_page_controls_and_previews(site: tuple[str, Seeded], page: Any) -> None:
    url, seeded = site
    tab, console = page
    visit(tab, f"{url}/runs/{seeded.trials[1]}")
    charts_drawn(tab, "[data-run-charts] .chart")
    tab.get_by_label("Log scale").check()
    tab.wait_for_function(
        "() => document.querySelector('[data-metric=loss]').layout.yaxis.type === 'log'"
    )
    tab.get_by_label("Smoothing").fill("0.8")
    tab.wait_for_function("() => document.querySelector('[data-metric=loss]').data.length === 2")

    tab.get_by_role("button", name="predictions.csv").click()
    table = tab.locator("[data-preview-pane] table")
    table.wait_for()
    assert "alcohol" in table.locator("thead").inner_text()
    assert table.locator("tbody tr").count() == 40

    tab.get_by_role("button", name="loss.png").click()
    image = tab.locator("[data-preview-pane] img")
    image.wait_for()
    tab.wait_for_function(
        "() => document.querySelector('[data-preview-pane] img').naturalWidth > 0"
    )

    tab.get_by_role("button", name="config.json").click()
    tab.locator("[data-preview-pane] pre").wait_for()
    assert '"classes"' in tab.locator("[data-preview-pane] pre").inner_text()

    inputs = tab.locator("#inputs")
    assert "wine:2" in inputs.inner_text()
    assert console.errors == []


def test_a_running_runs_charts_follow_new_points(site: tuple[str, Seeded], page: Any) -> None:
    url, seeded = site
    tab, console = page
    visit(tab, f"{url}/runs/{seeded.live}")
    charts_drawn(tab, "[data-run-charts] .chart")
    caption = tab.locator("figure", has=tab.locator("[data-metric=loss]")).locator(".points-note")
    assert caption.inner_text() == "30 points"
    for step in range(30, 40):
        seeded.live_run.log({"loss": 1 / (step + 1)}, step=step)
    seeded.live_run.flush()
    tab.wait_for_function(
        "() => document.querySelector('[data-metric=loss]').data.at(-1).x.length === 40",
        timeout=12_000,
    )
    assert caption.inner_text() == "40 points"
    assert console.errors == []


def test_unknown_run_is_a_404_page(site: tuple[str, Seeded], page: Any) -> None:
    url, _ = site
    tab, _console = page
    response = tab.goto(f"{url}/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert response is not None and response.status == 404
    assert "does not exist" in tab.get_by_role("alert").inner_text()
    shot(tab, "error-404")


def test_the_demos_pages_show_its_content(site: tuple[str, Seeded], page: Any) -> None:
    """What ``cairn demo`` made, page by page: the sweep, the registry, the datasets,
    lineage both ways, and the endpoint's monitoring and A/B result."""
    url, _ = site
    tab, console = page
    models = f"/projects/{DEMO}/models/{WINE_MODEL}"
    pages: list[tuple[str, str, str | None, str]] = [
        ("demo-runs", f"/projects/{DEMO}/runs", None, "wine-sweep"),
        ("demo-model", models, None, "production"),
        ("demo-dataset", f"/projects/{DEMO}/datasets/wine", "[data-profile-column]", "2026-03"),
        ("demo-endpoints", f"/projects/{DEMO}/endpoints", None, "challenger"),
        (
            "demo-endpoint",
            f"/projects/{DEMO}/endpoints/{ENDPOINT}",
            "[data-monitor-chart], [data-ab-chart]",
            "95% interval",
        ),
        (
            "lineage-model",
            f"/lineage?ref=models/{WINE_MODEL}@production&project={DEMO}",
            None,
            "wine:3",
        ),
        ("lineage-dataset", f"/lineage?ref=datasets/wine:3&project={DEMO}", None, "wine-clf:2"),
    ]
    for name, path, charts, expect in pages:
        visit(tab, url + path)
        assert tab.locator("h1").count() == 1, name
        assert expect in tab.locator("main").inner_text(), f"{name} lacks {expect!r}"
        if charts:
            charts_drawn(tab, charts)
        tab.wait_for_load_state("networkidle")
        shot(tab, name)
        assert console.errors == [], f"{name}: {console.errors}"
    # the run page links its lineage; the graph's nodes are links a keyboard reaches
    visit(tab, f"{url}/projects/{DEMO}/runs")
    tab.get_by_role("link", name="wine-evaluation").first.click()
    tab.get_by_role("link", name="Lineage").first.click()
    tab.wait_for_url(re.compile(r"/lineage\?"))
    nodes = tab.locator("svg.lineage a.node")
    assert nodes.count() >= 3
    nodes.first.focus()
    with tab.expect_navigation():
        tab.keyboard.press("Enter")
    assert "/lineage" not in tab.url
    shot(tab, "lineage-node-target")
    assert console.errors == []
