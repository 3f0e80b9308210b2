"""The per-minute rollups of predictions on real databases: kept by the insert (a resent
row never counted twice), and built by migration 0006 from the predictions already
stored, the same as the insert builds them."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest
from alembic import command
from sqlalchemy import Connection, Table, insert, select

from cairn.domain.rollups import MINUTE_MS, Rollup, fold
from cairn.store.database import Database
from cairn.store.engine import make_engine, resolve_store
from cairn.store.repositories.prediction_rollups import KEY_COLUMNS, ROLLUP_COLUMNS
from cairn.store.repositories.production import PREDICTION_COLUMNS, ProductionRepository
from cairn.store.schema import alembic_config, head_revision
from cairn.store.tables.production import FeedbackRow, PredictionRollupRow, PredictionRow

T0 = 1_767_261_600_000  # 2026-01-01 10:00 UTC, in ms


def predictions(n: int, seed: int, offset: int = 0) -> list[dict[str, Any]]:
    """Two projects, two models, an endpoint's two variants, errors, missing latencies."""
    rng = random.Random(seed)
    rows = []
    for i in range(offset, offset + n):
        failed = rng.random() < 0.1
        endpoint = rng.choice([None, 7])
        rows.append(
            {
                "project_id": rng.choice([1, 2]),
                "model_id": rng.choice([10, 11]),
                "model_version": rng.choice([1, 2]),
                "endpoint_id": endpoint,
                "variant": "" if endpoint is None else rng.choice(["a", "b"]),
                "shadow": False,
                "request_id": f"r{i}",
                "unit_id": None,
                "at": T0 + rng.randrange(10 * MINUTE_MS),
                "inputs": "[1, 2]",
                "outputs": None if failed else json.dumps([rng.randrange(3)]),
                "latency_ms": None if rng.random() < 0.1 else rng.uniform(0, 50),
                "error": "boom" if failed else None,
            }
        )
    return rows


def stored_rollups(conn: Connection) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    table = PredictionRollupRow.__table__
    out = {}
    for row in conn.execute(select(table)).mappings():
        key = tuple(row[c] for c in KEY_COLUMNS)
        out[(*key[:5], bool(key[5]), key[6])] = _comparable(
            Rollup.from_columns(
                row["volume"], row["errors"], row["latency"], row["outputs"], row["labels"]
            )
        )
    return out


def expected_rollups(
    rows: list[dict[str, Any]], actuals: dict[str, str] | None = None
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """What the rows' rollups hold, with the feedback ``actuals`` (JSON by request id)."""
    sources = [tuple(r[c] for c in ROLLUP_COLUMNS) for r in rows]
    return {k: _comparable(v) for k, v in fold(sources, actuals).items()}


def feedback_for(rows: list[dict[str, Any]], seed: int) -> dict[str, str]:
    """Ground truth for about half the rows: mostly what was predicted."""
    rng = random.Random(seed)
    return {r["request_id"]: json.dumps([rng.randrange(3)]) for r in rows if rng.random() < 0.5}


def _comparable(rollup: Rollup) -> tuple[Any, ...]:
    """Everything a rollup holds; the float moments rounded (added in another order)."""
    lat = rollup.latency
    return (
        rollup.volume,
        rollup.errors,
        lat.n,
        round(lat.mean, 9),
        lat.low,
        lat.high,
        rollup.latency_sketch.to_json(),
        rollup.outputs.classes,
        rollup.outputs.values,
        rollup.labels.pairs,
        rollup.labels.numeric,
        round(rollup.labels.squared_errors, 9),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "store")
        return
    yield request.getfixturevalue("pg_fresh")


def test_insert_counts_only_the_new_rows(store: str) -> None:
    db = Database(store)
    try:
        first = predictions(500, seed=1)
        resent = [dict(r, latency_ms=999.0, outputs="[9]") for r in first[400:]]
        later = resent + predictions(200, seed=2, offset=500)  # 100 resent, other values
        with db.write() as tx:
            assert ProductionRepository(tx.conn).add_predictions(first) == 500
        with db.write() as tx:
            repo = ProductionRepository(tx.conn)
            assert repo.add_predictions(first[:100]) == 0  # all resent: nothing changes
            as_tuples = [tuple(r[c] for c in PREDICTION_COLUMNS) for r in later]
            assert repo.add_predictions(as_tuples) == 200
        with db.read() as conn:
            found = stored_rollups(conn)
            kept = list(
                conn.execute(select(*[PredictionRow.__table__.c[c] for c in ROLLUP_COLUMNS]))
            )
    finally:
        db.close()
    by_request = {r["request_id"]: r for r in later}
    by_request.update({r["request_id"]: r for r in first})  # the first logged stays
    assert found == expected_rollups(list(by_request.values()))
    assert sum(v[0] for v in found.values()) == len(kept) == 700


def test_a_batch_is_stored_exactly_as_sent(store: str) -> None:
    """One statement a batch on PostgreSQL (arrays, unnested): text that arrays must
    quote, columns that are all NULL, whole-number latencies beside fractions, and a
    request repeated within the batch (the first one is kept)."""
    rows = predictions(6, seed=3)
    odd = ['{"a": "x,y}"}', 'say "hi"\\n', "NULL", "", "ünï ☃", "{}"]
    for i, (row, text) in enumerate(zip(rows, odd, strict=True)):
        row.update(inputs=text, unit_id=text or None, endpoint_id=None, variant="", error=None)
        row.update(outputs=json.dumps([i]), latency_ms=[1, 2.5, None, 0, 3, 4.25][i])
    again = dict(rows[0], inputs="[0]", latency_ms=9.0)
    db = Database(store)
    try:
        with db.write() as tx:
            assert ProductionRepository(tx.conn).add_predictions([*rows, again]) == 6
        with db.read() as conn:
            table = PredictionRow.__table__
            kept = {
                r["request_id"]: r
                for r in conn.execute(select(table).order_by(table.c.id)).mappings()
            }
            found = stored_rollups(conn)
    finally:
        db.close()
    for row in rows:
        assert {c: kept[row["request_id"]][c] for c in PREDICTION_COLUMNS} == row
    assert found == expected_rollups(rows)


def test_migration_builds_the_rollups_of_stored_predictions(store: str) -> None:
    """0006 adds the predictions up, 0008 the feedback stored for them."""
    rows = predictions(3000, seed=3)
    actuals = feedback_for(rows, seed=4)
    engine = make_engine(resolve_store(store).database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0005")
        with engine.begin() as conn:
            conn.execute(insert(cast(Table, PredictionRow.__table__)), rows)
            feedback = [
                {"project_id": r["project_id"], "request_id": r["request_id"], "actual": a}
                for r in rows
                if (a := actuals.get(r["request_id"])) is not None
            ]
            conn.execute(
                insert(cast(Table, FeedbackRow.__table__)), [dict(f, at=T0) for f in feedback]
            )
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), head_revision())
        with engine.connect() as conn:
            built = stored_rollups(conn)
    finally:
        engine.dispose()
    assert built == expected_rollups(rows, actuals)
    assert sum(v[0] for v in built.values()) == 3000
    assert sum(v[10] for v in built.values()) > 1000  # labeled: successful ones with feedback


