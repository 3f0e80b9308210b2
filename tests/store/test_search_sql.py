"""Run search compiled to SQL, on a real SQLite file and (when configured) PostgreSQL.

The fixture data is small and hand-made so every expectation can be checked by eye; a
Hypothesis test then compares random filters against a reference evaluator in Python.
"""

from __future__ import annotations

import base64
import json
import operator
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.schema import CreateSchema, DropSchema

from cairn.domain.errors import Invalid
from cairn.domain.query import (
    AGGREGATES,
    And,
    Comparison,
    Expr,
    Field,
    InList,
    IsNull,
    Not,
    Or,
    Value,
    format_query,
    time_to_ms,
)
from cairn.store import search as search_module
from cairn.store.search import compile_run_search
from cairn.store.tables import (
    Base,
    MetricKeyRow,
    MetricSummaryRow,
    ParamRow,
    ProjectRow,
    RunRow,
    TagRow,
)

DATABASE_URL = os.environ.get("CAIRN_TEST_DATABASE_URL")
REQUIRE_ALL = os.environ.get("CAIRN_REQUIRE_ALL") == "1"
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


@dataclass
class FakeRun:
    id: str
    project: int
    name: str | None
    status: str
    start: int
    end: int | None
    author: str | None = None
    experiment: str | None = None
    parent: str | None = None
    # key -> (last, min, max, count); None stands for NaN, which the store keeps as NULL
    metrics: dict[str, tuple[float | None, float | None, float | None, int]] = field(
        default_factory=dict
    )
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def flat(value: float | None) -> tuple[float | None, float | None, float | None, int]:
    return (value, value, value, 1)


RUNS = [
    FakeRun("r01", 1, "baseline", "finished", T0, T0 + 60_000, "ana", "exp-a",
            metrics={"acc": (0.8, 0.5, 0.8, 10), "loss": (0.5, 0.4, 0.9, 10),
                     "val.acc": (0.75, 0.6, 0.75, 5), "val loss": (0.55, 0.5, 0.7, 5)},
            params={"lr": "0.01", "batch": "32", "opt": "adam"},
            tags={"team": "nlp", "mlflow.user": "ana", "progress": "50%", "tier": "gold"}),
    FakeRun("r02", 1, "Baseline-2", "finished", T0 + 1000, T0 + 121_000, "bob", "exp-a",
            metrics={"acc": (0.9, 0.6, 0.9, 10), "loss": (0.3, 0.3, 0.8, 10)},
            params={"lr": "0.001", "batch": "64", "opt": "Adam", "flag": "false"},
            tags={"team": "vision", "progress": "500", "tier": "silver"}),
    FakeRun("r03", 1, "sweep-1", "failed", T0 + 2000, T0 + 7000, "ana", "exp-b", "r01",
            metrics={"acc": (0.9, 0.2, 0.95, 3)},
            params={"lr": "1e-3", "batch": "128", "opt": "sgd"},
            tags={"team": "nlp", "note": "it's fine", "tier": "bronze"}),
    FakeRun("r04", 1, "sweep-2", "running", T0 + 3000, None, "cy", "exp-b", "r01",
            metrics={"acc": (None, None, None, 3)}, params={"lr": "abc", "batch": "16"}),
    FakeRun("r05", 1, None, "killed", T0 + 4000, T0 + 5000, tags={"team": "NLP", "tier": "gold"}),
    FakeRun("r06", 1, "Sweep-3", "finished", T0 + 5000, T0 + 65_000, "bob", "exp-b",
            metrics={"acc": flat(0.7), "val.acc": flat(0.71)},
            params={"lr": "0.1", "batch": "32.0", "opt": "adamw", "flag": "True"}),
    *(
        FakeRun(f"r{i:02d}", 1, f"tie-{i}", "finished", T0 + 6000, T0 + 16_000, "dee",
                metrics={} if acc is None else {"acc": flat(acc)},
                params={"lr": "0.05", "seed": str(i)})
        for i, acc in [(7, 0.5), (8, 0.5), (9, None), (10, 0.5), (11, None), (12, 0.6)]
    ),
    FakeRun("r13", 2, "other", "finished", T0 + 7000, T0 + 8000, "eve", "exp-a",
            metrics={"acc": flat(0.99)}, params={"lr": "0.01"}, tags={"team": "nlp"}),
    FakeRun("r14", 2, "other-2", "running", T0 + 8000, None),
]  # fmt: skip
BY_ID = {run.id: run for run in RUNS}
PROJECT_1 = [run.id for run in RUNS if run.project == 1]


