"""Pipelines of character-segmented languages: the character tokenizer, one wordpiece
per character, and a trained zh-like pipeline loaded as users load it."""
import spacy
from spacy.training import Example

from ner_component.runtime.tokenizer import CharacterTokenizer
from ner_component.runtime.transformer import split_into_characters
from tests.pipelines import add_our_transformer_and_token_ner

TEXTS = ["香港著名電影從業員黃百鳴", "ATM機 New York。", "  香港\n 電影 ", "", "習近平在北京會見了美國總統。"]


def test_character_tokenizer_splits_as_spacys_chinese_char_segmenter():
    zh = spacy.blank("zh")  # spacy.zh.ChineseTokenizer, segmenter "char"
    tokenizer = CharacterTokenizer(zh.vocab)
    for text in TEXTS:
        ours, spacys = tokenizer(text), zh(text)
        assert [(t.text, t.whitespace_) for t in ours] == [(t.text, t.whitespace_) for t in spacys]
        assert ours.text == text


def test_character_tokenizer_is_saved_with_the_pipeline(tmp_path):
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": "ner_component.CharacterTokenizer.v1"}}})
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert isinstance(loaded.tokenizer, CharacterTokenizer)
    assert [t.text for t in loaded("黃百鳴 ok")] == ["黃", "百", "鳴", "o", "k"]


def _sentencepiece_like_tokenizer():
    """A small Unigram tokenizer with XLM-R's pre-tokenizer (Metaspace, prepend "always"),
    holding multi-character pieces, as a fast Hugging Face tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = [("<unk>", 0.0), ("▁", -1.0), ("▁香港", -1.0), ("香港", -1.0), ("習近平", -1.0), ("▁ATM", -1.0), ("ATM", -1.0)]
    vocab += [(char, -5.0) for char in "香港習近平黃百鳴電影ATMab"] + [("▁" + char, -6.0) for char in "香黃ab"]
    backend = Tokenizer(models.Unigram(vocab, unk_id=0))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")


def _pieces(tokenizer, text):
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(zip(tokenizer.convert_ids_to_tokens(encoding["input_ids"]), encoding["offset_mapping"]))


def test_character_pieces_with_a_sentencepiece_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = _sentencepiece_like_tokenizer()
    assert ("▁香港", (0, 2)) in _pieces(tokenizer, "香港電影")  # two characters in one piece
    split_into_characters(tokenizer)
    for text in ("香港電影", "習近平 ATM黃", "ab香港"):
        pieces = _pieces(tokenizer, text)
        # no piece spans two characters: each token of the character tokenizer gets its own
        assert all(end - start <= 1 for _, (start, end) in pieces), pieces
        # the word marker only at the start and after a space, as in the text
        assert [start for piece, (start, _) in pieces if piece.startswith("▁")] == [0] + [i for i, c in enumerate(text) if c == " "]
    assert [piece for piece, _ in _pieces(tokenizer, "習近平 ATM黃")] == ["▁", "習", "近", "平", "▁", "A", "T", "M", "黃"]
    # saved and loaded with the tokenizer (as spacy-transformers saves it with the pipeline)
    tokenizer.save_pretrained(tmp_path / "tok")
    assert _pieces(AutoTokenizer.from_pretrained(tmp_path / "tok"), "香港電影") == _pieces(tokenizer, "香港電影")


def test_character_pieces_with_a_wordpiece_tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    assert tokenizer.tokenize("ab 日本") == ["ab", "日", "本"]
    split_into_characters(tokenizer)
    assert tokenizer.tokenize("ab 日本") == ["a", "b", "日", "本"]


def _zh_like_pipeline(tiny_bert):
    nlp = spacy.blank("xx", config={"nlp": {"tokenizer": {"@tokenizers": "ner_component.CharacterTokenizer.v1"}}})
    add_our_transformer_and_token_ner(nlp, tiny_bert, character_pieces=True)
    return nlp


# Unspaced sentences with character offsets of their entities (characters the tiny
# BERT's vocabulary has).
ZH_TRAIN = [
    ("日本人王明生上海", [(0, 2, "LOC"), (3, 5, "PER"), (6, 8, "LOC")]),
    ("李明東京大學生", [(0, 2, "PER"), (2, 4, "LOC")]),
    ("美國公司王明", [(0, 2, "LOC"), (4, 6, "PER")]),
    ("中西人", []),
]


def test_trained_zh_like_pipeline_reads_unspaced_text(tiny_bert, tmp_path):
    spacy.util.fix_random_seed(0)
    nlp = _zh_like_pipeline(tiny_bert)
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in ZH_TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    for _ in range(40):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    nlp.to_disk(tmp_path / "zh_like")
    loaded = spacy.load(tmp_path / "zh_like")
    doc = loaded("日本人王明生上海")
    assert [t.text for t in doc] == list("日本人王明生上海")
    # one wordpiece per character (and the two special tokens), from the saved tokenizer
    assert doc._.trf_data.wordpieces.strings[0][1:-1] == list("日本人王明生上海")
    assert ("王明", "PER") in [(e.text, e.label_) for e in doc.ents]
