"""Workload definitions shared by both sides of the benchmark: sizes, data, timing helpers.

Standard library only, because it is imported by ``cairn_workloads.py`` (project venv) and by
``mlflow_workloads.py`` (the separate MLflow venv). Both sides draw their data from the same
seeded generators here, so they log, create and search exactly the same values.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SEED = 20240607
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORKDIR = BENCH_DIR / ".work"

# The filtered search of workloads 5 and 7, in the grammar both tools accept.
SEARCH_FILTER = "metrics.m0 > 0.5 and params.p1 = 'v3'"
SEARCH_ORDER_BY_CAIRN = ["metrics.m1 desc"]
SEARCH_ORDER_BY_MLFLOW = ["metrics.m1 DESC"]

WORKLOAD_NAMES = [
    "log_embedded",
    "log_http",
    "log_call_latency",
    "create_runs",
    "search",
    "paginate",
    "search_100k",
    "history",
    "server_latency",
    "artifact_1gb",
    "artifact_1gb_again",
    "artifact_download",
    "artifact_100mb_twice",
    "dataset_10k_files",
    "register_and_load",
    "serving_overhead",
    "prediction_ingest",
    "prediction_ingest_pg",
    "monitoring_report_1m",
]

# ``server_latency`` starts each side's server with these worker counts, in this order.
SERVER_LATENCY_WORKERS = (4, 1)


@dataclass(frozen=True)
class Sizes:
    """How big each workload is; ``quick`` scales everything down for a CI smoke test."""

    quick: bool
    log_steps: int  # steps of LOG_KEYS metrics: points = log_steps * log_keys
    log_keys: int
    batch_size: int  # MLflow log_batch size (its limit is 1000 metrics per call)
    mlflow_log_metric_points: int  # synchronous mlflow.log_metric, extrapolated
    latency_calls: int
    mlflow_latency_calls: int
    runs: int  # runs created by create_runs and searched by search/paginate
    mlflow_create_runs: int  # MLflow's timed create_runs is scaled down
    search_limit: int
    search_all_limit: int
    search_repeats: int
    page_size: int
    paginate_repeats: int
    mlflow_paginate_repeats: int
    runs_100k: int  # 0 = skip search_100k
    history_points: int
    history_big_points: int
    history_max_points: int
    history_repeats: int
    mlflow_history_repeats: int
    server_latency_calls: int  # timed small synchronous requests per server
    server_latency_warmup: int  # untimed requests first, on the same connection
    artifact_mib: int  # the big random file of the artifact_1gb* workloads, and the dd write
    artifact_twice_mib: int  # the file artifact_100mb_twice logs in two runs
    dataset_files: int  # small files (1-8 KiB) in the folder dataset_10k_files logs
    registry_repeats: int  # register_and_load: repetitions, each on a fresh store

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Sizes(
    quick=False,
    log_steps=20_000,
    log_keys=10,
    batch_size=1000,
    mlflow_log_metric_points=2_000,
    latency_calls=20_000,
    mlflow_latency_calls=300,
    runs=5_000,
    mlflow_create_runs=300,
    search_limit=100,
    search_all_limit=1000,
    search_repeats=20,
    page_size=1000,
    paginate_repeats=5,
    mlflow_paginate_repeats=3,
    runs_100k=100_000,
    history_points=100_000,
    history_big_points=1_000_000,
    history_max_points=1000,
    history_repeats=5,
    mlflow_history_repeats=3,
    server_latency_calls=300,
    server_latency_warmup=20,
    artifact_mib=1024,
    artifact_twice_mib=100,
    dataset_files=10_000,
    registry_repeats=5,
)

QUICK = Sizes(
    quick=True,
    log_steps=2_000,
    log_keys=10,
    batch_size=1000,
    mlflow_log_metric_points=200,
    latency_calls=2_000,
    mlflow_latency_calls=30,
    runs=500,
    mlflow_create_runs=30,
    search_limit=100,
    search_all_limit=1000,
    search_repeats=5,
    page_size=100,
    paginate_repeats=2,
    mlflow_paginate_repeats=1,
    runs_100k=0,
    history_points=10_000,
    history_big_points=100_000,
    history_max_points=1000,
    history_repeats=3,
    mlflow_history_repeats=1,
    server_latency_calls=50,
    server_latency_warmup=10,
    artifact_mib=64,
    artifact_twice_mib=16,
    dataset_files=1_000,
    registry_repeats=2,
)


def sizes_for(quick: bool) -> Sizes:
    return QUICK if quick else FULL


# --- data -------------------------------------------------------------------------------------


def metric_steps(steps: int, keys: int, seed: int = SEED) -> list[dict[str, float]]:
    """One dict per training step: ``{"k0": value, ..., "k9": value}``, values uniform in [0, 1)."""
    rng = random.Random(seed)
    names = [f"k{j}" for j in range(keys)]
    return [{name: rng.random() for name in names} for _ in range(steps)]


@dataclass(frozen=True)
class RunSpec:
    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def run_specs(n: int, seed: int = SEED) -> Iterator[RunSpec]:
    """Runs with 10 params ``p_j = v0..v9``, 10 uniform metrics ``m0..m9`` and 3 tags."""
    rng = random.Random(seed)
    for i in range(n):
        params = {f"p{j}": f"v{rng.randrange(10)}" for j in range(10)}
        metrics = {f"m{j}": rng.random() for j in range(10)}
        tags = {f"t{j}": f"x{rng.randrange(3)}" for j in range(3)}
        yield RunSpec(name=f"run-{i:06d}", params=params, metrics=metrics, tags=tags)


def expected_search(n: int, seed: int = SEED) -> dict[str, Any]:
    """What the filtered search must find among ``run_specs(n)``: match count and best m1."""
    matches = [
        spec.metrics["m1"]
        for spec in run_specs(n, seed)
        if spec.metrics["m0"] > 0.5 and spec.params["p1"] == "v3"
    ]
    return {"matches": len(matches), "top_m1": max(matches) if matches else None}


def series(points: int, seed: int = SEED) -> list[float]:
    rng = random.Random(seed + points)
    return [rng.random() for _ in range(points)]


# --- the model of register_and_load ------------------------------------------------------------

REGISTRY_MODEL = "bench-model"
REGISTRY_ALIAS = "production"
REGISTRY_ESTIMATOR = "RandomForestClassifier(n_estimators=100, random_state=0) on load_wine"


def registry_model() -> tuple[Any, Any]:
    """The fitted model both sides register, and the features it predicts on.

    scikit-learn is imported here, not at the top, so this module stays importable with the
    standard library alone; both virtualenvs have it (run.py installs it into MLflow's).
    """
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_wine(return_X_y=True)
    return RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y), x


def registry_figures(repetitions: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repetitions of register, alias, load (+ predict) and their total."""
    for rep in repetitions:
        rep["total_s"] = rep["register_s"] + rep["alias_s"] + rep["load_s"]
    keys = ("register_s", "alias_s", "load_s", "predict_s", "total_s")
    figures: dict[str, Any] = {
        key: round(statistics.median(r[key] for r in repetitions), 4) for key in keys
    }
    totals = sorted(r["total_s"] for r in repetitions)
    figures["total_min_s"], figures["total_max_s"] = round(totals[0], 4), round(totals[-1], 4)
    figures["repeats"] = len(repetitions)
    figures["per_repetition"] = [
        {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in repetitions
    ]
    figures["correct"] = all(r["correct"] for r in repetitions)
    return figures


# --- files for the artifact and dataset workloads ----------------------------------------------

MIB = 1024 * 1024
MB = 1_000_000  # throughputs and memory are reported in MB (10**6 bytes), as dd prints them


def write_random_file(path: Path, mib: int, seed: int = SEED) -> str:
    """``mib`` MiB of seeded random bytes, fsynced; returns their sha256.

    Fsynced so that no write-back of the source overlaps the timed writes that follow.
    """
    rng = random.Random(seed + mib)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(mib):
            chunk = rng.randbytes(MIB)
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def write_small_files(folder: Path, count: int, seed: int = SEED) -> int:
    """``count`` files of 1-8 KiB of random bytes under 100 nested folders; total bytes.

    Paths look like ``d3/e7/f00073.bin``. Ends with ``os.sync()``, for the reason
    ``write_random_file`` fsyncs.
    """
    rng = random.Random(seed + count)
    total = 0
    for i in range(count):
        path = folder / f"d{i % 10}" / f"e{i // 10 % 10}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randint(1024, 8192))
        path.write_bytes(data)
        total += len(data)
    os.sync()
    return total


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def folder_bytes(folder: Path) -> int:
    """Total size of the files under ``folder`` (0 when it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def folder_files(folder: Path) -> int:
    return sum(len(files) for _root, _dirs, files in os.walk(folder))


def dd_write(folder: Path, mib: int) -> dict[str, Any]:
    """Time ``dd if=/dev/zero bs=1M conv=fdatasync`` of ``mib`` MiB into ``folder``: the
    disk's durable sequential write speed, the yardstick of ``artifact_1gb``."""
    target = folder / "dd.bin"
    argv = ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fdatasync"]
    try:
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        elapsed = time.perf_counter() - t0
    finally:
        with suppress(FileNotFoundError):
            target.unlink()
    return {
        "command": " ".join(argv).replace(str(target), "F"),
        "bytes": mib * MIB,
        "seconds": round(elapsed, 3),
        "mb_per_s": round(mib * MIB / MB / elapsed, 1),
        "dd_says": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "",
    }


# --- timing -----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def serving_figures(
    predict: Callable[[], Any], request: Callable[[], Any], warmup: int, calls: int
) -> tuple[dict[str, Any], Any]:
    """Overhead of serving over a bare predict, paired: each call times ``predict`` then
    ``request`` back to back, so both meet the same moment of a noisy machine (a bare
    predict of the wine forest drifts between 4 and 11 ms here within minutes). The
    overhead is the median of the per-call differences. Also the last answer."""
    bare: list[int] = []
    served: list[int] = []
    answer = None
    for i in range(warmup + calls):
        bare_ns, served_ns, answer = paired_call(predict, request)
        if i >= warmup:
            bare.append(bare_ns)
            served.append(served_ns)
    diffs = sorted((s - b) / 1e6 for s, b in zip(served, bare, strict=True))
    http_ms, bare_ms = summary_ms(served), summary_ms(bare)
    figures = {
        "calls": calls,
        "http": http_ms,
        "bare_predict": bare_ms,
        "overhead_p50_ms": round(percentile(diffs, 50), 4),
        "overhead_p95_ms": round(percentile(diffs, 95), 4),
        "overhead_unpaired_p50_ms": round(http_ms["p50_ms"] - bare_ms["p50_ms"], 4),
    }
    return figures, answer


def paired_call(predict: Callable[[], Any], request: Callable[[], Any]) -> tuple[int, int, Any]:
    """A bare predict, then the request, back to back: their nanoseconds and the answer."""
    t0 = time.perf_counter_ns()
    predict()
    t1 = time.perf_counter_ns()
    answer = request()
    return t1 - t0, time.perf_counter_ns() - t1, answer


def summary_ms(durations_ns: list[int]) -> dict[str, float]:
    """p50, p95 and p99 in milliseconds of durations in nanoseconds."""
    ordered = sorted(d / 1e6 for d in durations_ns)
    return {
        "p50_ms": round(percentile(ordered, 50), 4),
        "p95_ms": round(percentile(ordered, 95), 4),
        "p99_ms": round(percentile(ordered, 99), 4),
    }


def latency_summary_us(durations_ns: list[int]) -> dict[str, float]:
    values = sorted(d / 1000 for d in durations_ns)
    return {
        "calls": len(values),
        "median_us": round(statistics.median(values), 3),
        "p99_us": round(percentile(values, 99), 3),
        "p999_us": round(percentile(values, 99.9), 3),
        "max_us": round(values[-1], 3),
        "mean_us": round(statistics.fmean(values), 3),
    }


def latency_summary_ms(durations_ns: list[int]) -> dict[str, float]:
    values = sorted(d / 1e6 for d in durations_ns)
    return {
        "calls": len(values),
        "median_ms": round(statistics.median(values), 3),
        "p90_ms": round(percentile(values, 90), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "min_ms": round(values[0], 3),
        "max_ms": round(values[-1], 3),
        "mean_ms": round(statistics.fmean(values), 3),
    }


def repeat_ms(fn: Callable[[], Any], repeats: int) -> tuple[dict[str, float], Any]:
    """Call ``fn`` once untimed-for-the-median (cold), then ``repeats`` times; times in ms."""
    t0 = time.perf_counter()
    result = fn()
    cold = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    summary = {
        "median_ms": round(statistics.median(times), 3),
        "min_ms": round(times[0], 3),
        "max_ms": round(times[-1], 3),
        "cold_ms": round(cold, 3),
        "repeats": repeats,
    }
    return summary, result


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else math.inf


# --- processes and folders --------------------------------------------------------------------


def log(side: str, message: str) -> None:
    print(f"[{side}] {message}", file=sys.stderr, flush=True)


@contextmanager
def fresh_dir(root: Path, name: str, keep: bool = False) -> Iterator[Path]:
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def client_ports_to(port: int) -> set[int] | None:
    """Local ports of this process's established TCP connections to 127.0.0.1:``port``.

    Read from ``/proc`` (Linux): a keep-alive loop that keeps one connection shows one
    port throughout. ``None`` where ``/proc`` cannot be read.
    """
    try:
        inodes = set()
        for fd in os.listdir("/proc/self/fd"):
            with suppress(OSError):
                link = os.readlink(f"/proc/self/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        ports = set()
        for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
            with suppress(FileNotFoundError), open(table) as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                    remote_port = int(remote.rsplit(":", 1)[1], 16)
                    if state == "01" and inode in inodes and remote_port == port:
                        ports.add(int(local.rsplit(":", 1)[1], 16))
        return ports
    except OSError:
        return None


def timed_requests(
    call: Callable[[int], Any], port: int, warmup: int, calls: int, others: set[int] | None = None
) -> dict[str, Any]:
    """``warmup`` untimed then ``calls`` timed calls of ``call(i)``; latency in ms.

    Every 25th call (outside the clock) notes which client ports are connected to the
    server, so the result shows whether one keep-alive connection carried the loop;
    ``others`` are ports of other connections this process holds open to the same server.
    """
    clock = time.perf_counter_ns
    seen: set[int] = set()
    readable = True
    durations: list[int] = []
    for i in range(warmup + calls):
        t0 = clock()
        call(i)
        elapsed = clock() - t0
        if i >= warmup:
            durations.append(elapsed)
        if i == warmup - 1 or (i >= warmup and (i - warmup) % 25 == 24) or i == warmup + calls - 1:
            ports = client_ports_to(port)
            if ports is None:
                readable = False
            else:
                seen |= ports - (others or set())
    summary: dict[str, Any] = latency_summary_ms(durations)
    summary["warmup_calls"] = warmup
    summary["client_ports_seen"] = sorted(seen) if readable else "unknown (/proc unreadable)"
    summary["one_connection"] = (len(seen) == 1) if readable else None
    return summary


def health_probe_calls(sizes: Sizes) -> int:
    """How many GETs of the health endpoint ``server_latency`` times as a transport probe."""
    return max(20, sizes.server_latency_calls // 3)


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Poll ``url`` until it answers 200; returns seconds waited. Fails if ``proc`` exits."""
    start = time.perf_counter()
    deadline = start + timeout_s
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before {url} was up")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f} s")


@contextmanager
def server_process(
    argv: list[str], health_url: str, log_path: Path, timeout_s: float, env: dict[str, str]
) -> Iterator[float]:
    """Start a server in its own process group, wait for health, yield startup seconds, stop."""
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            argv, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            try:
                startup = wait_http_ok(health_url, proc, timeout_s)
            except Exception as exc:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{exc}; server log tail:\n{tail}") from exc
            yield startup
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    # The group is the one this process created with start_new_session, so only the server
    # and the workers it forked are signalled.
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    else:
        # The leader is gone; make sure forked workers in its group are too.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` so ``finally`` blocks stop the servers we started."""

    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def error_entry(exc: BaseException) -> dict[str, str]:
    return {"error": f"{type(exc).__name__}: {exc}"}


def run_workloads(
    side: str,
    workloads: dict[str, Callable[[Sizes, Path], dict[str, Any]]],
    sizes: Sizes,
    workdir: Path,
    only: list[str] | None,
) -> dict[str, Any]:
    """Run the selected workloads in a fixed order, recording an error instead of stopping."""
    results: dict[str, Any] = {}
    for name in WORKLOAD_NAMES:
        if only and name not in only:
            continue
        fn = workloads.get(name)
        if fn is None:
            results[name] = {"skipped": f"no {side} implementation of this workload"}
            continue
        log(side, f"{name} ...")
        t0 = time.perf_counter()
        try:
            results[name] = fn(sizes, workdir)
        except Exception as exc:  # one broken workload must not hide the others' figures
            results[name] = error_entry(exc)
            log(side, f"{name} failed: {results[name]['error']}")
        log(side, f"{name} done in {time.perf_counter() - t0:.1f} s")
    return results


# --- measurements in a fresh process ---------------------------------------------------------
#
# A workload that reports peak memory runs each measurement as a child process
# (``<side>_workloads.py --child STEP --params JSON``, printing one JSON object), so no other
# workload's allocations count towards it. The parent reads the child's own peak RSS from
# ``os.wait4``, which reports that one child, unlike ``RUSAGE_CHILDREN``, a maximum over all.


def _rss_mb(maxrss: int) -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    return round(maxrss * (1 if sys.platform == "darwin" else 1024) / MB, 1)


def peak_rss_mb_so_far() -> float:
    """This process's peak RSS until now, in MB."""
    return _rss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run_step(script: Path, step: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run ``script --child step`` under this interpreter; its JSON plus ``peak_rss_mb``."""
    argv = [sys.executable, str(script), "--child", step, "--params", json.dumps(params)]
    # stderr passes through for progress; stdout is the step's JSON alone.
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        stdout = child.stdout.read()
        _pid, status, usage = os.wait4(child.pid, 0)
    except BaseException:
        child.kill()
        child.wait()
        raise
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stdout.close()
    if child.returncode != 0:
        raise RuntimeError(f"step {step!r} exited with {child.returncode}")
    result: dict[str, Any] = json.loads(stdout)
    result["peak_rss_mb"] = _rss_mb(usage.ru_maxrss)
    return result


def dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, default=str)
