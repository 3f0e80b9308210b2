"""MLflow side of the benchmark: the same workloads as ``cairn_workloads.py``, through MLflow.

Runs under the MLflow virtualenv (``bench/.venv-mlflow``), imports only the standard library,
``mlflow`` and ``bench/common.py``, and prints one JSON document on stdout; progress and
MLflow's own output go to stderr. Every workload uses a fresh folder with a
``sqlite:///…`` tracking URI; ``log_http`` starts ``mlflow server`` on a free port.

    bench/.venv-mlflow/bin/python bench/mlflow_workloads.py --quick --only search,history
"""

from __future__ import annotations

import os

# Before mlflow is imported: no telemetry from a benchmark, and no network attempts that
# would add their latency to the figures.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import argparse
import contextlib
import logging
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import sqlalchemy
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from common import (
    DEFAULT_WORKDIR,
    SEARCH_FILTER,
    SEARCH_ORDER_BY_MLFLOW,
    SERVER_LATENCY_WORKERS,
    Sizes,
    client_ports_to,
    dump,
    exit_on_sigterm,
    expected_search,
    free_port,
    fresh_dir,
    health_probe_calls,
    latency_summary_us,
    log,
    metric_steps,
    rate,
    repeat_ms,
    run_specs,
    run_workloads,
    series,
    server_process,
    sizes_for,
    timed_requests,
)

SIDE = "mlflow"
EXPERIMENT = "bench"

