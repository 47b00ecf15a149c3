import subprocess
import sys

import pytest
import spacy
from spacy.tokens import Doc, DocBin, SpanGroup

from ner_component.evaluation.visualize import render
from ner_component.runtime.token_ner import SPAN_GROUP_SOURCE
from tests.util import ROOT

WORDS = [["Ada", "Lovelace", "visited", "Paris"], ["the", "United", "Nations", "in", "Geneva"]]
GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O", "B-LOC"]]
# right on Ada Lovelace and Geneva, wrong type on Paris, misses the United Nations
PRED = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "O", "O", "O", "B-LOC"]]
SCORES = [[0.97, 0.41], [0.88]]


@pytest.fixture
def corpora(tmp_path):
    vocab = spacy.blank("en").vocab
    gold = [Doc(vocab, words=w, ents=t) for w, t in zip(WORDS, GOLD)]
    pred = []
    for words, tags, scores in zip(WORDS, PRED, SCORES):
        doc = Doc(vocab, words=words, ents=tags)
        doc.spans["token_ner"] = SpanGroup(
            doc, name="token_ner", attrs={"source": SPAN_GROUP_SOURCE, "scores": scores}, spans=list(doc.ents)
        )
        pred.append(doc)
    DocBin(docs=gold).to_disk(tmp_path / "test.spacy")
    DocBin(docs=pred, store_user_data=True).to_disk(tmp_path / "predictions.spacy")
    return tmp_path / "predictions.spacy", tmp_path / "test.spacy"


def test_render_shows_gold_predicted_confidences_and_mistakes(corpora, tmp_path):
    predictions, test = corpora
    out = tmp_path / "metrics" / "displacy.html"
    counts = render(predictions, test, out)
    assert counts == {"sentences": 2, "wrong": 1, "missed": 2}
    page = out.read_text(encoding="utf8")
    assert page.count("#0 gold") == 1 and page.count("#1 predicted") == 1
    assert "PER 0.97" in page and "LOC 0.88" in page
    assert "ORG 0.41 WRONG" in page.upper()  # Paris predicted as ORG
    assert "LOC MISSED" in page.upper() and "ORG MISSED" in page.upper()
    assert "#ff6b6b" in page


def test_render_limit_and_stale_predictions(corpora, tmp_path):
    predictions, test = corpora
    assert render(predictions, test, tmp_path / "one.html", limit=1)["sentences"] == 1
    stale = tmp_path / "stale.spacy"
    DocBin(docs=list(DocBin().from_disk(predictions).get_docs(spacy.blank("en").vocab))[:1]).to_disk(stale)
    with pytest.raises(ValueError, match="holds 1 docs but the gold corpus 2"):
        render(stale, test, tmp_path / "stale.html")
    assert not (tmp_path / "stale.html").exists()


def test_visualize_script(corpora, tmp_path):
    predictions, test = corpora
    out = tmp_path / "view.html"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "visualize.py"), str(predictions), str(test), str(out), "--limit", "2"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 sentences, 1 wrong and 2 missed entities" in proc.stdout
    page = out.read_text(encoding="utf8")
    # a fresh process that never imported the component still shows the confidences
    assert page.startswith("<!DOCTYPE html>") and "PER 0.97" in page