def test_writers_logging_the_same_minutes_at_once_lose_nothing(store: str) -> None:
    """PostgreSQL: transactions that add to the same rollup rows wait for each other."""
    db = Database(store)
    batches = [predictions(200, seed=10 + i, offset=200 * i) for i in range(12)]

    def log(batch: list[dict[str, Any]]) -> int:
        with db.write() as tx:
            return ProductionRepository(tx.conn).add_predictions(batch)

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            stored = sum(pool.map(log, batches))
        with db.read() as conn:
            found = stored_rollups(conn)
    finally:
        db.close()
    assert stored == 2400
    assert found == expected_rollups([row for batch in batches for row in batch])


def test_feedback_and_its_predictions_logged_at_once_are_counted_once(store: str) -> None:
    """Feedback may reach the server before, during or after the batch of predictions it
    names, and may be sent again with another value; whatever the interleaving, the
    rollups count each successful prediction's latest feedback exactly once (PostgreSQL:
    the two writers would otherwise each miss the other's uncommitted rows)."""
    db = Database(store)
    batches = [predictions(200, seed=20 + i, offset=200 * i) for i in range(8)]
    rows = [row for batch in batches for row in batch]
    first, final = feedback_for(rows, seed=5), feedback_for(rows, seed=6)
    by_project: dict[int, list[tuple[str, str]]] = {}
    for r in rows:
        for actuals in (first, final):
            if r["request_id"] in actuals:
                item = (r["request_id"], actuals[r["request_id"]])
                by_project.setdefault(r["project_id"], []).append(item)

    def log(batch: list[dict[str, Any]]) -> int:
        with db.write() as tx:
            return ProductionRepository(tx.conn).add_predictions(batch)

    def send(project_id: int, items: list[tuple[str, str]]) -> int:
        with db.write() as tx:
            ProductionRepository(tx.conn).upsert_feedback(project_id, items)
        return len(items)

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            jobs = [pool.submit(log, b) for b in batches]
            for project_id, items in by_project.items():
                # first values, then the final ones, in small batches among the predictions
                ordered = [i for i in items if first.get(i[0]) == i[1]] + [
                    i for i in items if final.get(i[0]) == i[1]
                ]
                for start in range(0, len(ordered), 50):
                    send(project_id, ordered[start : start + 50])
            assert sum(j.result() for j in jobs) == 1600
        with db.read() as conn:
            found = stored_rollups(conn)
    finally:
        db.close()
    latest = {**{r: a for r, a in first.items()}, **final}
    assert found == expected_rollups(rows, latest)
