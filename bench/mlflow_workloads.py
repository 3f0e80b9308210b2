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
import json
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
    MB,
    MIB,
    SEARCH_FILTER,
    SEARCH_ORDER_BY_MLFLOW,
    SERVER_LATENCY_WORKERS,
    Sizes,
    client_ports_to,
    dd_write,
    dump,
    exit_on_sigterm,
    expected_search,
    folder_bytes,
    folder_files,
    free_port,
    fresh_dir,
    health_probe_calls,
    latency_summary_us,
    log,
    metric_steps,
    peak_rss_mb_so_far,
    rate,
    repeat_ms,
    run_specs,
    run_step,
    run_workloads,
    series,
    server_process,
    sha256_file,
    sizes_for,
    timed_requests,
    write_random_file,
    write_small_files,
)
from mlflow_registry import register_and_load
from mlflow_serving import serving_overhead

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


# --- 10.-14. artifacts, and a folder of small files: each measurement a fresh process ---------
#
# As on Cairn's side (see common.run_step). The tracking store is SQLite, the artifact root a
# local folder (MLflow's LocalArtifactRepository, which copies files and does not fsync).

SCRIPT = Path(__file__).resolve()
ARTIFACT_FILE = "model.bin"
DATASET_NAME = "many"


def _step_log_artifact(params: dict[str, Any]) -> dict[str, Any]:
    mlflow.set_tracking_uri(params["uri"])
    artifacts = Path(params["artifacts"])
    with mlflow.start_run(experiment_id=params["experiment_id"], run_name=params["run_name"]):
        before = folder_bytes(artifacts)
        rss_before = peak_rss_mb_so_far()
        t0 = time.perf_counter()
        mlflow.log_artifact(params["file"])
        elapsed = time.perf_counter() - t0
        new_bytes = folder_bytes(artifacts) - before
        run = mlflow.active_run()
        assert run is not None
        run_id, artifact_uri = run.info.run_id, run.info.artifact_uri
    # Not part of the figure: how long making the stored copy durable would take.
    stored = Path(artifact_uri.removeprefix("file://")) / Path(params["file"]).name
    t0 = time.perf_counter()
    fd = os.open(stored, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return {
        "run_id": run_id,
        "seconds": elapsed,
        "fsync_after_seconds": time.perf_counter() - t0,
        "stored_path": str(stored),
        "new_bytes": new_bytes,
        "peak_rss_mb_before_call": rss_before,
    }


def _step_download(params: dict[str, Any]) -> dict[str, Any]:
    mlflow.set_tracking_uri(params["uri"])
    MlflowClient().get_run(params["run_id"])  # opens the store outside the clock
    # Both sides start with no dirty pages waiting: on this VM, writeback of an earlier
    # step's gigabyte throttles a copy to disk speed whoever makes it.
    os.sync()
    rss_before = peak_rss_mb_so_far()
    t0 = time.perf_counter()
    path = mlflow.artifacts.download_artifacts(
        run_id=params["run_id"],
        artifact_path=params["path"],
        dst_path=params["dest"],
        tracking_uri=params["uri"],
    )
    elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "path": path,
        "size": Path(path).stat().st_size,
        "peak_rss_mb_before_call": rss_before,
    }


def _step_log_artifacts(params: dict[str, Any]) -> dict[str, Any]:
    mlflow.set_tracking_uri(params["uri"])
    artifacts = Path(params["artifacts"])
    with mlflow.start_run(experiment_id=params["experiment_id"], run_name=params["run_name"]):
        before = folder_bytes(artifacts)
        rss_before = peak_rss_mb_so_far()
        t0 = time.perf_counter()
        mlflow.log_artifacts(params["folder"], artifact_path=params["artifact_path"])
        elapsed = time.perf_counter() - t0
        new_bytes = folder_bytes(artifacts) - before
    return {
        "seconds": elapsed,
        "new_bytes": new_bytes,
        "files_stored": folder_files(artifacts),
        "peak_rss_mb_before_call": rss_before,
    }


STEPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "log_artifact": _step_log_artifact,
    "download": _step_download,
    "log_artifacts": _step_log_artifacts,
}


