"""A spaCy training logger that times training without its evaluations and stops
training when a wall-clock budget is spent.

spaCy's `training.max_steps` counts steps, not time. `ner_component.TimedConsoleLogger.v1`
wraps spaCy's console logger (same output) and:
- measures training time without the evaluations and checkpoint saving, and counts
  the words trained on, so accuracy can be plotted against training minutes next to
  another system's;
- writes one JSONL line per evaluation: step, epoch, words, train_seconds (evaluation
  excluded), eval_seconds, checkpoint_seconds, the dev scores, the training losses;
- once `budget_seconds` of training are spent, scores the current weights on the dev
  corpus (so the curve ends where training ends) and raises `TrainingBudgetExhausted`.

How the stop works with spaCy's loop (`spacy/training/loop.py`): `max_steps` and
`patience` are fixed when the loop starts, and an empty batch stream would spin
forever with `max_epochs = 0`, so the only way out mid-run is an exception from the
logger. That is safe for the saved models: spaCy saves `model-best` right after each
evaluation that improves, before calling the logger, and its `finally` saves
`model-last` (the weights at the stop) when the exception passes through. spaCy
prints "Aborting and saving the final best model" with this exception's message;
`ner_component.training.train.train` catches it and records the stop in train_info.json.
"""
import json
import sys
from pathlib import Path
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Tuple,
    Union,
)

from spacy.training.loggers import console_logger_v3
from spacy.util import registry

from ner_component.training.clock import BudgetClock

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.training import Example

LogStep = Callable[[Optional[Dict[str, Any]]], None]
Finalize = Callable[[], None]


class TrainingBudgetExhausted(Exception):
    """Raised by `ner_component.TimedConsoleLogger.v1` to end spaCy's training loop
    when the time budget is spent; `model-best` and `model-last` are saved."""


@registry.loggers("ner_component.TimedConsoleLogger.v1")
def timed_console_logger(
    budget_seconds: Optional[float] = None,
    log_path: Optional[Union[str, Path]] = None,
    final_evaluation: bool = True,
    progress_bar: Optional[str] = None,
    console_output: bool = True,
    output_file: Optional[Union[str, Path]] = None,
) -> Callable[["Language", IO, IO], Tuple[LogStep, Finalize]]:
    """spaCy's ConsoleLogger.v3 plus training time, words, and a time budget.

    budget_seconds (Optional[float]): Training seconds (evaluation and checkpoint
        saving excluded) after which training stops; None for no budget.
    log_path (Optional[Union[str, Path]]): JSONL file with one line per evaluation and
        a last line with the totals ("event": "end"); None to keep them in memory only.
    final_evaluation (bool): When training ends (budget spent or max_steps reached)
        on a step spaCy doesn't evaluate, score the current weights on the dev corpus,
        so the curve's last point is where training ends. spaCy doesn't compare this
        score to model-best: `model-last` holds these weights.
    progress_bar (Optional[str]): As ConsoleLogger.v3: "train", "eval" or None.
    console_output (bool): As ConsoleLogger.v3.
    output_file (Optional[Union[str, Path]]): As ConsoleLogger.v3 (its own JSONL).
    RETURNS (Callable): The logger setup function spaCy's training loop calls.
    """
    if budget_seconds is not None and not budget_seconds > 0:
        raise ValueError(f"budget_seconds ({budget_seconds}) must be > 0, or null for no budget")
    console = console_logger_v3(
        progress_bar=progress_bar, console_output=console_output, output_file=output_file
    )

    def setup(
        nlp: "Language", stdout: IO = sys.stdout, stderr: IO = sys.stderr
    ) -> Tuple[LogStep, Finalize]:
        log_console, finalize_console = console(nlp, stdout, stderr)
        clock = TrainingClock(nlp, budget_seconds, log_path, final_evaluation, stdout)

        def log_step(info: Optional[Dict[str, Any]]) -> None:
            stop = clock.step(info)
            log_console(info)
            if stop is not None:
                raise TrainingBudgetExhausted(stop)

        def finalize() -> None:
            try:
                finalize_console()
            finally:
                clock.close()

        return log_step, finalize

    return setup