def seed(engine: Engine, runs: Sequence[FakeRun]) -> None:
    """Insert the fixture with plain Core inserts, the way the store lays rows out."""
    keys = sorted({k for run in runs for k in run.metrics})
    key_ids = {k: i + 1 for i, k in enumerate(keys)}
    with engine.begin() as conn:
        conn.execute(
            insert(ProjectRow),
            [{"id": p, "name": f"p{p}", "description": "", "created_at": T0} for p in (1, 2)],
        )
        conn.execute(insert(MetricKeyRow), [{"id": i, "name": k} for k, i in key_ids.items()])
        conn.execute(
            insert(RunRow),
            [
                {"pk": pk, "id": r.id, "project_id": r.project, "name": r.name,
                 "experiment": r.experiment, "parent_id": r.parent, "status": r.status,
                 "start_time": r.start, "end_time": r.end, "author": r.author,
                 "updated_at": r.start}
                for pk, r in enumerate(runs, 1)
            ],
        )  # fmt: skip
        summaries = [
            {"run_pk": pk, "key_id": key_ids[k], "last_value": last, "min_value": low,
             "max_value": high, "count": count, "last_step": count, "last_ts": r.start}
            for pk, r in enumerate(runs, 1)
            for k, (last, low, high, count) in r.metrics.items()
        ]  # fmt: skip
        conn.execute(insert(MetricSummaryRow), summaries)
        for table, attr in ((ParamRow, "params"), (TagRow, "tags")):
            rows = [
                {"run_pk": pk, "key": k, "value": v}
                for pk, r in enumerate(runs, 1)
                for k, v in getattr(r, attr).items()
            ]
            conn.execute(insert(table), rows)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("search") / "search.db"
        eng = create_engine(f"sqlite+pysqlite:///{path}")
        Base.metadata.create_all(eng)
        seed(eng, RUNS)
        yield eng
        eng.dispose()
        return
    if not DATABASE_URL:
        if REQUIRE_ALL:
            pytest.fail("CAIRN_REQUIRE_ALL=1 but CAIRN_TEST_DATABASE_URL is not set")
        pytest.skip("set CAIRN_TEST_DATABASE_URL to run on PostgreSQL")
    schema = f"test_search_{uuid.uuid4().hex[:12]}"
    admin = create_engine(DATABASE_URL)
    with admin.begin() as conn:
        conn.execute(CreateSchema(schema))
    eng = create_engine(DATABASE_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        Base.metadata.create_all(eng)
        seed(eng, RUNS)
        with eng.begin() as conn:
            conn.execute(text("ANALYZE"))
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(DropSchema(schema, cascade=True))
        admin.dispose()


def search_page(
    engine: Engine,
    filter_text: str | None = None,
    order_by: Sequence[str] | None = None,
    *,
    project_id: int | None = 1,
    limit: int = 1000,
    cursor: str | None = None,
) -> tuple[list[str], str | None]:
    compiled = compile_run_search(
        filter_text, order_by, project_id=project_id, limit=limit, cursor=cursor
    )
    with engine.connect() as conn:
        rows = list(conn.execute(compiled.statement))
    pks, next_cursor = compiled.page(rows)
    assert pks == [row[0] for row in rows[:limit]]
    return [RUNS[pk - 1].id for pk in pks], next_cursor


def ids(engine: Engine, filter_text: str | None = None, **kwargs: Any) -> list[str]:
    found, cursor = search_page(engine, filter_text, **kwargs)
    assert cursor is None
    return found


def match(engine: Engine, filter_text: str, **kwargs: Any) -> set[str]:
    return set(ids(engine, filter_text, **kwargs))


# ---------------------------------------------------------------------------- filters

EXPECTED = [
    ("metrics.acc > 0.85", "r02 r03"),
    ("metrics.acc.min < 0.55", "r01 r03 r07 r08 r10"),
    ("metrics.acc.max >= 0.95", "r03"),
    ("metrics.acc.last = 0.9", "r02 r03"),
    ("metrics.acc.count = 3", "r03 r04"),
    ("metrics.acc is null", "r04 r05 r09 r11"),
    ("metrics.acc is not null", "r01 r02 r03 r06 r07 r08 r10 r12"),
    ("metrics.acc.count is null", "r05 r09 r11"),
    ("metrics.val.acc > 0.7", "r01 r06"),
    ("metrics.`val loss` < 1", "r01"),
    ('metrics."val loss".max = 0.7', "r01"),
    ("not metrics.acc > 0.85", "r01 r04 r05 r06 r07 r08 r09 r10 r11 r12"),
    ("metrics.acc != 0.5", "r01 r02 r03 r06 r12"),
    ("metrics.acc in (0.5, 0.6)", "r07 r08 r10 r12"),
    ("metrics.acc not in (0.5, 0.6)", "r01 r02 r03 r06"),
    ("metrics.nope > 1", ""),
    ("metrics.loss < 1 and metrics.acc >= 0.9", "r02"),
    ("metrics.acc > 0.85 or params.opt = 'sgd'", "r02 r03"),
    ("metrics.acc > 0.85 or tags.team = 'vision'", "r02 r03"),
    ("params.lr = '0.01'", "r01"),
    ("params.lr < 0.005", "r02 r03"),
    ("params.lr > 0.005", "r01 r06 r07 r08 r09 r10 r11 r12"),
    ("params.lr = 1e-3", "r02 r03"),
    ("params.batch = 32", "r01 r06"),
    ("params.batch = '32'", "r01"),
    ("params.batch != 32", "r02 r03 r04"),
    ("params.lr != 0.01", "r02 r03 r04 r06 r07 r08 r09 r10 r11 r12"),
    ("params.batch >= 64", "r02 r03"),
    ("params.batch > '4'", "r02"),
    ("params.batch in (16, 64, '32')", "r01 r02 r04"),
    ("params.lr not in (0.01, 'abc')", "r02 r03 r06 r07 r08 r09 r10 r11 r12"),
    ("params.opt like 'ad%'", "r01 r06"),
    ("params.opt ilike 'AD%'", "r01 r02 r06"),
    ("params.opt like 'adam'", "r01"),
    ("params.opt like '_dam%'", "r01 r02 r06"),
    ("not params.opt like 'ad%'", "r02 r03 r04 r05 r07 r08 r09 r10 r11 r12"),
    ("params.flag = true", "r06"),
    ("params.flag = false", "r02"),
    ("params.flag != true", "r02"),
    ("params.nope is null and metrics.acc > 0.85", "r02 r03"),
    ("tags.team = 'nlp'", "r01 r03"),
    ("tags.team ilike 'nlp'", "r01 r03 r05"),
    ("tags.team in ('nlp', 'vision')", "r01 r02 r03"),
    ("tags.team not in ('nlp')", "r02 r05"),
    ("not tags.team in ('nlp')", "r02 r04 r05 r06 r07 r08 r09 r10 r11 r12"),
    ("tags.team is null", "r04 r06 r07 r08 r09 r10 r11 r12"),
    ("tags.note = 'it''s fine'", "r03"),
    ("tags.`mlflow.user` = 'ana'", "r01"),
    ("tags.progress like '50%'", "r01 r02"),
    ("tags.progress like '50\\%'", "r01"),
    ("name like 'sweep%'", "r03 r04"),
    ("name ilike 'SWEEP%'", "r03 r04 r06"),
    ("run_name = 'baseline'", "r01"),
    ("name is null", "r05"),
    ("name != 'baseline'", "r02 r03 r04 r06 r07 r08 r09 r10 r11 r12"),
    ("status = 'FINISHED'", "r01 r02 r06 r07 r08 r09 r10 r11 r12"),
    ("status in ('failed', 'Killed')", "r03 r05"),
    ("status != 'finished'", "r03 r04 r05"),
    ("attributes.status like 'RUN%'", "r04"),
    (f"start_time >= {T0 + 5000}", "r06 r07 r08 r09 r10 r11 r12"),
    ("start_time < '2023-11-14T22:13:22Z'", "r01 r02"),
    ("start_time >= '2023-11-14T23:13:23+01:00'", "r04 r05 r06 r07 r08 r09 r10 r11 r12"),
    ("start_time < '2023-11-15'", " ".join(PROJECT_1)),
    ("end_time is null", "r04"),
    (f"end_time <= {T0 + 7000}", "r03 r05"),
    ("duration > 59", "r01 r02 r06"),
    ("duration <= 5", "r03 r05"),
    ("id in ('r03', 'r05')", "r03 r05"),
    ("run_id = 'r03'", "r03"),
    ("parent_id = 'r01'", "r03 r04"),
    ("experiment = 'exp-a'", "r01 r02"),
    ("author is null", "r05"),
    ("name = 'baseline' or (author = 'bob' and metrics.acc > 0.8)", "r01 r02"),
    ("not (author = 'bob' or author = 'ana')", "r04 r05 r07 r08 r09 r10 r11 r12"),
    ("", " ".join(PROJECT_1)),
]


@pytest.mark.parametrize(("filter_text", "expected"), EXPECTED)
def test_filters(engine: Engine, filter_text: str, expected: str) -> None:
    assert match(engine, filter_text) == set(expected.split())


def test_all_projects(engine: Engine) -> None:
    assert match(engine, "metrics.acc > 0.85", project_id=None) == {"r02", "r03", "r13"}
    assert match(engine, "metrics.acc > 0.85", project_id=2) == {"r13"}
    assert len(ids(engine, project_id=None)) == len(RUNS)


# ---------------------------------------------------------------------------- order


def test_default_order_is_newest_first_then_id(engine: Engine) -> None:
    expected = "r12 r11 r10 r09 r08 r07 r06 r05 r04 r03 r02 r01"
    assert ids(engine) == expected.split()


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.acc desc"], "r03 r02 r01 r06 r12 r10 r08 r07 r11 r09 r05 r04"),
        (["metrics.acc"], "r07 r08 r10 r12 r06 r01 r02 r03 r04 r05 r09 r11"),
        (["metrics.acc desc", "start_time"], "r02 r03 r01 r06 r12 r07 r08 r10 r04 r05 r09 r11"),
        (["metrics.acc desc, id"], "r02 r03 r01 r06 r12 r07 r08 r10 r04 r05 r09 r11"),
        (["duration desc"], "r02 r06 r01 r12 r11 r10 r09 r08 r07 r03 r05 r04"),
        (["end_time"], "r05 r03 r07 r08 r09 r10 r11 r12 r01 r06 r02 r04"),
        (["author", "name"], "r01 r03 r02 r06 r04 r10 r11 r12 r07 r08 r09 r05"),
        (["tags.tier desc", "id"], "r02 r01 r05 r03 r04 r06 r07 r08 r09 r10 r11 r12"),
        (["params.batch"], "r03 r04 r01 r06 r02 r05 r07 r08 r09 r10 r11 r12"),
        (["status", "metrics.acc.min desc"], "r03 r06 r12 r02 r10 r08 r07 r01 r11 r09 r05 r04"),
        (["id"], "r01 r02 r03 r04 r05 r06 r07 r08 r09 r10 r11 r12"),
        (["metrics.acc.count desc"], "r02 r01 r04 r03 r12 r10 r08 r07 r06 r11 r09 r05"),
    ],
)
def test_orders_put_nulls_last(engine: Engine, order_by: list[str], expected: str) -> None:
    assert ids(engine, None, order_by=order_by) == expected.split()


