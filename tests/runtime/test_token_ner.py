"""Tests of the token-classification NER component (`ner_component.runtime.token_ner`)."""
import ast
import inspect
import math
import shutil
from itertools import islice
from typing import List, Tuple

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import DocBin, Span
from spacy.training import Example
from spacy.util import registry
from thinc.api import SGD, Adam, Model, Optimizer

from ner_component.runtime import RUNTIME_MODULES, token_ner
from ner_component.runtime.iob import iob_constraints, iob_tags
from ner_component.runtime.token_classifier import LR_SCALE_ATTR
from ner_component.runtime.token_ner import TokenNER, finish_update_with_lr_scale
from tests.pipelines import TINY_TOK2VEC
from tests.util import ROOT, TRAIN_DATA, make_examples, make_transformer_nlp

LABELS = ["LOC", "ORG", "PER"]
TAGS = iob_tags(LABELS)  # O B-LOC I-LOC B-ORG I-ORG B-PER I-PER


def obeys_iob2(tag_ids: numpy.ndarray) -> bool:
    allowed_start, allowed = iob_constraints(TAGS)
    ids = [int(i) for i in tag_ids]
    return not ids or (allowed_start[ids[0]] and all(allowed[a, b] for a, b in zip(ids, ids[1:])))


def make_nlp(lr_scale: float = 1.0, seed: int = 0, crf: bool = False) -> Language:
    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    architecture = "ner_component.TokenClassifierCRF.v1" if crf else "ner_component.TokenClassifier.v1"
    model = {"@architectures": architecture, "tok2vec": TINY_TOK2VEC, "lr_scale": lr_scale}
    nlp.add_pipe("token_ner", name="ner", config={"model": model})
    return nlp


def train(nlp: Language, examples: List[Example], steps: int) -> Language:
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


@pytest.fixture(scope="module")
def trained_nlp() -> Language:
    nlp = make_nlp()
    return train(nlp, make_examples(nlp), 60)


def predictions(nlp: Language, texts: List[str]) -> List[List[Tuple[int, int, str, float]]]:
    return [[(e.start, e.end, e.label_, e._.confidence) for e in doc.ents] for doc in nlp.pipe(texts)]


def test_confidences_on_predicted_entities(trained_nlp):
    doc = trained_nlp("Google hired John Smith in London")
    assert doc.ents
    for ent in doc.ents:
        assert 0.0 <= ent._.confidence <= 1.0
    group = doc.spans["token_ner"]
    assert [(s.start, s.end, s.label_) for s in group] == [(e.start, e.end, e.label_) for e in doc.ents]
    assert len(group.attrs["scores"]) == len(doc.ents)


def test_confidence_is_none_for_other_spans(trained_nlp):
    doc = trained_nlp("Google hired John Smith in London")
    assert Span(doc, 0, 2, label="PER")._.confidence is None
    assert spacy.blank("en")("Paris")[0:1]._.confidence is None


def test_doc_confidences_equal_the_getter(trained_nlp):
    from ner_component.runtime.token_ner import doc_confidences

    docs = list(trained_nlp.pipe([text for text, _ in TRAIN_DATA] + ["Google hired John Smith in London"]))
    assert any(doc.ents for doc in docs)
    for doc in docs:
        found = doc_confidences(doc)
        assert found == {(e.start, e.end, e.label): e._.confidence for e in doc.ents}
    # an entity set by hand ("hired") has no confidence in either
    doc = docs[-1]
    doc.ents = [e for e in doc.ents if e.end <= 1 or e.start >= 2] + [Span(doc, 1, 2, label="ORG")]
    hand = next(e for e in doc.ents if e.start == 1)
    assert hand._.confidence is None
    assert (hand.start, hand.end, hand.label) not in doc_confidences(doc)


def test_extension_not_overwritten():
    # the module registers the extension once, with its getter; importing or
    # creating the component again leaves whatever is registered alone
    from ner_component.runtime import token_ner

    before = Span.get_extension("confidence")
    token_ner.setup_extensions()
    make_nlp()
    assert Span.get_extension("confidence") == before


