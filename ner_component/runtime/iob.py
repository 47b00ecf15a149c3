"""IOB2 tags and their decoding: the tag set of a list of labels, the IOB2
transition constraints, a Viterbi search for the best tag sequence that obeys
them, the forward-backward pass of a linear-chain CRF over the same tags (the loss
of `ner_component.TokenClassifierCRF.v1`), the entity spans of a tag sequence and
the confidence of each span, under the per-token softmax or the CRF.

Plain numpy, no spaCy object: the `token_ner` component (`token_ner.py`) decodes
its per-token probabilities with these, and tests and benchmarks call them directly.
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy
from thinc.types import Floats2d, Ints1d

OUTSIDE = "O"
# The tag id of a token whose gold tag is unknown (missing, misaligned, or of a
# label outside the tag set): the loss leaves it out.
MISSING = -1
# Floor on probabilities before taking logs, so a probability of exactly zero
# can't turn a whole Viterbi path (or a loss) into -inf.
MIN_PROB = 1e-12


def iob_tags(labels: Sequence[str]) -> List[str]:
    """The IOB2 tag set for entity labels: "O", then "B-X", "I-X" for each label.

    labels (Sequence[str]): The entity labels, in order.
    RETURNS (List[str]): The tags; the index of a tag is its column in the model output.
    """
    tags = [OUTSIDE]
    for label in labels:
        tags.extend((f"B-{label}", f"I-{label}"))
    return tags


def iob_constraints(tags: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The IOB2 transition constraints over a tag set, as boolean masks.

    tags (Sequence[str]): "O", "B-X" and "I-X" tags.
    RETURNS (Tuple[numpy.ndarray, numpy.ndarray]): `allowed_start` (n_tags,): which
        tags may start a sequence (all but I-X); `allowed` (n_tags, n_tags):
        `allowed[i, j]` is True when tag j may follow tag i (I-X only after B-X or I-X).
    """
    n_tags = len(tags)
    allowed = numpy.ones((n_tags, n_tags), dtype=bool)
    allowed_start = numpy.ones((n_tags,), dtype=bool)
    for j, tag in enumerate(tags):
        if tag == OUTSIDE:
            continue
        prefix, _, label = tag.partition("-")
        if prefix not in ("B", "I") or not label:
            raise ValueError(f"tag '{tag}' is not an IOB2 tag: expected 'O', 'B-X' or 'I-X'")
        if prefix == "I":
            allowed_start[j] = False
            for i, prev in enumerate(tags):
                allowed[i, j] = prev in (f"B-{label}", f"I-{label}")
    return allowed_start, allowed


def biluo_to_tag_ids(biluo: Sequence[Optional[str]], tags: Sequence[str]) -> numpy.ndarray:
    """The IOB2 tag ids of BILUO tags (`Example.get_aligned_ner()`): U-X and B-X
    become B-X, L-X and I-X become I-X.

    biluo (Sequence[Optional[str]]): One BILUO tag per token; None, "" or "-" where unknown.
    tags (Sequence[str]): The IOB2 tag set.
    RETURNS (numpy.ndarray): (n_tokens,) int64 tag ids, `MISSING` where the tag is
        unknown or its label isn't in the tag set.
    """
    index = {tag: i for i, tag in enumerate(tags)}
    ids = numpy.full((len(biluo),), MISSING, dtype="int64")
    for i, tag in enumerate(biluo):
        if tag is None or tag in ("", "-"):
            continue
        if tag == OUTSIDE:
            ids[i] = index[OUTSIDE]
            continue
        prefix, _, label = tag.partition("-")
        ids[i] = index.get(f"{'B' if prefix in ('B', 'U') else 'I'}-{label}", MISSING)
    return ids


class TransitionScores(NamedTuple):
    """Learned scores of a linear-chain CRF over the tags, added to a sequence's
    per-token log-probabilities: of its first tag, of each pair of consecutive tags
    and of its last tag (the parameters of `ner_component.TokenClassifierCRF.v1`)."""

    start: numpy.ndarray  # (n_tags,)
    transition: numpy.ndarray  # (n_tags, n_tags): [previous tag, tag]
    end: numpy.ndarray  # (n_tags,)