def test_order_by_inside_the_filter(engine: Engine) -> None:
    assert ids(engine, "metrics.acc > 0.6 order by metrics.acc desc, start_time") == [
        "r02", "r03", "r01", "r06",
    ]  # fmt: skip
    assert ids(engine, "order by id") == sorted(PROJECT_1)
    with pytest.raises(Invalid) as caught:
        compile_run_search("order by id", ["name"], project_id=1, limit=5, cursor=None)
    assert caught.value.field == "order_by"


def test_a_field_used_in_filter_and_order_shares_one_join() -> None:
    compiled = compile_run_search(
        "metrics.acc > 0.5 and metrics.acc.max < 1 order by metrics.acc desc, metrics.loss",
        None, project_id=1, limit=5, cursor=None,
    )  # fmt: skip
    sql = str(compiled.statement)
    assert sql.count("metric_summaries AS") == 2
    assert "runs JOIN metric_summaries AS m0" in sql  # the filter's field: inner join
    assert "LEFT OUTER JOIN metric_summaries AS m1" in sql  # the sort's: outer


# ---------------------------------------------------------------------------- paging

ORDERS: list[list[str] | None] = [
    None,
    ["metrics.acc desc"],
    ["metrics.acc"],
    ["metrics.acc desc", "start_time"],
    ["params.batch desc"],
    ["tags.team", "metrics.acc.min desc"],
    ["name"],
    ["duration desc"],
    ["end_time", "metrics.acc desc"],
    ["status", "metrics.acc desc"],
    ["id desc"],
    ["metrics.nope desc"],
    ["metrics.acc.count desc", "metrics.loss.min"],
]