def test_confidence_survives_docbin(trained_nlp):
    docs = list(trained_nlp.pipe(["Google hired John Smith in London", "Barack Obama visited Paris today"]))
    data = DocBin(docs=docs, store_user_data=True).to_bytes()
    restored = list(DocBin().from_bytes(data).get_docs(spacy.blank("en").vocab))
    for doc, back in zip(docs, restored):
        assert [(e.text, e.label_, e._.confidence) for e in back.ents] == [
            (e.text, e.label_, e._.confidence) for e in doc.ents
        ]


def test_multiprocessing_pipe_keeps_confidence(trained_nlp):
    texts = [text for text, _ in TRAIN_DATA] * 3
    single = predictions(trained_nlp, texts)
    multi = [
        [(e.start, e.end, e.label_, e._.confidence) for e in doc.ents]
        for doc in trained_nlp.pipe(texts, n_process=2, batch_size=2)
    ]
    assert multi == single
    assert any(ents for ents in multi)
    assert all(conf is not None for ents in multi for *_, conf in ents)


# ----------------------------------------------------------------------- component


def test_labels_and_tags_from_gold(trained_nlp):
    ner = trained_nlp.get_pipe("ner")
    assert ner.labels == tuple(LABELS)
    assert ner.tags == TAGS
    assert ner.model.get_ref("output_layer").get_dim("nO") == len(TAGS)


def test_overfits_a_few_docs(trained_nlp):
    scores = trained_nlp.evaluate(make_examples(trained_nlp))
    assert scores["ents_f"] == 1.0
    assert set(scores) >= {"ents_p", "ents_r", "ents_f", "ents_per_type"}


def test_decoded_spans_valid_even_untrained():
    nlp = make_nlp(seed=1)
    ner = nlp.get_pipe("ner")
    for label in LABELS:
        ner.add_label(label)
    nlp.initialize()
    docs = [nlp.make_doc(text) for text, _ in TRAIN_DATA] + [nlp.make_doc("")]
    tag_ids, probs = ner.predict(docs)
    assert [len(t) for t in tag_ids] == [len(d) for d in docs]
    assert all(obeys_iob2(t) for t in tag_ids)
    ner.set_annotations(docs, (tag_ids, probs))
    assert docs[-1].ents == ()


def test_add_label_after_initialize_fails(trained_nlp):
    with pytest.raises(ValueError, match="already has 7 tags"):
        trained_nlp.get_pipe("ner").add_label("MISC")


def test_bad_label():
    with pytest.raises(ValueError, match="'B-PER'"):
        make_nlp().get_pipe("ner").add_label("B-PER")


def test_initialize_with_labels_argument():
    nlp = make_nlp()
    nlp.initialize(lambda: make_examples(nlp))
    ner = nlp.get_pipe("ner")
    assert ner.labels == tuple(LABELS)
    nlp2 = make_nlp()
    nlp2.get_pipe("ner").initialize(lambda: make_examples(nlp2), labels=["PER", "ORG", "LOC"])
    assert nlp2.get_pipe("ner").labels == ("PER", "ORG", "LOC")


def test_tag_prior_starts_the_untrained_layer_at_the_tag_frequencies():
    nlp = make_nlp()
    examples = make_examples(nlp)
    ner = nlp.get_pipe("ner")
    ner.initialize(lambda: examples, tag_prior=True)
    counts = numpy.ones(len(TAGS))
    for eg in examples:
        for tag in eg.get_aligned_ner():
            if tag and tag != "-":
                counts[TAGS.index(tag if tag == "O" else ("B-" if tag[0] in "BU" else "I-") + tag[2:])] += 1
    expected = counts / counts.sum()
    assert not numpy.allclose(expected, 1 / len(TAGS))
    (probs,) = ner.model.predict([nlp.make_doc("Paris is nice")])
    # The weights start at zero, so every token gets the prior, whatever its vector.
    assert numpy.allclose(probs, expected[None, :], atol=1e-6)
    plain = make_nlp()
    plain.get_pipe("ner").initialize(lambda: make_examples(plain))
    (uniform,) = plain.get_pipe("ner").model.predict([plain.make_doc("Paris is nice")])
    assert numpy.allclose(uniform, 1 / len(TAGS))


