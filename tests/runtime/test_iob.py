"""Tests of the IOB2 tags and their decoding (`ner_component.runtime.iob`)."""
import itertools
import math
from typing import List

import numpy
import pytest

from ner_component.runtime.iob import (
    MISSING,
    biluo_to_tag_ids,
    iob_constraints,
    iob_tags,
    span_confidences,
    tags_to_spans,
    viterbi_decode,
)

LABELS = ["LOC", "ORG", "PER"]
TAGS = iob_tags(LABELS)  # O B-LOC I-LOC B-ORG I-ORG B-PER I-PER


def probs_to_log(probs: List[List[float]]) -> numpy.ndarray:
    return numpy.log(numpy.asarray(probs, dtype="float64"))


def one_hot_row(tag: str, p: float) -> List[float]:
    """A probability row: `p` on `tag`, the rest spread evenly."""
    rest = (1.0 - p) / (len(TAGS) - 1)
    return [p if t == tag else rest for t in TAGS]


# ------------------------------------------------------------------------ decoding


def is_valid_iob2(tag_ids: numpy.ndarray) -> bool:
    prev = "O"
    for tag_id in tag_ids:
        tag = TAGS[int(tag_id)]
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return False
        prev = tag
    return True


def test_iob_constraints():
    allowed_start, allowed = iob_constraints(TAGS)
    assert [TAGS[i] for i in numpy.flatnonzero(~allowed_start)] == ["I-LOC", "I-ORG", "I-PER"]
    i_per = TAGS.index("I-PER")
    assert [TAGS[i] for i in numpy.flatnonzero(allowed[:, i_per])] == ["B-PER", "I-PER"]
    assert allowed[TAGS.index("I-LOC"), TAGS.index("O")]
    assert allowed[TAGS.index("B-ORG"), TAGS.index("B-PER")]


def test_iob_constraints_reject_bad_tag():
    with pytest.raises(ValueError, match="'X-PER'"):
        iob_constraints(["O", "X-PER"])


def test_viterbi_never_starts_an_entity_with_i():
    # greedy argmax reads "O I-PER": an invalid sequence
    probs = [one_hot_row("O", 0.9), one_hot_row("I-PER", 0.6)]
    greedy = probs_to_log(probs).argmax(axis=1)
    assert [TAGS[i] for i in greedy] == ["O", "I-PER"]
    (best,) = viterbi_decode([probs_to_log(probs)], *iob_constraints(TAGS))
    assert is_valid_iob2(best)
    # the best valid reading: the second token begins a PER entity or is outside
    assert [TAGS[i] for i in best] in (["O", "O"], ["O", "B-PER"])


def test_viterbi_repairs_type_switch():
    # greedy: B-PER I-ORG; valid choices: B-PER I-PER or B-ORG I-ORG etc.
    probs = [one_hot_row("B-PER", 0.8), one_hot_row("I-ORG", 0.5)]
    (best,) = viterbi_decode([probs_to_log(probs)], *iob_constraints(TAGS))
    assert is_valid_iob2(best)
    assert [TAGS[i] for i in best] == ["B-PER", "O"]


def test_viterbi_matches_brute_force_on_random_batches():
    rng = numpy.random.default_rng(0)
    allowed_start, allowed = iob_constraints(TAGS)
    lengths = [0, 1, 2, 3, 4, 5]
    log_probs = []
    for n in lengths:
        logits = rng.normal(size=(n, len(TAGS))) * 3
        log_probs.append(logits - numpy.log(numpy.exp(logits).sum(axis=1, keepdims=True)))
    decoded = viterbi_decode(log_probs, allowed_start, allowed)
    for lp, best in zip(log_probs, decoded):
        assert len(best) == len(lp)
        assert is_valid_iob2(best)
        if len(lp) == 0:
            continue
        valid = [s for s in itertools.product(range(len(TAGS)), repeat=len(lp)) if is_valid_iob2(numpy.array(s))]
        brute = max(valid, key=lambda s: lp[numpy.arange(len(lp)), list(s)].sum())
        assert math.isclose(lp[numpy.arange(len(lp)), best].sum(), lp[numpy.arange(len(lp)), list(brute)].sum())


def test_viterbi_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"log_probs\[0\] has shape \(2, 3\)"):
        viterbi_decode([numpy.zeros((2, 3))], *iob_constraints(TAGS))


def test_tags_to_spans():
    ids = [TAGS.index(t) for t in ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "B-ORG"]]
    assert tags_to_spans(numpy.array(ids), TAGS) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "LOC"), (6, 7, "ORG")]


# ---------------------------------------------------------------------- confidence


def test_span_confidences_hand_made():
    probs = numpy.asarray(
        [
            one_hot_row("B-PER", 0.99),
            one_hot_row("I-PER", 0.98),
            one_hot_row("O", 0.99),
            one_hot_row("B-LOC", 0.55),
            one_hot_row("I-LOC", 0.5),
        ]
    )
    spans = [(0, 2, "PER"), (3, 5, "LOC")]
    confident, doubtful = span_confidences(probs, spans, TAGS)
    i_per = TAGS.index("I-PER")
    assert math.isclose(confident, 0.99 * 0.98 * (1 - probs[2, i_per]))
    assert math.isclose(doubtful, 0.55 * 0.5)
    assert 0.0 <= doubtful < confident <= 1.0


def test_confidence_lowered_by_a_doubtful_boundary():
    sure_end = numpy.asarray([one_hot_row("B-ORG", 0.9), one_hot_row("O", 0.9)])
    runs_on = numpy.asarray([one_hot_row("B-ORG", 0.9), one_hot_row("I-ORG", 0.45)])
    (a,) = span_confidences(sure_end, [(0, 1, "ORG")], TAGS)
    (b,) = span_confidences(runs_on, [(0, 1, "ORG")], TAGS)
    assert b < a


def test_biluo_to_tag_ids():
    biluo = ["U-LOC", "B-PER", "I-PER", "L-PER", "O", "-", None, "", "B-MISC", "L-MISC"]
    ids = biluo_to_tag_ids(biluo, TAGS)
    assert ids.dtype == numpy.int64
    expected = ["B-LOC", "B-PER", "I-PER", "I-PER", "O"]
    assert [TAGS[i] for i in ids[:5]] == expected
    # unknown (missing, misaligned) and labels outside the tag set
    assert ids[5:].tolist() == [MISSING] * 5
