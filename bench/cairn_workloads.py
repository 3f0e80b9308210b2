"""Cairn side of the benchmark: the workloads of ``mlflow_workloads.py``, through ``import cairn``.

Runs in the project virtualenv. ``run.py`` imports it and calls ``workloads()``; run alone it
prints its own JSON document:

    .venv/bin/python bench/cairn_workloads.py --quick --only search
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cairn
from cairn_production import (
    monitoring_report_1m,
    prediction_ingest,
    prediction_ingest_pg,
    serving_overhead,
)
from cairn_registry import register_and_load
from common import (
    DEFAULT_WORKDIR,
    MB,
    MIB,
    SEARCH_FILTER,
    SEARCH_ORDER_BY_CAIRN,
    SERVER_LATENCY_WORKERS,
    Sizes,
    dd_write,
    dump,
    exit_on_sigterm,
    expected_search,
    folder_bytes,
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

SIDE = "cairn"
PROJECT = "bench"

# Every run here is started with the SDK's default ``capture=True`` (git, command,
# environment, read once per process and cached), because MLflow's fluent
# ``mlflow.start_run`` also records its run context (user, source, git commit). Where
# MLflow's side uses ``MlflowClient.create_run`` (no context) the run is started outside
# the clock on both sides, so capture is never what a figure measures.
CAPTURE = True
CAPTURE_NOTE = "on (SDK default: git, command, environment; cached per process)"
Workload = Callable[[Sizes, Path], dict[str, Any]]

# The SDK surface these workloads are written against.
SDK_NAMES = [
    "set_tracking_uri",
    "set_project",
    "start_run",
    "get_run",
    "get_metric_history",
    "search_runs",
]


def missing_sdk_names() -> list[str]:
    return [name for name in SDK_NAMES if not hasattr(cairn, name)]


def _use(tracking_uri: str) -> None:
    cairn.set_tracking_uri(tracking_uri)
    cairn.set_project(PROJECT)


def _checked(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a post-timing correctness check; a check that cannot run is reported, not raised."""
    try:
        return check()
    except Exception as exc:
        return {"correct": False, "check_error": f"{type(exc).__name__}: {exc}"}


def _last(run: Any, key: str) -> float:
    summary = run.metrics[key]
    return float(getattr(summary, "last", summary))


def _log_steps(steps: list[dict[str, float]], name: str) -> dict[str, Any]:
    """Log ``steps`` into one new run with the fluent API; the clock stops after ``flush()``."""
    points = sum(len(values) for values in steps)
    with cairn.start_run(name=name, capture=CAPTURE) as run:
        t0 = time.perf_counter()
        for step, values in enumerate(steps):
            run.log(values, step=step)
        enqueued = time.perf_counter() - t0
        run.flush()
        elapsed = time.perf_counter() - t0
        run_id = run.id

    def check() -> dict[str, Any]:
        stored = cairn.get_run(run_id).metrics["k0"].count
        history = len(cairn.get_metric_history(run_id, "k0").points)
        return {
            "stored_points_k0": stored,
            "correct": stored == len(steps) and history == len(steps),
        }

    return {
        "api": "run.log({...}, step=i) then run.flush()",
        "points": points,
        "seconds": round(elapsed, 3),
        "enqueue_seconds": round(enqueued, 3),
        "points_per_s": rate(points, elapsed),
        "capture": CAPTURE_NOTE,
        **_checked(check),
    }


# --- 1. log_embedded --------------------------------------------------------------------------


