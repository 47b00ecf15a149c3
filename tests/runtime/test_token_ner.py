"""Tests of the token-classification NER component (`ner_component.runtime.token_ner`)."""
import itertools
import math
from typing import Any, Dict, List, Tuple

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import DocBin, Span
from spacy.training import Example
from spacy.util import registry
from thinc.api import SGD

from ner_component.runtime.token_ner import (
    LR_SCALE_ATTR,
    TokenNER,
    iob_constraints,
    iob_tags,
    span_confidences,
    tags_to_spans,
    viterbi_decode,
)
from tests.util import ROOT, TRAIN_DATA, make_examples, make_transformer_nlp

LABELS = ["LOC", "ORG", "PER"]
TAGS = iob_tags(LABELS)  # O B-LOC I-LOC B-ORG I-ORG B-PER I-PER
TINY_TOK2VEC: Dict[str, Any] = {
    "@architectures": "spacy.HashEmbedCNN.v2",
    "pretrained_vectors": None,
    "width": 16,
    "depth": 1,
    "embed_size": 500,
    "window_size": 1,
    "maxout_pieces": 2,
    "subword_features": True,
}


def probs_to_log(probs: List[List[float]]) -> numpy.ndarray:
    return numpy.log(numpy.asarray(probs, dtype="float64"))


def one_hot_row(tag: str, p: float) -> List[float]:
    """A probability row: `p` on `tag`, the rest spread evenly."""
    rest = (1.0 - p) / (len(TAGS) - 1)
    return [p if t == tag else rest for t in TAGS]


def make_nlp(lr_scale: float = 1.0, seed: int = 0) -> Language:
    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    model = {"@architectures": "ner_component.TokenClassifier.v1", "tok2vec": TINY_TOK2VEC, "lr_scale": lr_scale}
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
    assert all(is_valid_iob2(t) for t in tag_ids)
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


def test_lr_scale_must_be_positive():
    with pytest.raises(ValueError, match=r"lr_scale \(0.0\)"):
        make_nlp(lr_scale=0.0)


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


# ------------------------------------------------------------------------ registry


@pytest.mark.parametrize(
    "registry_name,name",
    [
        ("factories", "token_ner"),
        ("architectures", "ner_component.TokenClassifier.v1"),
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


def test_reduce_first_gives_zeros_for_empty_tokens():
    from thinc.api import Ragged

    layer = registry.get("layers", "ner_component.reduce_first.v1")()
    X = numpy.arange(12, dtype="float32").reshape(6, 2)
    lengths = numpy.asarray([2, 0, 3, 1], dtype="int32")
    Y, backprop = layer(Ragged(X, lengths), is_train=True)
    assert Y.tolist() == [[0, 1], [0, 0], [4, 5], [10, 11]]
    dX = backprop(numpy.ones((4, 2), dtype="float32"))
    assert dX.data[:, 0].tolist() == [1, 0, 1, 0, 0, 1]
