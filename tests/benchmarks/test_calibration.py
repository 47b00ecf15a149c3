"""The calibration report of `Span._.confidence`: hand-made bins, the entity
matching against gold, bad input, and a run on real WikiANN predictions whose
precision must equal spaCy's scorer's."""
import itertools
import json
import subprocess
import sys

import numpy
import pytest
import spacy
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin, SpanGroup
from spacy.training import Example

from ner_component.benchmarks.calibration import calibration, run_calibration, scored_entities
from ner_component.data.convert import sentences_to_docs
from ner_component.data.wikiann import resolve_source
from ner_component.errors import NerComponentError
from ner_component.evaluation.crosscheck import predict_docs
from ner_component.runtime.token_ner import SPAN_GROUP_SOURCE
from tests.pipelines import fit_to_real_sentences
from tests.util import ROOT

N_TRAIN = 48
N_TEST = 64


def test_bins_and_ece_by_hand():
    confidences = numpy.array([0.05, 0.15, 0.95, 0.95, 1.0])
    right = numpy.array([False, True, True, False, True])
    result = calibration(confidences, right, n_bins=10)
    counts = [b["entities"] for b in result["bins"]]
    assert counts == [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]  # 1.0 falls in the last bin
    last = result["bins"][-1]
    assert last["mean_confidence"] == pytest.approx(2.9 / 3) and last["precision"] == pytest.approx(2 / 3)
    assert result["bins"][2]["precision"] is None
    # 1/5 * 0.05 + 1/5 * 0.85 + 3/5 * |2/3 - 2.9/3|
    assert result["ece"] == pytest.approx(0.01 + 0.17 + 0.18)
    assert result["precision"] == pytest.approx(0.6)
    perfect = calibration(numpy.array([1.0, 1.0, 0.0]), numpy.array([True, True, False]), n_bins=4)
    assert perfect["ece"] == 0.0


def doc_with_confidences(vocab, words, ents, scores):
    doc = Doc(vocab, words=words, ents=ents)
    doc.spans["ents"] = SpanGroup(doc, name="ents", attrs={"source": SPAN_GROUP_SOURCE, "scores": scores}, spans=doc.ents)
    return doc


def test_entities_are_right_only_with_the_same_span_and_label():
    vocab = spacy.blank("en").vocab
    words = ["Ada", "Lovelace", "in", "London"]
    gold = [Doc(vocab, words=words, ents=["B-PER", "I-PER", "O", "B-LOC"])]
    predicted = [doc_with_confidences(vocab, words, ["B-PER", "O", "O", "B-ORG"], [0.4, 0.9])]
    confidences, right = scored_entities(predicted, gold)
    assert confidences.tolist() == [0.4, 0.9] and right.tolist() == [False, False]
    predicted = [doc_with_confidences(vocab, words, ["B-PER", "I-PER", "O", "B-LOC"], [0.8, 0.7])]
    assert scored_entities(predicted, gold)[1].tolist() == [True, True]


def test_bad_input_is_refused():
    vocab = spacy.blank("en").vocab
    words = ["Ada", "in", "London"]
    gold = [Doc(vocab, words=words, ents=["B-PER", "O", "B-LOC"])]
    with pytest.raises(NerComponentError, match="p.spacy has 2 docs, g.spacy 1"):
        scored_entities(gold * 2, gold, ("p.spacy", "g.spacy"))
    other = [doc_with_confidences(vocab, ["Ada", "in", "Paris"], ["B-PER", "O", "B-LOC"], [0.5, 0.5])]
    with pytest.raises(NerComponentError, match="predicted: doc 0, token 2 is 'Paris' where gold has 'London'"):
        scored_entities(other, gold)
    with pytest.raises(NerComponentError, match="entity 'Ada' has no confidence"):
        scored_entities(gold, gold)
    with pytest.raises(NerComponentError, match="no predicted entities"):
        calibration(numpy.zeros(0), numpy.zeros(0, dtype=bool))
    with pytest.raises(NerComponentError, match="n_bins must be at least 1"):
        calibration(numpy.ones(1), numpy.ones(1, dtype=bool), n_bins=0)


@pytest.fixture(scope="module")
def predictions(tiny_bert, wikiann_dir, tmp_path_factory):
    """A tiny token_ner pipeline fitted to real English sentences, its predictions
    of the next real sentences saved as `evaluate` saves them, and their gold."""
    source = resolve_source(str(wikiann_dir), "en")
    docs, _ = sentences_to_docs(itertools.islice(source.sentences("test"), N_TRAIN + N_TEST))
    nlp = fit_to_real_sentences(tiny_bert, docs[:N_TRAIN])
    gold = docs[N_TRAIN:]
    predicted = predict_docs(nlp, gold)
    folder = tmp_path_factory.mktemp("calibration")
    DocBin(docs=predicted).to_disk(folder / "predictions.spacy")
    DocBin(docs=gold).to_disk(folder / "test.spacy")
    return folder, predicted, gold


def test_real_predictions_score_as_spacy_does(predictions):
    folder, predicted, gold = predictions
    result = run_calibration(folder / "predictions.spacy", folder / "test.spacy", folder / "out", "en", n_bins=5)
    scores = Scorer.score_spans([Example(p, g) for p, g in zip(predicted, gold)], "ents")
    n_predicted = sum(len(doc.ents) for doc in predicted)
    assert result["entities"] == n_predicted >= 20
    assert result["precision"] == pytest.approx(scores["ents_p"])
    assert sum(b["entities"] for b in result["bins"]) == n_predicted
    assert 0.0 <= result["ece"] <= 1.0
    assert json.loads((folder / "out" / "en.json").read_text())["ece"] == result["ece"]
    assert "| confidence | entities |" in (folder / "out" / "en.md").read_text()
    assert (folder / "out" / "en.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_script_exits_with_one_line_naming_the_file(predictions, tmp_path):
    folder, _, gold = predictions
    DocBin(docs=gold[:3]).to_disk(tmp_path / "short.spacy")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_calibration.py"), str(folder / "predictions.spacy"),
         str(tmp_path / "short.spacy"), str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("\u2718")]
    assert errors == [f"\u2718 {folder / 'predictions.spacy'} has {N_TEST} docs, {tmp_path / 'short.spacy'} 3: not the same corpus"]
    assert not (tmp_path / "out").exists()
