"""Served predictions on their way to Cairn: a bounded queue and one sender thread.

    log = PredictionLog(backend.log_predictions, metrics)
    log.start()
    log.put("default", "default/iris:3", None, [NewPrediction(...), ...])   # never waits
    log.close(timeout=5)

The request path only appends to a deque. The sender wakes every ``interval_s`` (or as
soon as ``batch_size`` records wait), sends one call per (project, model version,
endpoint), and on a transient failure (Cairn unreachable, a 5xx) puts the records back
and retries with backoff. The queue holds at most ``capacity`` records: when Cairn stays
away that long, the oldest are dropped and counted, never an unbounded heap. A resend
is harmless: the store keeps one row per (request id, variant).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from cairn.domain.errors import RESENDABLE, CairnError
from cairn.domain.production import NewPrediction
from cairn.serving.metrics import ServingMetrics

log = logging.getLogger("cairn.serve")

# (project, model version ref, endpoint, records) -> how many were new
Send = Callable[[str, str, str | None, list[NewPrediction]], int]


class _Key(NamedTuple):
    project: str
    model_ref: str
    endpoint: str | None


class PredictionLog:
    def __init__(
        self,
        send: Send,
        metrics: ServingMetrics,
        *,
        interval_s: float = 0.5,
        batch_size: int = 500,
        capacity: int = 100_000,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._send = send
        self._metrics = metrics
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.capacity = capacity
        self.max_backoff_s = max_backoff_s
        self._queue: deque[tuple[_Key, NewPrediction]] = deque()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._failures = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cairn-prediction-log", daemon=True)
        metrics.queue_size = self.__len__

    def __len__(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._thread.start()

    def put(
        self, project: str, model_ref: str, endpoint: str | None, records: list[NewPrediction]
    ) -> None:
        """Queue records of one model version; drops the oldest when the queue is full."""
        key = _Key(project, model_ref, endpoint)
        with self._cond:
            self._queue.extend((key, r) for r in records)
            self._trim()
            if len(self._queue) >= self.batch_size:
                self._cond.notify()

    def _trim(self) -> None:
        over = len(self._queue) - self.capacity
        if over > 0:
            for _ in range(over):
                self._queue.popleft()
            self._metrics.log_dropped.inc("queue_full", amount=over)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far was sent (or dropped); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
            while self._queue or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.05 if left is None else min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (for at most ``timeout`` seconds), then stop."""
        if self._thread.is_alive():
            self.flush(timeout)
        self._stopping.set()
        with self._cond:
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=max(1.0, timeout))
        if self._queue:
            log.warning("cairn serve: %d predictions were not sent to Cairn", len(self._queue))

    # -- the sender thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                if len(self._queue) < self.batch_size:
                    self._cond.wait(self.interval_s)
                count = min(self.batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                self._in_flight = count
            if not batch:
                continue
            retry = self._send_batch(batch)
            with self._cond:
                if retry:
                    self._queue.extendleft(reversed(retry))
                    self._trim()
                self._in_flight = 0
                self._cond.notify_all()
            if retry:
                self._failures += 1
                delay = self.interval_s * 2 ** min(self._failures, 16)
                self._stopping.wait(min(self.max_backoff_s, delay))
            else:
                self._failures = 0

    def _send_batch(
        self, batch: list[tuple[_Key, NewPrediction]]
    ) -> list[tuple[_Key, NewPrediction]]:
        """Send grouped by key; returns what must be retried, in order. Never raises."""
        groups: dict[_Key, list[NewPrediction]] = {}
        for key, record in batch:
            groups.setdefault(key, []).append(record)
        return [(key, r) for key, records in groups.items() for r in self._send_group(key, records)]

    def _send_group(self, key: _Key, records: list[NewPrediction]) -> list[NewPrediction]:
        try:
            self._send(key.project, key.model_ref, key.endpoint, records)
        except Exception as exc:
            if _transient(exc):
                self._metrics.log_failures.inc()
                log.warning("cairn serve: cannot log predictions yet (%s); will retry", exc)
                return records
            if len(records) > 1:  # one bad record must not sink its neighbours
                return [r for r in records for _ in self._send_group(key, [r])]
            self._metrics.log_dropped.inc("refused")
            log.warning("cairn serve: Cairn refused a prediction of %s: %s", key.model_ref, exc)
            return []
        self._metrics.log_sent.inc(amount=len(records))
        return []


def _transient(exc: Exception) -> bool:
    """Unreachable, a 5xx, a busy database, a token refused (fixed by an operator, and the
    same for every record, so never worth splitting the batch over): worth retrying. A
    refusal of the records themselves (bad input, an endpoint that is gone) is not."""
    return isinstance(exc, RESENDABLE) or not isinstance(exc, CairnError)
