"""The background sender: the training loop enqueues, this thread ships.

``run.log`` appends one tuple to a deque (thread-safe, O(1)) and returns. A daemon thread
drains the deque every ``interval`` seconds (sooner when it fills up), folds the items
into column-wise series per run and key, and sends them as ``Batch``es, one request or
transaction each, every batch with an idempotency key so a resend never duplicates.

Failures never reach the training loop: with a spool (``client/spool.py``) a batch the
server cannot take (unreachable, 5xx) is written to disk and resent in the background
with exponential backoff, in order, keeping its idempotency key; while older batches wait
on disk newer ones join them, so a run's start always lands before its points. Without a
spool an unreachable server is retried in memory. A batch the server refuses (bad input)
is recorded and raised by the next explicit ``flush()``, which also waits for the spool.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.domain.errors import RESENDABLE, CairnError, Forbidden, Unauthenticated, Unavailable
from cairn.domain.ids import new_ulid
from cairn.domain.records import Batch, MetricSeries, RunBatch, RunEnd, RunStart

if TYPE_CHECKING:
    from cairn.client.spool import Spool

log = logging.getLogger("cairn.batcher")

# Item kinds on the queue. Metric items are the hot path: (METRIC, run_id, step, ts, values).
METRIC, START, PARAMS, TAGS, NOTES, END, MARK, HEARTBEAT = range(8)

# Well inside the server's LIMITS, so a batch is never refused for its size.
MAX_BATCH_POINTS = 100_000
MAX_BATCH_RUNS = 2_000
MAX_BATCH_VALUES = 40_000  # params + tags
RESEND_FIRST_S = 0.5  # spooled batches: first resend after this, doubling up to the cap
RESEND_MAX_S = 60.0


@dataclass
class _Mark:
    """A flush marker: set once everything queued before it has been handled."""

    done: threading.Event = field(default_factory=threading.Event)
    errors: list[CairnError] = field(default_factory=list)
    takes_errors: bool = True  # False for the flush before a read: errors wait for flush()


class Batcher:
    def __init__(
        self,
        send: Callable[[Batch], Any],
        *,
        interval: float = 0.2,
        retry_max_s: float = 30.0,
        high_water: int = 20_000,
        spool: Spool | None = None,
    ) -> None:
        self._send = send
        self._spool = spool
        self._spooled: deque[Batch] = deque()  # on disk, not yet acknowledged; in order
        self._held: list[_Mark] = []  # flushes waiting for the spool to empty
        self._resend_delay = RESEND_FIRST_S
        self._resend_at = 0.0
        self.queue: deque[tuple[Any, ...]] = deque()
        self.interval = interval
        self.retry_max_s = retry_max_s
        self.high_water = high_water
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._errors: list[CairnError] = []
        self._heartbeat: tuple[float, Callable[[], list[str]]] | None = None
        self._start_thread()
        _BATCHERS.add(self)

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cairn-batcher", daemon=True)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        """A forked child inherits the queue but not the thread: the parent sends what was
        queued before the fork, the child starts afresh with its own thread."""
        self.queue.clear()
        self._errors.clear()
        self._spooled.clear()
        self._held.clear()
        if self._spool is not None:  # the parent's file stays the parent's
            from cairn.client.spool import Spool

            self._spool = Spool(self._spool.folder, target=self._spool.target)
        self._wake = threading.Event()
        if not self._stop.is_set():
            self._start_thread()

    # -- producer side (any thread) -------------------------------------------------

    def put(self, item: tuple[Any, ...]) -> None:
        self.queue.append(item)
        if len(self.queue) >= self.high_water:
            self._wake.set()

    def flush(self, timeout: float | None = None, *, raise_refused: bool = True) -> None:
        """Wait until everything queued so far is stored; raise what the server refused.

        With ``raise_refused=False`` (a read that wants to see earlier writes) refused
        batches are left for the next plain ``flush()`` to report.
        """
        if self._stop.is_set():
            raise Unavailable(f"this client is closed; {len(self.queue)} items were not sent")
        mark = _Mark(takes_errors=raise_refused)
        self.queue.append((MARK, mark))
        self._wake.set()
        if not mark.done.wait(timeout):
            raise Unavailable(
                f"flush timed out after {timeout}s with {len(self.queue)} items queued; "
                "they stay queued and are sent when the server answers"
            )
        if mark.errors:
            raise mark.errors[0]

    def close(self, timeout: float = 10.0) -> None:
        try:
            self.flush(timeout)
        except CairnError as exc:
            log.warning("cairn: while closing: %s", exc)
        finally:
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=1.0)
            if self._spool is not None and not self._spooled:
                try:
                    self._spool.discard_if_done()
                except OSError as exc:
                    log.warning("cairn: cannot tidy the spool: %s", exc)

    # -- consumer side (the thread) -------------------------------------------------

    def beat(self, interval: float, open_runs: Callable[[], list[str]]) -> None:
        """Every ``interval`` seconds, tell the server which runs are still alive, so a
        run whose process died is marked ``killed`` instead of ``running`` forever."""
        self._heartbeat = (interval, open_runs)

    def _loop(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                beat = self._heartbeat
                if beat is not None and time.monotonic() - last_beat >= beat[0]:
                    last_beat = time.monotonic()
                    self.queue.extend((HEARTBEAT, run_id) for run_id in beat[1]())
                if self._spooled and time.monotonic() >= self._resend_at:
                    self._resend()
                self._drain()
            except Exception:  # never let the thread die: log and carry on
                log.exception("cairn: unexpected error in the background sender")

    def _drain(self) -> None:
        queue = self.queue
        while queue:
            builder = _BatchBuilder()
            marks: list[_Mark] = []
            while queue and not builder.full:
                item = queue.popleft()
                if item[0] == MARK:
                    marks.append(item[1])
                    break  # send what came before the mark, then release it
                builder.add(item)
            if builder.runs:
                self._deliver(builder.build())
            for mark in marks:
                if self._spooled:  # done once the spool has been sent: try now
                    self._held.append(mark)
                    self._resend_at = 0.0
                    self._wake.set()
                else:
                    self._release(mark)

    def _release(self, mark: _Mark) -> None:
        if mark.takes_errors:
            mark.errors.extend(self._errors)
            self._errors.clear()
        mark.done.set()

    def _deliver(self, batch: Batch) -> None:
        if self._spool is None:
            self._deliver_retrying(batch)
            return
        if self._spooled:  # older batches wait on disk: keep the order
            self._to_spool(batch)
            return
        try:
            self._send(batch)
        except Unavailable as exc:
            log.warning("cairn: server unavailable (%s); batch kept in the local spool", exc)
            self._to_spool(batch)
        except (Unauthenticated, Forbidden) as exc:
            # A token that expired or lost its role mid-run: keep what was logged, so a
            # `cairn sync` with a good CAIRN_TOKEN sends it later.
            log.error(
                "cairn: %s; batch kept in the local spool (fix CAIRN_TOKEN, then `cairn sync`)",
                exc.message,
            )
            self._to_spool(batch)
        except CairnError as exc:
            self._refused(batch, exc)

    def _to_spool(self, batch: Batch) -> None:
        if all(item.is_empty() for item in batch.runs):
            return  # heartbeats only: stale by the time they could be resent
        assert self._spool is not None
        try:
            self._spool.append_batch(batch)
        except OSError as exc:  # a full or read-only disk: fall back to memory
            log.error("cairn: cannot write the spool (%s); retrying in memory", exc)
            self._deliver_retrying(batch)
            return
        if not self._spooled:
            self._resend_delay = RESEND_FIRST_S
            self._resend_at = time.monotonic() + RESEND_FIRST_S
        self._spooled.append(batch)

    def _resend(self) -> None:
        """Send spooled batches in order until one fails; mark each acknowledged."""
        assert self._spool is not None
        while self._spooled:
            batch = self._spooled[0]
            try:
                self._send(batch)
            except RESENDABLE as exc:
                log.warning("cairn: resend failed (%s); next try in %.1fs", exc, self._resend_delay)
                self._resend_at = time.monotonic() + self._resend_delay
                self._resend_delay = min(self._resend_delay * 2, RESEND_MAX_S)
                return
            except CairnError as exc:  # refused for good: do not resend it forever
                log.error("cairn: a spooled batch was refused: %s", exc)
                self._errors.append(exc)
            self._spooled.popleft()
            try:
                self._spool.ack([batch.idempotency_key])
            except OSError as exc:  # a resend of an acknowledged batch is harmless
                log.warning("cairn: cannot mark a spooled batch done: %s", exc)
        self._resend_delay = RESEND_FIRST_S
        held, self._held = self._held, []
        for mark in held:
            self._release(mark)

    def _refused(self, batch: Batch, exc: CairnError) -> None:
        if len(batch.runs) > 1:
            self._deliver_each(batch)
            return
        log.error("cairn: a batch was refused: %s", exc)
        self._errors.append(exc)

    def _deliver_retrying(self, batch: Batch) -> None:
        delay = 0.05
        while True:
            try:
                self._send(batch)
                return
            except Unavailable as exc:
                if self._stop.is_set():
                    self._errors.append(exc)
                    return
                log.warning("cairn: server unavailable (%s); retrying in %.1fs", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max_s)
            except CairnError as exc:
                self._refused(batch, exc)
                return

    def _deliver_each(self, batch: Batch) -> None:
        """A refused batch of several runs: send run by run so one bad run spoils nothing."""
        for item in batch.runs:
            self._deliver(Batch(f"{batch.idempotency_key}.{item.run_id}", [item]))


_BATCHERS: weakref.WeakSet[Batcher] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for batcher in list(_BATCHERS):
        batcher._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_after_fork)


class _BatchBuilder:
    """Folds queued items, in order, into one RunBatch per run."""

    def __init__(self) -> None:
        self.runs: dict[str, RunBatch] = {}
        self.points = 0
        self.values = 0
        self.full = False

    def _run(self, run_id: str) -> RunBatch:
        entry = self.runs.get(run_id)
        if entry is None:
            entry = self.runs[run_id] = RunBatch(run_id)
        return entry

    def add(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == METRIC:
            _, run_id, step, ts, values = item
            series = self._run(run_id).metrics
            for key, value in values.items():
                s = series.get(key)
                if s is None:
                    s = series[key] = MetricSeries()
                s.steps.append(step)
                s.timestamps.append(ts)
                s.values.append(value)
            self.points += len(values)
        elif kind == START:
            start: RunStart = item[1]
            self._run(start.id).start = start
        elif kind == PARAMS:
            self._run(item[1]).params.update(item[2])
            self.values += len(item[2])
        elif kind == TAGS:
            self._run(item[1]).tags.update(item[2])
            self.values += len(item[2])
        elif kind == NOTES:
            entry = self._run(item[1])
            entry.notes = f"{entry.notes}\n\n{item[2]}" if entry.notes else item[2]
        elif kind == END:
            end: RunEnd = item[2]
            self._run(item[1]).end = end
        elif kind == HEARTBEAT:
            self._run(item[1])  # an empty entry: the run is alive
        self.full = (
            self.points >= MAX_BATCH_POINTS
            or len(self.runs) >= MAX_BATCH_RUNS
            or self.values >= MAX_BATCH_VALUES
        )

    def build(self) -> Batch:
        return Batch(new_ulid(), list(self.runs.values()))


def now_ms() -> int:
    return time.time_ns() // 1_000_000
