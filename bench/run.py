"""Benchmark Cairn against MLflow on the same workloads, in the same run; print one JSON document.

    .venv/bin/python bench/run.py                  # everything (about 13 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick          # scaled down, for a CI smoke test
    .venv/bin/python bench/run.py --only search,paginate --skip-mlflow

Cairn's workloads run in this interpreter (the project virtualenv, where ``cairn`` is
installed). MLflow's run in ``bench/.venv-mlflow``, created here on first use, as a subprocess
(``bench/mlflow_workloads.py``) that prints JSON. Per workload the document holds both sides'
figures, ``ratio`` (how many times better Cairn is than MLflow: a throughput over a throughput,
or a time over a time, so above 1 means Cairn is faster), the ``target`` Cairn must meet on a
2-core machine and ``meets_target``. It is written to ``bench/results.json`` after a complete
run, to ``bench/results-quick.json`` with ``--quick`` and to ``bench/results-partial.json``
with ``--only`` or ``--skip-mlflow`` (``--output`` chooses), so a smoke test or a partial run
never overwrites the full figures.
Exits 1 when a workload failed on either side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import math
import operator
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    BENCH_DIR,
    DEFAULT_WORKDIR,
    WORKLOAD_NAMES,
    dump,
    exit_on_sigterm,
    log,
    sizes_for,
)

MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"
MLFLOW_SPECS = ["mlflow==3.17.*", "mlflow>=3,<4"]  # the pinned series, else the newest 3.x
# What MLflow's side needs besides MLflow, by module: register_and_load fits and logs a
# scikit-learn model (the version this interpreter has, so both sides pickle the same code).
MLFLOW_EXTRAS = {"sklearn": "scikit-learn", "httpx": "httpx"}


# --- targets and ratios -----------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """One figure Cairn must reach: ``path`` into Cairn's result, compared with ``value``."""

    path: str
    op: str  # ">=" or "<="
    value: float

    def __str__(self) -> str:
        return f"{self.path} {self.op} {self.value:g}"

    def met(self, result: dict[str, Any]) -> bool:
        actual = _dig(result, self.path)
        if not isinstance(actual, int | float):
            return False
        compare = operator.ge if self.op == ">=" else operator.le
        return bool(compare(actual, self.value))


@dataclass(frozen=True)
class Comparison:
    """How a workload's two sides compare: Cairn's path, MLflow's path, higher or lower wins."""

    cairn: str
    mlflow: str
    higher_is_better: bool

    def ratio(self, cairn: dict[str, Any], mlflow: dict[str, Any]) -> float | None:
        ours, theirs = _dig(cairn, self.cairn), _dig(mlflow, self.mlflow)
        if not isinstance(ours, int | float) or not isinstance(theirs, int | float):
            return None
        if not ours or not theirs:
            return None
        return round(ours / theirs if self.higher_is_better else theirs / ours, 2)


GOALS: dict[str, list[Goal]] = {
    "log_embedded": [Goal("points_per_s", ">=", 500_000)],
    "log_http": [Goal("points_per_s", ">=", 150_000)],
    "log_call_latency": [Goal("median_us", "<=", 5)],
    "create_runs": [Goal("runs_per_s", ">=", 2_000)],
    "search": [Goal("median_ms", "<=", 20)],
    "paginate": [Goal("median_ms", "<=", 250)],
    "search_100k": [Goal("median_ms", "<=", 100)],
    "history": [Goal("full.median_ms", "<=", 100), Goal("downsampled.median_ms", "<=", 100)],
    # One small synchronous request over a keep-alive connection to a 4-worker server: the
    # TCP_NODELAY pitfall (DESIGN.md, Scale-out) would put it near 40 ms.
    "server_latency": [Goal("workers_4.median_ms", "<=", 5)],
    # Artifacts: MB/s are 10**6 bytes a second; peak RSS is the logging process's own.
    "artifact_1gb": [Goal("vs_dd", ">=", 0.6), Goal("peak_rss_mb", "<=", 150)],
    "artifact_1gb_again": [Goal("new_bytes", "<=", 0), Goal("vs_first", "<=", 0.25)],
    "artifact_download": [Goal("mb_per_s", ">=", 500)],
    "artifact_100mb_twice": [Goal("copies_stored", "<=", 1)],
    "dataset_10k_files": [Goal("seconds", "<=", 10)],
    # Medians of fresh-process register + alias + load-and-predict (bench/cairn_registry.py).
    "register_and_load": [Goal("total_s", "<=", 0.5)],
    # bench/cairn_production.py (MLflow's serving: bench/mlflow_serving.py); MLflow logs no
    # predictions and monitors nothing, so the other two have no MLflow side.
    "serving_overhead": [Goal("overhead_p50_ms", "<=", 2)],
    "prediction_ingest": [Goal("predictions_per_s", ">=", 20_000)],
    # The same into a server on PostgreSQL (running on the same two cores).
    "prediction_ingest_pg": [Goal("predictions_per_s", ">=", 20_000)],
    "monitoring_report_1m": [Goal("seconds", "<=", 1)],
}

