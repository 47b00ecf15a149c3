"""Tests of the training callbacks (`ner_component.training.callbacks`)."""
import numpy
import pytest
from spacy.util import registry
from thinc.api import Adam

from ner_component.training.callbacks import torch_modules
from tests.util import make_examples, make_transformer_nlp


def make_freezer(patterns):
    config = {"cb": {"@callbacks": "ner_component.freeze_transformer.v1", "patterns": patterns}}
    return registry.resolve(config)["cb"]


def parameters(nlp):
    return {
        name: param.detach().numpy().copy()
        for _, module in torch_modules(nlp)
        for name, param in module.named_parameters()
    }


def test_frozen_embeddings_stay_the_rest_trains(tiny_bert):
    nlp = make_transformer_nlp(tiny_bert, "ner_component.reduce_first.v1")
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    nlp = make_freezer(["embeddings.word_embeddings.*"])(nlp)
    before = parameters(nlp)
    assert "embeddings.word_embeddings.weight" in before
    optimizer = Adam(0.01)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    after = parameters(nlp)
    for name in before:
        changed = not numpy.array_equal(before[name], after[name])
        if name == "embeddings.word_embeddings.weight":
            assert not changed, name
        elif name.startswith("encoder.layer.0.attention.self.query"):
            assert changed, name
    frozen = [
        name
        for _, module in torch_modules(nlp)
        for name, param in module.named_parameters()
        if not param.requires_grad
    ]
    assert frozen == ["embeddings.word_embeddings.weight"]


def test_pattern_that_matches_nothing_fails(tiny_bert):
    nlp = make_transformer_nlp(tiny_bert, "ner_component.reduce_first.v1")
    nlp.initialize(lambda: make_examples(nlp))
    with pytest.raises(ValueError, match="no transformer parameter matches.*'word_embedings'"):
        make_freezer(["word_embedings"])(nlp)
