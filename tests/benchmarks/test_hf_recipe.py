"""Tests of the Hugging Face Trainer recipe (`ner_component.benchmarks.hf_recipe`) and of the
accuracy benchmark that runs it beside the spaCy pipeline, with a tiny random BERT
around the MiniLM tokenizer and a ~100-sentence WikiANN subset."""
import json
from itertools import islice
from pathlib import Path
from typing import List

import pytest
from thinc.api import Config

from ner_component.benchmarks.hf_recipe import (
    CURVE_NAME,
    IGNORE_INDEX,
    MODEL_DIR,
    RESULTS_NAME,
    align_labels,
    check_config,
    label_maps,
    load_config,
    predict_tags,
    run_recipe,
    tokenize_and_align,
    word_predictions,
)
from ner_component.data.wikiann import TAGS, ArchiveSource
from ner_component.errors import NerComponentError
from tests.util import ROOT

CONFIG = ROOT / "configs" / "hf_recipe.cfg"
ID2LABEL, LABEL2ID = label_maps()
SIZES = {"train": 100, "dev": 30, "test": 40}


def ids(*tags: str) -> List[int]:
    return [IGNORE_INDEX if tag == "-" else LABEL2ID[tag] for tag in tags]


@pytest.fixture(scope="module")
def tiny_wikiann(tmp_path_factory, wikiann_dir) -> Path:
    """The first sentences of WikiANN en, as an extracted-archive folder."""
    folder = tmp_path_factory.mktemp("wikiann_en_tiny")
    source = ArchiveSource(wikiann_dir / "en.tar.gz", "en")
    for split, size in SIZES.items():
        lines = []
        for sentence in islice(source.sentences(split), size):
            lines += [f"en:{token}\t{tag}" for token, tag in zip(sentence.tokens, sentence.tags)]
            lines.append("")
        (folder / split).write_text("\n".join(lines) + "\n", encoding="utf8")
    return folder


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


def tiny_config(tiny_bert: Path, data: Path, **overrides) -> Config:
    base = {
        "paths.transformer": str(tiny_bert),
        "paths.data": str(data),
        "data.dev_limit": 20,
        "training.max_steps": 2,
        "training.logging_steps": 1,
        "budget.eval_every_seconds": 1000,
    }
    base.update(overrides)
    return load_config(CONFIG, base)


# ---------------------------------------------------------------------------
# Labels on subwords


@pytest.mark.parametrize(
    "subword_labels,expected",
    [
        ("repeat", ids("-", "B-PER", "B-LOC", "B-LOC", "B-LOC", "I-LOC", "I-LOC", "O", "-")),
        ("b_to_i", ids("-", "B-PER", "B-LOC", "I-LOC", "I-LOC", "I-LOC", "I-LOC", "O", "-")),
        ("first", ids("-", "B-PER", "B-LOC", "-", "-", "I-LOC", "-", "O", "-")),
    ],
)
def test_align_labels(subword_labels, expected):
    # [CLS] Obama New##ca##stle upon##Tyne . [SEP]
    word_ids = [None, 0, 1, 1, 1, 2, 2, 3, None]
    words = ids("B-PER", "B-LOC", "I-LOC", "O")
    assert align_labels(word_ids, words, subword_labels, ID2LABEL, LABEL2ID) == expected


def test_align_labels_rejects_unknown_setting():
    with pytest.raises(ValueError, match="subword_labels"):
        align_labels([None, 0, None], [0], "all", ID2LABEL, LABEL2ID)


@pytest.mark.parametrize("subword_labels", ["repeat", "b_to_i", "first"])
def test_tokenize_and_align_on_real_subwords(tokenizer, subword_labels):
    words = ["Obama", "visited", "Wolfsburg", "unbelievably", "."]
    tags = ["B-PER", "O", "B-LOC", "O", "O"]
    features = tokenize_and_align(tokenizer, [words], [tags], subword_labels, max_length=64)
    labels = features["labels"][0]
    word_ids = tokenizer(words, is_split_into_words=True).word_ids()
    assert len(labels) == len(features["input_ids"][0]) == len(word_ids)
    assert features["n_words"] == [5]
    assert word_ids.count(2) > 1 and word_ids.count(3) > 1  # split into subwords
    assert labels[0] == labels[-1] == IGNORE_INDEX  # [CLS], [SEP]
    seen = set()
    for word_id, label in zip(word_ids, labels):
        if word_id is None:
            continue
        tag = tags[word_id]
        if word_id not in seen:
            assert ID2LABEL[label] == tag  # first subword: the word's own label
            seen.add(word_id)
        elif subword_labels == "first":
            assert label == IGNORE_INDEX
        elif subword_labels == "b_to_i":
            assert ID2LABEL[label] == tag.replace("B-", "I-")
        else:
            assert ID2LABEL[label] == tag
    assert seen == set(range(len(words)))