class _Store:
    """A SQLite tracking store and an experiment whose artifacts go to ``folder/artifacts``."""

    def __init__(self, folder: Path) -> None:
        self.uri = _sqlite_uri(folder)
        self.artifacts = folder / "artifacts"
        _, self.experiment_id = _client_and_experiment(self.uri, folder)

    def params(self, **extra: Any) -> dict[str, Any]:
        base = {"uri": self.uri, "experiment_id": self.experiment_id}
        return {**base, "artifacts": str(self.artifacts), **extra}

    def log_file(self, file: Path, run_name: str) -> dict[str, Any]:
        return run_step(SCRIPT, "log_artifact", self.params(file=str(file), run_name=run_name))


class ArtifactStore:
    """The big random file logged once, dd taken just before; see cairn_workloads."""

    def __init__(self, workdir: Path) -> None:
        self._folder = workdir / f"mlflow-artifacts-{os.getpid()}"
        self._store: _Store | None = None
        self._first: dict[str, Any] | None = None

    def first(self, sizes: Sizes) -> tuple[_Store, dict[str, Any]]:
        if self._store is None or self._first is None:
            shutil.rmtree(self._folder, ignore_errors=True)
            (self._folder / "store").mkdir(parents=True)
            self._store = _Store(self._folder / "store")
            source = self._folder / ARTIFACT_FILE
            log(SIDE, f"writing {sizes.artifact_mib} MiB of random bytes ...")
            sha256 = write_random_file(source, sizes.artifact_mib)
            dd = dd_write(self._folder, sizes.artifact_mib)
            log(SIDE, f"dd: {dd['mb_per_s']} MB/s; logging the file ...")
            logged = self._store.log_file(source, "artifact-first")
            self._first = {"source": source, "sha256": sha256, "dd": dd, "logged": logged}
        return self._store, self._first

    def download_dir(self) -> Path:
        return self._folder / "download"

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)


def _mb_per_s(size: int, seconds: float) -> float:
    return round(size / MB / seconds, 1) if seconds > 0 else float("inf")


def _log_figures(logged: dict[str, Any], size: int) -> dict[str, Any]:
    durable_s = logged["seconds"] + logged["fsync_after_seconds"]
    return {
        "bytes": size,
        "seconds": round(logged["seconds"], 3),
        "mb_per_s": _mb_per_s(size, logged["seconds"]),
        "fsync_after_seconds": round(logged["fsync_after_seconds"], 3),
        "seconds_with_fsync": round(durable_s, 3),
        "mb_per_s_with_fsync": _mb_per_s(size, durable_s),
        "new_bytes": logged["new_bytes"],
        "peak_rss_mb": logged["peak_rss_mb"],
        "peak_rss_mb_before_call": logged["peak_rss_mb_before_call"],
    }