# What each way of starting a run records about its context (Cairn's side keeps its
# ``capture`` on throughout; see cairn_workloads.CAPTURE).
CONTEXT_FLUENT = "mlflow.start_run: run-context tags (user, source name/type, git commit)"
CONTEXT_CLIENT = "MlflowClient.create_run: none (no run-context providers)"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sqlite_uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def _client_and_experiment(tracking_uri: str, folder: Path) -> tuple[MlflowClient, str]:
    """A client and a fresh experiment whose artifacts stay inside ``folder``.

    Creating the client on a new SQLite file runs MLflow's migrations; that is setup,
    so callers do it before starting the clock.
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment(
        EXPERIMENT, artifact_location=(folder / "artifacts").as_uri()
    )
    return client, experiment_id


def _log_batches(
    client: MlflowClient, run_id: str, steps: list[dict[str, float]], batch_size: int
) -> None:
    batch: list[Metric] = []
    for step, values in enumerate(steps):
        timestamp = _now_ms()
        for key, value in values.items():
            batch.append(Metric(key, value, timestamp, step))
        if len(batch) >= batch_size:
            client.log_batch(run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)


def _log_batch_figures(
    client: MlflowClient, experiment_id: str, steps: list[dict[str, float]], batch_size: int
) -> dict[str, Any]:
    run_id = client.create_run(experiment_id, run_name="log-batch").info.run_id
    points = sum(len(values) for values in steps)
    t0 = time.perf_counter()
    _log_batches(client, run_id, steps, batch_size)
    elapsed = time.perf_counter() - t0
    client.set_terminated(run_id)
    stored = len(client.get_metric_history(run_id, "k0"))
    return {
        "api": f"MlflowClient.log_batch ({batch_size} metrics per call)",
        "points": points,
        "seconds": round(elapsed, 3),
        "points_per_s": rate(points, elapsed),
        "stored_points_k0": stored,
        "correct": stored == len(steps),
        "run_context": CONTEXT_CLIENT,
    }


# --- 1. log_embedded --------------------------------------------------------------------------


def log_embedded(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    steps = metric_steps(sizes.log_steps, sizes.log_keys)
    with fresh_dir(workdir, "mlflow-log-embedded") as folder:
        uri = _sqlite_uri(folder)
        client, experiment_id = _client_and_experiment(uri, folder)
        batch = _log_batch_figures(client, experiment_id, steps, sizes.batch_size)

        # Synchronous fluent log_metric, one point per call: too slow for the full count,
        # so a prefix of the same data is timed and extrapolated.
        few = steps[: max(1, sizes.mlflow_log_metric_points // sizes.log_keys)]
        few_points = sum(len(values) for values in few)
        mlflow.set_tracking_uri(uri)
        try:
            with mlflow.start_run(experiment_id=experiment_id, run_name="log-metric"):
                t0 = time.perf_counter()
                for step, values in enumerate(few):
                    for key, value in values.items():
                        mlflow.log_metric(key, value, step=step, synchronous=True)
                elapsed = time.perf_counter() - t0
        finally:
            mlflow.end_run()
        per_s = rate(few_points, elapsed)
        total = batch["points"]
        return {
            "log_batch": batch,
            "log_metric": {
                "api": "mlflow.log_metric (synchronous, one point per call)",
                "points": few_points,
                "seconds": round(elapsed, 3),
                "points_per_s": per_s,
                "extrapolated_seconds_for_all_points": round(total / per_s, 1),
            },
            "points_per_s": batch["points_per_s"],
        }


# --- 2. log_http ------------------------------------------------------------------------------


def _mlflow_server_argv(folder: Path, port: int, workers: int | None) -> list[str]:
    script = Path(sys.executable).with_name("mlflow")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "mlflow"]
    argv += [
        "server",
        "--backend-store-uri",
        _sqlite_uri(folder),
        "--default-artifact-root",
        (folder / "artifacts").as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if workers is not None:
        argv += ["--workers", str(workers)]
    return argv


def make_log_http(workers: int | None) -> Callable[[Sizes, Path], dict[str, Any]]:
    def log_http(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        steps = metric_steps(sizes.log_steps, sizes.log_keys)
        with fresh_dir(workdir, "mlflow-log-http") as folder:
            port = free_port()
            argv = _mlflow_server_argv(folder, port, workers)
            base = f"http://127.0.0.1:{port}"
            with server_process(
                argv, f"{base}/health", folder / "server.log", 180, dict(os.environ)
            ) as startup_s:
                client, experiment_id = _client_and_experiment(base, folder)
                batch = _log_batch_figures(client, experiment_id, steps, sizes.batch_size)
            batch["server"] = {
                "command": "mlflow server --backend-store-uri sqlite:///…",
                "workers": workers if workers is not None else "mlflow default (4)",
                "startup_s": round(startup_s, 2),
            }
            return batch

    return log_http


# --- 3. log_call_latency ----------------------------------------------------------------------


def log_call_latency(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    steps = metric_steps(sizes.mlflow_latency_calls, sizes.log_keys)
    with fresh_dir(workdir, "mlflow-latency") as folder:
        uri = _sqlite_uri(folder)
        _, experiment_id = _client_and_experiment(uri, folder)
        mlflow.set_tracking_uri(uri)
        durations: list[int] = []
        clock = time.perf_counter_ns
        try:
            with mlflow.start_run(experiment_id=experiment_id, run_name="latency"):
                for step, values in enumerate(steps):
                    t0 = clock()
                    mlflow.log_metrics(values, step=step, synchronous=True)
                    durations.append(clock() - t0)
        finally:
            mlflow.end_run()
    summary: dict[str, Any] = latency_summary_us(durations)
    summary["api"] = f"mlflow.log_metrics ({sizes.log_keys} keys, synchronous)"
    summary["keys_per_call"] = sizes.log_keys
    summary["median_us_per_key"] = round(summary["median_us"] / sizes.log_keys, 3)
    summary["run_context"] = CONTEXT_FLUENT
    return summary


# --- 4. create_runs ---------------------------------------------------------------------------


def create_runs(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    specs = list(run_specs(sizes.mlflow_create_runs))
    with fresh_dir(workdir, "mlflow-create-runs") as folder:
        uri = _sqlite_uri(folder)
        client, experiment_id = _client_and_experiment(uri, folder)
        mlflow.set_tracking_uri(uri)
        try:
            t0 = time.perf_counter()
            for spec in specs:
                with mlflow.start_run(
                    experiment_id=experiment_id, run_name=spec.name, tags=spec.tags
                ):
                    mlflow.log_params(spec.params, synchronous=True)
                    mlflow.log_metrics(spec.metrics, step=0, synchronous=True)
            elapsed = time.perf_counter() - t0
        finally:
            mlflow.end_run()
        stored = len(client.search_runs([experiment_id], max_results=1000))
    return {
        "api": "mlflow.start_run(tags) + log_params + log_metrics, synchronous",
        "runs": len(specs),
        "seconds": round(elapsed, 3),
        "runs_per_s": rate(len(specs), elapsed),
        "correct": stored == min(len(specs), 1000),
        "run_context": CONTEXT_FLUENT,
    }


# --- 5./6. search and paginate over a populated store -----------------------------------------


class RunStore:
    """``n`` runs created once per process through ``MlflowClient`` and shared by workloads."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._stores: dict[int, tuple[MlflowClient, str, dict[str, Any]]] = {}
        self._folders: list[Path] = []

    def get(self, n: int) -> tuple[MlflowClient, str, dict[str, Any]]:
        if n not in self._stores:
            self._stores[n] = self._populate(n)
        return self._stores[n]

    def _populate(self, n: int) -> tuple[MlflowClient, str, dict[str, Any]]:
        self._workdir.mkdir(parents=True, exist_ok=True)
        folder = self._workdir / f"mlflow-runs-{n}-{os.getpid()}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        self._folders.append(folder)
        client, experiment_id = _client_and_experiment(_sqlite_uri(folder), folder)
        log(SIDE, f"creating {n} runs for search/paginate (MlflowClient.log_batch) ...")
        t0 = time.perf_counter()
        for spec in run_specs(n):
            run_id = client.create_run(experiment_id, run_name=spec.name, tags=spec.tags)
            run_id = run_id.info.run_id
            timestamp = _now_ms()
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, timestamp, 0) for k, v in spec.metrics.items()],
                params=[Param(k, v) for k, v in spec.params.items()],
            )
            client.set_terminated(run_id)
        elapsed = time.perf_counter() - t0
        populate = {
            "api": "MlflowClient.create_run(tags) + log_batch(params, metrics) + set_terminated",
            "runs": n,
            "seconds": round(elapsed, 2),
            "runs_per_s": rate(n, elapsed),
            "run_context": CONTEXT_CLIENT,
        }
        return client, experiment_id, populate

    def close(self) -> None:
        for folder in self._folders:
            shutil.rmtree(folder, ignore_errors=True)


