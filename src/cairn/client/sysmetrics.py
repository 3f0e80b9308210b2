"""An optional sampler of system metrics, logged beside a run's own metrics.

Every ``interval_s`` a daemon thread measures this process and the machine and hands a
dict to a callback (the run's metric logger)::

    system/cpu_percent       CPU time of this process over wall time; 200 = two cores busy
    system/rss_mb            resident memory of this process, MiB
    system/memory_percent    memory in use on the whole machine
    system/gpu{i}_utilization, system/gpu{i}_memory_mb   per GPU, when nvidia-smi exists

psutil is used when it is installed; without it the same numbers come from ``os.times``
and ``/proc`` (Linux), and a number that cannot be read is left out rather than guessed.
A failing probe or callback is logged and sampling goes on: metrics about the machine must
never be the thing that kills a training job.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from cairn.domain.errors import Invalid

logger = logging.getLogger(__name__)

_MIB = 1024 * 1024
_JOIN_TIMEOUT_S = 5.0


class SystemMetricsSampler:
    """Call ``callback`` with system metrics every ``interval_s`` seconds, until stopped.

    >>> samples: list[dict[str, float]] = []
    >>> sampler = SystemMetricsSampler(samples.append, interval_s=0.05)
    >>> sampler.start()
    >>> sampler.stop()
    """

    def __init__(
        self, callback: Callable[[dict[str, float]], None], interval_s: float = 10.0
    ) -> None:
        if not interval_s > 0:
            raise Invalid("interval_s must be a positive number of seconds", field="interval_s")
        self._callback = callback
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin sampling in a daemon thread; calling it while running does nothing."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()  # a fresh one, so a sampler can start again
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name="cairn-sysmetrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait (briefly) for the thread; safe to call twice, or unstarted."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)  # bounded: a callback stuck on I/O must not hang us

    def _run(self, stop: threading.Event) -> None:
        probe = _make_probe()  # in the thread: importing psutil and priming cost time
        failures = 0
        while not stop.wait(self._interval_s):
            try:
                self._callback(probe.sample())
            except Exception:
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                logger.log(level, "system metrics sample failed", exc_info=True)


class _Probe:
    """Reads the numbers; process CPU is a delta, so each probe remembers its last reading."""

    def __init__(self) -> None:
        self._nvidia_smi = shutil.which("nvidia-smi")

    def sample(self) -> dict[str, float]:
        values = self._host()
        if self._nvidia_smi is not None:
            values.update(_gpu_sample(self._nvidia_smi))
        return values

    def _host(self) -> dict[str, float]:
        raise NotImplementedError


class _PsutilProbe(_Probe):
    def __init__(self, psutil: Any) -> None:
        super().__init__()
        self._psutil = psutil
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only sets the baseline

    def _host(self) -> dict[str, float]:
        return {
            "system/cpu_percent": float(self._process.cpu_percent(None)),
            "system/rss_mb": float(self._process.memory_info().rss) / _MIB,
            "system/memory_percent": float(self._psutil.virtual_memory().percent),
        }


class _ProcProbe(_Probe):
    def __init__(self) -> None:
        super().__init__()
        self._last = _cpu_and_wall()

    def _host(self) -> dict[str, float]:
        values: dict[str, float] = {}
        now = _cpu_and_wall()
        cpu, wall = now[0] - self._last[0], now[1] - self._last[1]
        self._last = now
        if wall > 0:
            values["system/cpu_percent"] = 100.0 * cpu / wall
        rss_kb = _proc_field("/proc/self/status", "VmRSS:")
        if rss_kb is not None:
            values["system/rss_mb"] = rss_kb / 1024
        total = _proc_field("/proc/meminfo", "MemTotal:")
        available = _proc_field("/proc/meminfo", "MemAvailable:")
        if total and available is not None:
            values["system/memory_percent"] = 100.0 * (total - available) / total
        return values


def _make_probe() -> _Probe:
    try:
        import psutil

        return _PsutilProbe(psutil)
    except Exception:  # not installed, or it cannot read this platform: /proc will do
        return _ProcProbe()


def _cpu_and_wall() -> tuple[float, float]:
    times = os.times()  # user and system time of every thread of this process
    return times.user + times.system, time.monotonic()


def _proc_field(path: str, key: str) -> float | None:
    """The number after ``key`` in a ``/proc`` file (kB for memory), or None."""
    try:
        with open(path, encoding="ascii") as lines:
            for line in lines:
                if line.startswith(key):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _gpu_sample(nvidia_smi: str) -> dict[str, float]:
    query = [
        nvidia_smi,
        "--query-gpu=index,utilization.gpu,memory.used",
        "--format=csv,noheader,nounits",
    ]
    try:
        done = subprocess.run(
            query,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=5.0,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    values: dict[str, float] = {}
    if done.returncode != 0:
        return values
    for line in done.stdout.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 3:
            continue
        index, utilization, memory = fields
        for name, text in (("utilization", utilization), ("memory_mb", memory)):
            try:
                values[f"system/gpu{index}_{name}"] = float(text)
            except ValueError:  # "[N/A]" on boards that do not report it
                continue
    return values