def log_embedded(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    steps = metric_steps(sizes.log_steps, sizes.log_keys)
    with fresh_dir(workdir, "cairn-log-embedded") as folder:
        _use(str(folder))
        return _log_steps(steps, "log-embedded")


# --- 2. log_http ------------------------------------------------------------------------------


def _cairn_server_argv(store: Path, port: int, workers: int | None = None) -> list[str]:
    script = Path(sys.executable).with_name("cairn")
    if script.exists():
        argv = [str(script)]
    else:
        argv = [sys.executable, "-c", "from cairn.cli.main import main; main()"]
    argv += ["server", "--host", "127.0.0.1", "--port", str(port), "--store", str(store)]
    if workers is not None:
        argv += ["--workers", str(workers)]
    return argv


def log_http(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    steps = metric_steps(sizes.log_steps, sizes.log_keys)
    with fresh_dir(workdir, "cairn-log-http") as folder:
        store = folder / "store"
        store.mkdir()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = _cairn_server_argv(store, port)
        with server_process(
            argv, f"{base}/healthz", folder / "server.log", 60, dict(os.environ)
        ) as startup_s:
            _use(base)
            result = _log_steps(steps, "log-http")
        result["server"] = {
            "command": "cairn server --host 127.0.0.1 --port P --store DIR",
            "startup_s": round(startup_s, 2),
        }
        return result


# --- 3. log_call_latency ----------------------------------------------------------------------


def log_call_latency(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    steps = metric_steps(sizes.latency_calls, sizes.log_keys)
    durations: list[int] = []
    clock = time.perf_counter_ns
    with fresh_dir(workdir, "cairn-latency") as folder:
        _use(str(folder))
        with cairn.start_run(name="latency", capture=CAPTURE) as run:
            for step, values in enumerate(steps):
                t0 = clock()
                run.log(values, step=step)
                durations.append(clock() - t0)
            t0 = clock()
            run.flush()
            flush_ms = (clock() - t0) / 1e6
    summary: dict[str, Any] = latency_summary_us(durations)
    summary["api"] = f"run.log({sizes.log_keys} keys, step=i)"
    summary["keys_per_call"] = sizes.log_keys
    summary["median_us_per_key"] = round(summary["median_us"] / sizes.log_keys, 3)
    summary["final_flush_ms"] = round(flush_ms, 3)
    summary["capture"] = CAPTURE_NOTE
    return summary


# --- 4. create_runs, and the populated stores that search and paginate read -------------------


class RunStore:
    """Embedded stores of ``n`` runs, created once per process and shared by workloads."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._stores: dict[int, tuple[Path, dict[str, Any]]] = {}

    def get(self, n: int) -> tuple[Path, dict[str, Any]]:
        if n not in self._stores:
            folder = self._workdir / f"cairn-runs-{n}-{os.getpid()}"
            try:
                self._stores[n] = self._populate(n, folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        folder, creation = self._stores[n]
        _use(str(folder))
        return folder, creation

    def drop(self, n: int) -> None:
        folder, _ = self._stores.pop(n, (None, None))
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        for n in list(self._stores):
            self.drop(n)

    def _populate(self, n: int, folder: Path) -> tuple[Path, dict[str, Any]]:
        self._workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        _use(str(folder))
        log(SIDE, f"creating {n} runs ...")
        last_id = ""
        want = None
        t0 = time.perf_counter()
        for spec in run_specs(n):
            with cairn.start_run(
                name=spec.name, params=spec.params, tags=spec.tags, capture=CAPTURE
            ) as run:
                run.log(spec.metrics, step=0)
                last_id, want = run.id, spec
        # Everything queued, the last run's end included, is stored before the clock stops.
        cairn.flush()
        elapsed = time.perf_counter() - t0

        def check() -> dict[str, Any]:
            stored = cairn.get_run(last_id)
            assert want is not None
            same = (
                dict(stored.params) == want.params
                and all(stored.tags.get(k) == v for k, v in want.tags.items())
                and all(_last(stored, k) == v for k, v in want.metrics.items())
            )
            return {"correct": same}

        creation = {
            "api": "with start_run(name, params, tags) as run: run.log(10 metrics)",
            "runs": n,
            "seconds": round(elapsed, 3),
            "runs_per_s": rate(n, elapsed),
            "capture": CAPTURE_NOTE,
            **_checked(check),
        }
        log(SIDE, f"created {n} runs in {elapsed:.1f} s")
        return folder, creation


def make_create_runs(store: RunStore) -> Workload:
    def create_runs(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        _, creation = store.get(sizes.runs)
        return creation

    return create_runs


def _search_figures(n: int, sizes: Sizes) -> dict[str, Any]:
    expected = expected_search(n)

    def query(limit: int) -> Any:
        return cairn.search_runs(SEARCH_FILTER, order_by=SEARCH_ORDER_BY_CAIRN, limit=limit)

    summary, page = repeat_ms(lambda: query(sizes.search_limit), sizes.search_repeats)
    summary_all, page_all = repeat_ms(lambda: query(sizes.search_all_limit), sizes.search_repeats)

    def check() -> dict[str, Any]:
        top_m1 = _last(page[0], "m1") if len(page) else None
        return {
            "top_m1": top_m1,
            "correct": (
                len(page) == min(sizes.search_limit, expected["matches"])
                and len(page_all) == min(sizes.search_all_limit, expected["matches"])
                and top_m1 == expected["top_m1"]
            ),
        }

    return {
        "api": "cairn.search_runs(filter, order_by, limit)",
        "runs": n,
        "filter": SEARCH_FILTER,
        "order_by": SEARCH_ORDER_BY_CAIRN,
        "limit": sizes.search_limit,
        **summary,
        "returned": len(page),
        "expected": expected,
        f"limit_{sizes.search_all_limit}": {**summary_all, "returned": len(page_all)},
        **_checked(check),
    }


def make_search(store: RunStore) -> Workload:
    def search(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        _, creation = store.get(sizes.runs)
        return {**_search_figures(sizes.runs, sizes), "populate": creation}

    return search


def make_paginate(store: RunStore) -> Workload:
    def paginate(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        _, creation = store.get(sizes.runs)

        def page_through() -> tuple[int, int]:
            page = cairn.search_runs("", limit=sizes.page_size)  # 1000 in the full run
            total, pages = len(page), 1
            while page.next_cursor:
                page = cairn.search_runs("", limit=sizes.page_size, cursor=page.next_cursor)
                total += len(page)
                pages += 1
            return total, pages

        summary, (total, pages) = repeat_ms(page_through, sizes.paginate_repeats)
        return {
            "api": "cairn.search_runs('', limit, cursor=page.next_cursor) until no cursor",
            "runs": sizes.runs,
            "page_size": sizes.page_size,
            **summary,
            "pages": pages,
            "returned": total,
            "correct": total == sizes.runs,
            "populate": creation,
        }

    return paginate


# --- 7. search_100k ---------------------------------------------------------------------------


def make_search_100k(store: RunStore) -> Workload:
    def search_100k(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        if not sizes.runs_100k:
            return {"skipped": "not run with --quick"}
        try:
            _, creation = store.get(sizes.runs_100k)
            return {**_search_figures(sizes.runs_100k, sizes), "populate": creation}
        finally:
            store.drop(sizes.runs_100k)

    return search_100k


# --- 8. history -------------------------------------------------------------------------------


def history(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    values = series(sizes.history_points)
    big = series(sizes.history_big_points)
    with fresh_dir(workdir, "cairn-history") as folder:
        _use(str(folder))
        with cairn.start_run(name="history", capture=CAPTURE) as run:
            t0 = time.perf_counter()
            for step, value in enumerate(values):
                run.log({"h": value}, step=step)
            for step, value in enumerate(big):
                run.log({"big": value}, step=step)
            run.flush()
            populate_s = time.perf_counter() - t0
            run_id = run.id

        full, hist = repeat_ms(lambda: cairn.get_metric_history(run_id, "h"), sizes.history_repeats)
        down, hist_down = repeat_ms(
            lambda: cairn.get_metric_history(run_id, "big", max_points=sizes.history_max_points),
            sizes.history_repeats,
        )

    def check_full() -> dict[str, Any]:
        points = hist.points
        return {
            "returned": len(points),
            "correct": (
                len(points) == len(values)
                and points[0].value == values[0]
                and points[-1].value == values[-1]
                and points[-1].step == len(values) - 1
            ),
        }

    def check_down() -> dict[str, Any]:
        points = hist_down.points
        return {
            "returned": len(points),
            "correct": 0 < len(points) <= sizes.history_max_points,
        }

    return {
        "full": {
            "api": "cairn.get_metric_history(run_id, key)",
            "points": len(values),
            **full,
            **_checked(check_full),
        },
        "downsampled": {
            "api": "cairn.get_metric_history(run_id, key, max_points)",
            "points": len(big),
            "max_points": sizes.history_max_points,
            **down,
            **_checked(check_down),
        },
        "populate": {
            "api": "run.log({key: v}, step=i) then flush",
            "seconds": round(populate_s, 2),
            "points_per_s": rate(len(values) + len(big), populate_s),
        },
    }


# --- 9. server_latency ------------------------------------------------------------------------


def _latency_against(workers: int, sizes: Sizes, workdir: Path) -> dict[str, Any]:
    """One small synchronous request at a time to ``cairn server --workers N``.

    One ``httpx.Client``: one keep-alive connection, as a training script's SDK holds.
    """
    import httpx

    from cairn.domain.ids import new_ulid

    with fresh_dir(workdir, f"cairn-server-latency-{workers}w") as folder:
        store = folder / "store"
        store.mkdir()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = _cairn_server_argv(store, port, workers)
        with (
            server_process(
                argv, f"{base}/healthz", folder / "server.log", 120, dict(os.environ)
            ) as startup_s,
            httpx.Client(base_url=f"{base}/api/v1", timeout=30) as http,
        ):
            run_id = new_ulid()
            created = http.post(
                "/runs",
                json={
                    "id": run_id,
                    "project": PROJECT,
                    "start_time": dt.datetime.now(dt.UTC).isoformat(),
                },
            )
            created.raise_for_status()
            path = f"/runs/{run_id}/batch"

            def call(i: int) -> None:
                body = {
                    "idempotency_key": new_ulid(),
                    "metrics": {
                        "m": {
                            "steps": [i],
                            "timestamps": [time.time_ns() // 1_000_000],
                            "values": [0.5],
                        }
                    },
                }
                response = http.post(path, json=body)
                if response.status_code != 200:
                    raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")

            total = sizes.server_latency_warmup + sizes.server_latency_calls
            summary = timed_requests(
                call, port, sizes.server_latency_warmup, sizes.server_latency_calls
            )
            stored = http.get(path.replace("/batch", ""))
            stored.raise_for_status()
            count = stored.json()["metrics"]["m"]["count"]

            # The transport alone: a GET that writes nothing, on the same connection. Near
            # 40 ms here would be Nagle + delayed ACK whatever the handler costs.
            def probe(_: int) -> None:
                http.get(f"{base}/healthz").raise_for_status()

            health = timed_requests(probe, port, 5, health_probe_calls(sizes))
        summary["workers"] = workers
        summary["startup_s"] = round(startup_s, 2)
        summary["stored_points"] = count
        summary["correct"] = count == total
        summary["health_probe"] = {
            "api": "GET /healthz (SELECT 1 + schema head) on the same httpx.Client",
            **{k: health[k] for k in ("calls", "median_ms", "p99_ms", "one_connection")},
        }
        return summary


def server_latency(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "api": "POST /api/v1/runs/{id}/batch, 1 metric point, fresh idempotency_key, "
        "one keep-alive httpx.Client",
        "command": "cairn server --host 127.0.0.1 --port P --store DIR --workers N",
        "store": "folder (SQLite, WAL, synchronous=NORMAL)",
    }
    for workers in SERVER_LATENCY_WORKERS:
        result[f"workers_{workers}"] = _latency_against(workers, sizes, workdir)
    four = result.get("workers_4", {})
    result["median_ms"] = four.get("median_ms")  # the figure the target reads: 4 workers
    result["p99_ms"] = four.get("p99_ms")
    return result


# --- 10.-14. artifacts and datasets, each measurement in a fresh process ----------------------
#
# A step runs as ``cairn_workloads.py --child STEP --params JSON`` (``common.run_step``), so
# its peak RSS is its own. Stores are embedded: blobs land in ``<store>/artifacts``.

SCRIPT = Path(__file__).resolve()
ARTIFACT_FILE = "model.bin"  # the big file's name, on disk and as an artifact
DATASET_NAME = "many"


def _blobs(store: Path) -> Path:
    return store / "artifacts"


def _step_log_artifact(params: dict[str, Any]) -> dict[str, Any]:
    _use(params["store"])
    blobs = Path(params["blobs"])
    with cairn.start_run(name=params["run_name"], capture=CAPTURE) as run:
        before = folder_bytes(blobs)
        rss_before = peak_rss_mb_so_far()
        t0 = time.perf_counter()
        entry = run.log_artifact(params["file"])
        elapsed = time.perf_counter() - t0
        new_bytes = folder_bytes(blobs) - before
        run_id = run.id
    return {
        "run_id": run_id,
        "seconds": elapsed,
        "size": entry.size,
        "digest": entry.digest,
        "new_bytes": new_bytes,
        "peak_rss_mb_before_call": rss_before,
    }


def _step_download(params: dict[str, Any]) -> dict[str, Any]:
    _use(params["store"])
    cairn.list_artifacts(params["run_id"])  # opens the store outside the clock
    # Both sides start with no dirty pages waiting: on this VM, writeback of an earlier
    # step's gigabyte throttles a copy to disk speed whoever makes it.
    os.sync()
    rss_before = peak_rss_mb_so_far()
    t0 = time.perf_counter()
    path = cairn.download_artifacts(params["run_id"], params["path"], params["dest"])
    elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "path": str(path),
        "size": path.stat().st_size,
        "peak_rss_mb_before_call": rss_before,
    }


def _step_log_dataset(params: dict[str, Any]) -> dict[str, Any]:
    _use(params["store"])
    with contextlib.suppress(cairn.NotFound):  # opens the store outside the clock
        cairn.list_datasets()
    blobs = Path(params["blobs"])
    before = folder_bytes(blobs)
    rss_before = peak_rss_mb_so_far()
    t0 = time.perf_counter()
    version = cairn.log_dataset(params["name"], params["folder"])
    elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "name": version.name,
        "version": version.version,
        "digest": version.digest,
        "file_count": getattr(version, "file_count", None),
        "size": getattr(version, "size", None),
        "new_bytes": folder_bytes(blobs) - before,
        "peak_rss_mb_before_call": rss_before,
    }


STEPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "log_artifact": _step_log_artifact,
    "download": _step_download,
    "log_dataset": _step_log_dataset,
}


def _log_file(store: Path, file: Path, run_name: str) -> dict[str, Any]:
    params = {"store": str(store), "blobs": str(_blobs(store)), "file": str(file)}
    return run_step(SCRIPT, "log_artifact", {**params, "run_name": run_name})


class ArtifactStore:
    """A store holding the big random file logged once, with the dd yardstick taken just
    before; shared by ``artifact_1gb``, ``artifact_1gb_again`` and ``artifact_download``.

    Everything (the source file, the store, downloads, dd's file) sits in one folder under
    the workdir, so on one filesystem; ``close`` removes it.
    """

    def __init__(self, workdir: Path) -> None:
        self._folder = workdir / f"cairn-artifacts-{os.getpid()}"
        self._first: dict[str, Any] | None = None

    @property
    def store(self) -> Path:
        return self._folder / "store"

    def first(self, sizes: Sizes) -> dict[str, Any]:
        if self._first is None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder.mkdir(parents=True)
            source = self._folder / ARTIFACT_FILE
            log(SIDE, f"writing {sizes.artifact_mib} MiB of random bytes ...")
            sha256 = write_random_file(source, sizes.artifact_mib)
            dd = dd_write(self._folder, sizes.artifact_mib)
            log(SIDE, f"dd: {dd['mb_per_s']} MB/s; logging the file ...")
            logged = _log_file(self.store, source, "artifact-first")
            self._first = {"source": source, "sha256": sha256, "dd": dd, "logged": logged}
        return self._first

    def download_dir(self) -> Path:
        return self._folder / "download"

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)


def _mb_per_s(size: int, seconds: float) -> float:
    return round(size / MB / seconds, 1) if seconds > 0 else float("inf")


def make_artifact_1gb(store: ArtifactStore) -> Workload:
    def artifact_1gb(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        first = store.first(sizes)
        logged, dd = first["logged"], first["dd"]
        size = sizes.artifact_mib * MIB
        mb_per_s = _mb_per_s(size, logged["seconds"])
        return {
            "api": "run.log_artifact(path), embedded store, in a fresh process",
            "bytes": size,
            "seconds": round(logged["seconds"], 3),
            "mb_per_s": mb_per_s,
            "dd": dd,
            "vs_dd": round(mb_per_s / dd["mb_per_s"], 3),
            "peak_rss_mb": logged["peak_rss_mb"],
            "peak_rss_mb_before_call": logged["peak_rss_mb_before_call"],
            "new_bytes": logged["new_bytes"],
            "correct": logged["digest"] == first["sha256"] and logged["size"] == size,
        }

    return artifact_1gb


def make_artifact_1gb_again(store: ArtifactStore) -> Workload:
    def artifact_1gb_again(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        first = store.first(sizes)
        again = _log_file(store.store, first["source"], "artifact-again")
        first_s = first["logged"]["seconds"]
        return {
            "api": "run.log_artifact(the same path) in a second run, in a fresh process",
            "bytes": again["size"],
            "seconds": round(again["seconds"], 3),
            "first_seconds": round(first_s, 3),
            "vs_first": round(again["seconds"] / first_s, 3),
            "new_bytes": again["new_bytes"],
            "peak_rss_mb": again["peak_rss_mb"],
            "correct": again["digest"] == first["sha256"],
        }

    return artifact_1gb_again


def make_artifact_download(store: ArtifactStore) -> Workload:
    def artifact_download(sizes: Sizes, workdir: Path) -> dict[str, Any]:
        first = store.first(sizes)
        dest = store.download_dir()
        params = {"store": str(store.store), "run_id": first["logged"]["run_id"]}
        try:
            got = run_step(SCRIPT, "download", {**params, "path": ARTIFACT_FILE, "dest": str(dest)})
            same = sha256_file(Path(got["path"])) == first["sha256"]
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        return {
            "api": "cairn.download_artifacts(run_id, name, dest), in a fresh process",
            "bytes": got["size"],
            "seconds": round(got["seconds"], 3),
            "mb_per_s": _mb_per_s(got["size"], got["seconds"]),
            "peak_rss_mb": got["peak_rss_mb"],
            "correct": same,
        }

    return artifact_download


def artifact_100mb_twice(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    size = sizes.artifact_twice_mib * MIB
    with fresh_dir(workdir, "cairn-artifact-twice") as folder:
        source = folder / ARTIFACT_FILE
        sha256 = write_random_file(source, sizes.artifact_twice_mib)
        store = folder / "store"
        runs = [_log_file(store, source, f"artifact-twice-{i}") for i in (1, 2)]
        blob_folder = folder_bytes(_blobs(store))
    stored = sum(r["new_bytes"] for r in runs)
    return {
        "api": "run.log_artifact(path) of one file in two runs, each in a fresh process",
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
        "blob_folder_bytes": blob_folder,
        "correct": all(r["digest"] == sha256 for r in runs),
    }


def dataset_10k_files(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    if not hasattr(cairn, "log_dataset"):
        raise RuntimeError("this checkout's cairn has no log_dataset yet")
    with fresh_dir(workdir, "cairn-dataset") as folder:
        source = folder / DATASET_NAME
        log(SIDE, f"writing {sizes.dataset_files} small files ...")
        total = write_small_files(source, sizes.dataset_files)
        store = folder / "store"
        params = {"store": str(store), "blobs": str(_blobs(store)), "folder": str(source)}
        got = run_step(SCRIPT, "log_dataset", {**params, "name": DATASET_NAME})
    return {
        "api": "cairn.log_dataset(name, folder), in a fresh process",
        "files": sizes.dataset_files,
        "bytes": total,
        "seconds": round(got["seconds"], 3),
        "files_per_s": rate(sizes.dataset_files, got["seconds"]),
        "new_bytes": got["new_bytes"],
        "peak_rss_mb": got["peak_rss_mb"],
        "dataset": {k: got[k] for k in ("name", "version", "digest", "file_count", "size")},
        "correct": (
            got["name"] == DATASET_NAME
            and bool(got["digest"])
            and got["file_count"] in (None, sizes.dataset_files)
            and got["size"] in (None, total)
        ),
    }


# --- entry points -----------------------------------------------------------------------------


def workloads(store: RunStore, artifacts: ArtifactStore) -> dict[str, Workload]:
    return {
        "log_embedded": log_embedded,
        "log_http": log_http,
        "log_call_latency": log_call_latency,
        "create_runs": make_create_runs(store),
        "search": make_search(store),
        "paginate": make_paginate(store),
        "search_100k": make_search_100k(store),
        "history": history,
        "server_latency": server_latency,
        "artifact_1gb": make_artifact_1gb(artifacts),
        "artifact_1gb_again": make_artifact_1gb_again(artifacts),
        "artifact_download": make_artifact_download(artifacts),
        "artifact_100mb_twice": artifact_100mb_twice,
        "dataset_10k_files": dataset_10k_files,
        "register_and_load": register_and_load,  # cairn_registry.py
        "serving_overhead": serving_overhead,  # cairn_production.py
        "prediction_ingest": prediction_ingest,
        "prediction_ingest_pg": prediction_ingest_pg,
        "monitoring_report_1m": monitoring_report_1m,
    }


def run(sizes: Sizes, workdir: Path, only: list[str] | None) -> dict[str, Any]:
    store = RunStore(workdir)
    artifacts = ArtifactStore(workdir)
    try:
        return run_workloads(SIDE, workloads(store, artifacts), sizes, workdir, only)
    finally:
        store.close()
        artifacts.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down smoke test")
    parser.add_argument("--only", action="append", help="workload name(s), comma-separated")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--child", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if args.child:  # one measurement for run_step, in this fresh process
        print(json.dumps(STEPS[args.child](json.loads(args.params))))
        return 0
    only = [n for item in args.only or [] for n in item.split(",") if n]
    sizes = sizes_for(args.quick)
    document = {
        "side": SIDE,
        "python": platform.python_version(),
        "sizes": sizes.as_dict(),
        "workloads": run(sizes, args.workdir, only or None),
    }
    print(dump(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
