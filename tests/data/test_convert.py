
import pytest

from ner_component.data.convert import convert, read_docs
from ner_component.data.wikiann import ArchiveSource, WikiANNError
from tests.util import FILES, ROOT, write_archive


def test_convert_writes_corpora_and_report(tmp_path):
    out = tmp_path / "corpus"
    report = convert(ArchiveSource(write_archive(tmp_path), "xy"), out, "xy")
    assert sorted(p.name for p in out.iterdir()) == ["dev.spacy", "report.json", "test.spacy", "train.spacy"]
    train = read_docs(out / "train.spacy")
    assert [t.text for t in train[1]] == ["12:30", "Paris"]
    assert [(e.text, e.label_) for e in train[0].ents] == [("R.H. Saunders", "ORG")]
    dev = read_docs(out / "dev.spacy")
    # the stray I-ORG after O is read as the start of an entity, and counted
    assert [(e.text, e.label_) for e in dev[1].ents] == [("UN", "ORG")]
    assert report["splits"]["dev"] == {
        "sentences": 2,
        "tokens": 4,
        "entities": {"PER": 1, "ORG": 1, "LOC": 0},
        "repaired_i_tags": 1,
        "joined_without_spaces": 0,
    }
    assert report["character_segmented"] is False
    assert report["splits"]["test"]["entities"] == {"PER": 0, "ORG": 0, "LOC": 2}


def test_gold_tokens_survive_spacys_corpus_reader(tmp_path):
    """spacy train/evaluate must see WikiANN's tokens, not its own tokenization."""
    import spacy
    from spacy.training import Corpus

    out = tmp_path / "corpus"
    convert(ArchiveSource(write_archive(tmp_path), "xy"), out, "xy")
    nlp = spacy.blank("en")
    examples = list(Corpus(out / "train.spacy")(nlp))
    assert [t.text for t in examples[0].predicted] == ["R.H.", "Saunders", "("]
    assert [t.text for t in examples[1].predicted] == ["12:30", "Paris"]


def test_failed_conversion_leaves_previous_corpus_untouched(tmp_path):
    out = tmp_path / "corpus"
    convert(ArchiveSource(write_archive(tmp_path), "xy"), out, "xy")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = dict(FILES, test=FILES["test"] + "xy:oops\tB-MISC\n")
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    with pytest.raises(WikiANNError, match=r"xy.tar.gz/test:5: unknown tag 'B-MISC'"):
        convert(ArchiveSource(write_archive(bad_dir, files=broken), "xy"), out, "xy")
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # no temp files left, nothing overwritten


def test_convert_cli_fails_with_one_line(tmp_path):
    import subprocess
    import sys

    broken = dict(FILES, dev="xy:a\tO\nxy:b\n")
    write_archive(tmp_path, files=broken)
    script = ROOT / "scripts" / "convert.py"
    proc = subprocess.run(
        [sys.executable, str(script), "xy", str(tmp_path / "out"), "--data", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("\u2718")]
    assert len(errors) == 1
    assert errors[0].endswith("xy.tar.gz/dev:2: expected '<lang>:<token><TAB><tag>', found 'xy:b'")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "out" / "train.spacy").exists()
