"""The architectures of the `token_ner` component (as `spacy/ml/models/` holds
spaCy's, apart from its components in `spacy/pipeline/`): the token classifier
(per-token vectors -> softmax over IOB2 tags), the same with a CRF's learned
transition scores, and the first-wordpiece pooling layer for transformer listeners.
"""
from typing import Callable, List, Optional, Tuple, TypeVar

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Model, Softmax_v2, chain, with_array
from thinc.types import Floats2d, Ragged

# Model attribute read by the `token_ner` component's `finish_update`: a multiplier
# on the learning rate of the parameters of the node that carries it.
LR_SCALE_ATTR = "lr_scale"
# The names of the CRF's parameters on its transitions node (the model's
# "transitions" ref): scores of the first tag, of [previous tag, tag], of the last tag.
TRANSITION_PARAMS = ("start", "transition", "end")

InT = TypeVar("InT")


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


@registry.architectures("ner_component.TokenClassifierCRF.v1")
def build_token_classifier_crf(
    tok2vec: Model[List[Doc], List[Floats2d]],
    with_dropout: bool = True,
    lr_scale: float = 1.0,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Build a token classifier with a linear-chain CRF over its tags: the
    classifier of `ner_component.TokenClassifier.v1`, plus learned scores of the
    first tag, of each pair of consecutive tags and of the last tag (a
    "transitions" node, ref "transitions"). The `token_ner` component trains it
    with the CRF's sequence log-likelihood instead of per-token cross-entropy and
    decodes with the learned scores added to the IOB2 constraints.

    The model's output is the same per-token probabilities: the CRF's scores are
    parameters the component reads, not a layer the docs pass through.

    tok2vec (Model[List[Doc], List[Floats2d]]): One vector per token.
    with_dropout (bool): Put a dropout layer before the output layer.
    lr_scale (float): Multiplier on the learning rate of the output layer and of
        the transition scores, which start from zero too.
    nO (Optional[int]): The number of IOB2 tags; inferred in `initialize`.
    RETURNS (Model[List[Doc], List[Floats2d]]): Per-token tag probabilities.
    """
    classifier = build_token_classifier(tok2vec, with_dropout=with_dropout, lr_scale=lr_scale, nO=nO)
    transitions: Model = Model(
        "iob_transitions",
        _no_forward,
        init=_init_transitions,
        dims={"nO": nO},
        params={name: None for name in TRANSITION_PARAMS},
        attrs={LR_SCALE_ATTR: float(lr_scale)},
    )
    model: Model[List[Doc], List[Floats2d]] = Model(
        "token_classifier_crf",
        _crf_forward,
        init=_init_crf,
        layers=[classifier, transitions],
        refs={
            "tok2vec": tok2vec,
            "output_layer": classifier.get_ref("output_layer"),
            "transitions": transitions,
        },
    )
    return model


def _crf_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    return model.layers[0](docs, is_train)


def _init_crf(model: Model, X: Optional[List[Doc]] = None, Y: Optional[List[Floats2d]] = None) -> None:
    classifier, transitions = model.layers
    classifier.initialize(X=X, Y=Y)
    n_tags = model.get_ref("output_layer").get_dim("nO")
    if not transitions.has_dim("nO") or transitions.get_dim("nO") is None:
        transitions.set_dim("nO", n_tags)
    transitions.initialize()


def _init_transitions(model: Model, X: Optional[object] = None, Y: Optional[object] = None) -> None:
    n_tags = model.get_dim("nO")
    model.set_param("start", model.ops.alloc1f(n_tags))
    model.set_param("transition", model.ops.alloc2f(n_tags, n_tags))
    model.set_param("end", model.ops.alloc1f(n_tags))


def _no_forward(model: Model, X: InT, is_train: bool) -> Tuple[InT, Callable[[InT], InT]]:
    """The transitions node holds parameters; nothing passes through it."""
    return X, lambda dX: dX


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
