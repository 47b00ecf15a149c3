"""Token-classification NER: one IOB2 tag per token, decoded into valid spans.

The `token_ner` component is the spaCy counterpart of the Hugging Face
token-classification recipe: a linear softmax layer over per-token vectors (from a
transformer listener, or any `Model[List[Doc], List[Floats2d]]`), trained with
cross-entropy. Unlike a plain argmax it never produces an invalid tag sequence:
the tags are decoded with a Viterbi search over the per-token log-probabilities
under the IOB2 constraints (an `I-X` only after `B-X` or `I-X`), so every entity it
sets in `doc.ents` is well formed.

Every predicted entity gets a confidence, stored on the doc (so it survives
`DocBin` and `nlp.pipe(n_process=...)`) and exposed as `Span._.confidence`.
"""
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, Dropout, Model, Optimizer, Softmax_v2, chain, set_dropout_rate, with_array
from thinc.types import Floats2d, Ints1d, Ragged

OUTSIDE = "O"
# The Span extension that exposes the entity confidences.
CONFIDENCE_EXTENSION = "confidence"
# Marks the span groups this component writes, so the extension finds them
# whatever `spans_key` a pipeline uses.
SPAN_GROUP_SOURCE = "ner_component.token_ner"
# Model attribute read by `TokenNER.finish_update`: a multiplier on the learning
# rate of the parameters of the node that carries it.
LR_SCALE_ATTR = "lr_scale"
# Floor on probabilities before taking logs, so a probability of exactly zero
# can't turn a whole Viterbi path into -inf.
_MIN_PROB = 1e-12

# (tag ids per doc, tag probabilities per doc): what `TokenNER.predict` returns.
TokenNERPrediction = Tuple[List[Ints1d], List[Floats2d]]

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "ner_component.TokenClassifier.v1"
with_dropout = true
lr_scale = 1.0
nO = null

[model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 96
depth = 4
embed_size = 2000
window_size = 1
maxout_pieces = 3
subword_features = true
"""
DEFAULT_TOKEN_NER_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


# --------------------------------------------------------------------------- model


@registry.architectures("ner_component.TokenClassifier.v1")
def build_token_classifier(
    tok2vec: Model[List[Doc], List[Floats2d]],
    with_dropout: bool = True,
    lr_scale: float = 1.0,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Build a token classifier: tok2vec -> (dropout) -> softmax over IOB2 tags.

    tok2vec (Model[List[Doc], List[Floats2d]]): One vector per token, e.g. a
        `spacy-transformers.TransformerListener.v1` or `spacy.HashEmbedCNN.v2`.
    with_dropout (bool): Put a dropout layer before the output layer. Its rate is
        `[training] dropout`, which spaCy sets on every dropout layer in `update`.
    lr_scale (float): Multiplier on the learning rate of the output layer,
        applied by the `token_ner` component's `finish_update` through thinc's
        `Optimizer(..., lr_scale=...)`. The output layer starts from zeros and
        has to learn from scratch while the transformer only adapts, so it can
        take a larger step; the rest of the model uses the optimizer's rate.
        The listener's `grad_factor` is no substitute: it scales the gradient
        sent to the transformer, and thinc's Adam (which also clips each
        parameter's gradient norm) takes steps that don't depend on the
        gradient's scale, so it changes nothing but turning the gradient off (0).
    nO (Optional[int]): The number of IOB2 tags; inferred in `initialize`.
    RETURNS (Model[List[Doc], List[Floats2d]]): Per-token tag probabilities,
        one row per token and one column per tag.
    """
    if not lr_scale > 0:
        raise ValueError(f"lr_scale ({lr_scale}) must be > 0")
    output_layer: Model[Floats2d, Floats2d] = Softmax_v2(nO=nO)
    output_layer.attrs[LR_SCALE_ATTR] = float(lr_scale)
    head: Model[Floats2d, Floats2d] = chain(Dropout(0.0), output_layer) if with_dropout else output_layer
    model: Model[List[Doc], List[Floats2d]] = chain(tok2vec, with_array(head))
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    return model


@registry.layers("ner_component.reduce_first.v1")
def reduce_first_or_zeros() -> Model[Ragged, Floats2d]:
    """Pool each token's wordpieces to the first one, as Hugging Face token
    classification does, and give tokens without any wordpiece a zero vector.

    thinc's `reduce_first.v1` raises on empty sequences, and a spaCy token can
    have no wordpiece: a whitespace token, or one the tokenizer drops entirely
    (control characters, a lone combining mark under accent stripping).

    RETURNS (Model[Ragged, Floats2d]): The pooling layer.
    """
    return Model("reduce_first_or_zeros", _reduce_first_forward)


def _reduce_first_forward(
    model: Model[Ragged, Floats2d], Xr: Ragged, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], Ragged]]:
    xp = model.ops.xp
    lengths = xp.asarray(Xr.lengths)
    X = model.ops.as_contig(Xr.dataXd)
    starts = xp.cumsum(lengths) - lengths
    nonempty = lengths > 0
    Y = model.ops.alloc2f(lengths.shape[0], X.shape[1])
    Y[nonempty] = X[starts[nonempty]]

    def backprop(dY: Floats2d) -> Ragged:
        dX = model.ops.alloc2f(X.shape[0], X.shape[1])
        dX[starts[nonempty]] = dY[nonempty]
        return Ragged(dX, Xr.lengths)

    return Y, backprop