def test_truncation_keeps_labels_aligned(tokenizer):
    words = ["Berlin"] * 50
    features = tokenize_and_align(tokenizer, [words], [["B-LOC"] * 50], "repeat", max_length=10)
    assert len(features["input_ids"][0]) == len(features["labels"][0]) == 10
    assert features["labels"][0][0] == features["labels"][0][-1] == IGNORE_INDEX


# ---------------------------------------------------------------------------
# Predictions back on words


def test_word_predictions_take_the_first_subword():
    word_ids = [None, 0, 0, 0, 2, 3, 3, None]
    token_predictions = [6, 1, 2, 2, 5, 3, 4, 6]
    labels, missing = word_predictions(word_ids, token_predictions, n_words=5, default=0)
    # word 1 has no subword (e.g. a zero-width space), word 4 was cut off
    assert labels == [1, 0, 5, 3, 0]
    assert missing == 2


def test_predict_tags_maps_back_to_words(tiny_bert, tokenizer):
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(
        tiny_bert, num_labels=len(ID2LABEL), id2label=ID2LABEL, label2id=LABEL2ID
    )
    sentences = [
        ["Obama", "visited", "Wolfsburg", "."],
        ["a"],
        ["The", "\u200b", "Newcastle", "upon", "Tyne", "derby"],
    ]
    tags, missing = predict_tags(model, tokenizer, sentences, batch_size=2, max_length=64)
    assert [len(t) for t in tags] == [len(s) for s in sentences]  # input order kept
    assert all(tag in TAGS for sentence in tags for tag in sentence)
    assert missing == 1 and tags[2][1] == "O"
    assert model.training is False
    cut, cut_missing = predict_tags(model, tokenizer, [["Berlin"] * 20], batch_size=4, max_length=8)
    assert cut_missing == 20 - 6 and cut[0][6:] == ["O"] * 14


# ---------------------------------------------------------------------------
# Config


def test_config_file_is_complete():
    config = load_config(CONFIG)
    assert config["training"]["learning_rate"] == 2e-5
    assert config["training"]["per_device_train_batch_size"] == 16
    assert config["labels"]["subword_labels"] == "repeat"


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("training.output_dir", "x", "set by the recipe"),
        ("training.learn_rate", 0.1, "not a transformers.TrainingArguments field"),
        ("labels.subword_labels", "all", "expected one of"),
        ("budget.budget_seconds", 0, "budget_seconds"),
        ("data.dev_limit", -1, "dev_limit"),
        ("data.extra", 1, "unknown key"),
        ("training.push_to_hub", True, "set by the recipe"),
        ("sharing.push_to_hub", True, "hub_model_id is null"),
        ("sharing.report_to", ["mlflow"], "report_to"),
    ],
)
def test_bad_config_values(key, value, message):
    config = Config().from_disk(CONFIG, overrides={key: value})
    with pytest.raises(ValueError, match=message):
        check_config(config)


def test_bad_config_is_one_line(tmp_path, capsys):
    with pytest.raises(NerComponentError) as exc:
        load_config(CONFIG, {"labels.subword_labels": "all"})
    err = str(exc.value)
    assert "\n" not in err and "hf_recipe.cfg" in err and "'all'" in err


# ---------------------------------------------------------------------------
# Training and scoring


def test_run_recipe(tmp_path, tiny_bert, tiny_wikiann):
    from transformers import pipeline

    output = tmp_path / "hf"
    results = run_recipe(tiny_config(tiny_bert, tiny_wikiann), output)
    assert (output / RESULTS_NAME).exists() and (output / "config.cfg").exists()
    assert json.loads((output / RESULTS_NAME).read_text()) == results
    train = results["train"]
    assert train["steps"] == 2 and train["stopped_by_budget"] is False
    assert train["sentences"] == SIZES["train"]
    assert 0 < train["words"] <= 2 * 16 * 40 and train["words_per_second"] > 0
    assert train["seconds"] > 0 and train["eval_seconds"] > 0
    curve = results["dev_curve"]
    assert [p["step"] for p in curve] == [0, 2] and [p["final"] for p in curve] == [False, True]
    assert curve[0]["train_seconds"] == 0 and curve[0]["words"] == 0
    assert curve[-1]["words"] == train["words"]
    lines = (output / CURVE_NAME).read_text().splitlines()
    assert [json.loads(line) for line in lines] == curve
    assert results["dev_sentences"] == 20
    test = results["test"]
    assert test["sentences"] == SIZES["test"]
    for mode in ("seqeval_strict", "seqeval_default"):
        assert 0.0 <= test[mode]["f1"] <= 1.0
        assert set(test[mode]["per_type"]) <= {"PER", "ORG", "LOC"}
    assert {"precision", "recall", "f1", "accuracy", "support", "per_type"} <= set(test["seqeval_strict"])
    # the saved model and tokenizer load into a token-classification pipeline
    tagger = pipeline("token-classification", model=str(output / MODEL_DIR), device=-1)
    predicted = tagger("Obama visited Paris")
    assert all(p["entity"] in TAGS for p in predicted)