def walk(
    engine: Engine, filter_text: str | None, order_by: list[str] | None, limit: int
) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        page, cursor = search_page(engine, filter_text, order_by, limit=limit, cursor=cursor)
        assert len(page) <= limit
        seen.extend(page)
        if cursor is None:
            return seen
        assert len(page) == limit
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("order_by", ORDERS, ids=lambda o: ",".join(o or ["default"]))
def test_keyset_pages_equal_the_unpaged_order(engine: Engine, order_by: list[str] | None) -> None:
    everything = ids(engine, None, order_by=order_by)
    assert sorted(everything) == sorted(PROJECT_1)
    for limit in (1, 2, 3, 5, 12):
        assert walk(engine, None, order_by, limit) == everything, limit
    filtered = ids(engine, "metrics.acc is null or metrics.acc < 0.85", order_by=order_by)
    assert walk(engine, "metrics.acc is null or metrics.acc < 0.85", order_by, 2) == filtered


def test_last_page_has_no_cursor(engine: Engine) -> None:
    page, cursor = search_page(engine, None, limit=12)
    assert len(page) == 12 and cursor is None
    page, cursor = search_page(engine, None, limit=11)
    assert len(page) == 11 and cursor is not None
    rest, cursor = search_page(engine, None, limit=11, cursor=cursor)
    assert rest == ["r01"] and cursor is None


