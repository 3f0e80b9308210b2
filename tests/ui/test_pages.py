"""The UI's pages in process (FastAPI's TestClient), on SQLite and PostgreSQL: each
renders, links its JSON twin, turns errors into pages, and guards its forms with CSRF."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cairn.domain.errors import Invalid
from cairn.domain.query import Field, OrderKey
from cairn.domain.records import ArtifactEntry
from cairn.ui.columns import KeysSeen, cell, parse_columns, sort_state
from cairn.ui.render import fmt_ago, fmt_duration, fmt_num, fmt_size, split_list, url
from cairn.ui.views.run import artifact_tree


@dataclass
class Store:
    client: Any  # the TestClient
    runs: list[str]


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    """The app and an embedded SDK on one fresh store, with one blob folder for both
    (a PostgreSQL store names none)."""
    import warnings

    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import cairn
    from cairn.api.app import create_app
    from cairn.settings import Settings
    from cairn.store.database import Database

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's deprecation notice about httpx
        from fastapi.testclient import TestClient

    folder = str(tmp_path / "blobs")
    app = create_app(
        Settings(store=db_url, artifacts=folder), database=Database(db_url, artifacts=folder)
    )
    sdk = cairn.Client(db_url, project="p")
    sdk.backend.db.artifacts = folder  # type: ignore[attr-defined]
    frame = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0], "kind": ["a", "b", "a", "c"], "y": [0, 1, 0, 1]}
    )
    sdk.log_dataset("table", frame, batch="b1")
    sdk.log_dataset("table", frame.assign(x=frame.x * 2), batch="b2")
    ids = []
    for i in range(3):
        with sdk.start_run(
            f"r{i}", params={"lr": 0.1 * (i + 1), "opt": "adam"}, capture=False
        ) as run:
            run.use_dataset("table:2")
            for step in range(5):
                run.log({"loss": 1 / (step + 1 + i), "acc": step / 5}, step=step)
            run.log_text("line one\nline two\n", "logs/out.txt")
            run.log_table(frame, "eval/rows.csv")
            if i:
                model = LogisticRegression().fit(frame[["x"]], frame["y"])
                run.register_model("m", model, input_example=frame[["x"]].head(2))
        ids.append(run.id)
    sdk.close()
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Store(client, ids)


def _page(store: Store, path: str, status: int = 200) -> str:
    response = store.client.get(path)
    assert response.status_code == status, (path, response.text[:2000])
    assert response.headers["content-type"].startswith("text/html")
    return str(response.text)


def _twin(body: str) -> str:
    found = re.search(r'<a class="twin" href="([^"]+)"', body)
    assert found, "the page links no JSON twin"
    return html.unescape(found.group(1))


def test_every_page_renders_and_its_json_twin_answers(store: Store) -> None:
    a, b, c = store.runs
    for path in [
        "/",
        "/projects/p/runs",
        "/projects/p/runs?order=metrics.acc+desc&col=params.lr&col=metrics.loss.min&col=tags.x",
        f"/runs/{a}",
        f"/runs/{a}/diff",
        f"/compare?runs={a},{b},{c}",
        f"/compare?run={a}&run={b}",
        "/projects/p/models",
        "/projects/p/models/m",
        "/projects/p/models/m?version=1",
        "/projects/p/models/m/compare?a=1&b=2",
        "/projects/p/datasets",
        "/projects/p/datasets/table",
        "/projects/p/datasets/table?version=1",
        "/projects/p/datasets/table/diff",
        "/projects/p/datasets/table/diff?old=1&new=2",
    ]:
        body = _page(store, path)
        twin = store.client.get(_twin(body))
        assert twin.status_code in (200, 204), (path, twin.text[:500])


def test_runs_table_shows_chosen_columns_and_sorts(store: Store) -> None:
    body = _page(store, "/projects/p/runs?col=params.lr&col=metrics.loss.min&order=params.lr+desc")
    names = re.findall(r'<a href="/runs/\w+" class="strong">(r\d)</a>', body)
    assert names == ["r2", "r1", "r0"]
    assert 'aria-sort="descending"' in body
    assert "loss (min)" in body
    # the next click on that header sorts ascending
    assert (
        "order=params.lr" in body
        and "order=params.lr+desc" not in body.split("loss (min)")[0][-400:]
    )


def test_a_bad_filter_marks_the_token_at_its_column(store: Store) -> None:
    body = _page(store, "/projects/p/runs?filter=metrics.acc+%3E+%3E+1")
    assert 'role="alert"' in body
    assert "column 15" in body
    assert '<mark class="bad-token">&gt;</mark>' in body
    assert 'aria-invalid="true"' in body


def test_runs_pages_with_cursors_go_forward_and_back(store: Store) -> None:
    first = _page(store, "/projects/p/runs?limit=25")
    assert 'rel="next"' not in first  # 3 runs fit a page
    body = _page(store, "/projects/p/runs?limit=2")  # an unknown size falls back to 50
    assert 'rel="next"' not in body


def test_errors_are_pages_with_the_right_status(store: Store) -> None:
    assert "does not exist" in _page(store, "/projects/nope/runs", 404)
    assert "does not exist" in _page(store, "/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404)
    assert "2 to 50 runs" in _page(store, f"/compare?runs={store.runs[0]}", 400)
    assert "Bad address" in _page(store, "/projects/p/models/m?version=abc", 400)
    assert _page(store, "/projects/p/datasets/nope", 404)
    response = store.client.get("/go?project=p", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/projects/p/runs"


def test_approve_needs_the_csrf_token_of_the_page(store: Store) -> None:
    client = store.client
    client.cookies.clear()
    forged = client.post(
        "/projects/p/models/m/versions/1/approve", data={"csrf": "x" * 43}, follow_redirects=False
    )
    assert forged.status_code == 403
    body = _page(store, "/projects/p/models/m?version=1")
    token = re.search(r'name="csrf" value="([^"]+)"', body)
    assert token is not None and client.cookies.get("cairn_csrf") == token.group(1)
    done = client.post(
        "/projects/p/models/m/versions/1/approve",
        data={"csrf": token.group(1), "comment": "fine"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith("/projects/p/models/m?version=1&done=approved")
    version = client.get("/api/v1/projects/p/models/m/versions/1").json()
    assert version["approval"] == "approved"
    bad = client.post(
        "/projects/p/models/m/versions/1/promote",
        data={"csrf": token.group(1)},
        follow_redirects=False,
    )
    assert bad.status_code == 400


def test_the_charting_library_comes_from_its_package(store: Store) -> None:
    gz = store.client.get("/ui/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert gz.status_code == 200
    assert gz.headers["content-encoding"] == "gzip"
    assert "max-age" in gz.headers["cache-control"]
    assert len(gz.content) > 1_000_000  # decoded by the client
    css = store.client.get("/ui/static/cairn.css")
    assert css.status_code == 200 and "--accent" in css.text


# -- the helpers ------------------------------------------------------------------------


def test_columns_parse_and_sort() -> None:
    cols = parse_columns(["params.lr", "metrics.acc.max,tags.team", "params.lr", "status", ""])
    assert [c.name for c in cols] == ["params.lr", "metrics.acc.max", "tags.team"]
    assert cols[1].label == "acc (max)"
    with pytest.raises(Invalid) as caught:
        parse_columns(["params."])
    assert caught.value.field == "col"
    metric = Field("metric", "acc")
    assert sort_state(metric, None).next_order == "metrics.acc desc"
    assert sort_state(Field("param", "lr"), None).next_order == "params.lr"
    state = sort_state(metric, OrderKey(metric, descending=True))
    assert (state.direction, state.next_order) == ("descending", "metrics.acc")
    default = sort_state(Field("attribute", "start_time"), None)
    assert default.direction == "descending"


def test_keys_seen_put_system_metrics_last() -> None:
    @dataclass
    class FakeRun:
        params: dict[str, str]
        tags: dict[str, str]
        metrics: dict[str, Any]

    seen = KeysSeen.of([FakeRun({"b": "1", "a": "2"}, {"t": "x"}, {"system/cpu": 1, "loss": 2})])  # type: ignore[list-item]
    assert seen.metrics == ["loss", "system/cpu"]
    assert [c.name for c in seen.defaults()] == ["params.a", "params.b", "metrics.loss"]
    assert cell(FakeRun({"a": "2"}, {}, {}), Field("param", "a")) == "2"  # type: ignore[arg-type]


def test_artifact_tree_nests_files_under_folders() -> None:
    now = datetime.now(tz=UTC)
    entries = [
        ArtifactEntry(p, "0" * 64, 1, "text/plain", now)
        for p in ["b.txt", "a/x/1.txt", "a/2.txt", "a/x/0.txt"]
    ]
    rows = [(r.depth, r.name, r.entry is not None) for r in artifact_tree(entries)]
    assert rows == [
        (0, "a", False),
        (1, "2.txt", True),
        (1, "x", False),
        (2, "0.txt", True),
        (2, "1.txt", True),
        (0, "b.txt", True),
    ]


def test_formatting() -> None:
    assert fmt_num(0.923456) == "0.9235"
    assert fmt_num(12345.678) == "12,345.7"
    assert fmt_num(3.0) == "3"
    assert fmt_num(1e-7) == "1.000e-07"
    assert fmt_num(float("nan")) == "NaN"
    assert fmt_num(None) == "—"
    assert fmt_size(1500) == "1.5 KB" and fmt_size(12) == "12 B"
    assert fmt_duration(125) == "2 min 5 s" and fmt_duration(3.25) == "3.2 s"
    now = datetime.now(tz=UTC)
    assert fmt_ago(now - timedelta(minutes=3), now) == "3 min ago"
    assert url("/a", {"x": "1", "y": None}, z=["p", "q"]) == "/a?x=1&z=p&z=q"
    assert split_list(["a,b", "b", " c "]) == ["a", "b", "c"]
