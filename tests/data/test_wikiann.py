import io
import tarfile

import pytest

from ner_component.data.wikiann import (
    ArchiveSource,
    WikiANNError,
    parse_conll,
    repair_iob2,
    resolve_source,
)
from tests.util import FILES, build_dataset_dict, write_archive


def as_lists(source, split: str):
    return [(s.tokens, s.tags) for s in source.sentences(split)]


def test_parse_keeps_tokens_and_strips_only_the_prefix():
    sents = list(parse_conll(io.StringIO(FILES["train"]), "xy", "train"))
    assert [s.tokens for s in sents] == [["R.H.", "Saunders", "("], ["12:30", "Paris"]]
    assert sents[1].tags == ["O", "B-LOC"]
    assert sents[1].where == "train:5"


@pytest.mark.parametrize(
    "line,expected",
    [
        ("xy:Paris\tB-CITY", "train:2: unknown tag 'B-CITY'"),
        ("xy:Paris B-LOC", "train:2: expected '<lang>:<token><TAB><tag>', found 'xy:Paris B-LOC'"),
        ("zz:Paris\tB-LOC", "train:2: expected a token starting with 'xy:', found 'zz:Paris'"),
        ("Paris\tB-LOC", "train:2: expected a token starting with 'xy:', found 'Paris'"),
        ("xy:\tO", "train:2: empty token"),
        ("xy:a\tO\tO", "train:2: expected '<lang>:<token><TAB><tag>'"),
    ],
)
def test_parse_errors_name_file_line_and_value(line, expected):
    text = "xy:ok\tO\n" + line + "\n"
    with pytest.raises(WikiANNError) as err:
        list(parse_conll(io.StringIO(text), "xy", "train"))
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "tags,expected,changed",
    [
        (["O", "I-PER", "I-PER"], ["O", "B-PER", "I-PER"], 1),
        (["B-LOC", "I-PER"], ["B-LOC", "B-PER"], 1),
        (["I-ORG"], ["B-ORG"], 1),
        (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"], 0),
        (["B-PER", "I-PER", "I-LOC", "I-LOC"], ["B-PER", "I-PER", "B-LOC", "I-LOC"], 1),
    ],
)
def test_repair_iob2(tags, expected, changed):
    assert repair_iob2(tags) == (expected, changed)


def test_archive_and_extracted_folder_agree(tmp_path):
    archive = write_archive(tmp_path)
    folder = tmp_path / "extracted"
    folder.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(folder)
    for split in FILES:
        assert as_lists(ArchiveSource(archive, "xy"), split) == as_lists(ArchiveSource(folder, "xy"), split)


def test_save_to_disk_and_parquet_agree_with_archive(tmp_path):
    archive = ArchiveSource(write_archive(tmp_path), "xy")
    dataset = build_dataset_dict(archive)
    dataset.save_to_disk(str(tmp_path / "saved"))
    parquet = tmp_path / "parquet" / "xy"
    parquet.mkdir(parents=True)
    for split, data in dataset.items():
        data.to_parquet(str(parquet / f"{split}-00000-of-00001.parquet"))
    for data in (str(tmp_path / "saved"), str(tmp_path / "parquet")):
        source = resolve_source(data, "xy")
        for split in FILES:
            assert as_lists(source, split) == as_lists(archive, split), (data, split)


def test_hub_source_calls_load_dataset(tmp_path, monkeypatch):
    import datasets

    archive = ArchiveSource(write_archive(tmp_path), "xy")
    calls = []

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name))
        return build_dataset_dict(archive)

    # only the network boundary is replaced: everything after load_dataset is real
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    source = resolve_source("hub", "xy")
    assert "hub" in source.description
    assert as_lists(source, "dev") == as_lists(archive, "dev")
    assert calls == [("unimelb-nlp/wikiann", "xy")]


def test_unreachable_hub_is_one_clear_line(monkeypatch):
    import datasets

    def offline(path, name=None, **kwargs):
        raise ConnectionError("Couldn't reach 'unimelb-nlp/wikiann' on the Hub (LocalEntryNotFoundError)\nmore")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(WikiANNError) as err:
        list(resolve_source("hub", "xy").sentences("train"))
    message = str(err.value)
    assert "could not load it from the Hugging Face hub (ConnectionError: Couldn't reach" in message
    assert "--vars.data ../shared/wikiann" in message and "\n" not in message


def test_auto_uses_env_folder_then_hub(tmp_path, monkeypatch):
    write_archive(tmp_path)
    monkeypatch.setenv("WIKIANN_DATA", str(tmp_path))
    assert isinstance(resolve_source("auto", "xy"), ArchiveSource)
    monkeypatch.delenv("WIKIANN_DATA")
    empty = tmp_path / "empty_root"
    empty.mkdir()
    assert "hub" in resolve_source("auto", "xy", root=empty).description


def test_missing_language_lists_the_available_ones(tmp_path):
    write_archive(tmp_path, "xy")
    write_archive(tmp_path, "ab")
    with pytest.raises(WikiANNError, match=r"no WikiANN data for language 'qq'; available: ab, xy$"):
        resolve_source(str(tmp_path), "qq")
    with pytest.raises(WikiANNError, match="not found"):
        resolve_source(str(tmp_path / "nowhere"), "xy")


def test_bad_dataset_row_names_the_row(tmp_path):
    import datasets

    bad = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict({"tokens": [["a"], ["b", "c"]], "ner_tags": [["O"], ["O"]]})
            for split in ("train", "validation", "test")
        }
    )
    bad.save_to_disk(str(tmp_path / "bad"))
    source = resolve_source(str(tmp_path / "bad"), "xy")
    with pytest.raises(WikiANNError, match=r"\[train\] row 1: 2 tokens but 1 tags"):
        list(source.sentences("train"))


def test_archive_checked_against_sha256sums(tmp_path):
    import hashlib

    archive = write_archive(tmp_path)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  other.tar.gz\n{digest}  xy.tar.gz\n")
    source = ArchiveSource(archive, "xy")
    assert source.checksum == digest and "SHA-256" in source.description
    (tmp_path / "SHA256SUMS").write_text(f"{'1' * 64}  xy.tar.gz\n")
    with pytest.raises(WikiANNError, match=r"xy.tar.gz: SHA-256 [0-9a-f]{64} differs from 1{64} in .*SHA256SUMS"):
        ArchiveSource(archive, "xy")
    # not listed, or no SHA256SUMS: read unchecked
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  other.tar.gz\n")
    assert ArchiveSource(archive, "xy").checksum is None


def test_real_archives_match_their_sha256sums(wikiann_dir):
    assert ArchiveSource(wikiann_dir / "bn.tar.gz", "bn").checksum is not None