class TrainingClock:
    """The timing and budget logic of the timed logger, step by step.

    It wraps two methods on the `nlp` object for the duration of training (restored
    by `close`): `nlp.evaluate`, to time each evaluation and keep the dev examples
    for the final one, and `nlp.update`, to count the words trained on. spaCy's loop
    calls both through the instance, and offers no other hook that sees them.
    """

    def __init__(
        self,
        nlp: "Language",
        budget_seconds: Optional[float],
        log_path: Optional[Union[str, Path]],
        final_evaluation: bool,
        stdout: IO = sys.stdout,
    ):
        self.nlp = nlp
        self.budget_seconds = budget_seconds
        self.final_evaluation = final_evaluation
        self.stdout = stdout
        training = nlp.config["training"]
        self.max_steps = int(training["max_steps"] or 0)
        self.score_weights = {
            k: v for k, v in training["score_weights"].items() if v is not None
        }
        self.rows: List[Dict[str, Any]] = []
        self.step_index = -1
        self.epoch = 0
        # training time without evaluation and checkpoint saving, words, the budget
        self.clock = BudgetClock(budget_seconds)
        self.last_eval: Optional[Tuple[float, float]] = None  # (start, end) of the latest
        self.dev_examples: Optional[List["Example"]] = None
        self.stopped_by_budget = False
        self.stream: Optional[IO] = None
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            self.stream = open(log_path, "w", encoding="utf8")
        self._evaluate = nlp.evaluate
        self._update = nlp.update
        nlp.evaluate = self._timed_evaluate  # type: ignore[method-assign]
        nlp.update = self._counted_update  # type: ignore[method-assign]
        self.clock.start()

    @property
    def words(self) -> int:
        """Words trained on so far."""
        return self.clock.words

    @property
    def train_seconds(self) -> float:
        """Training seconds as of the latest step, evaluation and checkpoints excluded."""
        return self.clock.train_seconds

    def _timed_evaluate(self, examples: Iterable["Example"], **kwargs: Any) -> Dict[str, Any]:
        start = self.clock.now()
        self.dev_examples = list(examples)  # Language.evaluate copies them
        scores = self._evaluate(self.dev_examples, **kwargs)
        self.last_eval = (start, self.clock.now())
        return scores

    def _counted_update(self, examples: Iterable["Example"], *args: Any, **kwargs: Any) -> Any:
        examples = list(examples)
        self.clock.add_words(sum(len(eg) for eg in examples))  # as spaCy's own info["words"]
        return self._update(examples, *args, **kwargs)

    def step(self, info: Optional[Dict[str, Any]]) -> Optional[str]:
        """Account for one training step (spaCy calls the logger once per step,
        with `info` only when it evaluated).

        info (Optional[Dict[str, Any]]): spaCy's step info, or None.
        RETURNS (Optional[str]): The reason to stop training, or None to go on.
        """
        now = self.clock.now()
        self.step_index += 1
        row: Optional[Dict[str, Any]] = None
        if info is None:
            self.clock.tick(now)
        else:
            self.epoch = info["epoch"]
            eval_seconds = checkpoint_seconds = 0.0
            if self.last_eval is not None:
                eval_start, eval_end = self.last_eval
                eval_seconds = eval_end - eval_start
                checkpoint_seconds = now - eval_end  # update_meta and save_checkpoint
                self.last_eval = None
            self.clock.pause(eval_seconds, "eval")
            self.clock.pause(checkpoint_seconds, "checkpoint")
            self.clock.tick(now)
            scores = info.get("other_scores") or {}
            row = self._row(
                info["step"], info["score"], scores, eval_seconds, checkpoint_seconds, "spacy", info.get("losses")
            )
        over_budget = self.clock.exhausted
        at_max_steps = bool(self.max_steps) and self.step_index >= self.max_steps
        if row is not None:
            row["final"] = over_budget or at_max_steps
            self._write(row)
        elif (over_budget or at_max_steps) and self.final_evaluation:
            self._evaluate_final()
        if not over_budget:
            return None  # at max_steps spaCy's loop ends by itself
        self.stopped_by_budget = True
        return (
            f"time budget spent: {self.train_seconds:.1f} s of training (budget "
            f"{self.budget_seconds:g} s, evaluation excluded) at step {self.step_index}; "
            "stopping with model-best and model-last saved"
        )

    def _evaluate_final(self) -> None:
        if self.dev_examples is None:
            return
        dev_examples = self.dev_examples
        scores, seconds = self.clock.run_paused(lambda: self._evaluate(dev_examples), "eval")
        numeric = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
        score = sum(numeric.get(k, 0.0) * w for k, w in self.score_weights.items())
        row = self._row(self.step_index, score, scores, seconds, 0.0, "final")
        row["final"] = True
        self._write(row)
        self.stdout.write(
            f"Final evaluation at step {self.step_index} (the weights model-last holds): "
            f"score {score:.4f}, {seconds:.1f} s\n"
        )

    def _row(
        self,
        step: int,
        score: float,
        scores: Dict[str, Any],
        eval_seconds: float,
        checkpoint_seconds: float,
        source: str,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, Any]:
        return {
            "event": "evaluation",
            # "spacy": spaCy's own evaluation (model-best is chosen among these);
            # "final": the timed logger's, of the weights model-last holds
            "source": source,
            "step": step,
            "epoch": self.epoch,
            "words": self.words,
            "train_seconds": round(self.train_seconds, 2),
            "eval_seconds": round(eval_seconds, 2),
            "checkpoint_seconds": round(checkpoint_seconds, 2),
            "score": float(score),
            "dev_f1": _float_or_none(scores.get("ents_f")),
            "dev_precision": _float_or_none(scores.get("ents_p")),
            "dev_recall": _float_or_none(scores.get("ents_r")),
            "scores": dict(scores),
            # training loss per component, summed over the steps since the previous
            # evaluation (spaCy resets it after each)
            "losses": {name: float(value) for name, value in (losses or {}).items()},
            "final": False,
        }

    def _write(self, row: Dict[str, Any]) -> None:
        self.rows.append(row)
        if self.stream is not None:
            self.stream.write(json.dumps(row) + "\n")
            self.stream.flush()

    def summary(self) -> Dict[str, Any]:
        """The totals: training seconds (evaluation excluded), words, words/s, steps."""
        return {
            "event": "end",
            "steps": self.step_index + 1,
            "epoch": self.epoch,
            "words": self.words,
            "train_seconds": round(self.train_seconds, 2),
            "words_per_second": self.clock.words_per_second(),
            "eval_seconds": round(self.clock.paused_seconds("eval"), 2),
            "checkpoint_seconds": round(self.clock.paused_seconds("checkpoint"), 2),
            "evaluations": len(self.rows),
            "budget_seconds": self.budget_seconds,
            "stopped_by_budget": self.stopped_by_budget,
        }

    def close(self) -> None:
        """Write the totals and give `nlp` its own methods back."""
        for name in ("evaluate", "update"):
            self.nlp.__dict__.pop(name, None)
        if self.stream is not None:
            self.stream.write(json.dumps(self.summary()) + "\n")
            self.stream.close()
            self.stream = None


def _float_or_none(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) else None


def read_log(path: Union[str, Path]) -> Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]:
    """Read a timed logger's JSONL: the evaluation rows and the totals line, None when training didn't finish writing it.

    path (Union[str, Path]): The log file.
    RETURNS (Tuple[List[Dict[str, Any]], Optional[Dict[str, Any]]]): Rows and totals.
    """
    rows: List[Dict[str, Any]] = []
    end: Optional[Dict[str, Any]] = None
    with Path(path).open(encoding="utf8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            event = record.get("event")
            if event == "evaluation":
                rows.append(record)
            elif event == "end":
                end = record
    return rows, end