# The first comparison of a workload is its ``ratio``; the others are ``ratio_<name>``.
COMPARISONS: dict[str, dict[str, Comparison]] = {
    "log_embedded": {
        "vs_log_batch": Comparison("points_per_s", "log_batch.points_per_s", True),
        "vs_log_metric": Comparison("points_per_s", "log_metric.points_per_s", True),
    },
    "log_http": {"vs_log_batch": Comparison("points_per_s", "points_per_s", True)},
    "log_call_latency": {
        "median": Comparison("median_us", "median_us", False),
        "p99": Comparison("p99_us", "p99_us", False),
    },
    "create_runs": {"runs_per_s": Comparison("runs_per_s", "runs_per_s", True)},
    "search": {
        "median": Comparison("median_ms", "median_ms", False),
        "limit_1000": Comparison("limit_1000.median_ms", "limit_1000.median_ms", False),
    },
    "paginate": {"median": Comparison("median_ms", "median_ms", False)},
    "history": {"full": Comparison("full.median_ms", "full.median_ms", False)},
    "server_latency": {
        "median_4_workers": Comparison("workers_4.median_ms", "workers_4.median_ms", False),
        "median_1_worker": Comparison("workers_1.median_ms", "workers_1.median_ms", False),
        "p99_4_workers": Comparison("workers_4.p99_ms", "workers_4.p99_ms", False),
        "p99_1_worker": Comparison("workers_1.p99_ms", "workers_1.p99_ms", False),
    },
    # MLflow's local artifact store copies without fsync; Cairn's fsyncs every blob, so the
    # second ratio compares with MLflow's copy plus an fsync of it, timed after the call.
    "artifact_1gb": {
        "mb_per_s": Comparison("mb_per_s", "mb_per_s", True),
        "mb_per_s_with_fsync": Comparison("mb_per_s", "mb_per_s_with_fsync", True),
        "peak_rss": Comparison("peak_rss_mb", "peak_rss_mb", False),
    },
    "artifact_1gb_again": {
        "seconds": Comparison("seconds", "seconds", False),
        "seconds_with_fsync": Comparison("seconds", "seconds_with_fsync", False),
        "peak_rss": Comparison("peak_rss_mb", "peak_rss_mb", False),
    },
    "artifact_download": {
        "mb_per_s": Comparison("mb_per_s", "mb_per_s", True),
        "peak_rss": Comparison("peak_rss_mb", "peak_rss_mb", False),
    },
    "artifact_100mb_twice": {
        "stored_bytes": Comparison("stored_bytes", "stored_bytes", False),
        "first_seconds": Comparison("first.seconds", "first.seconds", False),
        "second_seconds": Comparison("second.seconds", "second.seconds", False),
    },
    "dataset_10k_files": {
        "seconds": Comparison("seconds", "seconds", False),
        "peak_rss": Comparison("peak_rss_mb", "peak_rss_mb", False),
    },
    # MLflow's default serialization (skops) first; then with serialization_format="pickle",
    # which is what Cairn's sklearn flavor writes.
    "serving_overhead": {
        "overhead_p50": Comparison("overhead_p50_ms", "overhead_p50_ms", False),
        "http_p50": Comparison("http.p50_ms", "http.p50_ms", False),
        "http_p99": Comparison("http.p99_ms", "http.p99_ms", False),
    },
    "register_and_load": {
        "total": Comparison("total_s", "total_s", False),
        "register": Comparison("register_s", "register_s", False),
        "load": Comparison("load_s", "load_s", False),
        "total_vs_pickle": Comparison("total_s", "pickle.total_s", False),
        "register_vs_pickle": Comparison("register_s", "pickle.register_s", False),
        "load_vs_pickle": Comparison("load_s", "pickle.load_s", False),
    },
}