def test_loss_ignores_unknown_tokens():
    nlp = make_nlp()
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    ner = nlp.get_pipe("ner")
    doc = nlp.make_doc("Paris is nice")
    eg = Example.from_dict(doc, {"entities": ["U-LOC", "-", "O"]})
    probs = ner.model.predict([eg.predicted])
    loss, (d,) = ner.get_loss([eg], probs)
    assert numpy.allclose(d[1], 0.0)
    assert not numpy.allclose(d[0], 0.0)
    expected = -numpy.log(probs[0][0, TAGS.index("B-LOC")]) - numpy.log(probs[0][2, TAGS.index("O")])
    assert math.isclose(loss, float(expected), rel_tol=1e-5)


# The loss as token_ner computed it before it used thinc's (commit 57e9b4c): the
# reference that thinc's gradient and the reported cross-entropy must reproduce.
def gold_ids_before(ner: TokenNER, eg: Example) -> numpy.ndarray:
    index = {tag: i for i, tag in enumerate(ner.tags)}
    ids = numpy.full((len(eg.predicted),), -1, dtype="int64")
    for i, biluo in enumerate(eg.get_aligned_ner()):
        if biluo is None or biluo in ("", "-"):
            continue
        if biluo == "O":
            ids[i] = index["O"]
            continue
        prefix, _, label = biluo.partition("-")
        ids[i] = index.get(f"{'B' if prefix in ('B', 'U') else 'I'}-{label}", -1)
    return ids


def one_hot_before(ner: TokenNER, gold: numpy.ndarray) -> numpy.ndarray:
    truth = numpy.zeros((len(gold), len(ner.tags)), dtype="float32")
    known = gold >= 0
    truth[numpy.arange(len(gold))[known], gold[known]] = 1.0
    return truth


def get_loss_before(ner: TokenNER, examples: List[Example], scores: List[numpy.ndarray]):
    ops = ner.model.ops
    loss = 0.0
    d_scores = []
    for eg, probs in zip(examples, scores):
        gold = gold_ids_before(ner, eg)
        known = gold >= 0
        truth = one_hot_before(ner, gold)
        d_scores.append(ops.asarray2f(ops.to_numpy(probs) - truth) * ops.asarray2f(known[:, None].astype("float32")))
        p_gold = ops.to_numpy(probs)[numpy.arange(len(gold))[known], gold[known]]
        loss += float(-numpy.log(numpy.maximum(p_gold, 1e-12)).sum())
    return loss, d_scores


def initialize_before(ner: TokenNER, get_examples, *, nlp=None, labels=None) -> None:
    for label in sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents}):
        ner.add_label(label)
    docs, truths = [], []
    for eg in islice(get_examples(), 10):
        docs.append(eg.predicted)
        truths.append(ner.model.ops.asarray2f(one_hot_before(ner, gold_ids_before(ner, eg))))
    ner.model.initialize(X=docs, Y=truths)


def mixed_batch(nlp: Language) -> List[Example]:
    """Known tags, an unknown one ("-"), a label the component lacks (MISC), an
    empty doc and a misaligned gold tokenization."""
    examples = make_examples(nlp)
    examples.append(Example.from_dict(nlp.make_doc("Paris is nice"), {"entities": ["U-LOC", "-", "O"]}))
    examples.append(Example.from_dict(nlp.make_doc("Acme Corp won"), {"entities": ["B-MISC", "L-MISC", "O"]}))
    examples.append(Example.from_dict(nlp.make_doc(""), {"entities": []}))
    # one predicted token over two gold ones of different tags: aligned to None
    misaligned = {"words": ["New", "York", "is", "big"], "entities": ["O", "U-LOC", "O", "O"]}
    examples.append(Example.from_dict(nlp.make_doc("NewYork is big"), misaligned))
    assert examples[-1].get_aligned_ner()[0] is None
    return examples


