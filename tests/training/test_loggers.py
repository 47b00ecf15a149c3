"""Tests of the timed training logger (`ner_component.TimedConsoleLogger.v1`):
spaCy's training loop stopped by a time budget, with both models saved, and the
JSONL of (steps, training seconds without evaluation, dev scores)."""
import json
import random
from pathlib import Path
from typing import Any, Dict

import pytest
import spacy
from spacy.cli.init_config import init_config
from spacy.tokens import Doc, DocBin
from spacy.util import registry
from spacy.vocab import Vocab

from ner_component.hardware import describe
from ner_component.training.loggers import (
    TrainingBudgetExhausted,
    TrainingClock,
    read_log,
    timed_console_logger,
)
from ner_component.training.train import TRAIN_INFO, train

LOGGER = "ner_component.TimedConsoleLogger.v1"


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory) -> Path:
    """A synthetic corpus and a tiny tok2vec + NER config (no transformer: fast)."""
    root = tmp_path_factory.mktemp("timed_logger")
    rng = random.Random(0)
    vocab = Vocab()
    docs = []
    for _ in range(40):
        words = [rng.choice(["Obama", "Merkel"]), "visited", rng.choice(["Paris", "Berlin"]),
                 "for", rng.choice(["Google", "IBM"]), "."]
        docs.append(Doc(vocab, words=words, ents=["B-PER", "O", "B-LOC", "O", "B-ORG", "O"]))
    DocBin(docs=docs).to_disk(root / "train.spacy")
    DocBin(docs=docs[:10]).to_disk(root / "dev.spacy")
    config = init_config(lang="en", pipeline=["ner"], optimize="efficiency")
    config["training"]["eval_frequency"] = 5
    config["components"]["tok2vec"]["model"]["embed"]["width"] = 16
    config["components"]["tok2vec"]["model"]["encode"]["width"] = 16
    config["training"]["logger"] = {"@loggers": LOGGER, "progress_bar": None}
    config.to_disk(root / "tiny.cfg")
    return root


def run(root: Path, name: str, **overrides: Any) -> Dict[str, Any]:
    output = root / name
    all_overrides = {"training.logger.log_path": str(output / "log.jsonl")}
    all_overrides.update({f"training.{k}": v for k, v in overrides.items()})
    return train(root / "tiny.cfg", output, root, "en", overrides=all_overrides)


def test_logger_is_registered():
    assert registry.loggers.get(LOGGER) is timed_console_logger
    with pytest.raises(ValueError, match="budget_seconds"):
        timed_console_logger(budget_seconds=0)


def test_budget_stops_training_and_keeps_both_models(tiny_setup):
    info = run(tiny_setup, "budget", max_steps=100000, **{"logger.budget_seconds": 1.0})
    output = tiny_setup / "budget"
    assert info["stopped_by_budget"] is True
    saved = json.loads((output / TRAIN_INFO).read_text())
    assert saved["stopped_by_budget"] is True
    # the CPU kind, as every report names it (ner_component.hardware.describe)
    assert saved["hardware"] == describe(-1) and "CPU cores (" in saved["hardware"]
    for name in ("model-best", "model-last"):
        nlp = spacy.load(output / name)
        assert nlp.pipe_names == ["tok2vec", "ner"]
    rows, end = read_log(output / "log.jsonl")
    assert end is not None and end["stopped_by_budget"] is True
    assert end["train_seconds"] >= 1.0
    assert 0 < end["words"] and end["words_per_second"] > 0
    assert end["steps"] < 100000
    assert rows[0]["step"] == 0 and rows[0]["source"] == "spacy"
    assert [r["final"] for r in rows] == [False] * (len(rows) - 1) + [True]
    assert rows[-1]["step"] == end["steps"] - 1
    assert rows[-1]["train_seconds"] == end["train_seconds"]
    seconds = [r["train_seconds"] for r in rows]
    assert seconds == sorted(seconds)
    for row in rows:
        assert 0.0 <= row["dev_f1"] <= 1.0 and row["eval_seconds"] >= 0.0
        assert {"ents_f", "ents_per_type"} <= set(row["scores"])
    # training time excludes the evaluations and checkpoint saving
    # each row's seconds are rounded to 2 decimals: the sum may be off by 0.005 a row
    rounding = 0.005 * (len(rows) + 1) + 1e-9
    assert end["eval_seconds"] == pytest.approx(sum(r["eval_seconds"] for r in rows), abs=rounding)


def test_last_step_is_evaluated_when_spacy_does_not(tiny_setup):
    info = run(tiny_setup, "steps", max_steps=7)
    assert info["stopped_by_budget"] is False
    rows, end = read_log(tiny_setup / "steps" / "log.jsonl")
    assert [(r["step"], r["source"]) for r in rows] == [(0, "spacy"), (5, "spacy"), (7, "final")]
    assert [r["final"] for r in rows] == [False, False, True]
    assert end is not None and end["steps"] == 8 and end["stopped_by_budget"] is False


def test_clock_restores_nlp_methods(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("ner").add_label("PER")
    nlp.initialize()
    config_training = nlp.config["training"]
    assert "max_steps" in config_training
    clock = TrainingClock(nlp, budget_seconds=None, log_path=tmp_path / "log.jsonl", final_evaluation=True)
    assert "evaluate" in nlp.__dict__ and "update" in nlp.__dict__
    assert clock.step(None) is None
    clock.close()
    assert "evaluate" not in nlp.__dict__ and "update" not in nlp.__dict__
    rows, end = read_log(tmp_path / "log.jsonl")
    assert rows == [] and end is not None and end["steps"] == 1


def test_budget_message_names_the_budget(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("ner").add_label("PER")
    nlp.initialize()
    clock = TrainingClock(nlp, budget_seconds=1e-9, log_path=None, final_evaluation=True)
    reason = clock.step(None)
    clock.close()
    assert reason is not None and "budget 1e-09 s" in reason
    assert clock.summary()["stopped_by_budget"] is True and clock.clock.exhausted
    assert issubclass(TrainingBudgetExhausted, Exception)
