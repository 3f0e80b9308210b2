"""A strict reader of the Prometheus text exposition format (0.0.4), for the tests.

Every line must be a ``# HELP``, a ``# TYPE`` or a sample of the family its ``# TYPE``
announced; label values are unescaped; a histogram's buckets must be cumulative and
end in ``+Inf`` equal to ``_count``.
"""

from __future__ import annotations

import math
import re

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^(?P<name>{_NAME})(?:\{{(?P<labels>.*)\}})? (?P<value>\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

Key = tuple[str, frozenset[tuple[str, str]]]


def _value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}[text]
    return float(text)


def _labels(text: str | None) -> frozenset[tuple[str, str]]:
    if not text:
        return frozenset()
    out = []
    pos = 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        assert match, f"bad labels: {text!r} at {pos}"
        raw = match.group(2)
        value = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), raw)
        out.append((match.group(1), value))
        pos = match.end()
    return frozenset(out)


def parse(text: str) -> tuple[dict[str, str], dict[Key, float]]:
    """(family → type, (sample name, labels) → value)."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    types: dict[str, str] = {}
    samples: dict[Key, float] = {}
    family = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in _TYPES and name not in types, line
            types[name] = kind
            family = name
            continue
        assert not line.startswith("#"), line
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name = match.group("name")
        assert family is not None and name.startswith(family), (line, family)
        key = (name, _labels(match.group("labels")))
        assert key not in samples, f"sample given twice: {line}"
        samples[key] = _value(match.group("value"))
    for name, kind in types.items():
        if kind == "histogram":
            _check_histogram(name, samples)
    return types, samples


def _check_histogram(name: str, samples: dict[Key, float]) -> None:
    series: dict[frozenset[tuple[str, str]], list[tuple[float, float]]] = {}
    for (sample, labels), value in samples.items():
        if sample == f"{name}_bucket":
            le = dict(labels)["le"]
            rest = frozenset((k, v) for k, v in labels if k != "le")
            series.setdefault(rest, []).append((_value(le), value))
    for labels, buckets in series.items():
        buckets.sort()
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), f"{name} buckets are not cumulative: {buckets}"
        assert buckets[-1][0] == math.inf
        assert samples[(f"{name}_count", labels)] == counts[-1]
        assert (f"{name}_sum", labels) in samples


def value(samples: dict[Key, float], name: str, **labels: str) -> float:
    """The sample's value, 0 when absent (a counter not yet incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict[Key, float], name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))