def test_loss_and_gradient_as_before_thinc(trained_nlp):
    """thinc's SequenceCategoricalCrossentropy gives the same gradient to the bit,
    and the reported cross-entropy is the same number, on a trained model's
    (uneven) probabilities."""
    ner = trained_nlp.get_pipe("ner")
    examples = mixed_batch(trained_nlp)
    probs = ner.model.predict([eg.predicted for eg in examples])
    loss, d_scores = ner.get_loss(examples, probs)
    loss_before, d_before = get_loss_before(ner, examples, probs)
    assert loss == loss_before
    assert len(d_scores) == len(d_before)
    for d, ref in zip(d_scores, d_before):
        assert d.dtype == ref.dtype == numpy.float32 and d.shape == ref.shape
        numpy.testing.assert_array_equal(d, ref)
    unknown = examples[len(TRAIN_DATA)]
    assert not d_scores[len(TRAIN_DATA)][1].any() and gold_ids_before(ner, unknown)[1] == -1


def test_training_steps_as_before_thinc(monkeypatch):
    """Ten Adam steps from the same seed end in the same parameters, to the bit,
    with the loss of before and with thinc's: training is unchanged."""

    def run() -> Tuple[List[float], List[numpy.ndarray]]:
        nlp = make_nlp(lr_scale=3.0, seed=0)
        examples = mixed_batch(nlp)
        optimizer = nlp.initialize(lambda: examples)
        losses = [nlp.update(examples, sgd=optimizer, drop=0.1)["ner"] for _ in range(10)]
        model = nlp.get_pipe("ner").model
        return losses, [node.get_param(name) for node in model.walk() for name in node.param_names]

    with monkeypatch.context() as patched:
        patched.setattr(TokenNER, "get_loss", get_loss_before)
        patched.setattr(TokenNER, "initialize", initialize_before)
        losses_before, params_before = run()
    losses, params = run()
    assert losses == losses_before and losses[-1] < losses[0]
    for param, ref in zip(params, params_before):
        numpy.testing.assert_array_equal(param, ref)


def test_finish_update_is_thincs_when_no_layer_scales():
    """`finish_update_with_lr_scale` copies thinc's `Model.finish_update` (plus the
    lr_scale): with no lr_scale set, three Adam steps of each, on a model with a
    PyTorch shim and thinc layers, give the same parameters. Fails when thinc's
    method changes: then re-check the copy."""
    import torch
    from thinc.api import PyTorchWrapper_v2, Relu, Softmax_v2, chain, fix_random_seed

    def build() -> Model:
        fix_random_seed(0)
        model = chain(PyTorchWrapper_v2(torch.nn.Linear(4, 5)), Relu(nO=6), Softmax_v2(nO=3))
        model.initialize(X=numpy.zeros((2, 4), dtype="f"), Y=numpy.zeros((2, 3), dtype="f"))
        return model

    X = numpy.random.default_rng(0).normal(size=(8, 4)).astype("f")
    ours, thincs = build(), build()
    for model, finish in ((ours, finish_update_with_lr_scale), (thincs, Model.finish_update)):
        optimizer = Adam(0.01)
        for _ in range(3):
            Y, backprop = model.begin_update(X)
            backprop(Y - numpy.eye(3, dtype="f")[numpy.arange(8) % 3])
            finish(model, optimizer)
    pairs = list(zip(ours.walk(), thincs.walk()))
    assert any(a.param_names for a, _ in pairs) and any(a.shims for a, _ in pairs)
    for a, b in pairs:
        for name in a.param_names:
            numpy.testing.assert_array_equal(a.get_param(name), b.get_param(name))
        for shim_a, shim_b in zip(a.shims, b.shims):
            for (key, p), (_, q) in zip(shim_a._model.state_dict().items(), shim_b._model.state_dict().items()):
                assert torch.equal(p, q), key
    assert not numpy.array_equal(ours.layers[2].get_param("b"), numpy.zeros(3, dtype="f"))