def _constrained_scores(
    allowed_start: numpy.ndarray, allowed: numpy.ndarray, learned: Optional[TransitionScores]
) -> TransitionScores:
    """The learned scores (zeros without them), -inf where the constraints forbid."""
    n_tags = allowed.shape[0]
    if learned is None:
        learned = TransitionScores(numpy.zeros((n_tags,)), numpy.zeros((n_tags, n_tags)), numpy.zeros((n_tags,)))
    for name, value, shape in zip(learned._fields, learned, ((n_tags,), (n_tags, n_tags), (n_tags,))):
        if numpy.shape(value) != shape:
            raise ValueError(f"transition scores '{name}' have shape {numpy.shape(value)}, expected {shape}")
    return TransitionScores(
        numpy.where(allowed_start, numpy.asarray(learned.start, dtype="float64"), -numpy.inf),
        numpy.where(allowed, numpy.asarray(learned.transition, dtype="float64"), -numpy.inf),
        numpy.asarray(learned.end, dtype="float64"),
    )


def _pad(log_probs: Sequence[Floats2d], n_tags: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The docs' (n_tokens, n_tags) scores padded with zeros into one
    (n_docs, max_len, n_tags) float64 array, and the docs' lengths."""
    lengths = numpy.asarray([len(lp) for lp in log_probs], dtype="int64")
    scores = numpy.zeros((len(log_probs), int(lengths.max(initial=0)), n_tags), dtype="float64")
    for i, lp in enumerate(log_probs):
        lp = numpy.asarray(lp)
        if lp.ndim != 2 or lp.shape[1] != n_tags:
            raise ValueError(f"log_probs[{i}] has shape {lp.shape}, expected (n_tokens, {n_tags})")
        scores[i, : len(lp)] = lp
    return scores, lengths


def _longest_first(lengths: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The order that puts the longest doc first, and its inverse. In that order the
    docs still running at a step of a padded batch are a prefix of it, so a step can
    compute only those: a batch of short sentences with one long doc costs its
    tokens, not n_docs x max_len.

    lengths (numpy.ndarray): (n_docs,) the docs' lengths.
    RETURNS (Tuple[numpy.ndarray, numpy.ndarray]): `order` (batch[order] is longest
        first, ties in batch order) and `restore` (ordered[restore] is the batch).
    """
    order = numpy.argsort(-lengths, kind="stable")
    restore = numpy.empty_like(order)
    restore[order] = numpy.arange(len(order))
    return order, restore


def viterbi_decode(
    log_probs: Sequence[Floats2d],
    allowed_start: numpy.ndarray,
    allowed: numpy.ndarray,
    learned: Optional[TransitionScores] = None,
) -> List[Ints1d]:
    """Find the most probable tag sequence of each doc that obeys the constraints.

    The score of a sequence is the sum of its per-token log-probabilities (plus,
    with `learned`, the CRF's scores of its start, transitions and end); a
    disallowed start or transition scores -inf. The docs of a batch are padded
    to the longest and searched together: each step is one vectorised numpy
    operation over (docs still running, previous tag, tag), and each step of the
    backtrace one over the docs.

    log_probs (Sequence[Floats2d]): Per doc, a (n_tokens, n_tags) array of log-probabilities.
    allowed_start (numpy.ndarray): (n_tags,) bool, the tags that may come first.
    allowed (numpy.ndarray): (n_tags, n_tags) bool, `allowed[i, j]`: j may follow i.
    learned (Optional[TransitionScores]): A CRF's learned scores; None for none.
    RETURNS (List[Ints1d]): The best tag ids of each doc.
    """
    n_tags = allowed.shape[0]
    n_docs = len(log_probs)
    if n_docs == 0:
        return []
    scores, lengths = _pad(log_probs, n_tags)
    max_len = scores.shape[1]
    if max_len == 0:
        return [numpy.zeros((0,), dtype="int64") for _ in log_probs]
    start, transition, end = _constrained_scores(allowed_start, allowed, learned)
    order, restore = _longest_first(lengths)
    scores, ordered_lengths = scores[order], lengths[order]
    # Finished docs keep their final scores, and point to themselves so the
    # backtrace passes through the padding unchanged.
    backpointers = numpy.empty((n_docs, max_len, n_tags), dtype="int64")
    backpointers[...] = numpy.arange(n_tags)
    best = scores[:, 0] + start  # (n_docs, n_tags)
    for t in range(1, max_len):
        n = int((ordered_lengths > t).sum())
        # candidates[d, i, j]: best path ending in tag i at t-1, then tag j at t
        candidates = best[:n, :, None] + transition[None, :, :]
        prev = candidates.argmax(axis=1)  # (n, n_tags)
        best[:n] = numpy.take_along_axis(candidates, prev[:, None, :], axis=1)[:, 0] + scores[:n, t]
        backpointers[:n, t] = prev
    path = numpy.zeros((n_docs, max_len), dtype="int64")
    path[:, max_len - 1] = (best + end).argmax(axis=1)
    rows = numpy.arange(n_docs)
    for t in range(max_len - 1, 0, -1):
        path[:, t - 1] = backpointers[rows, t, path[:, t]]
    return [path[restore[d], : lengths[d]] for d in range(n_docs)]


def _logsumexp(x: numpy.ndarray, axis: int) -> numpy.ndarray:
    """log(sum(exp(x))) along `axis`, -inf where every term is -inf."""
    peak = x.max(axis=axis, keepdims=True)
    peak = numpy.where(numpy.isfinite(peak), peak, 0.0)
    with numpy.errstate(divide="ignore"):
        return numpy.log(numpy.exp(x - peak).sum(axis=axis)) + numpy.squeeze(peak, axis=axis)


def _messages(
    scores: numpy.ndarray, lengths: numpy.ndarray, constrained: TransitionScores
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """The forward and backward messages of a padded batch and its log partition
    functions (0 for an empty doc, -inf for one no sequence is allowed).

    scores (numpy.ndarray): (n_docs, max_len, n_tags) per-token scores, max_len > 0.
    lengths (numpy.ndarray): (n_docs,) the docs' lengths.
    constrained (TransitionScores): `_constrained_scores` of the CRF.
    RETURNS (Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]): alpha, beta
        (both (n_docs, max_len, n_tags)) and log_z (n_docs,).
    """
    start, transition, end = constrained
    n_docs, max_len, n_tags = scores.shape
    # Every message is computed as it would be in the padded batch, so the result
    # doesn't depend on the order.
    order, restore = _longest_first(lengths)
    ordered, ordered_lengths = scores[order], lengths[order]
    rows = numpy.arange(n_docs)
    last = numpy.maximum(ordered_lengths - 1, 0)
    # alpha[d, t, j]: log of the summed scores of the prefixes ending in tag j at t;
    # beta[d, t, i]: of the suffixes after tag i at t, end included. -inf past the end.
    alpha = numpy.full((n_docs, max_len, n_tags), -numpy.inf)
    beta = numpy.full((n_docs, max_len, n_tags), -numpy.inf)
    alpha[:, 0] = start + ordered[:, 0]
    for t in range(1, max_len):
        n = int((ordered_lengths > t).sum())
        alpha[:n, t] = _logsumexp(alpha[:n, t - 1, :, None] + transition[None], axis=1) + ordered[:n, t]
    beta[rows, last] = end
    for t in range(max_len - 2, -1, -1):
        n = int((last > t).sum())
        beta[:n, t] = _logsumexp(transition[None] + (ordered[:n, t + 1] + beta[:n, t + 1])[:, None, :], axis=2)
    log_z = _logsumexp(alpha[rows, last] + end, axis=1)
    alpha, beta, log_z = alpha[restore], beta[restore], log_z[restore]
    return alpha, beta, numpy.where(lengths > 0, log_z, 0.0)


class CRFMarginals(NamedTuple):
    """What `crf_forward_backward` returns for a batch of docs."""

    log_z: numpy.ndarray  # (n_docs,): log of the sum over every allowed tag sequence
    tags: List[numpy.ndarray]  # per doc, (n_tokens, n_tags): P(tag at token)
    counts: TransitionScores  # expected start, transition and end counts, summed over docs


def crf_forward_backward(
    log_probs: Sequence[Floats2d],
    allowed_start: numpy.ndarray,
    allowed: numpy.ndarray,
    learned: TransitionScores,
) -> CRFMarginals:
    """The forward-backward pass of the linear-chain CRF that `viterbi_decode`
    decodes: each doc's log partition function and the marginals of its tags and
    transitions, under the distribution P(tags) proportional to exp(score(tags))
    over the sequences the constraints allow. A sequence of -inf scores (no
    allowed sequence) has log_z -inf and zero marginals.

    A doc's negative log-likelihood of its gold tags is log_z - the log_z of the
    same doc with every other tag of each known token at -inf; its gradient with
    respect to a token's scores (or the logits beneath its log-softmax) is the
    marginals of the first minus those of the second, and with respect to the
    learned scores the expected counts of the first minus those of the second.

    log_probs (Sequence[Floats2d]): Per doc, a (n_tokens, n_tags) array of log-probabilities.
    allowed_start (numpy.ndarray): (n_tags,) bool, the tags that may come first.
    allowed (numpy.ndarray): (n_tags, n_tags) bool, `allowed[i, j]`: j may follow i.
    learned (TransitionScores): The CRF's learned scores.
    RETURNS (CRFMarginals): log_z, tag marginals and expected counts.
    """
    n_tags = allowed.shape[0]
    scores, lengths = _pad(log_probs, n_tags)
    n_docs, max_len, _ = scores.shape
    constrained = _constrained_scores(allowed_start, allowed, learned)
    transition = constrained.transition
    zeros = TransitionScores(numpy.zeros((n_tags,)), numpy.zeros((n_tags, n_tags)), numpy.zeros((n_tags,)))
    if max_len == 0:
        return CRFMarginals(numpy.zeros((n_docs,)), [numpy.zeros((0, n_tags)) for _ in log_probs], zeros)
    rows = numpy.arange(n_docs)
    last = numpy.maximum(lengths - 1, 0)
    alpha, beta, log_z = _messages(scores, lengths, constrained)
    feasible = numpy.isfinite(log_z) & (lengths > 0)
    safe_z = numpy.where(feasible, log_z, 0.0)
    positions = numpy.arange(max_len)[None, :] < lengths[:, None]
    live = positions & feasible[:, None]
    with numpy.errstate(invalid="ignore"):
        tag_marginals = numpy.where(live[:, :, None], numpy.exp(alpha + beta - safe_z[:, None, None]), 0.0)
        # pair[d, t, i, j]: P(tag i at t, tag j at t + 1), all steps at once
        pair = alpha[:, :-1, :, None] + transition[None, None] + (scores[:, 1:] + beta[:, 1:])[:, :, None, :]
        pair = numpy.exp(pair - safe_z[:, None, None, None])
        pairs = numpy.where(live[:, 1:, None, None], pair, 0.0).sum(axis=(0, 1))
    tag_marginals = numpy.nan_to_num(tag_marginals)
    counts = TransitionScores(
        tag_marginals[:, 0].sum(axis=0), numpy.nan_to_num(pairs), tag_marginals[rows, last].sum(axis=0)
    )
    return CRFMarginals(log_z, [tag_marginals[i, : lengths[i]] for i in range(n_docs)], counts)


def tags_to_spans(tag_ids: Ints1d, tags: Sequence[str]) -> List[Tuple[int, int, str]]:
    """Read the entities off a valid IOB2 tag sequence.

    tag_ids (Ints1d): Tag ids, e.g. from `viterbi_decode`.
    tags (Sequence[str]): The tag set.
    RETURNS (List[Tuple[int, int, str]]): (start, end, label) of each entity.
    """
    spans: List[Tuple[int, int, str]] = []
    start: Optional[int] = None
    label: Optional[str] = None
    for i, tag_id in enumerate(tag_ids):
        prefix, _, tag_label = tags[int(tag_id)].partition("-")
        if prefix == "I" and label == tag_label:
            continue
        if start is not None and label is not None:
            spans.append((start, i, label))
        # A stray I-X (only possible without the Viterbi constraints) opens an entity.
        start, label = (i, tag_label) if prefix in ("B", "I") else (None, None)
    if start is not None and label is not None:
        spans.append((start, len(tag_ids), label))
    return spans


def span_confidences(
    probs: Floats2d, spans: Sequence[Tuple[int, int, str]], tags: Sequence[str]
) -> List[float]:
    """The confidence of each entity: the probability, under the per-token
    softmax distributions taken as independent, that the tags produce exactly
    this entity, i.e.

        P(B-X at start) * prod P(I-X inside) * (1 - P(I-X just after the end))

    The last factor is the probability that the entity doesn't run on; it is 1
    at the end of the doc. It's a product rather than a mean or minimum so that
    it is a probability of the whole span, boundaries included: it lies in
    [0, 1], a long entity has to be sure of every token, and a doubtful boundary
    lowers it.

    probs (Floats2d): (n_tokens, n_tags) tag probabilities of one doc.
    spans (Sequence[Tuple[int, int, str]]): (start, end, label) of each entity.
    tags (Sequence[str]): The tag set; the columns of `probs`.
    RETURNS (List[float]): One confidence per span.
    """
    probs = numpy.asarray(probs, dtype="float64")
    index = {tag: i for i, tag in enumerate(tags)}
    confidences = []
    for start, end, label in spans:
        begin, inside = index[f"B-{label}"], index[f"I-{label}"]
        p = probs[start, begin] * probs[start + 1 : end, inside].prod()
        if end < len(probs):
            p *= 1.0 - probs[end, inside]
        confidences.append(float(min(max(p, 0.0), 1.0)))
    return confidences


def crf_span_confidences(
    log_probs: Sequence[Floats2d],
    spans: Sequence[Sequence[Tuple[int, int, str]]],
    tags: Sequence[str],
    allowed_start: numpy.ndarray,
    allowed: numpy.ndarray,
    learned: TransitionScores,
) -> List[List[float]]:
    """The confidence of each entity under a linear-chain CRF
    (`ner_component.TokenClassifierCRF.v1`): what `span_confidences` is under the
    per-token softmax, the probability that the tags produce exactly this entity
    (B-X at start, I-X inside, no I-X just after the end), but under the CRF's
    distribution over whole tag sequences, where tokens are not independent:

        sum of exp(score(tags)) over the sequences with the entity / Z

    From one forward-backward pass over the docs: the messages into the entity's
    first token, its scores and transitions, and the messages out of the token
    after it (or the end scores), O(length) per entity. A doc no tag sequence is
    allowed for gives its entities 0.

    log_probs (Sequence[Floats2d]): Per doc, a (n_tokens, n_tags) array of log-probabilities.
    spans (Sequence[Sequence[Tuple[int, int, str]]]): Per doc, (start, end, label) of each entity.
    tags (Sequence[str]): The tag set; the columns of `log_probs`.
    allowed_start (numpy.ndarray): (n_tags,) bool, the tags that may come first.
    allowed (numpy.ndarray): (n_tags, n_tags) bool, `allowed[i, j]`: j may follow i.
    learned (TransitionScores): The CRF's learned scores.
    RETURNS (List[List[float]]): Per doc, one confidence per span.
    """
    if len(spans) != len(log_probs):
        raise ValueError(f"{len(spans)} lists of spans for {len(log_probs)} docs")
    if not any(spans):
        return [[] for _ in spans]
    scores, lengths = _pad(log_probs, allowed.shape[0])
    constrained = _constrained_scores(allowed_start, allowed, learned)
    start, transition, end = constrained
    alpha, beta, log_z = _messages(scores, lengths, constrained)
    index = {tag: i for i, tag in enumerate(tags)}
    confidences: List[List[float]] = []
    for d, doc_spans in enumerate(spans):
        doc_confidences = []
        for first, stop, label in doc_spans:
            begin, inside = index[f"B-{label}"], index[f"I-{label}"]
            if first == 0:
                log_p = start[begin]
            else:
                log_p = _logsumexp(alpha[d, first - 1] + transition[:, begin], axis=0)
            log_p += scores[d, first, begin]
            if stop - first > 1:
                log_p += transition[begin, inside] + scores[d, first + 1 : stop, inside].sum()
            if stop - first > 2:
                log_p += (stop - first - 2) * transition[inside, inside]
            tag = begin if stop - first == 1 else inside
            if stop < lengths[d]:
                after = transition[tag] + scores[d, stop] + beta[d, stop]
                after[inside] = -numpy.inf
                log_p += _logsumexp(after, axis=0)
            else:
                log_p += end[tag]
            p = float(numpy.exp(log_p - log_z[d])) if numpy.isfinite(log_z[d]) else 0.0
            doc_confidences.append(min(max(p, 0.0), 1.0))
        confidences.append(doc_confidences)
    return confidences
