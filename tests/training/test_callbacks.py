"""Tests of the training callbacks (`ner_component.training.callbacks`)."""
import ctypes

import numpy
import pytest
from spacy.util import registry
from thinc.api import Adam

from ner_component.training.callbacks import malloc_trim, torch_modules
from tests.util import make_examples, make_transformer_nlp


def make_freezer(patterns, **kwargs):
    config = {"cb": {"@callbacks": "ner_component.freeze_transformer.v1", "patterns": patterns, **kwargs}}
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
    assert frozen_names(nlp) == {"embeddings.word_embeddings.weight"}


def frozen_names(nlp):
    return {
        name
        for _, module in torch_modules(nlp)
        for name, param in module.named_parameters()
        if not param.requires_grad
    }


@pytest.mark.parametrize("lowest_layers,n_frozen", [(1, 1), (4, 1)], ids=["1 of 2", "4 of 2: the top one trains"])
def test_lowest_layers_stay_and_get_no_backward(tiny_bert, capsys, lowest_layers, n_frozen):
    """The embeddings and the lowest layers frozen: they stay as they were and get no
    gradient at all (the backward pass stops above them); a backbone with no more
    layers than asked keeps its top layer trained."""
    nlp = make_transformer_nlp(tiny_bert, "ner_component.reduce_first.v1")
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    nlp = make_freezer(["embeddings.*"], lowest_layers=lowest_layers)(nlp)
    assert f"Frozen the lowest {n_frozen} of the transformer's 2 layers" in capsys.readouterr().out
    frozen = frozen_names(nlp)
    assert frozen == {name for name in parameters(nlp) if name.startswith(("embeddings.", "encoder.layer.0."))}
    before = parameters(nlp)
    optimizer = Adam(0.01)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    after = parameters(nlp)
    grads = {name: param.grad for _, module in torch_modules(nlp) for name, param in module.named_parameters()}
    for name in before:
        if name in frozen:
            assert numpy.array_equal(before[name], after[name]) and grads[name] is None, name
        elif name.startswith("encoder.layer.1.attention.self.query"):
            assert not numpy.array_equal(before[name], after[name]), name


def test_layer_index_reads_the_names_of_hugging_face_encoders():
    from ner_component.training.callbacks import layer_index

    assert layer_index("encoder.layer.11.attention.self.query.weight") == 11
    assert layer_index("transformer.layer.3.ffn.lin1.weight") == 3  # DistilBERT
    assert layer_index("layers.0.mlp.weight") == 0
    assert layer_index("embeddings.word_embeddings.weight") is None
    assert layer_index("pooler.dense.weight") is None


def test_lowest_layers_must_be_a_count():
    with pytest.raises(ValueError, match="lowest_layers must be an integer >= 0, got -1"):
        make_freezer([], lowest_layers=-1)


def test_pattern_that_matches_nothing_fails(tiny_bert):
    nlp = make_transformer_nlp(tiny_bert, "ner_component.reduce_first.v1")
    nlp.initialize(lambda: make_examples(nlp))
    with pytest.raises(ValueError, match="no transformer parameter matches.*'word_embedings'"):
        make_freezer(["word_embedings"])(nlp)


def make_trimmer(every_n_steps):
    config = {"cb": {"@callbacks": "ner_component.trim_freed_memory.v1", "every_n_steps": every_n_steps}}
    return registry.resolve(config)["cb"]


def resident_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


class KeptHeap:
    """200 MB of small blocks freed under one still in use: glibc keeps the pages
    (the block on top pins the heap) until something trims."""

    def __init__(self):
        self.libc = ctypes.CDLL(None)
        self.libc.malloc.restype = ctypes.c_void_p
        self.libc.malloc.argtypes = [ctypes.c_size_t]
        self.libc.free.argtypes = [ctypes.c_void_p]
        block = 64 * 1024  # below glibc's mmap threshold: from the heap
        blocks = [self.libc.malloc(block) for _ in range(3200)]
        for address in blocks:
            ctypes.memset(address, 1, block)
        self.pinned = blocks.pop()
        for address in blocks:
            self.libc.free(address)
        self.kept = resident_kb()

    def release(self):
        self.libc.free(self.pinned)


@pytest.mark.skipif(malloc_trim() is None, reason="glibc only")
def test_trim_returns_what_glibc_keeps():
    heap = KeptHeap()
    trim = make_trimmer(10)
    trim(None, {"step": 3, "epoch": 0})  # not a step to trim at
    assert resident_kb() > heap.kept - 50_000
    trim(None, {"step": 20, "epoch": 0})
    assert resident_kb() < heap.kept - 150_000
    heap.release()


@pytest.mark.skipif(malloc_trim() is None, reason="glibc only")
def test_trim_before_to_disk_returns_what_glibc_keeps_and_the_pipeline():
    heap = KeptHeap()
    callback = registry.resolve({"cb": {"@callbacks": "ner_component.trim_before_to_disk.v1"}})["cb"]
    nlp = object()
    assert callback(nlp) is nlp  # spaCy saves what before_to_disk returns
    assert resident_kb() < heap.kept - 150_000
    heap.release()


def test_trim_every_n_steps_checked():
    with pytest.raises(ValueError, match="every_n_steps must be an integer >= 1, got 0"):
        make_trimmer(0)