# ---------------------------------------------------------------------------- cursors


def first_cursor(engine: Engine, order_by: list[str] | None = None) -> str:
    cursor = search_page(engine, None, order_by, limit=3)[1]
    assert cursor is not None
    return cursor


def forge(signature_of: str | None, values: list[Any]) -> str:
    plan = search_module._plan(None, tuple([signature_of] if signature_of else ()))
    return search_module._encode_cursor(plan.signature, values)


def decode(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def rejects(cursor: str, order_by: list[str] | None = None) -> Invalid:
    with pytest.raises(Invalid) as caught:
        compile_run_search(None, order_by, project_id=1, limit=3, cursor=cursor)
    assert caught.value.field == "cursor"
    return caught.value


def test_cursor_is_urlsafe_and_opaque(engine: Engine) -> None:
    cursor = first_cursor(engine, ["metrics.acc desc"])
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)


def test_damaged_cursors_are_invalid(engine: Engine) -> None:
    cursor = first_cursor(engine, ["metrics.acc desc"])
    for i in range(len(cursor)):  # any one changed character that changes a byte is caught
        damaged = cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1 :]
        if decode(damaged) != decode(cursor):
            rejects(damaged, ["metrics.acc desc"])
    for bad in ["", "!!!", "a", cursor + "A", cursor[:-2], "x" * 200_000, "e30"]:
        rejects(bad, ["metrics.acc desc"])
    body = base64.urlsafe_b64encode(json.dumps(["x", [1]]).encode()).decode()
    assert "damaged" in rejects(body).message


def test_cursor_for_another_order_is_invalid(engine: Engine) -> None:
    cursor = first_cursor(engine, ["metrics.acc desc"])
    assert "another sort order" in rejects(cursor, ["metrics.acc"]).message
    assert "another sort order" in rejects(cursor).message
    # Spelled differently, the same order accepts it.
    compile_run_search(None, ["metric.acc.last DESC"], project_id=1, limit=3, cursor=cursor)


