"""When a prediction may run on the event loop itself instead of a worker thread.

Handing a call to a worker thread and waking the loop with its answer costs 0.3 to 0.5 ms
here: a third of what serving adds to a one-row call of a small model. A call on the loop
holds up everything else the loop does (probes, ``/metrics``, reading other requests),
so only calls known to be short run there, and only while the loop has time to spare:

- the body is small (at most ``max_body_bytes``: a few rows);
- every model that answers has averaged at most ``budget_s`` a call (unknown: no);
- the loop's debt is under ``budget_s``. Each call on the loop adds its duration to the
  debt, which drains at half the wall-clock time: a client that waits for each answer
  never runs it up, while a queue of requests does within a few calls and sends the next
  ones to the pool. Under any traffic a probe waits at most about ``3 * budget_s``.

    budget = LoopBudget(0.02)
    if budget.allows(len(raw), server.expected_s()):
        with budget.spending():
            answer = server.predict(body)

A budget of 0 turns it off: every call goes to the pool. Do that for a model whose call
may block now and then although it is usually quick (a feature lookup over the network):
on the loop, such a call holds up everything until it returns. The budget is only ever
touched from the loop's own thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

DEFAULT_BUDGET_S = 0.02
DEFAULT_MAX_BODY_BYTES = 16 << 10
DRAIN = 0.5  # seconds of debt forgiven per second of wall-clock time


class LoopBudget:
    def __init__(
        self,
        budget_s: float = DEFAULT_BUDGET_S,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.budget_s = budget_s
        self.max_body_bytes = max_body_bytes
        self._clock = clock
        self.debt_s = 0.0
        self._at = clock()

    def allows(self, body_bytes: int, expected_s: float) -> bool:
        """Whether a call with a body this big, expected to take this long, runs here."""
        if body_bytes > self.max_body_bytes or expected_s > self.budget_s:
            return False
        now = self._clock()
        self.debt_s = max(0.0, self.debt_s - (now - self._at) * DRAIN)
        self._at = now
        return self.debt_s < self.budget_s

    @contextmanager
    def spending(self) -> Iterator[None]:
        """Time a call run on the loop and add it to the debt, failed or not."""
        started = self._clock()
        try:
            yield
        finally:
            self.debt_s += self._clock() - started
