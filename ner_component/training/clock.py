"""Training time without its evaluations, against a budget: one clock for both
training loops the project times.

spaCy's loop (`ner_component.training.loggers.TrainingClock`, behind the timed
console logger) and the Hugging Face recipe's `Trainer` callback
(`ner_component.benchmarks.hf_recipe.callback`) both report training seconds with
evaluation (and checkpoint saving) excluded, the words trained on, and whether a
wall-clock budget is spent, so that accuracy per training minute compares alike.
Each loop measures its pauses in its own way (spaCy's only after the fact, from
the step that follows an evaluation; the HF callback around its own scoring);
this clock keeps the arithmetic, and knows nothing of either framework.
"""
from timeit import default_timer
from typing import Callable, Dict, Optional, Tuple, TypeVar

T = TypeVar("T")


class BudgetClock:
    """Training seconds (wall time since `start` minus the pauses), words, and a budget.

    budget_seconds (Optional[float]): Training seconds allowed; None for no budget.
    timer (Callable[[], float]): The time source, in seconds (tests pass a fake one).
    """

    def __init__(self, budget_seconds: Optional[float] = None, timer: Callable[[], float] = default_timer):
        if budget_seconds is not None and not budget_seconds > 0:
            raise ValueError(f"budget_seconds ({budget_seconds}) must be > 0, or None for no budget")
        self.budget_seconds = budget_seconds
        self.timer = timer
        self.started: Optional[float] = None
        # seconds excluded from training, by kind ("eval", "checkpoint")
        self.paused: Dict[str, float] = {}
        self.words = 0
        # training seconds as of the latest `tick`: a step's end, not the moment of asking
        self.train_seconds = 0.0

    def now(self) -> float:
        return self.timer()

    def start(self) -> None:
        """Start (or restart) counting training time from now."""
        self.started = self.timer()

    def pause(self, seconds: float, kind: str = "eval") -> None:
        """Exclude `seconds` that were spent outside training (measured by the caller).

        seconds (float): The length of the pause.
        kind (str): What the time went to, e.g. "eval" or "checkpoint".
        """
        self.paused[kind] = self.paused.get(kind, 0.0) + seconds

    def run_paused(self, work: Callable[[], T], kind: str = "eval") -> Tuple[T, float]:
        """Run `work` (e.g. an evaluation) with its time excluded from training.

        work (Callable[[], T]): What to run.
        kind (str): What the time goes to, e.g. "eval".
        RETURNS (Tuple[T, float]): What `work` returned, and the seconds it took.
        """
        started = self.timer()
        result = work()
        seconds = self.timer() - started
        self.pause(seconds, kind)
        return result, seconds

    def paused_seconds(self, kind: Optional[str] = None) -> float:
        """The seconds excluded so far: of one kind, or of all kinds with None."""
        return sum(self.paused.values()) if kind is None else self.paused.get(kind, 0.0)

    def elapsed(self, now: Optional[float] = None) -> float:
        """Training seconds until `now` (default: this moment), pauses excluded."""
        if self.started is None:
            return 0.0
        return (self.timer() if now is None else now) - self.started - self.paused_seconds()

    def tick(self, now: Optional[float] = None) -> float:
        """Record the training seconds as of `now` (a step's end); they are what
        `exhausted`, `words_per_second` and the totals read.

        now (Optional[float]): A time of `timer`'s; None for this moment.
        RETURNS (float): The training seconds.
        """
        self.train_seconds = self.elapsed(now)
        return self.train_seconds

    def add_words(self, n: int) -> None:
        """Count `n` more words trained on."""
        self.words += n

    @property
    def exhausted(self) -> bool:
        """Whether the recorded training time has reached the budget."""
        return self.budget_seconds is not None and self.train_seconds >= self.budget_seconds

    def words_per_second(self) -> Optional[float]:
        """Words trained on per training second (one decimal); None before any time."""
        return round(self.words / self.train_seconds, 1) if self.train_seconds > 0 else None
