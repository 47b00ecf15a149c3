"""The `token_ner` component: named-entity recognition as token classification,
one IOB2 tag per token, decoded into valid spans.

It is the spaCy counterpart of the Hugging Face token-classification recipe: a
linear softmax layer over per-token vectors (from a transformer listener, or any
`Model[List[Doc], List[Floats2d]]`), trained with cross-entropy. Unlike a plain
argmax it never produces an invalid tag sequence: the tags are decoded with a
Viterbi search over the per-token log-probabilities under the IOB2 constraints (an
`I-X` only after `B-X` or `I-X`), so every entity it sets in `doc.ents` is well formed.
With `ner_component.TokenClassifierCRF.v1` as its model it trains and decodes a
linear-chain CRF instead: learned transition scores join the constraints, and the
loss is the gold sequence's negative log-likelihood.

Every predicted entity gets a confidence, the model's probability that the tags
produce exactly that entity (under the CRF's distribution where there is one),
stored on the doc (so it survives `DocBin` and `nlp.pipe(n_process=...)`) and
exposed as `Span._.confidence`.

Split as spaCy splits `spacy/ml/models/` from `spacy/pipeline/`: the architectures
are in `token_classifier.py`, the IOB2 tags and their decoding in `iob.py`, and
this module holds the component, its factory and the extension. It reaches those
two through `_sibling`, not an import statement: see there why.
"""
import importlib
from itertools import islice
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import import_file, registry
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, SequenceCategoricalCrossentropy, set_dropout_rate
from thinc.types import Floats2d, Ints1d


def _sibling(name: str) -> ModuleType:
    """Another runtime module, `name`.py of this file's folder, imported the way
    this file was.

    The runtime modules are `spacy package --code` files, and this file runs in
    three places: as `ner_component.runtime.token_ner` in the project, as
    `<model package>.token_ner` in an installed model wheel (whose `__init__`
    imports each code file with `from . import <stem>`), and alone, outside any
    package, when `spacy package` checks each code file with
    `spacy.util.import_file(stem, path)` (spacy/cli/package.py) before copying
    them flat into the wheel. A relative import (`from . import iob`) fails in the
    third, and an absolute one names a package that doesn't exist in the second;
    so the sibling comes from this module's own package where it has one, and
    else from the file beside this one.

    name (str): The sibling's file stem, e.g. "iob".
    RETURNS (ModuleType): The module.
    """
    if __package__:
        return importlib.import_module(f"{__package__}.{name}")
    return import_file(name, Path(__file__).with_name(f"{name}.py"))


iob = _sibling("iob")
# The component's default model, and `LR_SCALE_ATTR`: importing this module
# registers the architectures its configs name.
token_classifier = _sibling("token_classifier")

# The Span extension that exposes the entity confidences.
CONFIDENCE_EXTENSION = "confidence"
# Marks the span groups this component writes, so the extension finds them
# whatever `spans_key` a pipeline uses.
SPAN_GROUP_SOURCE = "ner_component.token_ner"

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


def get_confidence(span: Span) -> Optional[float]:
    """Getter of `Span._.confidence`: the confidence that a `token_ner`
    component gave this entity, or None when none gave it (an entity set by
    another component, or a span that isn't one of its entities). Reads the
    whole doc's; to read every entity of a doc, call `doc_confidences` once.

    span (Span): An entity span.
    RETURNS (Optional[float]): The confidence, in [0, 1].
    """
    return doc_confidences(span.doc).get((span.start, span.end, span.label))


