"""The architectures of the `token_ner` component (as `spacy/ml/models/` holds
spaCy's, apart from its components in `spacy/pipeline/`): the token classifier
(per-token vectors -> softmax over IOB2 tags) and the first-wordpiece pooling
layer for transformer listeners.
"""
from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Model, Softmax_v2, chain, with_array
from thinc.types import Floats2d, Ragged

# Model attribute read by the `token_ner` component's `finish_update`: a multiplier
# on the learning rate of the parameters of the node that carries it.
LR_SCALE_ATTR = "lr_scale"


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
