"""Character-segmented WikiANN languages (zh, ja, zh-yue, zh-classical): texts as written."""

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from ner_component.data.convert import convert, natural_spaces, read_docs, sentences_to_docs
from ner_component.data.wikiann import ArchiveSource
from ner_component.runtime.tokenizer import CharacterTokenizer
from tests.util import FILES, write_archive

# WikiANN's own shape: one token per character, Latin letters included.
CJK_FILES = {
    "train": (
        "xy:R\tO\nxy:E\tO\nxy:D\tO\nxy:#\tO\nxy:亞\tB-LOC\nxy:馬\tI-LOC\nxy:遜\tI-LOC\nxy:河\tI-LOC\n\n"
        "xy:香\tB-LOC\nxy:港\tI-LOC\nxy:著\tO\nxy:名\tO\nxy:演\tO\nxy:員\tO\nxy:黃\tB-PER\nxy:百\tI-PER\nxy:鳴\tI-PER\n\n"
    ),
    "dev": "xy:A\tB-ORG\nxy:T\tI-ORG\nxy:M\tI-ORG\nxy:を\tO\nxy:使\tO\nxy:う\tO\n\n",
    "test": "xy:在\tO\nxy:WikiLeaks\tB-ORG\nxy:上\tO\nxy:發\tO\nxy:表\tO\nxy:。\tO\n\n",
}


def test_cjk_archive_converts_to_text_as_written(tmp_path):
    out = tmp_path / "corpus"
    report = convert(ArchiveSource(write_archive(tmp_path, files=CJK_FILES), "xy"), out, "xy")
    assert report["character_segmented"] is True
    assert report["splits"]["train"]["joined_without_spaces"] == 2
    train = read_docs(out / "train.spacy")
    assert [doc.text for doc in train] == ["RED#亞馬遜河", "香港著名演員黃百鳴"]
    # the gold tokens and entities are WikiANN's
    assert [t.text for t in train[1]] == list("香港著名演員黃百鳴")
    assert [(e.text, e.label_, e.start, e.end) for e in train[1].ents] == [("香港", "LOC", 0, 2), ("黃百鳴", "PER", 6, 9)]
    assert [(e.text, e.label_) for e in train[0].ents] == [("亞馬遜河", "LOC")]
    # Latin letters split into characters are one word again
    dev = read_docs(out / "dev.spacy")
    assert dev[0].text == "ATMを使う" and [(e.text, e.label_) for e in dev[0].ents] == [("ATM", "ORG")]
    # a multi-character Latin token keeps its spaces; the characters after it are joined
    test = read_docs(out / "test.spacy")
    assert test[0].text == "在 WikiLeaks 上發表。"
    assert [(e.text, e.label_) for e in test[0].ents] == [("WikiLeaks", "ORG")]


def test_character_tokenizer_gives_back_the_gold_tokens(tmp_path):
    """spaCy's corpus reader re-tokenizes docs with known spaces in training: the
    character tokenizer must give WikiANN's tokens back."""
    convert(ArchiveSource(write_archive(tmp_path, files=CJK_FILES), "xy"), tmp_path / "corpus", "xy")
    tokenizer = CharacterTokenizer(Vocab())
    for doc in read_docs(tmp_path / "corpus" / "train.spacy"):
        assert [t.text for t in tokenizer(doc.text)] == [t.text for t in doc]


def test_mixed_latin_and_cjk_runs():
    assert natural_spaces(["A", "T", "M", "を", "使", "う"]) == [False] * 6
    # a run without a CJK character keeps its spaces; the CJK run after a long token is joined
    words = ["(", ")", "Notting", "Hill", "站", "前"]
    spaces = natural_spaces(words)
    assert Doc(Vocab(), words=words, spaces=spaces).text == "( ) Notting Hill 站前"
    # a lone CJK character between long tokens is a word (wuu, gan): nothing to join
    assert natural_spaces(["羅町侯革", "站", "Notting"]) is None
    assert natural_spaces(["Obama", ",", "who", "a", "b"]) is None


def test_space_separated_language_is_byte_identical(tmp_path):
    """A language WikiANN segments into words converts exactly as before: spaces unknown."""
    out = tmp_path / "corpus"
    report = convert(ArchiveSource(write_archive(tmp_path), "xy"), out, "xy")
    assert report["character_segmented"] is False
    source = ArchiveSource(write_archive(tmp_path), "xy")
    for split in ("train", "dev", "test"):
        # what the converter wrote before it knew about unspaced scripts
        docs, _ = sentences_to_docs(source.sentences(split))
        before = [Doc(Vocab(), words=[t.text for t in doc], ents=[t.ent_iob_ + "-" + t.ent_type_ if t.ent_type_ else "O" for t in doc]) for doc in docs]
        assert (out / f"{split}.spacy").read_bytes() == DocBin(docs=before, store_user_data=False).to_bytes()


def test_words_segmented_language_with_cjk_keeps_spaces(tmp_path):
    """wuu-like data: multi-character words with an occasional one-character word."""
    files = dict(FILES)
    files["train"] = "xy:上海\tB-LOC\nxy:站\tO\nxy:WikiLeaks\tB-ORG\n\n" + FILES["train"]
    report = convert(ArchiveSource(write_archive(tmp_path, files=files), "xy"), tmp_path / "corpus", "xy")
    assert report["character_segmented"] is False
    assert read_docs(tmp_path / "corpus" / "train.spacy")[0].text == "上海 站 WikiLeaks "


def test_real_character_segmented_languages(wikiann_dir, tmp_path):
    """zh-classical (WikiANN's shape for zh, ja, zh-yue) is rebuilt; km and bo,
    written with spaces between phrases and segmented at them, are not."""
    report = convert(ArchiveSource(wikiann_dir / "zh-classical.tar.gz", "zh-classical"), tmp_path / "zhc", "zh-classical")
    assert report["character_segmented"] is True
    tokenizer = CharacterTokenizer(Vocab())
    for split in ("train", "dev", "test"):
        docs = read_docs(tmp_path / "zhc" / f"{split}.spacy")
        assert report["splits"][split]["joined_without_spaces"] >= 0.9 * len(docs)
        source_docs, _ = sentences_to_docs(ArchiveSource(wikiann_dir / "zh-classical.tar.gz", "zh-classical").sentences(split))
        for doc, gold in zip(docs, source_docs):
            assert [t.text for t in doc] == [t.text for t in gold]
            assert [(e.start, e.end, e.label_) for e in doc.ents] == [(e.start, e.end, e.label_) for e in gold.ents]
            # a multi-character token (`None` among the characters) is split, and aligned in training
            if all(len(t) == 1 for t in doc):
                assert [t.text for t in tokenizer(doc.text)] == [t.text for t in doc]
    for lang in ("km", "bo"):
        report = convert(ArchiveSource(wikiann_dir / f"{lang}.tar.gz", lang), tmp_path / lang, lang)
        assert report["character_segmented"] is False
        assert all(counts["joined_without_spaces"] == 0 for counts in report["splits"].values())
