"""Tests of the IOB2 tags and their decoding (`ner_component.runtime.iob`)."""
import itertools
import math
from typing import List

import numpy
import pytest

from ner_component.runtime.iob import (
    MISSING,
    TransitionScores,
    biluo_to_tag_ids,
    crf_forward_backward,
    crf_span_confidences,
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


# --------------------------------------------------------------------------- CRF


def random_crf(seed: int) -> TransitionScores:
    rng = numpy.random.default_rng(seed)
    n = len(TAGS)
    return TransitionScores(rng.normal(size=n), rng.normal(size=(n, n)), rng.normal(size=n))


def crf_score(lp: numpy.ndarray, path: tuple, learned: TransitionScores) -> float:
    """A tag sequence's CRF score, -inf when the IOB2 constraints forbid it."""
    if not is_valid_iob2(numpy.array(path)):
        return -math.inf
    score = learned.start[path[0]] + learned.end[path[-1]] + lp[numpy.arange(len(path)), list(path)].sum()
    return float(score + sum(learned.transition[a, b] for a, b in zip(path, path[1:])))


def test_crf_forward_backward_matches_enumeration():
    """log Z, the tag marginals and the expected start, transition and end counts
    of a padded batch (lengths 0-4, one doc with a clamped token) equal those of
    summing over every tag sequence."""
    rng = numpy.random.default_rng(1)
    learned = random_crf(2)
    log_probs = [rng.normal(size=(n, len(TAGS))) for n in (3, 0, 1, 4, 2)]
    log_probs[3][1, 1:] = -numpy.inf  # the second token is O
    result = crf_forward_backward(log_probs, *iob_constraints(TAGS), learned)
    n = len(TAGS)
    counts = [numpy.zeros(n), numpy.zeros((n, n)), numpy.zeros(n)]
    for i, lp in enumerate(log_probs):
        if len(lp) == 0:
            assert result.log_z[i] == 0.0 and result.tags[i].shape == (0, n)
            continue
        paths = list(itertools.product(range(n), repeat=len(lp)))
        scores = numpy.array([crf_score(lp, path, learned) for path in paths])
        log_z = numpy.log(numpy.exp(scores).sum())
        assert math.isclose(result.log_z[i], log_z, rel_tol=1e-9)
        marginals = numpy.zeros((len(lp), n))
        for path, p in zip(paths, numpy.exp(scores - log_z)):
            marginals[numpy.arange(len(lp)), list(path)] += p
            counts[0][path[0]] += p
            counts[2][path[-1]] += p
            for a, b in zip(path, path[1:]):
                counts[1][a, b] += p
        numpy.testing.assert_allclose(result.tags[i], marginals, atol=1e-12)
    assert not result.tags[3][1, 1:].any()
    for got, expected in zip(result.counts, counts):
        numpy.testing.assert_allclose(got, expected, atol=1e-12)


def test_crf_forward_backward_of_no_allowed_sequence():
    """A doc whose only tag is I-PER at the start: no sequence is allowed, log Z is
    -inf and it adds no marginals; the other doc of the batch is unaffected."""
    learned = random_crf(3)
    lp = numpy.full((2, len(TAGS)), -numpy.inf)
    lp[:, TAGS.index("I-PER")] = 0.0
    other = numpy.random.default_rng(4).normal(size=(2, len(TAGS)))
    both = crf_forward_backward([lp, other], *iob_constraints(TAGS), learned)
    alone = crf_forward_backward([other], *iob_constraints(TAGS), learned)
    assert both.log_z[0] == -math.inf and not both.tags[0].any()
    assert both.log_z[1] == alone.log_z[0]
    for got, expected in zip(both.counts, alone.counts):
        numpy.testing.assert_array_equal(got, expected)


def test_viterbi_with_learned_scores_matches_brute_force():
    rng = numpy.random.default_rng(5)
    learned = random_crf(6)
    log_probs = [rng.normal(size=(n, len(TAGS))) for n in (1, 4, 0, 3)]
    decoded = viterbi_decode(log_probs, *iob_constraints(TAGS), learned)
    for lp, best in zip(log_probs, decoded):
        if len(lp) == 0:
            assert len(best) == 0
            continue
        paths = list(itertools.product(range(len(TAGS)), repeat=len(lp)))
        brute = max(paths, key=lambda path: crf_score(lp, path, learned))
        assert math.isclose(crf_score(lp, tuple(best), learned), crf_score(lp, brute, learned))


def test_learned_scores_change_the_decoding():
    """A strong learned O -> B-PER transition turns a doubtful second token into a
    PER entity that the per-token probabilities alone leave outside."""
    lp = probs_to_log([one_hot_row("O", 0.9), one_hot_row("O", 0.5)])
    n = len(TAGS)
    (plain,) = viterbi_decode([lp], *iob_constraints(TAGS))
    transition = numpy.zeros((n, n))
    transition[TAGS.index("O"), TAGS.index("B-PER")] = 10.0
    learned = TransitionScores(numpy.zeros(n), transition, numpy.zeros(n))
    (with_crf,) = viterbi_decode([lp], *iob_constraints(TAGS), learned)
    assert [TAGS[i] for i in plain] == ["O", "O"]
    assert [TAGS[i] for i in with_crf] == ["O", "B-PER"]


def test_learned_scores_of_a_wrong_shape_are_rejected():
    n = len(TAGS)
    learned = TransitionScores(numpy.zeros(n), numpy.zeros((n, n - 1)), numpy.zeros(n))
    with pytest.raises(ValueError, match=r"'transition' have shape \(7, 6\), expected \(7, 7\)"):
        viterbi_decode([numpy.zeros((2, n))], *iob_constraints(TAGS), learned)


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


def every_span(n: int):
    for first in range(n):
        for stop in range(first + 1, n + 1):
            for label in LABELS:
                yield first, stop, label


def test_crf_of_a_batch_equals_each_doc_alone():
    """Short docs around a long one, lengths tied and unsorted (the messages run
    over the running docs only, longest first): each doc's log Z, marginals and
    entity confidences and best tag sequences (with the CRF's scores and without)
    are those of the doc alone, to the bit."""
    rng = numpy.random.default_rng(11)
    learned = random_crf(12)
    constraints = iob_constraints(TAGS)
    log_probs = [numpy.log(rng.dirichlet(numpy.ones(len(TAGS)), size=n)) for n in (2, 9, 0, 2, 1, 30, 5)]
    spans = [[(0, 1, "PER")] if len(lp) else [] for lp in log_probs]
    batch = crf_forward_backward(log_probs, *constraints, learned)
    confidences = crf_span_confidences(log_probs, spans, TAGS, *constraints, learned)
    for i, lp in enumerate(log_probs):
        alone = crf_forward_backward([lp], *constraints, learned)
        assert batch.log_z[i] == alone.log_z[0]
        numpy.testing.assert_array_equal(batch.tags[i], alone.tags[0])
        assert confidences[i] == crf_span_confidences([lp], [spans[i]], TAGS, *constraints, learned)[0]
    for scores in (learned, None):
        paths = viterbi_decode(log_probs, *constraints, scores)
        for lp, path in zip(log_probs, paths):
            numpy.testing.assert_array_equal(path, viterbi_decode([lp], *constraints, scores)[0])


def test_crf_span_confidences_match_enumeration():
    """Every possible entity of a padded batch (lengths 1-4, one doc with a
    clamped token): its confidence is the summed probability of the tag
    sequences with B-X at its start, I-X inside and no I-X just after it."""
    rng = numpy.random.default_rng(7)
    learned = random_crf(8)
    log_probs = [rng.normal(size=(n, len(TAGS))) for n in (3, 1, 4, 2)]
    log_probs[2][2, 1:] = -numpy.inf  # the third token is O
    spans = [list(every_span(len(lp))) for lp in log_probs]
    got = crf_span_confidences(log_probs, spans, TAGS, *iob_constraints(TAGS), learned)
    for lp, doc_spans, doc_got in zip(log_probs, spans, got):
        paths = list(itertools.product(range(len(TAGS)), repeat=len(lp)))
        weights = numpy.exp([crf_score(lp, path, learned) for path in paths])
        weights /= weights.sum()
        for (first, stop, label), confidence in zip(doc_spans, doc_got):
            entity = (TAGS.index(f"B-{label}"),) + (TAGS.index(f"I-{label}"),) * (stop - first - 1)
            expected = sum(
                w
                for path, w in zip(paths, weights)
                if path[first:stop] == entity and (stop == len(lp) or TAGS[path[stop]] != f"I-{label}")
            )
            assert math.isclose(confidence, expected, rel_tol=1e-9, abs_tol=1e-15), (first, stop, label)
    assert all(c == 0.0 for (first, stop, _), c in zip(spans[2], got[2]) if first <= 2 < stop)


def test_crf_span_confidences_of_no_allowed_sequence_and_no_spans():
    learned = random_crf(9)
    lp = numpy.full((2, len(TAGS)), -numpy.inf)
    lp[:, TAGS.index("I-PER")] = 0.0
    other = numpy.zeros((0, len(TAGS)))
    assert crf_span_confidences([lp, other], [[(0, 2, "PER")], []], TAGS, *iob_constraints(TAGS), learned) == [
        [0.0],
        [],
    ]
    assert crf_span_confidences([other], [[]], TAGS, *iob_constraints(TAGS), learned) == [[]]
    with pytest.raises(ValueError, match="1 lists of spans for 2 docs"):
        crf_span_confidences([lp, lp], [[]], TAGS, *iob_constraints(TAGS), learned)


def test_biluo_to_tag_ids():
    biluo = ["U-LOC", "B-PER", "I-PER", "L-PER", "O", "-", None, "", "B-MISC", "L-MISC"]
    ids = biluo_to_tag_ids(biluo, TAGS)
    assert ids.dtype == numpy.int64
    expected = ["B-LOC", "B-PER", "I-PER", "I-PER", "O"]
    assert [TAGS[i] for i in ids[:5]] == expected
    # unknown (missing, misaligned) and labels outside the tag set
    assert ids[5:].tolist() == [MISSING] * 5
