import json

import pytest
import spacy
from spacy.tokens import Doc, DocBin

from ner_component.crosscheck import compare, crosscheck, doc_to_iob2, seqeval_scores
from ner_component.evaluation import run_crosscheck


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
    problems = compare({"precision": 0.5, "recall": 0.5, "f1": 0.5}, {"ents_p": 0.5, "ents_r": 0.5, "ents_f": 0.52})
    assert problems == ["seqeval strict f1 0.500000 != spaCy ents_f 0.52"]


def test_run_crosscheck_writes_outputs_and_fails_on_disagreement(tmp_path, ruler_nlp, capsys):
    model = tmp_path / "model"
    ruler_nlp.to_disk(model)
    test = tmp_path / "test.spacy"
    DocBin(docs=gold_docs(ruler_nlp.vocab)).to_disk(test)
    good = tmp_path / "spacy_good.json"
    good.write_text(json.dumps({"ents_p": 0.6, "ents_r": 0.6, "ents_f": 0.6}))
    result = run_crosscheck(model, test, tmp_path / "metrics", spacy_json=good)
    assert result["problems"] == []
    assert (tmp_path / "metrics" / "seqeval.png").read_bytes()[:4] == b"\x89PNG"
    assert "| PER | 100.00 | 50.00 | 66.67 | 2 |" in (tmp_path / "metrics" / "seqeval.md").read_text()
    bad = tmp_path / "spacy_bad.json"
    bad.write_text(json.dumps({"ents_p": 0.6, "ents_r": 0.6, "ents_f": 0.7}))
    with pytest.raises(SystemExit) as exit_info:
        run_crosscheck(model, test, tmp_path / "metrics2", spacy_json=bad)
    assert exit_info.value.code == 1
    assert "seqeval strict f1 0.600000 != spacy evaluate ents_f 0.7" in capsys.readouterr().err