def test_forged_values_must_fit_the_order() -> None:
    rejects(forge(None, ["later", "r01"]))  # start_time is a number
    rejects(forge(None, [None, "r01"]))  # start_time is never null
    rejects(forge(None, [T0, 5]))  # ids are text
    rejects(forge(None, [T0]))  # one value short
    rejects(forge(None, [2**70, "r01"]))  # beyond 64 bits
    rejects(forge(None, [True, "r01"]))
    rejects(forge(None, [1.5e19, "r01"]))  # start_time holds whole milliseconds
    rejects(forge("metrics.acc.count", [0.5, "r01"]))
    rejects(forge("metrics.acc", [float("nan"), "r01"]))
    compile_run_search(None, None, project_id=1, limit=3, cursor=forge(None, [T0, "r01"]))


def test_limits() -> None:
    for limit in (0, -1, 10_001, True):
        with pytest.raises(Invalid) as caught:
            compile_run_search(None, None, project_id=1, limit=limit, cursor=None)
        assert caught.value.field == "limit"
    too_many = " and ".join(f"metrics.m{i} > 0" for i in range(33))
    with pytest.raises(Invalid) as caught:
        compile_run_search(too_many, None, project_id=1, limit=3, cursor=None)
    assert "at most 32" in caught.value.message


def test_errors_pass_through_with_their_field() -> None:
    with pytest.raises(Invalid) as caught:
        compile_run_search("metrics.acc >> 1", None, project_id=1, limit=3, cursor=None)
    assert caught.value.field == "filter" and caught.value.details["column"] == 14
    with pytest.raises(Invalid) as caught:
        compile_run_search(None, ["metrics.acc up"], project_id=1, limit=3, cursor=None)
    assert caught.value.field == "order_by"


# ---------------------------------------------------------------------------- plans and speed


def test_compiling_is_fast() -> None:
    text_ = "metrics.m0 > 0.5 and params.p1 = 'v3' order by metrics.m1 desc"
    compile_run_search(text_, None, project_id=1, limit=50, cursor=None)
    start = time.perf_counter()
    for i in range(50):  # each text new, so nothing is served from the plan cache
        compile_run_search(text_.replace("v3", f"v{i}x"), None, project_id=1, limit=50, cursor=None)
    assert (time.perf_counter() - start) / 50 < 0.005  # typically ~0.4 ms; CI machines vary