def _dig(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


def compare(name: str, cairn: dict[str, Any], mlflow: dict[str, Any] | None) -> dict[str, Any]:
    goals = GOALS[name]
    entry: dict[str, Any] = {"cairn": cairn, "mlflow": mlflow, "ratio": None}
    comparisons = COMPARISONS.get(name, {})
    for index, (label, comparison) in enumerate(comparisons.items()):
        ratio = comparison.ratio(cairn, mlflow) if mlflow else None
        entry["ratio" if index == 0 else f"ratio_{label}"] = ratio
    if comparisons:
        first = next(iter(comparisons.values()))
        entry["ratio_of"] = f"cairn {first.cairn} vs mlflow {first.mlflow}"
    entry["target"] = " and ".join(str(goal) for goal in goals)
    if "skipped" in cairn:
        entry["meets_target"] = None
    else:
        entry["meets_target"] = "error" not in cairn and all(goal.met(cairn) for goal in goals)
    return entry


def failed(result: dict[str, Any] | None) -> bool:
    return isinstance(result, dict) and "error" in result


# --- the two sides ----------------------------------------------------------------------------


def run_cairn(quick: bool, workdir: Path, only: list[str] | None) -> tuple[dict[str, Any], str]:
    """Cairn's results per workload and its version; an import failure fails every workload."""
    try:
        import cairn
        import cairn_workloads
    except Exception as exc:
        message = f"cairn is not importable: {type(exc).__name__}: {exc}"
        log("cairn", message)
        names = [n for n in WORKLOAD_NAMES if not only or n in only]
        return {name: {"error": message} for name in names}, "not importable"
    missing = cairn_workloads.missing_sdk_names()
    if missing:
        message = f"cairn imports but lacks the SDK names {', '.join(missing)}"
        log("cairn", message)
        names = [n for n in WORKLOAD_NAMES if not only or n in only]
        return {name: {"error": message} for name in names}, _cairn_version(cairn)
    return cairn_workloads.run(sizes_for(quick), workdir, only), _cairn_version(cairn)


def _cairn_version(module: Any) -> str:
    try:
        return importlib.metadata.version("cairn")
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown"))


def ensure_mlflow_python(venv: Path) -> Path:
    """The MLflow virtualenv's python: created when missing, with MLflow and the extras
    its workloads import installed into it when they are missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        log("mlflow", f"creating {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if not _imports(python, "mlflow") and not any(_pip(python, s) for s in MLFLOW_SPECS):
        raise RuntimeError(f"could not install MLflow ({' or '.join(MLFLOW_SPECS)}) into {venv}")
    for module, package in MLFLOW_EXTRAS.items():
        if _imports(python, module):
            continue
        ours = _version(package)
        if not _pip(python, f"{package}=={ours}" if ours else package):
            raise RuntimeError(f"could not install {package} into {venv}")
    return python


def _pip(python: Path, spec: str) -> bool:
    log("mlflow", f"pip install {spec!r} ...")
    install = [str(python), "-m", "pip", "install", "--quiet", spec]
    return subprocess.run(install, stdout=sys.stderr).returncode == 0


def _imports(python: Path, module: str) -> bool:
    probe = [str(python), "-c", f"import {module}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def run_mlflow(
    python: Path, quick: bool, workdir: Path, only: list[str] | None, workers: int | None
) -> dict[str, Any]:
    argv = [str(python), str(BENCH_DIR / "mlflow_workloads.py"), "--workdir", str(workdir)]
    if quick:
        argv.append("--quick")
    if only:
        argv += ["--only", ",".join(only)]
    if workers is not None:
        argv += ["--server-workers", str(workers)]
    workdir.mkdir(parents=True, exist_ok=True)
    # stderr passes through for progress; stdout is the JSON document alone.
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=workdir, text=True)
    try:
        stdout, _ = child.communicate()
    except BaseException:
        # SIGTERM (not SIGKILL) lets the child stop the mlflow server it started.
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
        raise
    if child.returncode != 0:
        raise RuntimeError(f"mlflow_workloads.py exited with {child.returncode}")
    document: dict[str, Any] = json.loads(stdout)
    return document


# --- machine ----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_probe_ms_at_start": cpu_probe_ms(),
    }


def cpu_probe_ms() -> float:
    """How long this machine takes now for a fixed piece of pure Python (the best of five
    runs of a loop of a million additions): this VM's speed drifts two to three times
    within an hour, so figures from runs at different times compare only beside it."""
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=BENCH_DIR, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        # ":/src" is the repository's src/ (a plain "src" would be bench/src, from cwd).
        dirty = bool(git("status", "--porcelain", "--", ":/src"))
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}{'+dirty' if dirty else ''}"


def _working_tree_diff_bytes() -> int | None:
    """Size of ``git diff HEAD``: Cairn's default capture stores it with every run."""
    try:
        done = subprocess.run(
            ["git", "diff", "HEAD"], cwd=BENCH_DIR.parent, capture_output=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return len(done.stdout)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- entry point ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down smoke test")
    parser.add_argument(
        "--only", action="append", help="workload name(s), comma-separated; repeatable"
    )
    parser.add_argument("--skip-mlflow", action="store_true", help="run the Cairn side only")
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="where stores are made"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="results file (default bench/results.json; bench/results-quick.json with --quick; "
        "bench/results-partial.json with --only or --skip-mlflow)",
    )
    parser.add_argument(
        "--mlflow-venv", type=Path, default=MLFLOW_VENV, help="MLflow virtualenv (made if absent)"
    )
    parser.add_argument(
        "--mlflow-server-workers", type=int, help="mlflow server --workers (MLflow default: 4)"
    )
    args = parser.parse_args(argv)
    args.only = [n for item in args.only or [] for n in item.split(",") if n] or None
    unknown = sorted(set(args.only or []) - set(WORKLOAD_NAMES))
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {WORKLOAD_NAMES}")
    args.workdir = args.workdir.resolve()
    return args


def default_output(args: argparse.Namespace) -> str:
    """``results.json`` holds complete runs only: a smoke test or a partial run (``--only``,
    ``--skip-mlflow``) never overwrites the figures RESULTS.md quotes."""
    if args.quick:
        return "results-quick.json"
    if args.only or args.skip_mlflow:
        return "results-partial.json"
    return "results.json"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()  # so the servers started below are stopped by their ``finally``
    started = dt.datetime.now(dt.UTC)
    machine = machine_info()
    # Read before Cairn is imported: the commit whose code the Cairn side runs.
    commit_at_start = _git_commit()
    diff_bytes = _working_tree_diff_bytes()
    t0 = time.perf_counter()

    cairn_results, cairn_version = run_cairn(args.quick, args.workdir, args.only)

    mlflow_doc: dict[str, Any] = {}
    mlflow_error: str | None = None
    if not args.skip_mlflow:
        try:
            python = ensure_mlflow_python(args.mlflow_venv.resolve())
            mlflow_doc = run_mlflow(
                python, args.quick, args.workdir, args.only, args.mlflow_server_workers
            )
        except Exception as exc:
            mlflow_error = f"{type(exc).__name__}: {exc}"
            log("mlflow", mlflow_error)
    mlflow_results: dict[str, Any] = mlflow_doc.get("workloads", {})

    workloads: dict[str, Any] = {}
    for name in WORKLOAD_NAMES:
        if args.only and name not in args.only:
            continue
        theirs: dict[str, Any] | None = mlflow_results.get(name)
        if mlflow_error and not args.skip_mlflow:
            theirs = {"error": mlflow_error}
        if theirs is not None and "skipped" in theirs:
            theirs = None  # MLflow has no counterpart (search_100k)
        workloads[name] = compare(name, cairn_results[name], theirs)

    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    machine["cpu_probe_ms_at_end"] = cpu_probe_ms()
    commit_at_end = _git_commit()
    if commit_at_end != commit_at_start:
        log("bench", f"the checkout moved during the run: {commit_at_start} -> {commit_at_end}")
    document = {
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - t0, 1),
        "quick": args.quick,
        "ratio_meaning": "times better than MLflow on the same workload; > 1 means Cairn is faster",
        "command": " ".join(["python", "bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine,
        "versions": {
            "cairn": cairn_version,
            "cairn_commit": commit_at_start,
            "cairn_commit_at_end": commit_at_end,
            "working_tree_diff_bytes": diff_bytes,
            "mlflow": mlflow_doc.get("mlflow_version"),
            "sqlalchemy": _version("sqlalchemy"),
            "sqlalchemy_in_mlflow_venv": mlflow_doc.get("sqlalchemy_version"),
            "python_in_mlflow_venv": mlflow_doc.get("python"),
        },
        "sizes": sizes_for(args.quick).as_dict(),
        "workloads": workloads,
    }
    text = dump(document)
    print(text)
    output = args.output or BENCH_DIR / default_output(args)
    output.write_text(text + "\n")
    log("bench", f"wrote {output}")

    broken = [
        f"{name} ({side})"
        for name, entry in workloads.items()
        for side in ("cairn", "mlflow")
        if failed(entry[side])
    ]
    if broken:
        log("bench", f"failed: {', '.join(broken)}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