def make_artifact_1gb(store: ArtifactStore) -> Callable[[Sizes, Path], dict[str, Any]]:
    def artifact_1gb(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        _, first = store.first(sizes)
        size = sizes.artifact_mib * MIB
        figures = _log_figures(first["logged"], size)
        return {
            "api": "mlflow.log_artifact(path), local artifact root, in a fresh process",
            **figures,
            "dd": first["dd"],
            "vs_dd": round(figures["mb_per_s"] / first["dd"]["mb_per_s"], 3),
            "correct": sha256_file(Path(first["logged"]["stored_path"])) == first["sha256"],
        }

    return artifact_1gb


def make_artifact_1gb_again(store: ArtifactStore) -> Callable[[Sizes, Path], dict[str, Any]]:
    def artifact_1gb_again(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        tracking, first = store.first(sizes)
        again = tracking.log_file(first["source"], "artifact-again")
        first_s = first["logged"]["seconds"]
        return {
            "api": "mlflow.log_artifact(the same path) in a second run, in a fresh process",
            **_log_figures(again, sizes.artifact_mib * MIB),
            "first_seconds": round(first_s, 3),
            "vs_first": round(again["seconds"] / first_s, 3),
        }

    return artifact_1gb_again


def make_artifact_download(store: ArtifactStore) -> Callable[[Sizes, Path], dict[str, Any]]:
    def artifact_download(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        tracking, first = store.first(sizes)
        dest = store.download_dir()
        dest.mkdir(exist_ok=True)
        params = {"uri": tracking.uri, "run_id": first["logged"]["run_id"]}
        try:
            got = run_step(SCRIPT, "download", {**params, "path": ARTIFACT_FILE, "dest": str(dest)})
            same = sha256_file(Path(got["path"])) == first["sha256"]
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        return {
            "api": "mlflow.artifacts.download_artifacts(run_id, artifact_path, dst_path)",
            "bytes": got["size"],
            "seconds": round(got["seconds"], 3),
            "mb_per_s": _mb_per_s(got["size"], got["seconds"]),
            "peak_rss_mb": got["peak_rss_mb"],
            "correct": same,
        }

    return artifact_download


def artifact_100mb_twice(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    size = sizes.artifact_twice_mib * MIB
    with fresh_dir(workdir, "mlflow-artifact-twice") as folder:
        source = folder / ARTIFACT_FILE
        write_random_file(source, sizes.artifact_twice_mib)
        (folder / "store").mkdir()
        tracking = _Store(folder / "store")
        runs = [tracking.log_file(source, f"artifact-twice-{i}") for i in (1, 2)]
        artifact_folder = folder_bytes(tracking.artifacts)
    stored = sum(r["new_bytes"] for r in runs)
    return {
        "api": "mlflow.log_artifact(path) of one file in two runs, each in a fresh process",
        "bytes": size,
        **{
            name: {
                "seconds": round(r["seconds"], 3),
                "new_bytes": r["new_bytes"],
                "peak_rss_mb": r["peak_rss_mb"],
            }
            for name, r in zip(("first", "second"), runs, strict=True)
        },
        "stored_bytes": stored,
        "copies_stored": round(stored / size, 3),
        "artifact_folder_bytes": artifact_folder,
    }


def dataset_10k_files(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    with fresh_dir(workdir, "mlflow-dataset") as folder:
        source = folder / DATASET_NAME
        log(SIDE, f"writing {sizes.dataset_files} small files ...")
        total = write_small_files(source, sizes.dataset_files)
        (folder / "store").mkdir()
        tracking = _Store(folder / "store")
        params = tracking.params(folder=str(source), artifact_path=DATASET_NAME, run_name="many")
        got = run_step(SCRIPT, "log_artifacts", params)
    return {
        "api": "mlflow.log_artifacts(folder, artifact_path) in a run, in a fresh process",
        "files": sizes.dataset_files,
        "bytes": total,
        "seconds": round(got["seconds"], 3),
        "files_per_s": rate(sizes.dataset_files, got["seconds"]),
        "new_bytes": got["new_bytes"],
        "peak_rss_mb": got["peak_rss_mb"],
        "correct": got["files_stored"] == sizes.dataset_files,
    }


# --- entry point ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down smoke test")
    parser.add_argument("--only", action="append", help="workload name(s), comma-separated")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument(
        "--server-workers", type=int, default=None, help="mlflow server --workers (default: 4)"
    )
    parser.add_argument("--child", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = [n for item in args.only or [] for n in item.split(",") if n]
    sizes = sizes_for(args.quick)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.child:  # one measurement for run_step, in this fresh process
        with contextlib.redirect_stdout(sys.stderr):
            result = STEPS[args.child](json.loads(args.params))
        print(json.dumps(result))
        return 0
    store = RunStore(args.workdir)
    artifacts = ArtifactStore(args.workdir)
    workloads: dict[str, Callable[[Sizes, Path], dict[str, Any]]] = {
        "log_embedded": log_embedded,
        "log_http": make_log_http(args.server_workers),
        "log_call_latency": log_call_latency,
        "create_runs": create_runs,
        "search": make_search(store),
        "paginate": make_paginate(store),
        "history": history,
        "server_latency": server_latency,
        "artifact_1gb": make_artifact_1gb(artifacts),
        "artifact_1gb_again": make_artifact_1gb_again(artifacts),
        "artifact_download": make_artifact_download(artifacts),
        "artifact_100mb_twice": artifact_100mb_twice,
        "dataset_10k_files": dataset_10k_files,
        "register_and_load": register_and_load,  # mlflow_registry.py
        "serving_overhead": serving_overhead,  # mlflow_serving.py
    }
    exit_on_sigterm()
    try:
        # MLflow prints run links and notices on stdout; keep stdout for the JSON alone.
        with contextlib.redirect_stdout(sys.stderr):
            results = run_workloads(SIDE, workloads, sizes, args.workdir, only or None)
    finally:
        store.close()
        artifacts.close()
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