def test_thinc_api_that_the_lr_scale_relies_on():
    """What `finish_update_with_lr_scale` calls and mirrors, as thinc 8.3.14 has it."""
    assert list(inspect.signature(Model.finish_update).parameters) == ["self", "optimizer"]
    params = inspect.signature(Optimizer.__call__).parameters
    assert list(params)[:4] == ["self", "key", "weights", "gradient"]
    assert params["lr_scale"].kind is inspect.Parameter.KEYWORD_ONLY and params["lr_scale"].default == 1.0
    for name in ("walk", "param_names", "has_grad", "get_param", "get_grad", "set_param", "shims", "attrs"):
        assert hasattr(Model, name), name


def test_lr_scale_multiplies_the_output_layer_step():
    steps = {}
    for scale in (1.0, 4.0):
        nlp = make_nlp(lr_scale=scale, seed=0)
        examples = make_examples(nlp)
        nlp.initialize(lambda: examples)
        ner = nlp.get_pipe("ner")
        output_layer = ner.model.get_ref("output_layer")
        assert output_layer.attrs[LR_SCALE_ATTR] == scale
        before = output_layer.get_param("b").copy()
        nlp.update(examples, sgd=SGD(0.01), drop=0.0)
        steps[scale] = output_layer.get_param("b") - before
    assert numpy.allclose(steps[4.0], 4.0 * steps[1.0], atol=1e-7)
    assert numpy.abs(steps[1.0]).sum() > 0


# ------------------------------------------------------------------- serialization


def test_to_disk_from_disk_round_trip(trained_nlp, tmp_path):
    texts = [text for text, _ in TRAIN_DATA]
    trained_nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert isinstance(loaded.get_pipe("ner"), TokenNER)
    assert loaded.get_pipe("ner").labels == tuple(LABELS)
    assert predictions(loaded, texts) == predictions(trained_nlp, texts)


def test_pipe_to_disk_from_disk_round_trip(trained_nlp, tmp_path):
    texts = [text for text, _ in TRAIN_DATA]
    trained_nlp.get_pipe("ner").to_disk(tmp_path / "ner")
    nlp2 = make_nlp(seed=3)
    nlp2.get_pipe("ner").from_disk(tmp_path / "ner")
    assert predictions(nlp2, texts) == predictions(trained_nlp, texts)


def test_to_bytes_from_bytes_round_trip(trained_nlp):
    texts = [text for text, _ in TRAIN_DATA]
    nlp2 = make_nlp(seed=3)
    nlp2.get_pipe("ner").from_bytes(trained_nlp.get_pipe("ner").to_bytes())
    assert predictions(nlp2, texts) == predictions(trained_nlp, texts)
    nlp3 = spacy.blank("en").from_config(trained_nlp.config)
    nlp3.from_bytes(trained_nlp.to_bytes())
    assert predictions(nlp3, texts) == predictions(trained_nlp, texts)


# ----------------------------------------------------------------------------- CRF


@pytest.fixture(scope="module")
def crf_nlp() -> Language:
    nlp = make_nlp(lr_scale=3.0, crf=True)
    return train(nlp, make_examples(nlp), 60)


def crf_paths(ner: TokenNER, log_probs: numpy.ndarray) -> Tuple[List[Tuple[int, ...]], numpy.ndarray]:
    """Every tag sequence of a doc and its CRF score (-inf where the IOB2
    constraints forbid it), by enumeration: the reference for the component."""
    import itertools

    node = ner.model.get_ref("transitions")
    start, transition, end = (node.get_param(name).astype("float64") for name in ("start", "transition", "end"))
    allowed_start, allowed = iob_constraints(ner.tags)

    def score(path: Tuple[int, ...]) -> float:
        if not allowed_start[path[0]] or not all(allowed[a, b] for a, b in zip(path, path[1:])):
            return -math.inf
        pairs = sum(transition[a, b] for a, b in zip(path, path[1:]))
        return float(start[path[0]] + end[path[-1]] + pairs + log_probs[range(len(path)), list(path)].sum())

    paths = list(itertools.product(range(len(ner.tags)), repeat=len(log_probs)))
    return paths, numpy.array([score(path) for path in paths])