def make_search(store: RunStore) -> Callable[[Sizes, Path], dict[str, Any]]:
    def search(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        client, experiment_id, populate = store.get(sizes.runs)
        expected = expected_search(sizes.runs)

        def query(limit: int) -> Any:
            return client.search_runs(
                [experiment_id],
                filter_string=SEARCH_FILTER,
                order_by=SEARCH_ORDER_BY_MLFLOW,
                max_results=limit,
            )

        summary, page = repeat_ms(lambda: query(sizes.search_limit), sizes.search_repeats)
        summary_all, page_all = repeat_ms(
            lambda: query(sizes.search_all_limit), sizes.search_repeats
        )
        top_m1 = page[0].data.metrics["m1"] if len(page) else None
        result: dict[str, Any] = {
            "api": "MlflowClient.search_runs(filter_string, order_by, max_results)",
            "runs": sizes.runs,
            "filter": SEARCH_FILTER,
            "order_by": SEARCH_ORDER_BY_MLFLOW,
            "limit": sizes.search_limit,
            **summary,
            "returned": len(page),
            "top_m1": top_m1,
            "expected": expected,
            f"limit_{sizes.search_all_limit}": {**summary_all, "returned": len(page_all)},
            "correct": (
                len(page) == min(sizes.search_limit, expected["matches"])
                and len(page_all) == min(sizes.search_all_limit, expected["matches"])
                and top_m1 == expected["top_m1"]
            ),
            "populate": populate,
        }
        return result

    return search


def make_paginate(store: RunStore) -> Callable[[Sizes, Path], dict[str, Any]]:
    def paginate(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        client, experiment_id, populate = store.get(sizes.runs)

        def page_through() -> tuple[int, int]:
            token: str | None = None
            total = pages = 0
            while True:
                page = client.search_runs(
                    [experiment_id], max_results=sizes.page_size, page_token=token
                )
                total += len(page)
                pages += 1
                token = page.token
                if not token:
                    return total, pages

        summary, (total, pages) = repeat_ms(page_through, sizes.mlflow_paginate_repeats)
        return {
            "api": "MlflowClient.search_runs(max_results, page_token) until no token",
            "runs": sizes.runs,
            "page_size": sizes.page_size,
            **summary,
            "pages": pages,
            "returned": total,
            "correct": total == sizes.runs,
            "populate": populate,
        }

    return paginate


# --- 8. history -------------------------------------------------------------------------------


def history(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    values = series(sizes.history_points)
    with fresh_dir(workdir, "mlflow-history") as folder:
        client, experiment_id = _client_and_experiment(_sqlite_uri(folder), folder)
        run_id = client.create_run(experiment_id, run_name="history").info.run_id
        t0 = time.perf_counter()
        _log_batches(client, run_id, [{"h": v} for v in values], sizes.batch_size)
        populate_s = time.perf_counter() - t0
        client.set_terminated(run_id)
        summary, points = repeat_ms(
            lambda: client.get_metric_history(run_id, "h"), sizes.mlflow_history_repeats
        )
    return {
        "full": {
            "api": "MlflowClient.get_metric_history",
            "points": sizes.history_points,
            **summary,
            "returned": len(points),
            "correct": len(points) == sizes.history_points,
        },
        "downsampled": {"skipped": "MLflow's public client has no downsampled history"},
        "populate": {
            "api": f"MlflowClient.log_batch ({sizes.batch_size} per call)",
            "seconds": round(populate_s, 2),
            "points_per_s": rate(sizes.history_points, populate_s),
        },
    }


# --- 9. server_latency ------------------------------------------------------------------------


def _latency_against(workers: int, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    """One synchronous ``MlflowClient.log_metric`` at a time to ``mlflow server --workers N``.

    MLflow's REST client sends through one cached ``requests.Session`` per process, so the
    loop runs over one keep-alive connection (``client_ports_seen`` shows it).
    """
    with fresh_dir(workdir, f"mlflow-server-latency-{workers}w") as folder:
        port = free_port()
        argv = _mlflow_server_argv(folder, port, workers)
        base = f"http://127.0.0.1:{port}"
        with server_process(
            argv, f"{base}/health", folder / "server.log", 180, dict(os.environ)
        ) as startup_s:
            client, experiment_id = _client_and_experiment(base, folder)
            run_id = client.create_run(experiment_id, run_name="latency").info.run_id

            def call(i: int) -> None:
                client.log_metric(run_id, "m", 0.5, timestamp=_now_ms(), step=i)

            summary = timed_requests(
                call, port, sizes.server_latency_warmup, sizes.server_latency_calls
            )
            stored = len(client.get_metric_history(run_id, "m"))

            # The transport alone: GET /health (a constant answer) over a keep-alive
            # requests.Session, the library MLflow's client sends with.
            import requests  # type: ignore[import-untyped]

            with requests.Session() as session:

                def probe(_: int) -> None:
                    session.get(f"{base}/health", timeout=30).raise_for_status()

                client_ports = client_ports_to(port) or set()  # the MlflowClient's session
                health = timed_requests(
                    probe, port, 5, health_probe_calls(sizes), others=client_ports
                )
        total = sizes.server_latency_warmup + sizes.server_latency_calls
        summary["workers"] = workers
        summary["startup_s"] = round(startup_s, 2)
        summary["stored_points"] = stored
        summary["correct"] = stored == total
        summary["health_probe"] = {
            "api": "GET /health on a keep-alive requests.Session",
            **{k: health[k] for k in ("calls", "median_ms", "p99_ms", "one_connection")},
        }
        return summary


def server_latency(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "api": "MlflowClient.log_metric (synchronous, one point) to mlflow server",
        "command": "mlflow server --backend-store-uri sqlite:///… --workers N",
        "store": "SQLite",
    }
    for workers in SERVER_LATENCY_WORKERS:
        result[f"workers_{workers}"] = _latency_against(workers, sizes, workdir)
    four = result.get("workers_4", {})
    result["median_ms"] = four.get("median_ms")
    result["p99_ms"] = four.get("p99_ms")
    return result


# --- entry point ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down smoke test")
    parser.add_argument("--only", action="append", help="workload name(s), comma-separated")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument(
        "--server-workers", type=int, default=None, help="mlflow server --workers (default: 4)"
    )
    args = parser.parse_args(argv)
    only = [n for item in args.only or [] for n in item.split(",") if n]
    sizes = sizes_for(args.quick)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    store = RunStore(args.workdir)
    workloads: dict[str, Callable[[Sizes, Path], dict[str, Any]]] = {
        "log_embedded": log_embedded,
        "log_http": make_log_http(args.server_workers),
        "log_call_latency": log_call_latency,
        "create_runs": create_runs,
        "search": make_search(store),
        "paginate": make_paginate(store),
        "history": history,
        "server_latency": server_latency,
    }
    exit_on_sigterm()
    try:
        # MLflow prints run links and notices on stdout; keep stdout for the JSON alone.
        with contextlib.redirect_stdout(sys.stderr):
            results = run_workloads(SIDE, workloads, sizes, args.workdir, only or None)
    finally:
        store.close()
    document = {
        "side": SIDE,
        "mlflow_version": mlflow.__version__,
        "sqlalchemy_version": sqlalchemy.__version__,
        "python": platform.python_version(),
        "sizes": sizes.as_dict(),
        "workloads": results,
    }
    print(dump(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
