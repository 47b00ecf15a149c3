"""The budget clock both training loops wrap (`ner_component.training.clock`), on a
fake time source."""
import pytest

from ner_component.training.clock import BudgetClock


class FakeTimer:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_training_seconds_exclude_the_pauses():
    timer = FakeTimer()
    clock = BudgetClock(budget_seconds=10.0, timer=timer)
    assert clock.elapsed() == 0.0 and clock.words_per_second() is None
    clock.start()
    timer.now += 4.0
    assert clock.tick() == 4.0
    clock.add_words(100)

    def evaluate() -> dict:
        timer.now += 3.0
        return {"f1": 0.5}

    # an evaluation of 3 s, then a checkpoint of 1.5 s measured after the fact
    scores, seconds = clock.run_paused(evaluate)
    assert scores == {"f1": 0.5} and seconds == 3.0
    timer.now += 1.5
    clock.pause(1.5, "checkpoint")
    timer.now += 2.0
    # the recorded training time moves only with tick
    assert clock.train_seconds == 4.0 and clock.elapsed() == 6.0
    assert clock.tick() == 6.0
    assert clock.paused_seconds("eval") == 3.0 and clock.paused_seconds("checkpoint") == 1.5
    assert clock.paused_seconds() == 4.5
    assert clock.words_per_second() == pytest.approx(16.7)
    assert not clock.exhausted


def test_budget_is_spent_at_the_budget():
    timer = FakeTimer()
    clock = BudgetClock(budget_seconds=5.0, timer=timer)
    clock.start()
    timer.now += 4.999
    clock.tick()
    assert not clock.exhausted
    timer.now += 0.001
    clock.tick(timer.now)
    assert clock.exhausted
    no_budget = BudgetClock(timer=timer)
    no_budget.start()
    timer.now += 1e6
    no_budget.tick()
    assert not no_budget.exhausted


@pytest.mark.parametrize("budget", [0, -1.0])
def test_budget_must_be_positive(budget):
    with pytest.raises(ValueError, match=f"budget_seconds \\({budget}\\) must be > 0"):
        BudgetClock(budget_seconds=budget)