def crf_nll(ner: TokenNER, logits: numpy.ndarray, gold: List[str]) -> float:
    """The CRF's negative log-likelihood of a fully known gold sequence."""
    log_probs = logits - numpy.log(numpy.exp(logits).sum(axis=1, keepdims=True))
    paths, scores = crf_paths(ner, log_probs)
    gold_path = tuple(ner.tags.index(tag) for tag in gold)
    return float(numpy.log(numpy.exp(scores).sum()) - scores[paths.index(gold_path)])


def test_crf_loss_and_gradient_match_enumeration(crf_nlp):
    """The trained CRF's loss is the sequence negative log-likelihood, and its
    gradient with respect to the logits is that loss's, by central differences."""
    ner = crf_nlp.get_pipe("ner")
    doc = crf_nlp.make_doc("Ada met Bob")
    gold = ["B-PER", "O", "B-PER"]
    eg = Example.from_dict(doc, {"entities": ["U-PER", "O", "U-PER"]})
    logits = numpy.random.default_rng(0).normal(size=(3, len(ner.tags)))
    probs = numpy.exp(logits) / numpy.exp(logits).sum(axis=1, keepdims=True)
    loss, (d_logits,) = ner.get_loss([eg], [probs.astype("float32")])
    assert math.isclose(loss, crf_nll(ner, logits, gold), rel_tol=1e-4)
    numeric = numpy.zeros_like(logits)
    for index in numpy.ndindex(logits.shape):
        step = numpy.zeros_like(logits)
        step[index] = 1e-5
        numeric[index] = (crf_nll(ner, logits + step, gold) - crf_nll(ner, logits - step, gold)) / 2e-5
    numpy.testing.assert_allclose(d_logits, numeric, atol=1e-4)


def test_crf_trains_decodes_valid_spans_and_round_trips(crf_nlp, tmp_path):
    ner = crf_nlp.get_pipe("ner")
    transitions = ner.model.get_ref("transitions")
    assert transitions.get_param("transition").any(), "the transition scores never moved"
    _, allowed = iob_constraints(ner.tags)
    assert not transitions.get_param("transition")[~allowed].any(), "a forbidden transition got a gradient"
    assert crf_nlp.evaluate(make_examples(crf_nlp))["ents_f"] == 1.0
    texts = [text for text, _ in TRAIN_DATA]
    pred = predictions(crf_nlp, texts)
    for doc in crf_nlp.pipe(texts):
        tag_ids = [ner.tags.index(f"{t.ent_iob_}-{t.ent_type_}") if t.ent_type_ else 0 for t in doc]
        assert obeys_iob2(numpy.asarray(tag_ids))
    crf_nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert predictions(loaded, texts) == pred
    numpy.testing.assert_array_equal(
        loaded.get_pipe("ner").model.get_ref("transitions").get_param("transition"), transitions.get_param("transition")
    )


def test_crf_confidence_is_the_entity_probability_under_the_crf(crf_nlp):
    """With a CRF, `Span._.confidence` of each predicted entity is the summed
    probability of the tag sequences that produce exactly it (B-X, I-X..., then
    no I-X), by enumeration over the trained CRF; not the per-token product."""
    ner = crf_nlp.get_pipe("ner")
    for text in ("Ada met Bob", "Paris is nice", "Bob Smith"):
        doc = crf_nlp(text)
        assert doc.ents, text
        (probs,) = ner.model.predict([crf_nlp.make_doc(text)])
        log_probs = numpy.log(numpy.maximum(numpy.asarray(probs, dtype="float64"), 1e-12))
        paths, scores = crf_paths(ner, log_probs)
        weights = numpy.exp(scores - numpy.log(numpy.exp(scores).sum()))
        product = token_ner.iob.span_confidences(probs, [(e.start, e.end, e.label_) for e in doc.ents], ner.tags)
        for ent, softmax_confidence in zip(doc.ents, product):
            begin, inside = ner.tags.index(f"B-{ent.label_}"), ner.tags.index(f"I-{ent.label_}")
            entity = (begin,) + (inside,) * (len(ent) - 1)
            expected = sum(
                w
                for path, w in zip(paths, weights)
                if path[ent.start : ent.end] == entity and (ent.end == len(doc) or path[ent.end] != inside)
            )
            assert ent._.confidence == pytest.approx(expected, rel=1e-6)
            assert ent._.confidence != pytest.approx(softmax_confidence, rel=1e-3)


