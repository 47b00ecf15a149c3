import json

import pytest
import spacy
from spacy.tokens import Doc, DocBin

from ner_component.errors import NerComponentError
from ner_component.evaluation.crosscheck import (
    compare,
    crosscheck,
    doc_to_iob2,
    seqeval_scores,
)
from ner_component.evaluation.evaluate import evaluate_test, run_crosscheck
from tests.util import ROOT


@pytest.mark.parametrize(
    "gold,pred,strict_f1,default_f1",
    [
        # an I- without its B-: conlleval (seqeval default) starts an entity, strict IOB2 drops it
        ([["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]], 0.0, 1.0),
        # a type change inside a span: default reads two entities, strict only the first
        ([["B-PER", "O"], ["B-LOC"]], [["B-PER", "I-LOC"], ["B-LOC"]], 1.0, 0.8),
        ([["B-ORG", "I-ORG"]], [["B-ORG", "I-ORG"]], 1.0, 1.0),
    ],
)
def test_strict_and_default_modes_disagree_where_expected(gold, pred, strict_f1, default_f1):
    assert seqeval_scores(gold, pred, strict=True)["f1"] == pytest.approx(strict_f1)
    assert seqeval_scores(gold, pred, strict=False)["f1"] == pytest.approx(default_f1)


def test_seqeval_scores_per_type_and_accuracy():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    scores = seqeval_scores(gold, pred, strict=True)
    assert scores["accuracy"] == pytest.approx(5 / 6)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert scores["per_type"]["LOC"]["recall"] == 0.0
    assert scores["per_type"]["ORG"]["precision"] == pytest.approx(0.5)


def gold_docs(vocab):
    return [
        Doc(vocab, words=["Ada", "Lovelace", "visited", "Paris"], ents=["B-PER", "I-PER", "O", "B-LOC"]),
        Doc(vocab, words=["the", "United", "Nations", "in", "Geneva"], ents=["O", "B-ORG", "I-ORG", "O", "B-LOC"]),
        Doc(vocab, words=["Paris", "Hilton"], ents=["B-PER", "I-PER"]),
    ]


@pytest.fixture
def ruler_nlp():
    """A deterministic pipeline: right on some entities, wrong on others."""
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(
        [
            {"label": "PER", "pattern": [{"ORTH": "Ada"}, {"ORTH": "Lovelace"}]},
            {"label": "LOC", "pattern": "Paris"},  # wrong in "Paris Hilton"
            {"label": "ORG", "pattern": "Nations"},  # a partial span: wrong
            {"label": "LOC", "pattern": "Geneva"},
        ]
    )
    return nlp


def test_doc_to_iob2(ruler_nlp):
    doc = gold_docs(ruler_nlp.vocab)[1]
    assert doc_to_iob2(doc) == ["O", "B-ORG", "I-ORG", "O", "B-LOC"]


def test_crosscheck_agrees_with_spacys_scorer(ruler_nlp):
    result = crosscheck(ruler_nlp, gold_docs(ruler_nlp.vocab))
    strict = result["seqeval_strict"]
    # predicted: Ada Lovelace/PER ok, Paris/LOC ok, Nations/ORG wrong, Geneva/LOC ok, Paris/LOC wrong
    assert strict["precision"] == pytest.approx(3 / 5)
    assert strict["recall"] == pytest.approx(3 / 5)
    assert result["spacy"]["ents_f"] == pytest.approx(strict["f1"])
    assert result["problems"] == []
    assert result["n_docs"] == 3


def test_compare_names_both_figures():
    problems = compare({"precision": 0.5, "recall": 0.5, "f1": 0.5, "per_type": {}}, {"ents_p": 0.5, "ents_r": 0.5, "ents_f": 0.52})
    assert problems == ["seqeval strict f1 0.5 != spaCy ents_f 0.52"]


def test_compare_is_exact_and_per_type():
    strict = {"precision": 0.6, "recall": 0.6, "f1": 0.6, "per_type": {"PER": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3}}}
    same = {"ents_p": 0.6, "ents_r": 0.6, "ents_f": 0.6, "ents_per_type": {"PER": {"p": 1.0, "r": 0.5, "f": 2 / 3}}}
    assert compare(strict, same) == []
    # a difference that the old 1e-4 tolerance let through is a disagreement now
    off = dict(same, ents_p=0.6 + 1e-6)
    assert compare(strict, off) == [f"seqeval strict precision 0.6 != spaCy ents_p {0.6 + 1e-6!r}"]
    off_type = dict(same, ents_per_type={"PER": {"p": 1.0, "r": 0.5001, "f": 2 / 3}})
    assert compare(strict, off_type) == ["seqeval strict PER recall 0.5 != spaCy PER r 0.5001"]


def test_evaluate_then_crosscheck_score_one_prediction(tmp_path, ruler_nlp, capsys):
    model = tmp_path / "model"
    ruler_nlp.to_disk(model)
    test = tmp_path / "test.spacy"
    DocBin(docs=gold_docs(ruler_nlp.vocab)).to_disk(test)
    metrics = tmp_path / "metrics"
    scores = evaluate_test(model, test, metrics, batch_size=2)
    assert scores["ents_f"] == pytest.approx(0.6) and scores["predictions"]["n_docs"] == 3
    assert scores["predictions"]["batch_size"] == 2
    # the predictions are kept, on the test split's own tokens
    predicted = list(DocBin().from_disk(metrics / "predictions.spacy").get_docs(ruler_nlp.vocab))
    assert [[(e.text, e.label_) for e in doc.ents] for doc in predicted][2] == [("Paris", "LOC")]
    result = run_crosscheck(metrics / "predictions.spacy", test, metrics, spacy_json=metrics / "spacy.json")
    assert result["problems"] == []
    # how they were predicted travels on to the model card
    assert result["predicted_with"] == {"cpu_inference_dtype": None, "device": "cpu", "batch_size": 2}
    # one prediction, two scorers: the figures are equal, not merely close
    saved = json.loads((metrics / "spacy.json").read_text())
    assert result["seqeval_strict"]["precision"] == saved["ents_p"]
    assert result["seqeval_strict"]["recall"] == saved["ents_r"]
    assert (metrics / "seqeval.png").read_bytes()[:4] == b"\x89PNG"
    assert "| PER | 100.00 | 50.00 | 66.67 | 2 |" in (metrics / "seqeval.md").read_text()
    # a spacy.json that doesn't belong to these predictions fails the check
    bad = tmp_path / "spacy_bad.json"
    bad.write_text(json.dumps(dict(saved, ents_f=0.7)))
    with pytest.raises(NerComponentError, match="seqeval strict f1 0.6 != spacy.json ents_f 0.7"):
        run_crosscheck(metrics / "predictions.spacy", test, tmp_path / "metrics2", spacy_json=bad)


def test_crosscheck_refuses_predictions_of_another_corpus(tmp_path, ruler_nlp):
    test = tmp_path / "test.spacy"
    DocBin(docs=gold_docs(ruler_nlp.vocab)).to_disk(test)
    stale = tmp_path / "predictions.spacy"
    DocBin(docs=gold_docs(ruler_nlp.vocab)[:2]).to_disk(stale)
    with pytest.raises(NerComponentError, match="holds 2 docs but the gold corpus 3"):
        run_crosscheck(stale, test, tmp_path / "out")
    assert not (tmp_path / "out" / "seqeval.json").exists()


def test_crosscheck_script_exits_with_one_line(tmp_path, ruler_nlp):
    import subprocess
    import sys

    test = tmp_path / "test.spacy"
    DocBin(docs=gold_docs(ruler_nlp.vocab)).to_disk(test)
    stale = tmp_path / "predictions.spacy"
    DocBin(docs=gold_docs(ruler_nlp.vocab)[:1]).to_disk(stale)
    script = ROOT / "scripts" / "crosscheck.py"
    proc = subprocess.run([sys.executable, str(script), str(stale), str(test), str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"\u2718 {stale} holds 1 docs but the gold corpus 3: predict the same split again"
    ]
