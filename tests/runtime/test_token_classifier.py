"""Tests of the token_ner architectures (`ner_component.runtime.token_classifier`)."""
import numpy
import pytest
from spacy.util import registry
from thinc.api import Ragged

from ner_component.runtime.token_classifier import LR_SCALE_ATTR, build_token_classifier

TINY_TOK2VEC = {
    "@architectures": "spacy.HashEmbedCNN.v2",
    "pretrained_vectors": None,
    "width": 8,
    "depth": 1,
    "embed_size": 100,
    "window_size": 1,
    "maxout_pieces": 2,
    "subword_features": False,
}


def test_output_layer_carries_the_lr_scale():
    tok2vec = registry.resolve({"t": TINY_TOK2VEC})["t"]
    model = build_token_classifier(tok2vec, lr_scale=5.0, nO=7)
    assert model.get_ref("output_layer").attrs[LR_SCALE_ATTR] == 5.0
    assert model.get_ref("tok2vec") is tok2vec
    # nothing else has one: the rest of the model takes the optimizer's rate
    assert [node.name for node in model.walk() if LR_SCALE_ATTR in node.attrs] == ["softmax"]


def test_lr_scale_must_be_positive():
    tok2vec = registry.resolve({"t": TINY_TOK2VEC})["t"]
    with pytest.raises(ValueError, match=r"lr_scale \(0.0\) must be > 0"):
        build_token_classifier(tok2vec, lr_scale=0.0)


def test_reduce_first_gives_zeros_for_empty_tokens():
    layer = registry.get("layers", "ner_component.reduce_first.v1")()
    X = numpy.arange(12, dtype="float32").reshape(6, 2)
    lengths = numpy.asarray([2, 0, 3, 1], dtype="int32")
    Y, backprop = layer(Ragged(X, lengths), is_train=True)
    assert Y.tolist() == [[0, 1], [0, 0], [4, 5], [10, 11]]
    dX = backprop(numpy.ones((4, 2), dtype="float32"))
    assert dX.data[:, 0].tolist() == [1, 0, 1, 0, 0, 1]


@pytest.mark.parametrize(
    "registry_name,name",
    [("architectures", "ner_component.TokenClassifier.v1"), ("layers", "ner_component.reduce_first.v1")],
)
def test_registered_names_resolve_here(registry_name, name):
    import ner_component.runtime.token_classifier as module

    assert registry.get(registry_name, name).__module__ == module.__name__
