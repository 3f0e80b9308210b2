"""Which predictions may run on the event loop: small bodies of models known to be fast,
while the loop's debt is under the budget; a waiting client never runs the debt up, a
queue of requests does within a few calls, and a probe never waits much past the budget."""

from __future__ import annotations

import math

import pytest

from cairn.serving.loop_budget import LoopBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def call(budget: LoopBudget, clock: Clock, seconds: float) -> None:
    with budget.spending():
        clock.now += seconds


def test_only_small_bodies_of_models_known_fast() -> None:
    budget = LoopBudget(0.02, max_body_bytes=1024, clock=Clock())
    assert budget.allows(200, 0.004)
    assert not budget.allows(200, math.inf)  # not timed yet
    assert not budget.allows(200, 0.021)
    assert not budget.allows(1025, 0.004)
    assert not LoopBudget(0.0).allows(10, 0.000_001)


def test_a_client_that_waits_for_each_answer_never_runs_the_debt_up() -> None:
    clock = Clock()
    budget = LoopBudget(0.02, clock=clock)
    for _ in range(10_000):
        assert budget.allows(200, 0.005)
        call(budget, clock, 0.005)
        clock.now += 0.006  # the answer travels, the client thinks, the next one comes
    assert budget.debt_s < 0.02


@pytest.mark.parametrize("seconds", [0.001, 0.005, 0.019])
def test_a_queue_of_requests_holds_the_loop_at_most_three_budgets(seconds: float) -> None:
    clock = Clock()
    budget = LoopBudget(0.02, clock=clock)
    held = longest = 0.0
    refused = 0
    for _ in range(5_000):  # back to back: each request was waiting when the last ended
        if budget.allows(200, seconds):
            call(budget, clock, seconds)
            held += seconds
            longest = max(longest, held)
        else:
            refused += 1
            held = 0.0  # handed to the pool: the loop answers what waits, a probe too
            clock.now += 0.0001
    assert longest <= 3 * 0.02
    assert 0 < refused < 5_000
    assert budget.debt_s < 0.02 + seconds


def test_a_failed_call_is_spent_too() -> None:
    clock = Clock()
    budget = LoopBudget(0.02, clock=clock)
    with pytest.raises(ValueError), budget.spending():
        clock.now += 0.05
        raise ValueError("the model refused")
    assert budget.debt_s == pytest.approx(0.05)
    assert not budget.allows(200, 0.001)  # 0.05 less half of the 0.05 s it took
    clock.now += 0.02  # drains at half the wall-clock time
    assert budget.allows(200, 0.001)