def test_sqlite_plan_uses_the_indexes(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    compiled = compile_run_search(
        "metrics.m0 > 0.5 and params.p1 = 'v3' order by metrics.m1 desc",
        None, project_id=1, limit=50, cursor=None,
    )  # fmt: skip
    sql = compiled.statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = [row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
    joined = "\n".join(plan)
    assert "SCAN m" not in joined and "SCAN p" not in joined, joined  # no full scans
    # Without statistics too, SQLite starts from the param's equality, then finds each
    # run's summaries by primary key.
    assert plan[0].startswith("SEARCH p") and "ix_params_key_value (key=? AND value=?)" in plan[0]
    assert "SEARCH m0 USING PRIMARY KEY (run_pk=? AND key_id=?)" in joined, joined


# ---------------------------------------------------------------------------- against a model

NUMBER_TEXT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?")
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def like(pattern: str, value: str) -> bool:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out, i = out + re.escape(pattern[i + 1]), i + 2
            continue
        out += ".*" if c == "%" else "." if c == "_" else re.escape(c)
        i += 1
    return re.fullmatch(out, value, re.DOTALL) is not None


def value_of(run: FakeRun, f: Field) -> Any:
    if f.kind == "metric":
        summary = run.metrics.get(f.key)
        return None if summary is None else summary[AGGREGATES.index(f.aggregate or "last")]
    if f.kind in ("param", "tag"):
        return (run.params if f.kind == "param" else run.tags).get(f.key)
    if f.key == "duration":
        return None if run.end is None else (run.end - run.start) / 1000.0
    return {"id": run.id, "name": run.name, "status": run.status, "experiment": run.experiment,
            "start_time": run.start, "end_time": run.end, "author": run.author,
            "parent_id": run.parent}[f.key]  # fmt: skip


def holds(run: FakeRun, f: Field, op: str, literal: Value) -> bool:
    """``f op literal`` for one run, in the two-valued logic the store promises."""
    v = value_of(run, f)
    if v is None:
        return False
    is_status = f.kind == "attribute" and f.key == "status"
    if op in ("like", "ilike"):
        pattern = str(literal).lower() if is_status or op == "ilike" else str(literal)
        return like(pattern, v.lower() if op == "ilike" else v)
    if f.kind in ("param", "tag"):
        if isinstance(literal, bool):
            return COMPARE[op](v.lower(), "true" if literal else "false")
        if isinstance(literal, int | float):
            number = float(v) if NUMBER_TEXT.fullmatch(v) else None
            if number is None:
                return op == "!="
            return COMPARE[op](number, float(literal))
        return COMPARE[op](v, literal)
    if f.kind == "attribute" and f.key in ("start_time", "end_time"):
        return COMPARE[op](v, time_to_ms(literal))
    if is_status:
        return COMPARE[op](v, str(literal).lower())
    if isinstance(literal, int | float):
        return COMPARE[op](float(v), float(literal))
    return COMPARE[op](v, literal)


def model(run: FakeRun, expr: Expr) -> bool:
    if isinstance(expr, And):
        return all(model(run, e) for e in expr.operands)
    if isinstance(expr, Or):
        return any(model(run, e) for e in expr.operands)
    if isinstance(expr, Not):
        return not model(run, expr.operand)
    if isinstance(expr, IsNull):
        return (value_of(run, expr.field) is None) != expr.negated
    if isinstance(expr, InList):
        hit = any(holds(run, expr.field, "=", v) for v in expr.values)
        if expr.negated:
            return value_of(run, expr.field) is not None and not hit
        return hit
    return holds(run, expr.field, expr.op, expr.value)


ORDERING = ["=", "!=", "<", "<=", ">", ">="]
numbers = st.sampled_from(
    [0, 0.5, 0.55, 0.6, 0.8, 0.9, 1, 3, 10, 16, 32, 64, 0.001, 0.01, 0.05, -1]
)
words = st.sampled_from(
    ["0.01", "adam", "Adam", "nlp", "NLP", "32", "abc", "a", "z", "r03", "exp-b"]
)
patterns = st.sampled_from(["ad%", "%a%", "A%", "_dam%", "50\\%", "50%", "%", "sweep%", "%-_"])
metric_fields = st.builds(
    Field, st.just("metric"), st.sampled_from(["acc", "loss", "val.acc", "nope"]),
    st.sampled_from(AGGREGATES),
)  # fmt: skip
pt_fields = st.one_of(
    st.sampled_from(["lr", "batch", "opt", "flag", "seed", "nope"]).map(
        lambda k: Field("param", k)
    ),
    st.sampled_from(["team", "note", "progress"]).map(lambda k: Field("tag", k)),
)
text_attrs = st.sampled_from(["id", "name", "experiment", "author", "parent_id"]).map(
    lambda k: Field("attribute", k)
)
time_attrs = st.sampled_from(["start_time", "end_time"]).map(lambda k: Field("attribute", k))
times = st.one_of(
    st.integers(-2, 12).map(lambda k: T0 + k * 1000),
    st.integers(-2, 12).map(lambda k: f"2023-11-14T22:13:{20 + k:02d}Z"),
)


def leaf(
    fields: st.SearchStrategy[Field], ops: list[str], values: st.SearchStrategy[Any]
) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.builds(Comparison, fields, st.sampled_from(ops), values),
        st.builds(
            InList, fields, st.lists(values, min_size=1, max_size=3).map(tuple), st.booleans()
        ),
    )


leaves = st.one_of(
    leaf(metric_fields, ORDERING, numbers),
    leaf(pt_fields, ORDERING, st.one_of(words, numbers)),
    leaf(pt_fields, ["=", "!="], st.booleans()),
    leaf(text_attrs, ORDERING, words),
    leaf(st.just(Field("attribute", "status")), ["=", "!="],
         st.sampled_from(["finished", "RUNNING", "failed", "Killed"])),
    leaf(time_attrs, ORDERING, times),
    leaf(st.just(Field("attribute", "duration")), ORDERING, numbers),
    st.builds(Comparison, st.one_of(pt_fields, text_attrs), st.sampled_from(["like", "ilike"]),
              patterns),
    st.builds(IsNull, st.one_of(metric_fields, pt_fields, text_attrs, time_attrs), st.booleans()),
)  # fmt: skip
expressions = st.recursive(
    leaves,
    lambda children: st.one_of(
        children.map(Not),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    ),
    max_leaves=6,
)


def orders_text(expr: Expr) -> bool:
    if isinstance(expr, And | Or):
        return any(orders_text(e) for e in expr.operands)
    if isinstance(expr, Not):
        return orders_text(expr.operand)
    return (
        isinstance(expr, Comparison)
        and expr.op in ("<", "<=", ">", ">=")
        and isinstance(expr.value, str)
        and expr.field.key not in ("start_time", "end_time")
    )


@pytest.fixture(scope="module")
def binary_collation(engine: Engine) -> bool:
    """Whether text sorts by code point, as in Python (SQLite; PostgreSQL with C collation)."""
    if engine.dialect.name != "postgresql":
        return True
    with engine.connect() as conn:
        collation = conn.execute(text("SHOW lc_collate")).scalar_one()
    return collation in ("C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic")


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions)
def test_sql_agrees_with_the_model(engine: Engine, binary_collation: bool, expr: Expr) -> None:
    assume(binary_collation or not orders_text(expr))
    printed = format_query(expr)
    expected = {run.id for run in RUNS if run.project == 1 and model(run, expr)}
    assert match(engine, printed) == expected, printed


