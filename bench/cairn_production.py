"""Cairn's production workloads: serving overhead, prediction-log ingest, monitoring report.

- ``serving_overhead``: ``cairn serve bench-model@production`` as a subprocess (prediction
  logging on, to the same store), one row per ``POST /predict`` over one keep-alive
  connection; the figure is its p50/p95 minus that of a bare in-process
  ``model.predict`` of the same row with the same model.
- ``prediction_ingest``: ``cairn server`` as a subprocess; ``POST
  /api/v1/projects/bench/predictions`` with batches of 500, 2,000 and 10,000 records (the
  bodies are encoded before the clock), one request at a time; every batch's ``stored``
  must equal its size. ``prediction_ingest_pg``: the same on a fresh PostgreSQL database.
- ``monitoring_report_1m``: 1,000,000 predictions over the last 24 hours (3 % errors, 10 %
  with feedback) seeded through the repository's bulk insert (which keeps the per-minute
  rollups, as logging does), then ``MonitoringService.report`` of the model over 24
  one-hour windows, drift against the profile of its training data included (alerts
  recorded, as the API does). ``drift_note`` is what the report says of its sample.

MLflow logs no predictions and monitors nothing, so the ingest and report workloads have no
MLflow side; MLflow's side of serving is ``bench/mlflow_serving.py``.
``bench/serving_ab.py`` sets two builds of ``cairn serve`` side by side, to judge a change
against its baseline.
"""

from __future__ import annotations

import io
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import (
    REGISTRY_ALIAS,
    REGISTRY_MODEL,
    Sizes,
    free_port,
    fresh_dir,
    rate,
    registry_model,
    server_process,
    serving_figures,
)

PROJECT = "bench"
INGEST_BATCHES = {500: 40, 2_000: 20, 10_000: 10}  # records per request: requests
SERVE_WARMUP, SERVE_CALLS = 200, 2_000
REPORT_PREDICTIONS = 1_000_000
REPORT_REPEATS = 3


def _cairn_argv(*args: str) -> list[str]:
    import sys

    script = Path(sys.executable).with_name("cairn")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "cairn.cli.main"]
    return [*head, *args]


def _register(store: Path | str) -> tuple[Any, Any]:
    """The wine forest registered as bench-model@production in ``store`` (a folder, or a
    server's address); model and X."""
    import cairn

    model, x = registry_model()
    cairn.set_tracking_uri(str(store))
    cairn.set_project(PROJECT)
    with cairn.start_run(name="train", capture=False) as run:
        version = run.register_model(REGISTRY_MODEL, model, input_example=x[:5])
    cairn.set_alias(REGISTRY_MODEL, REGISTRY_ALIAS, version.version)
    return model, x


# --- serving_overhead -------------------------------------------------------------------


def _post_ok(http: Any, path: str, body: bytes) -> Any:
    response = http.post(path, content=body, headers={"content-type": "application/json"})
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    return response.json()


def serving_overhead(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    import httpx

    calls = 200 if sizes.quick else SERVE_CALLS
    with fresh_dir(workdir, "cairn-serving") as folder:
        store = folder / "store"
        model, x = _register(store)
        row = x[:1]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = _cairn_argv(
            "serve", f"{REGISTRY_MODEL}@{REGISTRY_ALIAS}", "--port", str(port),
            "--uri", str(store), "--project", PROJECT,
        )  # fmt: skip
        body = json.dumps({"instances": row.tolist()}).encode()
        with (
            server_process(argv, f"{base}/readyz", folder / "serve.log", 120, dict(os.environ)),
            httpx.Client(base_url=base, timeout=30) as http,
        ):
            figures, answer = serving_figures(
                lambda: model.predict(row),
                lambda: _post_ok(http, "/predict", body),
                SERVE_WARMUP,
                calls,
            )
        return {
            **figures,
            "correct": answer.get("predictions") == model.predict(row).tolist(),
            "model": "RandomForestClassifier(100 trees) on wine, one row",
            "server": "cairn serve MODEL@production (prediction logging on), httpx keep-alive",
        }


# --- prediction_ingest ------------------------------------------------------------------


def _records(n: int, offset: int, rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "request_id": f"req-{offset + i}",
            "inputs": [round(rng.gauss(0, 1), 4) for _ in range(13)],
            "outputs": [rng.randrange(3)],
            "latency_ms": round(rng.uniform(0.5, 5.0), 3),
        }
        for i in range(n)
    ]


