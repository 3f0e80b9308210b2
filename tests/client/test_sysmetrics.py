"""The system metrics sampler, run for real on short intervals."""

from __future__ import annotations

import os
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from cairn.client.sysmetrics import SystemMetricsSampler
from cairn.domain.errors import Invalid

HOST_KEYS = {"system/cpu_percent", "system/rss_mb", "system/memory_percent"}
ON_LINUX = Path("/proc/self/status").exists()


class Collector:
    """A callback that records samples and lets a test wait for the n-th one."""

    def __init__(self) -> None:
        self.samples: list[dict[str, float]] = []
        self._changed = threading.Condition()

    def __call__(self, sample: dict[str, float]) -> None:
        with self._changed:
            self.samples.append(sample)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout_s: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.samples) >= count, timeout_s)


def run_until(sampler: SystemMetricsSampler, collector: Collector, count: int) -> float:
    """Start, wait for ``count`` samples, stop; returns how long stop() took."""
    sampler.start()
    try:
        assert collector.wait_for(count), f"got {len(collector.samples)} samples"
    finally:
        began = time.monotonic()
        sampler.stop()
    return time.monotonic() - began


def test_samples_every_interval_and_stops_promptly() -> None:
    collector = Collector()
    sampler = SystemMetricsSampler(collector, interval_s=0.05)

    stop_took = run_until(sampler, collector, 2)

    assert stop_took < 1.0
    assert not any(t.name == "cairn-sysmetrics" for t in threading.enumerate())
    for sample in collector.samples:
        assert sample.keys() >= HOST_KEYS  # psutil is a dev dependency: every key is there
        assert all(isinstance(v, float) and v >= 0 for v in sample.values())
    assert collector.samples[-1]["system/rss_mb"] > 1


@pytest.mark.skipif(not ON_LINUX, reason="the fallback reads /proc")
def test_without_psutil_proc_gives_the_same_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # makes `import psutil` fail
    collector = Collector()

    run_until(SystemMetricsSampler(collector, interval_s=0.05), collector, 2)

    sample = collector.samples[-1]
    assert sample.keys() == HOST_KEYS
    assert sample["system/rss_mb"] > 1
    assert 0 < sample["system/memory_percent"] <= 100


def test_busy_process_shows_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)
    collector = Collector()
    sampler = SystemMetricsSampler(collector, interval_s=0.2)
    sampler.start()
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:  # keep this process busy for two intervals
            pass
        assert collector.wait_for(2)
    finally:
        sampler.stop()

    assert max(s["system/cpu_percent"] for s in collector.samples) > 20


def test_stop_does_not_wait_out_a_long_interval() -> None:
    sampler = SystemMetricsSampler(Collector(), interval_s=60)
    sampler.start()

    began = time.monotonic()
    sampler.stop()

    assert time.monotonic() - began < 1.0


def test_a_failing_callback_does_not_stop_sampling() -> None:
    collector = Collector()
    calls = [0]

    def flaky(sample: dict[str, float]) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("the metric queue is full")
        collector(sample)

    run_until(SystemMetricsSampler(flaky, interval_s=0.05), collector, 2)

    assert calls[0] >= 3


def test_stop_is_safe_unstarted_twice_and_from_the_callback() -> None:
    idle = SystemMetricsSampler(Collector())
    idle.stop()
    idle.stop()

    collector = Collector()

    def record_then_stop(sample: dict[str, float]) -> None:
        collector(sample)
        sampler.stop()

    sampler = SystemMetricsSampler(record_then_stop, interval_s=0.05)
    sampler.start()
    assert collector.wait_for(1)
    time.sleep(0.2)
    assert len(collector.samples) == 1  # stopping from inside the callback ends the loop


def test_can_start_again_after_stop() -> None:
    collector = Collector()
    sampler = SystemMetricsSampler(collector, interval_s=0.05)
    run_until(sampler, collector, 1)

    run_until(sampler, collector, len(collector.samples) + 2)


def test_gpus_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '0, 87, 40960\\n1, [N/A], 512\\n'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    collector = Collector()

    run_until(SystemMetricsSampler(collector, interval_s=0.05), collector, 1)

    sample = collector.samples[0]
    assert sample["system/gpu0_utilization"] == 87.0
    assert sample["system/gpu0_memory_mb"] == 40960.0
    assert "system/gpu1_utilization" not in sample
    assert sample["system/gpu1_memory_mb"] == 512.0


@pytest.mark.parametrize("interval", [0, -1.0, float("nan")])
def test_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(Invalid) as caught:
        SystemMetricsSampler(Collector(), interval_s=interval)
    assert caught.value.field == "interval_s"