# ------------------------------------------------------------------------ decoding


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


def viterbi_decode(
    log_probs: Sequence[Floats2d], allowed_start: numpy.ndarray, allowed: numpy.ndarray
) -> List[Ints1d]:
    """Find the most probable tag sequence of each doc that obeys the constraints.

    The score of a sequence is the sum of its per-token log-probabilities; a
    disallowed start or transition scores -inf. The docs of a batch are padded
    to the longest and searched together: each step is one vectorised numpy
    operation over (docs, previous tag, tag), and so is each step of the backtrace.

    log_probs (Sequence[Floats2d]): Per doc, a (n_tokens, n_tags) array of log-probabilities.
    allowed_start (numpy.ndarray): (n_tags,) bool, the tags that may come first.
    allowed (numpy.ndarray): (n_tags, n_tags) bool, `allowed[i, j]`: j may follow i.
    RETURNS (List[Ints1d]): The best tag ids of each doc.
    """
    n_tags = allowed.shape[0]
    lengths = numpy.asarray([len(lp) for lp in log_probs], dtype="int64")
    n_docs = len(log_probs)
    if n_docs == 0:
        return []
    max_len = int(lengths.max())
    if max_len == 0:
        return [numpy.zeros((0,), dtype="int64") for _ in log_probs]
    scores = numpy.zeros((n_docs, max_len, n_tags), dtype="float64")
    for i, lp in enumerate(log_probs):
        lp = numpy.asarray(lp)
        if lp.ndim != 2 or lp.shape[1] != n_tags:
            raise ValueError(f"log_probs[{i}] has shape {lp.shape}, expected (n_tokens, {n_tags})")
        scores[i, : len(lp)] = lp
    start = numpy.where(allowed_start, 0.0, -numpy.inf)
    transition = numpy.where(allowed, 0.0, -numpy.inf)
    backpointers = numpy.zeros((n_docs, max_len, n_tags), dtype="int64")
    best = scores[:, 0] + start  # (n_docs, n_tags)
    for t in range(1, max_len):
        # candidates[d, i, j]: best path ending in tag i at t-1, then tag j at t
        candidates = best[:, :, None] + transition[None, :, :]
        prev = candidates.argmax(axis=1)  # (n_docs, n_tags)
        stepped = numpy.take_along_axis(candidates, prev[:, None, :], axis=1)[:, 0] + scores[:, t]
        active = (t < lengths)[:, None]
        # Finished docs keep their final scores, and point to themselves so the
        # backtrace passes through the padding unchanged.
        best = numpy.where(active, stepped, best)
        backpointers[:, t] = numpy.where(active, prev, numpy.arange(n_tags)[None, :])
    path = numpy.zeros((n_docs, max_len), dtype="int64")
    path[:, max_len - 1] = best.argmax(axis=1)
    rows = numpy.arange(n_docs)
    for t in range(max_len - 1, 0, -1):
        path[:, t - 1] = backpointers[rows, t, path[:, t]]
    return [path[i, : lengths[i]] for i in range(n_docs)]


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