def prediction_ingest(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    with fresh_dir(workdir, "cairn-ingest") as folder:
        store = folder / "store"
        _register(store)
        result = _ingest(sizes, folder, ["--store", str(store)])
    result["server"] = "cairn server (SQLite store), one request at a time"
    return result


def prediction_ingest_pg(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    """The same, on a fresh PostgreSQL database (``CAIRN_BENCH_PG_URL`` names the server's
    maintenance database: default ``postgresql://root@127.0.0.1:5432/postgres``)."""
    import psycopg

    admin = os.environ.get("CAIRN_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/postgres")
    name = f"cairn_bench_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        with fresh_dir(workdir, "cairn-ingest-pg") as folder:
            args = ["--store", f"{url}/{name}", "--artifacts", str(folder / "artifacts")]
            result = _ingest(sizes, folder, args, register=True)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    result["server"] = "cairn server (PostgreSQL store, same machine), one request at a time"
    return result


def _ingest(
    sizes: Sizes, folder: Path, store_args: list[str], register: bool = False
) -> dict[str, Any]:
    """Batches of records to ``cairn server STORE_ARGS``, one request at a time; with
    ``register``, the model is registered through the server first."""
    import httpx

    rng = random.Random(0)
    batches = {k: (2 if sizes.quick else v) for k, v in INGEST_BATCHES.items()}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = _cairn_argv("server", "--host", "127.0.0.1", "--port", str(port), *store_args)
    result: dict[str, Any] = {"batches": {}}
    offset, correct = 0, True
    path = f"/api/v1/projects/{PROJECT}/predictions"
    model = f"{REGISTRY_MODEL}@{REGISTRY_ALIAS}"
    with (
        server_process(argv, f"{base}/healthz", folder / "server.log", 120, dict(os.environ)),
        httpx.Client(base_url=base, timeout=120) as http,
    ):
        if register:
            _register(base)
        warm = {"model": model, "records": _records(100, 10**9, rng)}
        http.post(path, json=warm).raise_for_status()
        for size, count in batches.items():
            bodies = []
            for _ in range(count):
                bodies.append(
                    json.dumps({"model": model, "records": _records(size, offset, rng)}).encode()
                )
                offset += size
            headers = {"content-type": "application/json"}
            t0 = time.perf_counter()
            for body in bodies:
                response = http.post(path, content=body, headers=headers)
                response.raise_for_status()
                correct = correct and response.json()["stored"] == size
            seconds = time.perf_counter() - t0
            result["batches"][str(size)] = {
                "requests": count,
                "predictions": size * count,
                "seconds": round(seconds, 3),
                "predictions_per_s": rate(size * count, seconds),
            }
        again = http.post(path, content=bodies[0], headers=headers)  # resent: all skipped
        correct = correct and again.json()["stored"] == 0
    result["predictions_per_s"] = min(b["predictions_per_s"] for b in result["batches"].values())
    result["correct"] = correct
    return result


# --- monitoring_report_1m ---------------------------------------------------------------


def _seed(backend: Any, n: int) -> float:
    """``n`` predictions of bench-model:1 over the last day, and feedback for a tenth."""
    from cairn.services.registry import locate
    from cairn.store.repositories.production import PREDICTION_COLUMNS, ProductionRepository
    from cairn.store.repositories.projects import ProjectRepository

    rng = random.Random(1)
    now_ms = int(time.time() * 1000)
    start_ms = now_ms - 24 * 3600 * 1000
    t0 = time.perf_counter()
    with backend.db.write() as tx:
        where = locate(tx.conn, PROJECT, REGISTRY_MODEL)
        repo = ProductionRepository(tx.conn)
        chunk: list[tuple[Any, ...]] = []
        feedback: list[tuple[str, str]] = []
        for i in range(n):
            label = rng.randrange(3)
            failed = rng.random() < 0.03
            features = [round(rng.gauss(m, 1), 3) for m in range(13)]
            request = f"r{i}"
            chunk.append(
                (
                    where.project_id, where.model_id, 1, None, "", False, request, None,
                    start_ms + i * (now_ms - start_ms - 1) // n,
                    json.dumps(features), None if failed else f"[{label}]",
                    rng.uniform(0.5, 8.0), "boom" if failed else None,
                )
            )  # fmt: skip
            if i % 10 == 0:
                actual = label if rng.random() < 0.9 else (label + 1) % 3
                feedback.append((request, str(actual)))
            if len(chunk) == 50_000:
                repo.add_predictions(chunk)
                chunk = []
        repo.add_predictions(chunk)
        repo.upsert_feedback(ProjectRepository(tx.conn).get(PROJECT).id, feedback)
    assert len(PREDICTION_COLUMNS) == 13
    return time.perf_counter() - t0


def _register_with_training_data(backend: Any) -> None:
    """bench-model:1 whose run trained on a profiled table (so drift is computed)."""
    import pandas as pd

    from cairn.client.profiling import profile_dataframe
    from cairn.domain.datasets import DatasetFile
    from cairn.domain.ids import new_ulid
    from cairn.domain.models import ModelFile
    from cairn.domain.records import Batch, RunBatch, RunStart

    rng = random.Random(2)
    table = pd.DataFrame({f"f{j}": [rng.gauss(j, 1) for _ in range(5000)] for j in range(13)})
    run = RunStart(new_ulid(), PROJECT, datetime.now(UTC))
    backend.tracking.log_batch(Batch(new_ulid(), [RunBatch(run.id, start=run)]))
    blob = backend.blobs.put(io.BytesIO(table.to_csv(index=False).encode()))
    backend.data.log_version(
        PROJECT,
        "train",
        [DatasetFile("train.csv", blob.digest, blob.size)],
        profile=profile_dataframe(table),
    )
    backend.data.use_dataset(run.id, "train:1", "train")
    model = backend.blobs.put(io.BytesIO(b"a model"))
    signature = {"inputs": [{"name": c, "type": "float64"} for c in table.columns]}
    backend.registry.register_version(
        PROJECT,
        REGISTRY_MODEL,
        [ModelFile("model.pkl", model.digest, model.size)],
        flavor="sklearn",
        run_id=run.id,
        signature=signature,
    )


def monitoring_report_1m(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    from cairn.client.embedded import EmbeddedBackend

    n = 20_000 if sizes.quick else REPORT_PREDICTIONS
    with fresh_dir(workdir, "cairn-monitoring") as folder:
        backend = EmbeddedBackend(str(folder / "store"))
        try:
            _register_with_training_data(backend)
            seed_s = _seed(backend, n)
            times, report = [], None
            for _ in range(REPORT_REPEATS):
                t0 = time.perf_counter()
                report = backend.monitoring.report(
                    PROJECT, model=REGISTRY_MODEL, since=datetime.now(UTC) - timedelta(days=1)
                )
                times.append(time.perf_counter() - t0)
        finally:
            backend.db.close()
        assert report is not None
        groups = [g for w in report.windows for g in w.groups]
        volume = sum(g.volume for g in groups)
        return {
            "predictions": n,
            "seed_s": round(seed_s, 2),
            "seconds": round(statistics.median(times), 3),
            "all_s": [round(t, 3) for t in times],
            "windows": len(report.windows),
            "groups": len(groups),
            "volume": volume,
            "errors": sum(g.errors for g in groups),
            "labeled": sum(g.quality.labeled for g in groups if g.quality is not None),
            "drift_rows": sum(g.drift.rows for g in groups if g.drift is not None),
            "drift_note": next((g.drift.note for g in groups if g.drift and g.drift.note), None),
            "alerts": len(report.alerts),
            "correct": volume == n,
            "report": "MonitoringService.report(model, since=24 h ago, window=1 h), SQLite",
        }
