"""Training under a time budget with `Trainer`: a collator that counts the words of
each batch, and a callback that times training without its evaluations
(`ner_component.training.clock.BudgetClock`), scores the dev subset at regular
points of training time, and stops training once the budget is spent."""
import json
from collections import deque
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional

from wasabi import msg

from ner_component.training.clock import BudgetClock
from ner_component.util import PathLike


class WordCountingCollator:
    """`DataCollatorForTokenClassification` that also counts the WikiANN words of
    each batch it builds, for the training words/s figure.

    The counts queue up in build order; the budget callback takes one per
    optimizer step. The queue may run a batch ahead (accelerate's dataloader
    prefetches one), which the first-in-first-out order absorbs.
    """

    def __init__(self, tokenizer: Any):
        from transformers import DataCollatorForTokenClassification

        self.collator = DataCollatorForTokenClassification(tokenizer)
        self.word_counts: Deque[int] = deque()

    def __call__(self, features: List[Dict[str, Any]]) -> Dict[str, Any]:
        self.word_counts.append(sum(int(f["n_words"]) for f in features))
        return self.collator([{k: v for k, v in f.items() if k != "n_words"} for f in features])


def make_budget_callback(
    score_dev: Callable[[Any], Dict[str, Any]],
    word_counts: Deque[int],
    budget_seconds: Optional[float],
    eval_every_seconds: float,
    eval_at_start: bool,
    log_path: Optional[PathLike] = None,
) -> Any:
    """A `TrainerCallback` that times training without its evaluations, scores the
    dev subset every `eval_every_seconds` of training, and stops training (after a
    last evaluation) once `budget_seconds` of training are spent.

    score_dev (Callable[[Any], Dict[str, Any]]): Scores the model on the dev subset,
        returning `score_tags`'s figures.
    word_counts (Deque[int]): The collator's word counts, one per batch.
    budget_seconds (Optional[float]): Training seconds allowed; None for no budget.
    eval_every_seconds (float): Training seconds between dev evaluations.
    eval_at_start (bool): Score the untrained model first.
    log_path (Optional[PathLike]): A JSONL file; one line per evaluation.
    RETURNS (TrainerCallback): The callback; its `curve` holds the evaluations,
        `summary()` the timing figures.
    """
    from transformers import TrainerCallback

    class TimeBudgetCallback(TrainerCallback):
        def __init__(self) -> None:
            self.clock = BudgetClock(budget_seconds)
            self.curve: List[Dict[str, Any]] = []
            self.next_eval = eval_every_seconds
            self.stopped_by_budget = False
            self.last_step = -1
            self.log = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if log_path is not None:
                Path(log_path).parent.mkdir(parents=True, exist_ok=True)
                self.log = open(log_path, "w", encoding="utf8")
            self.clock.start()
            if eval_at_start:
                self.evaluate(kwargs["model"], state, final=False)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if word_counts:
                self.clock.add_words(word_counts.popleft())
            train_seconds = self.clock.tick()
            if self.clock.exhausted:
                self.stopped_by_budget = True
                control.should_training_stop = True
                self.evaluate(kwargs["model"], state, final=True)
            elif state.max_steps and state.global_step >= state.max_steps:
                self.evaluate(kwargs["model"], state, final=True)
            elif train_seconds >= self.next_eval:
                self.evaluate(kwargs["model"], state, final=False)
                while self.next_eval <= train_seconds:
                    self.next_eval += eval_every_seconds

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # the last step's evaluation normally happened in on_step_end already
            if self.last_step != state.global_step:
                self.evaluate(kwargs["model"], state, final=True)
            if self.log is not None:
                self.log.close()
                self.log = None

        def evaluate(self, model: Any, state: Any, final: bool) -> None:
            scores, seconds = self.clock.run_paused(lambda: score_dev(model), "eval")
            self.last_step = state.global_step
            strict = scores["seqeval_strict"]
            point = {
                "step": state.global_step,
                "epoch": round(float(state.epoch or 0.0), 4),
                "words": self.clock.words,
                "train_seconds": round(self.clock.train_seconds, 2),
                "eval_seconds": round(seconds, 2),
                "dev_f1": strict["f1"],
                "dev_precision": strict["precision"],
                "dev_recall": strict["recall"],
                "dev_f1_default": scores["seqeval_default"]["f1"],
                "final": final,
            }
            self.curve.append(point)
            if self.log is not None:
                self.log.write(json.dumps(point) + "\n")
                self.log.flush()
            msg.text(
                f"step {point['step']} epoch {point['epoch']:.2f}: dev F1 "
                f"{100 * point['dev_f1']:.2f} after {point['train_seconds']:.0f} s of training "
                f"(eval {seconds:.1f} s)"
            )

        def summary(self) -> Dict[str, Any]:
            return {
                "seconds": round(self.clock.train_seconds, 2),
                "eval_seconds": round(self.clock.paused_seconds("eval"), 2),
                "words": self.clock.words,
                "words_per_second": self.clock.words_per_second(),
                "stopped_by_budget": self.stopped_by_budget,
                "budget_seconds": budget_seconds,
            }

    return TimeBudgetCallback()
