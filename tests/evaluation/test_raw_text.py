"""Scoring on raw text: what users send, split by the pipeline's own tokenizer."""
import json

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from ner_component.evaluation.raw_text import evaluate_raw_text, raw_text_examples, score_char_spans


def _gold(words, tags, spaces=None):
    return Doc(Vocab(), words=words, spaces=spaces, ents=tags)


CHARS = list("香港著名演員黃百鳴")
TAGS = ["B-LOC", "I-LOC", "O", "O", "O", "O", "B-PER", "I-PER", "I-PER"]


def test_texts_as_written_whatever_spaces_the_corpus_stored():
    spaced = [_gold(CHARS, TAGS), _gold(["Obama", "visited", "Paris"], ["B-PER", "O", "B-LOC"])]
    natural = [_gold(CHARS, TAGS, [False] * 9), spaced[1]]
    # a corpus of one character-segmented doc: its text is joined
    assert raw_text_examples(spaced[:1]) == raw_text_examples(natural[:1]) == [
        ("香港著名演員黃百鳴", {(0, 2, "LOC"), (6, 9, "PER")})
    ]
    # a corpus of a space-separated language: tokens separated by one space, none at the end
    assert raw_text_examples(spaced[1:]) == [("Obama visited Paris", {(0, 5, "PER"), (14, 19, "LOC")})]


def test_char_span_scores():
    gold = [{(0, 2, "LOC"), (6, 9, "PER")}, {(0, 5, "PER")}]
    predicted = [{(0, 2, "LOC"), (6, 8, "PER")}, {(0, 5, "PER"), (7, 9, "ORG")}]
    scores = score_char_spans(gold, predicted)
    assert scores["ents_p"] == pytest.approx(2 / 4) and scores["ents_r"] == pytest.approx(2 / 3)
    assert scores["ents_f"] == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))
    assert scores["ents_per_type"]["PER"] == pytest.approx({"p": 0.5, "r": 0.5, "f": 0.5})
    assert scores["ents_per_type"]["ORG"] == {"p": 0.0, "r": 0.0, "f": 0.0}


@pytest.mark.parametrize("tokenizer,expected_f", [("ner_component.CharacterTokenizer.v1", 1.0), ("spacy.Tokenizer.v1", 0.0)])
def test_the_pipelines_tokenizer_decides(tmp_path, tokenizer, expected_f):
    """The same entity ruler finds the entities in unspaced text only when the
    tokenizer splits it into characters."""
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": tokenizer}}})
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([
        {"label": "LOC", "pattern": [{"ORTH": "香"}, {"ORTH": "港"}]},
        {"label": "PER", "pattern": [{"ORTH": "黃"}, {"ORTH": "百"}, {"ORTH": "鳴"}]},
    ])
    nlp.to_disk(tmp_path / "model")
    DocBin(docs=[_gold(CHARS, TAGS)]).to_disk(tmp_path / "test.spacy")
    scores = evaluate_raw_text(tmp_path / "model", tmp_path / "test.spacy", tmp_path / "metrics")
    assert scores["ents_f"] == expected_f
    assert json.loads((tmp_path / "metrics" / "raw_text.json").read_text())["ents_f"] == expected_f