def doc_confidences(doc: Doc) -> Dict[Tuple[int, int, int], float]:
    """The confidences that `token_ner` components gave a doc's entities, in
    one pass over its span groups: what `Span._.confidence` returns for each,
    keyed by (start token, end token, label hash). Where two groups score the
    same entity, the first wins.

    doc (Doc): An annotated doc.
    RETURNS (Dict[Tuple[int, int, int], float]): Confidence by entity.
    """
    found: Dict[Tuple[int, int, int], float] = {}
    for group in doc.spans.values():
        if group.attrs.get("source") != SPAN_GROUP_SOURCE:
            continue
        for candidate, score in zip(group, group.attrs.get("scores", [])):
            found.setdefault((candidate.start, candidate.end, candidate.label), float(score))
    return found


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
    softmax cross-entropy loss (or a CRF's sequence loss) and constrained Viterbi
    decoding into valid spans.
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
        return iob.iob_tags(self.labels)

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
        tag_prior: bool = False,
    ) -> None:
        """Set the labels (from `labels`, or else from the gold entities) and
        initialize the model, which infers its output width from them.

        get_examples (Callable[[], Iterable[Example]]): Returns gold examples.
        nlp (Optional[Language]): The pipeline.
        labels (Optional[Sequence[str]]): Entity labels, e.g. from `spacy init labels`.
        tag_prior (bool): Start the output layer's bias at the log frequency of each
            tag in the examples, so the untrained layer predicts the tag prior
            instead of a uniform distribution ([initialize.components.ner] in the
            config). Its weights start from zero either way; the bias would otherwise
            spend the first steps learning that most tokens are O.
        """
        validate_get_examples(get_examples, "TokenNER.initialize")
        if labels is None:
            found = {ent.label_ for eg in get_examples() for ent in eg.reference.ents}
            labels = sorted(found)
        for label in labels:
            self.add_label(label)
        if not self.labels:
            raise ValueError(f"No entity labels for '{self.name}': the examples have no entities")
        docs = [eg.predicted for eg in islice(get_examples(), 10)]
        # Only the width of these counts: the output layer takes its nO from it.
        truths = [self.model.ops.alloc2f(len(doc), len(self.tags)) for doc in docs]
        if not docs:
            raise ValueError(f"'{self.name}' needs at least one example to initialize")
        self.model.initialize(X=docs, Y=truths)
        if tag_prior:
            self._set_tag_prior(get_examples)
        self._constraints = None

    def _set_tag_prior(self, get_examples: Callable[[], Iterable[Example]]) -> None:
        """Set the output layer's bias to the log frequency of each tag in the
        examples (add-one smoothed, so an unseen tag stays possible)."""
        counts = numpy.ones((len(self.tags),), dtype="float64")
        for eg in get_examples():
            ids = iob.biluo_to_tag_ids(eg.get_aligned_ner(), self.tags)
            counts += numpy.bincount(ids[ids != iob.MISSING], minlength=len(self.tags))
        output_layer = self.model.get_ref("output_layer")
        prior = numpy.log(counts / counts.sum()).astype("float32")
        output_layer.set_param("b", output_layer.ops.asarray1f(prior))

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
        allowed_start, allowed = self._iob_constraints()
        return iob.viterbi_decode(_log(probs), allowed_start, allowed, self._learned_transitions())

    def _iob_constraints(self) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """`iob.iob_constraints` of the tag set, computed once per tag set."""
        tags = tuple(self.tags)
        if self._constraints is None or self._constraints[0] != tags:
            self._constraints = (tags, *iob.iob_constraints(tags))
        return self._constraints[1], self._constraints[2]

    def _learned_transitions(self) -> Optional["iob.TransitionScores"]:
        """The CRF's learned scores, if the model has a CRF
        (`ner_component.TokenClassifierCRF.v1`) and it is initialized; else None."""
        if not self.model.has_ref("transitions"):
            return None
        node = self.model.get_ref("transitions")
        if not all(node.has_param(name) for name in token_classifier.TRANSITION_PARAMS):
            return None
        return iob.TransitionScores(
            *(node.ops.to_numpy(node.get_param(name)) for name in token_classifier.TRANSITION_PARAMS)
        )

    def set_annotations(self, docs: Iterable[Doc], predictions: TokenNERPrediction) -> None:
        """Set `doc.ents` from the decoded tags, replacing any entities already
        there, and keep the entities with their confidences in
        `doc.spans[spans_key]` (`attrs["scores"]`).

        docs (Iterable[Doc]): The docs.
        predictions (TokenNERPrediction): What `predict` returned for them.
        """
        tags = self.tags
        spans_key = self.cfg["spans_key"]
        tag_ids, probs = predictions
        doc_spans = [iob.tags_to_spans(ids, tags) for ids in tag_ids]
        confidences = self._confidences(probs, doc_spans) if spans_key is not None else None
        for i, (doc, spans) in enumerate(zip(docs, doc_spans)):
            ents = [Span(doc, start, end, label=label) for start, end, label in spans]
            doc.set_ents(ents, default="outside")
            if confidences is not None:
                attrs = {"source": SPAN_GROUP_SOURCE, "scores": confidences[i]}
                doc.spans[spans_key] = SpanGroup(doc, name=spans_key, attrs=attrs, spans=ents)

    def _confidences(
        self, probs: Sequence[Floats2d], doc_spans: List[List[Tuple[int, int, str]]]
    ) -> List[List[float]]:
        """Each entity's probability of being exactly that entity: under the
        per-token softmax (`iob.span_confidences`), or with a CRF under the CRF's
        distribution over tag sequences (`iob.crf_span_confidences`)."""
        learned = self._learned_transitions()
        if learned is None:
            return [iob.span_confidences(p, spans, self.tags) for p, spans in zip(probs, doc_spans)]
        return iob.crf_span_confidences(_log(probs), doc_spans, self.tags, *self._iob_constraints(), learned)

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
        learned = self._learned_transitions()
        if learned is None:
            loss, d_scores = self.get_loss(examples, probs)
        else:
            loss, d_scores, d_learned = self._crf_loss(examples, probs, learned)
            node = self.model.get_ref("transitions")
            for name, grad in zip(token_classifier.TRANSITION_PARAMS, d_learned):
                node.inc_grad(name, node.ops.asarray(grad, dtype="float32"))
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """The softmax cross-entropy of the gold tags, summed over tokens, and
        its gradient with respect to the logits (probabilities - one-hot gold).
        Tokens whose gold tag is unknown (missing, misaligned, or of a label the
        component doesn't have) add nothing. With a CRF
        (`ner_component.TokenClassifierCRF.v1`), the CRF's negative log-likelihood
        of the gold tags instead (see `_crf_loss`).

        examples (Iterable[Example]): The batch.
        scores (List[Floats2d]): The model's tag probabilities for it.
        RETURNS (Tuple[float, List[Floats2d]]): The loss and the gradient.
        """
        examples = list(examples)
        validate_examples(examples, "TokenNER.get_loss")
        learned = self._learned_transitions()
        if learned is not None:
            loss, d_scores, _ = self._crf_loss(examples, scores, learned)
            return loss, d_scores
        ops = self.model.ops
        golds = [iob.biluo_to_tag_ids(eg.get_aligned_ner(), self.tags) for eg in examples]
        # The gradient is thinc's, as in spaCy's tagger: probabilities - one-hot
        # gold, rows of unknown gold zeroed, summed over docs (not normalized).
        loss_func = SequenceCategoricalCrossentropy(normalize=False, missing_value=iob.MISSING)
        d_scores = loss_func.get_grad(scores, [ops.asarray1i(gold) for gold in golds])
        # The loss is not thinc's: thinc's cross-entropy losses report the sum of
        # the squared gradient, sum((p - y)**2) (thinc/loss.py,
        # `CategoricalCrossentropy._get_loss_from_grad`; what spaCy's tagger logs),
        # not -log p(gold). This component has always reported the cross-entropy,
        # and training logs, W&B curves and earlier runs compare on it.
        loss = 0.0
        for gold, probs in zip(golds, scores):
            known = gold != iob.MISSING
            p_gold = ops.to_numpy(probs)[numpy.arange(len(gold))[known], gold[known]]
            loss += float(-numpy.log(numpy.maximum(p_gold, iob.MIN_PROB)).sum())
        if not numpy.isfinite(loss):
            raise ValueError(f"The loss of '{self.name}' is {loss}")
        return loss, d_scores

    def _crf_loss(
        self, examples: List[Example], scores: List[Floats2d], learned: "iob.TransitionScores"
    ) -> Tuple[float, List[Floats2d], "iob.TransitionScores"]:
        """The CRF's negative log-likelihood of the gold tags, summed over docs,
        and its gradients: with respect to the logits (the tag marginals of all
        sequences minus those of the sequences that agree with the gold tags;
        log-softmax shifts each token's scores by a constant, which the CRF's
        distribution ignores) and to the learned scores (expected counts, the
        same difference). A token whose gold tag is unknown may take any tag in
        the second; a doc whose gold tags no sequence can take (an `I-X` the
        constraints forbid) adds nothing.

        examples (List[Example]): The batch.
        scores (List[Floats2d]): The model's tag probabilities for it.
        learned (iob.TransitionScores): The CRF's learned scores.
        RETURNS (Tuple[float, List[Floats2d], iob.TransitionScores]): The loss,
            the gradient of the logits and that of the learned scores.
        """
        ops = self.model.ops
        tags = tuple(self.tags)
        allowed_start, allowed = self._iob_constraints()
        log_probs = _log([ops.to_numpy(p) for p in scores])
        golds = [iob.biluo_to_tag_ids(eg.get_aligned_ner(), tags) for eg in examples]
        clamped = [_clamp_to_gold(lp, gold) for lp, gold in zip(log_probs, golds)]
        gold_paths = iob.crf_forward_backward(clamped, allowed_start, allowed, learned)
        infeasible = ~numpy.isfinite(gold_paths.log_z)
        if infeasible.any():
            clamped = [lp if bad else c for lp, c, bad in zip(log_probs, clamped, infeasible)]
            gold_paths = iob.crf_forward_backward(clamped, allowed_start, allowed, learned)
        all_paths = iob.crf_forward_backward(log_probs, allowed_start, allowed, learned)
        loss = float((all_paths.log_z - gold_paths.log_z).sum())
        if not numpy.isfinite(loss):
            raise ValueError(f"The loss of '{self.name}' is {loss}")
        d_scores = [ops.asarray2f((p - g).astype("float32")) for p, g in zip(all_paths.tags, gold_paths.tags)]
        d_learned = iob.TransitionScores(*(p - g for p, g in zip(all_paths.counts, gold_paths.counts)))
        return loss, d_scores, d_learned

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the parameters from their gradients, scaling the learning rate
        of each layer that has an `lr_scale` attribute (the output layer of
        `ner_component.TokenClassifier.v1`).

        sgd (Optimizer): The optimizer.
        """
        finish_update_with_lr_scale(self.model, sgd)


def _log(probs: Sequence[Floats2d]) -> List[numpy.ndarray]:
    """float64 log-probabilities, floored at log(MIN_PROB)."""
    return [numpy.log(numpy.maximum(numpy.asarray(p, dtype="float64"), iob.MIN_PROB)) for p in probs]


def _clamp_to_gold(log_probs: numpy.ndarray, gold: numpy.ndarray) -> numpy.ndarray:
    """The log-probabilities with every tag but the gold one at -inf, on each
    token whose gold tag is known."""
    clamped = log_probs.copy()
    known = numpy.flatnonzero(gold != iob.MISSING)
    clamped[known] = -numpy.inf
    clamped[known, gold[known]] = log_probs[known, gold[known]]
    return clamped


def finish_update_with_lr_scale(model: Model, sgd: Optimizer) -> None:
    """thinc's `Model.finish_update`, passing each node's `lr_scale` attribute
    (`token_classifier.LR_SCALE_ATTR`, default 1.0) to the optimizer as
    `Optimizer(key, param, grad, lr_scale=...)`.

    A copy of `Model.finish_update` of thinc 8.3.14 (thinc/model.py), checked
    against that version: every shim's `finish_update` first, then the parameters
    of every node with a gradient, keyed `(node.id, name)`. thinc has no per-layer
    learning rate of its own, so this can't call it; re-check it when thinc is
    upgraded. `tests/runtime/test_token_ner.py` fails if thinc's method stops
    matching it (same parameters after one step of Adam with no lr_scale set) or
    if the signatures it relies on change.

    model (Model): The model to update, e.g. the component's.
    sgd (Optimizer): The optimizer.
    """
    for node in model.walk():
        for shim in node.shims:
            shim.finish_update(sgd)
    for node in model.walk():
        lr_scale = float(node.attrs.get(token_classifier.LR_SCALE_ATTR, 1.0))
        for name in node.param_names:
            if node.has_grad(name):
                param, grad = sgd((node.id, name), node.get_param(name), node.get_grad(name), lr_scale=lr_scale)
                node.set_param(name, param)