# ----------------------------------------------------------------------- component


def get_confidence(span: Span) -> Optional[float]:
    """Getter of `Span._.confidence`: the confidence that a `token_ner`
    component gave this entity, or None when none gave it (an entity set by
    another component, or a span that isn't one of its entities).

    span (Span): An entity span.
    RETURNS (Optional[float]): The confidence, in [0, 1].
    """
    for group in span.doc.spans.values():
        if group.attrs.get("source") != SPAN_GROUP_SOURCE:
            continue
        scores = group.attrs.get("scores", [])
        for candidate, score in zip(group, scores):
            if (candidate.start, candidate.end, candidate.label) == (span.start, span.end, span.label):
                return float(score)
    return None


def setup_extensions() -> None:
    """Register `Span._.confidence`, unless something already has: never
    overwrite another package's extension."""
    if not Span.has_extension(CONFIDENCE_EXTENSION):
        Span.set_extension(CONFIDENCE_EXTENSION, getter=get_confidence)


setup_extensions()


FACTORY_NAME = "token_ner"


def _register_factory_once(**kwargs: object) -> Callable[[Callable], Callable]:
    """`Language.factory`, unless a `token_ner` factory is registered already.

    This file runs under two module names: `ner_component.runtime.token_ner` where
    the project is installed, and `<model package>.token_ner` inside a model wheel
    (`spacy package --code` copies it there). spaCy refuses a second factory of the
    same name from another file (E004), so whichever copy loads first serves both:
    they are the same code.
    """

    def register(func: Callable) -> Callable:
        if Language.get_factory_name(FACTORY_NAME) in registry.factories:
            return func
        return Language.factory(FACTORY_NAME, **kwargs)(func)  # type: ignore[arg-type]

    return register