def test_crf_loss_ignores_unknown_tokens(crf_nlp):
    """A doc of unknown gold tags adds nothing; an unknown token among known ones
    leaves the CRF free to pick its tag, so the loss is below that of either
    choice made known."""
    ner = crf_nlp.get_pipe("ner")
    doc = crf_nlp.make_doc("Paris is nice")
    probs = ner.model.predict([doc])
    unknown = Example.from_dict(doc, {"entities": ["-", "-", "-"]})
    loss, (d,) = ner.get_loss([unknown], probs)
    assert loss == pytest.approx(0.0, abs=1e-9) and numpy.allclose(d, 0.0)
    partial = ner.get_loss([Example.from_dict(doc, {"entities": ["U-LOC", "-", "O"]})], probs)[0]
    as_o = ner.get_loss([Example.from_dict(doc, {"entities": ["U-LOC", "O", "O"]})], probs)[0]
    as_per = ner.get_loss([Example.from_dict(doc, {"entities": ["U-LOC", "U-PER", "O"]})], probs)[0]
    assert partial < min(as_o, as_per)


def test_crf_loss_skips_a_gold_sequence_the_constraints_forbid(crf_nlp, monkeypatch):
    """A doc whose gold tags start with I-PER (no allowed sequence agrees with
    them) adds no loss and no gradient; the batch's other doc counts as alone."""
    ner = crf_nlp.get_pipe("ner")
    docs = [crf_nlp.make_doc("Ada met Bob"), crf_nlp.make_doc("Paris is nice")]
    examples = [Example.from_dict(docs[0], {"entities": ["U-PER", "O", "U-PER"]}),
                Example.from_dict(docs[1], {"entities": ["U-LOC", "O", "O"]})]
    probs = ner.model.predict(docs)
    alone, (d_alone,) = ner.get_loss(examples[1:], probs[1:])
    forbidden = numpy.asarray([TAGS.index("I-PER"), 0, 0])
    real = token_ner.iob.biluo_to_tag_ids
    monkeypatch.setattr(
        token_ner.iob, "biluo_to_tag_ids", lambda biluo, tags: forbidden if biluo[0] == "U-PER" else real(biluo, tags)
    )
    loss, (d_bad, d_other) = ner.get_loss(examples, probs)
    assert loss == pytest.approx(alone) and not d_bad.any()
    numpy.testing.assert_allclose(d_other, d_alone)


def test_crf_update_accumulates_transition_gradients(crf_nlp):
    """`update` without an optimizer adds the transition scores' gradient (as
    spaCy's `accumulate_gradient` calls it); `finish_update` applies it at the
    output layer's lr_scale."""
    nlp = make_nlp(lr_scale=3.0, crf=True)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    node = nlp.get_pipe("ner").model.get_ref("transitions")
    assert node.attrs[LR_SCALE_ATTR] == 3.0
    nlp.update(examples[:1], sgd=False)
    first = node.get_grad("transition").copy()
    nlp.update(examples[1:], sgd=False)
    assert first.any() and not numpy.array_equal(node.get_grad("transition"), first)
    nlp.get_pipe("ner").finish_update(optimizer)
    assert node.get_param("transition").any()


# ------------------------------------------------------------------------ registry