def test_model_agrees_with_hand_checked_expectations() -> None:
    from cairn.domain.query import parse_query

    for filter_text, expected in EXPECTED:
        expr = parse_query(filter_text)
        got = {r.id for r in RUNS if r.project == 1 and (expr is None or model(r, expr))}
        assert got == set(expected.split()), filter_text


# ---------------------------------------------------------------------------- robustness

no_nul = st.characters(codec="utf-8", exclude_characters="\x00")
wild_keys = st.one_of(
    st.sampled_from(["acc", "lr", "team", "val.acc"]), st.text(no_nul, min_size=1, max_size=6)
)
wild_texts = st.text(no_nul, max_size=8)
wild_numbers = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([10**400, -(10**400), 2**63, 1e308, 5e-324, -0.0]),
)
wild_patterns = wild_texts.filter(lambda s: (len(s) - len(s.rstrip("\\"))) % 2 == 0)
wild_metrics = st.builds(Field, st.just("metric"), wild_keys, st.sampled_from(AGGREGATES))
wild_pt = st.builds(Field, st.sampled_from(["param", "tag"]), wild_keys)
wild_leaves = st.one_of(
    leaf(wild_metrics, ORDERING, wild_numbers),
    leaf(wild_pt, ORDERING, st.one_of(wild_texts, wild_numbers)),
    leaf(wild_pt, ["=", "!="], st.booleans()),
    leaf(text_attrs, ORDERING, wild_texts),
    leaf(time_attrs, ORDERING, st.one_of(wild_numbers, times, st.just("0001-01-01"))),
    leaf(st.just(Field("attribute", "duration")), ORDERING, wild_numbers),
    st.builds(Comparison, st.one_of(wild_pt, text_attrs, st.just(Field("attribute", "status"))),
              st.sampled_from(["like", "ilike"]), wild_patterns),
    st.builds(IsNull, st.one_of(wild_metrics, wild_pt, text_attrs), st.booleans()),
)  # fmt: skip
wild_orders = st.lists(
    st.builds(
        lambda f, d: f"{f} {'desc' if d else 'asc'}",
        st.one_of(wild_metrics, wild_pt, text_attrs, time_attrs).map(str),
        st.booleans(),
    ),
    max_size=3,
)


@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    expr=st.recursive(
        wild_leaves,
        lambda c: st.lists(c, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))) | c.map(Not),
        max_leaves=4,
    ),
    order_by=wild_orders,
)
def test_any_filter_that_parses_runs_on_the_database(
    engine: Engine, expr: Expr, order_by: list[str]
) -> None:
    _, cursor = search_page(engine, format_query(expr), order_by, limit=2)
    if cursor is not None:
        search_page(engine, format_query(expr), order_by, limit=2, cursor=cursor)