@_register_factory_once(
    assigns=["doc.ents", "doc.spans"],
    default_config={
        "model": DEFAULT_TOKEN_NER_MODEL,
        "spans_key": "token_ner",
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_token_ner(
    nlp: Language,
    name: str,
    model: Model[List[Doc], List[Floats2d]],
    spans_key: Optional[str],
    scorer: Optional[Callable],
) -> "TokenNER":
    """Create a token-classification named-entity recognizer.

    nlp (Language): The pipeline.
    name (str): The component's name in the pipeline.
    model (Model[List[Doc], List[Floats2d]]): Per-token IOB2 tag probabilities,
        e.g. `ner_component.TokenClassifier.v1`.
    spans_key (Optional[str]): The `doc.spans` key of the span group that keeps
        the predicted entities and their confidences (`attrs["scores"]`), which
        `Span._.confidence` reads; None to keep no confidences.
    scorer (Optional[Callable]): The scorer; `spacy.ner_scorer.v1` gives
        ents_p, ents_r, ents_f and ents_per_type.
    RETURNS (TokenNER): The component.
    """
    return TokenNER(nlp.vocab, model, name, spans_key=spans_key, scorer=scorer)


class TokenNER(TrainablePipe):
    """Named-entity recognition as token classification with IOB2 tags, a
    softmax cross-entropy loss and constrained Viterbi decoding into valid spans.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], List[Floats2d]],
        name: str = "token_ner",
        *,
        spans_key: Optional[str] = "token_ner",
        scorer: Optional[Callable] = get_ner_prf,
    ) -> None:
        """Initialize the component.

        vocab (Vocab): The shared vocabulary.
        model (Model[List[Doc], List[Floats2d]]): Per-token tag probabilities.
        name (str): The component's name in the pipeline; the key of its loss.
        spans_key (Optional[str]): Where in `doc.spans` to keep the entities and
            their confidences; None to keep no confidences.
        scorer (Optional[Callable]): The scoring method.
        """
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self._rehearsal_model = None
        self.cfg: Dict[str, object] = {"labels": [], "spans_key": spans_key}
        self._constraints: Optional[Tuple[Tuple[str, ...], numpy.ndarray, numpy.ndarray]] = None
        setup_extensions()

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels (PER, ORG, ...), in the order of the tag set."""
        return tuple(self.cfg["labels"])  # type: ignore[arg-type]

    @property
    def label_data(self) -> List[str]:
        """The labels, as `spacy init labels` saves them."""
        return list(self.labels)

    @property
    def tags(self) -> List[str]:
        """The IOB2 tags: "O", then "B-X", "I-X" for each label."""
        return iob_tags(self.labels)

    def add_label(self, label: str) -> int:
        """Add an entity label.

        label (str): The label, e.g. "PER".
        RETURNS (int): 0 if the label was already there, otherwise 1.
        """
        if not isinstance(label, str) or not label or "-" in label:
            raise ValueError(f"label {label!r} must be a non-empty string without '-'")
        if label in self.labels:
            return 0
        self._allow_extra_label()
        self.cfg["labels"] = [*self.labels, label]
        self.vocab.strings.add(label)
        return 1

    def _allow_extra_label(self) -> None:
        output_layer = self.model.get_ref("output_layer")
        if output_layer.has_dim("nO") and output_layer.get_dim("nO") is not None:
            raise ValueError(
                f"Can't add a label to '{self.name}': its output layer already has "
                f"{output_layer.get_dim('nO')} tags"
            )

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Set the labels (from `labels`, or else from the gold entities) and
        initialize the model, which infers its output width from them.

        get_examples (Callable[[], Iterable[Example]]): Returns gold examples.
        nlp (Optional[Language]): The pipeline.
        labels (Optional[Sequence[str]]): Entity labels, e.g. from `spacy init labels`.
        """
        validate_get_examples(get_examples, "TokenNER.initialize")
        if labels is None:
            found = {ent.label_ for eg in get_examples() for ent in eg.reference.ents}
            labels = sorted(found)
        for label in labels:
            self.add_label(label)
        if not self.labels:
            raise ValueError(f"No entity labels for '{self.name}': the examples have no entities")
        docs, truths = [], []
        for eg in islice(get_examples(), 10):
            docs.append(eg.predicted)
            truths.append(self.model.ops.asarray2f(self._one_hot(self._gold_tag_ids(eg))))
        if not docs:
            raise ValueError(f"'{self.name}' needs at least one example to initialize")
        self.model.initialize(X=docs, Y=truths)
        self._constraints = None

    def predict(self, docs: Iterable[Doc]) -> TokenNERPrediction:
        """Tag each token with the best valid IOB2 sequence, without changing the docs.

        docs (Iterable[Doc]): The docs.
        RETURNS (TokenNERPrediction): The tag ids and the tag probabilities of each doc.
        """
        docs = list(docs)
        n_tags = len(self.tags)
        if not any(len(doc) for doc in docs):
            return (
                [numpy.zeros((0,), dtype="int64") for _ in docs],
                [numpy.zeros((0, n_tags), dtype="float32") for _ in docs],
            )
        probs = [self.model.ops.to_numpy(p) for p in self.model.predict(docs)]
        if len(probs) != len(docs):
            raise ValueError(f"The model returned {len(probs)} outputs for {len(docs)} docs")
        return self.decode(probs), probs

    def decode(self, probs: Sequence[Floats2d]) -> List[Ints1d]:
        """The best valid IOB2 tag sequence of each doc given its tag probabilities.

        probs (Sequence[Floats2d]): (n_tokens, n_tags) probabilities per doc.
        RETURNS (List[Ints1d]): Tag ids per doc.
        """
        tags = tuple(self.tags)
        if self._constraints is None or self._constraints[0] != tags:
            self._constraints = (tags, *iob_constraints(tags))
        _, allowed_start, allowed = self._constraints
        log_probs = [numpy.log(numpy.maximum(numpy.asarray(p, dtype="float64"), _MIN_PROB)) for p in probs]
        return viterbi_decode(log_probs, allowed_start, allowed)

    def set_annotations(self, docs: Iterable[Doc], predictions: TokenNERPrediction) -> None:
        """Set `doc.ents` from the decoded tags, replacing any entities already
        there, and keep the entities with their confidences in
        `doc.spans[spans_key]` (`attrs["scores"]`).

        docs (Iterable[Doc]): The docs.
        predictions (TokenNERPrediction): What `predict` returned for them.
        """
        tags = self.tags
        spans_key = self.cfg["spans_key"]
        for doc, tag_ids, probs in zip(docs, *predictions):
            spans = tags_to_spans(tag_ids, tags)
            ents = [Span(doc, start, end, label=label) for start, end, label in spans]
            doc.set_ents(ents, default="outside")
            if spans_key is not None:
                scores = span_confidences(probs, spans, tags)
                attrs = {"source": SPAN_GROUP_SOURCE, "scores": scores}
                doc.spans[spans_key] = SpanGroup(doc, name=spans_key, attrs=attrs, spans=ents)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples.

        examples (Iterable[Example]): The batch.
        drop (float): The dropout rate.
        sgd (Optional[Optimizer]): The optimizer; None to only accumulate gradients.
        losses (Optional[Dict[str, float]]): Losses so far, by component name.
        RETURNS (Dict[str, float]): The losses, with this batch's cross-entropy added.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "TokenNER.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        probs, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, probs)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """The softmax cross-entropy of the gold tags, summed over tokens, and
        its gradient with respect to the logits (probabilities - one-hot gold).
        Tokens whose gold tag is unknown (missing, misaligned, or of a label the
        component doesn't have) add nothing.

        examples (Iterable[Example]): The batch.
        scores (List[Floats2d]): The model's tag probabilities for it.
        RETURNS (Tuple[float, List[Floats2d]]): The loss and the gradient.
        """
        examples = list(examples)
        validate_examples(examples, "TokenNER.get_loss")
        ops = self.model.ops
        loss = 0.0
        d_scores = []
        for eg, probs in zip(examples, scores):
            gold = self._gold_tag_ids(eg)
            known = gold >= 0
            truth = self._one_hot(gold)
            d = ops.asarray2f(ops.to_numpy(probs) - truth) * ops.asarray2f(known[:, None].astype("float32"))
            d_scores.append(d)
            p_gold = ops.to_numpy(probs)[numpy.arange(len(gold))[known], gold[known]]
            loss += float(-numpy.log(numpy.maximum(p_gold, _MIN_PROB)).sum())
        if not numpy.isfinite(loss):
            raise ValueError(f"The loss of '{self.name}' is {loss}")
        return loss, d_scores

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the parameters from their gradients, scaling the learning rate
        of each layer that has an `lr_scale` attribute (the output layer of
        `ner_component.TokenClassifier.v1`).

        sgd (Optimizer): The optimizer.
        """
        for node in self.model.walk():
            for shim in node.shims:
                shim.finish_update(sgd)
        for node in self.model.walk():
            lr_scale = float(node.attrs.get(LR_SCALE_ATTR, 1.0))
            for name in node.param_names:
                if node.has_grad(name):
                    param, grad = sgd((node.id, name), node.get_param(name), node.get_grad(name), lr_scale=lr_scale)
                    node.set_param(name, param)

    def _gold_tag_ids(self, eg: Example) -> numpy.ndarray:
        """Gold tag id of each predicted token, -1 where it's unknown."""
        index = {tag: i for i, tag in enumerate(self.tags)}
        ids = numpy.full((len(eg.predicted),), -1, dtype="int64")
        for i, biluo in enumerate(eg.get_aligned_ner()):
            if biluo is None or biluo in ("", "-"):
                continue
            if biluo == OUTSIDE:
                ids[i] = index[OUTSIDE]
                continue
            prefix, _, label = biluo.partition("-")
            tag = f"{'B' if prefix in ('B', 'U') else 'I'}-{label}"
            ids[i] = index.get(tag, -1)
        return ids

    def _one_hot(self, gold: numpy.ndarray) -> numpy.ndarray:
        truth = numpy.zeros((len(gold), len(self.tags)), dtype="float32")
        known = gold >= 0
        truth[numpy.arange(len(gold))[known], gold[known]] = 1.0
        return truth