@pytest.mark.parametrize(
    "registry_name,name",
    [
        ("factories", "token_ner"),
        ("architectures", "ner_component.TokenClassifier.v1"),
        ("architectures", "ner_component.TokenClassifierCRF.v1"),
        ("layers", "ner_component.reduce_first.v1"),
        ("scorers", "spacy.ner_scorer.v1"),
    ],
)
def test_registered_names_resolve(registry_name, name):
    assert registry.has(registry_name, name)
    assert callable(registry.get(registry_name, name))


@pytest.mark.parametrize("name", ["cpu_token_ner.cfg", "cpu_e5.cfg", "gpu.cfg", "cpu.cfg"])
def test_config_resolves_and_is_filled(name):
    from spacy.schemas import ConfigSchemaInit, ConfigSchemaTraining

    config_path = ROOT / "configs" / name
    config = spacy.util.load_config(config_path)
    if name != "cpu.cfg":
        assert config["components"]["ner"]["factory"] == "token_ner"
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    # what `spacy init fill-config` checks: filling adds nothing
    assert nlp.config.to_str() == config.to_str()
    # the training and initialize blocks resolve too (loggers, batchers, callbacks)
    resolved = nlp.config.interpolate()
    registry.resolve(resolved["training"], schema=ConfigSchemaTraining)
    registry.resolve(resolved["initialize"], schema=ConfigSchemaInit)


# --------------------------------------------------------------------- transformer


@pytest.mark.parametrize("pooling", ["ner_component.reduce_first.v1", "reduce_mean.v1"])
def test_transformer_listener_trains_and_round_trips(tiny_bert, tmp_path, pooling):
    nlp = make_transformer_nlp(tiny_bert, pooling)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    losses: List[float] = []
    for _ in range(8):
        losses.append(nlp.update(examples, sgd=optimizer, drop=0.0)["ner"])
    assert losses[-1] < losses[0]
    texts = [text for text, _ in TRAIN_DATA]
    # a whitespace token has no wordpiece: the first-piece pooling gives it zeros
    texts.append("Paris  and   London")
    before = predictions(nlp, texts)
    for ents in before:
        for start, end, label, conf in ents:
            assert label in LABELS and 0.0 <= conf <= 1.0
    nlp.to_disk(tmp_path / "pipeline")
    assert predictions(spacy.load(tmp_path / "pipeline"), texts) == before


# ------------------------------------------------------------------------ siblings


def test_siblings_come_from_the_same_package():
    import ner_component.runtime.iob
    import ner_component.runtime.token_classifier

    assert token_ner.iob is ner_component.runtime.iob
    assert token_ner.token_classifier is ner_component.runtime.token_classifier


def test_siblings_load_beside_the_file_outside_a_package(tmp_path):
    """As `spacy package` checks a --code file: alone, with `import_file`, no package."""
    from spacy.util import import_file

    import ner_component.runtime.token_classifier as ours

    for name in RUNTIME_MODULES:
        shutil.copy(ROOT / "ner_component" / "runtime" / f"{name}.py", tmp_path)
    try:
        module = import_file("token_ner", tmp_path / "token_ner.py")
        assert module.__package__ == ""
        assert module.iob.__file__ == str(tmp_path / "iob.py")
        assert module.token_classifier.__file__ == str(tmp_path / "token_classifier.py")
        assert module.iob.iob_tags(["PER"]) == ["O", "B-PER", "I-PER"]
    finally:
        # the copy registered its architectures over ours: give the registry ours back
        registry.architectures.register("ner_component.TokenClassifier.v1", func=ours.build_token_classifier)
        registry.layers.register("ner_component.reduce_first.v1", func=ours.reduce_first_or_zeros)


def test_every_sibling_is_a_code_file_loaded_before_its_user():
    """A module `_sibling` loads must go into the wheel (RUNTIME_MODULES), before
    the module that loads it."""
    tree = ast.parse((ROOT / "ner_component" / "runtime" / "token_ner.py").read_text())
    loaded = [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_sibling"
    ]
    assert sorted(loaded) == ["iob", "token_classifier"]
    for name in loaded:
        assert RUNTIME_MODULES.index(name) < RUNTIME_MODULES.index("token_ner")