def test_budget_stops_the_recipe(tmp_path, tiny_bert, tiny_wikiann):
    config = tiny_config(
        tiny_bert, tiny_wikiann,
        **{"training.max_steps": 500, "budget.budget_seconds": 0.001, "budget.eval_at_start": False},
    )
    results = run_recipe(config, tmp_path / "hf", test_limit=10)
    assert results["train"]["stopped_by_budget"] is True
    assert results["train"]["steps"] == 1
    assert [p["final"] for p in results["dev_curve"]] == [True]
    assert results["test"]["sentences"] == 10


# ---------------------------------------------------------------------------
# The benchmark, both sides


def test_benchmark_side_by_side(tmp_path, tiny_bert, tiny_wikiann):
    from ner_component.benchmarks.accuracy import (
        BENCHMARK_JSON,
        BENCHMARK_MD,
        BENCHMARK_PNG,
        run_benchmark,
        spacy_dev_limit,
    )
    from ner_component.data.convert import convert
    from ner_component.data.wikiann import resolve_source

    corpus = tmp_path / "corpus"
    convert(resolve_source(str(tiny_wikiann), "en"), corpus, "en")
    metrics = tmp_path / "metrics"
    comparison = run_benchmark(
        "en", corpus, ROOT / "configs" / "cpu.cfg", CONFIG, tmp_path / "training", metrics,
        transformer=str(tiny_bert), budget_seconds=2.0, data=str(tiny_wikiann),
        hf_overrides={"training.max_steps": 100000},  # the budget, not the epochs, must end it
    )
    for name in (BENCHMARK_JSON, BENCHMARK_MD, BENCHMARK_PNG):
        assert (metrics / name).stat().st_size > 0
    assert comparison["warnings"] == []
    hf, sp = comparison["sides"]["hf"], comparison["sides"]["spacy"]
    assert hf["dev_limit"] == sp["dev_limit"] == spacy_dev_limit(ROOT / "configs" / "cpu.cfg")
    # spaCy's 2,000 steps can't fit in 2 s; the recipe's 2 epochs of the tiny data may
    # (the budget stops only what hasn't finished)
    assert sp["train"]["stopped_by_budget"] is True
    assert hf["train"]["stopped_by_budget"] or hf["train"]["epochs"] >= 2.0
    for side in (hf, sp):
        if side["train"]["stopped_by_budget"]:
            assert side["train"]["seconds"] >= 2.0
        assert side["train"]["words_per_second"] > 0
        assert side["dev_curve"][-1]["final"] is True
        assert 0.0 <= side["test"]["seqeval_strict"]["f1"] <= 1.0
        assert side["test"]["sentences"] == SIZES["test"]
    assert sp["test"]["problems"] == []  # seqeval strict agrees with spaCy's scorer
    assert Path(sp["model"]).name in ("model-best", "model-last")
    table = (metrics / BENCHMARK_MD).read_text()
    assert "HF Trainer recipe" in table and "spaCy pipeline" in table and "training words/s" in table
    # a side not run is read back from its last results
    again = run_benchmark(
        "en", corpus, ROOT / "configs" / "cpu.cfg", CONFIG, tmp_path / "training", tmp_path / "m2",
        transformer=str(tiny_bert), budget_seconds=2.0, data=str(tiny_wikiann), sides=["hf"],
    )
    assert again["sides"]["spacy"] == sp


def test_push_to_hub_without_token_stops_in_one_line(monkeypatch, capsys):
    from ner_component.benchmarks.hf_recipe import check_hub_token

    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(NerComponentError) as exc:
        check_hub_token()
    err = str(exc.value)
    assert len(err.splitlines()) == 1 and "HF_TOKEN" in err and "push_to_hub = false" in err
