"""The converter on the real WikiANN archives (skipped where ../shared/wikiann is absent)."""
import csv
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Dict

import pytest

from ner_component.data.convert import convert, read_docs, sentences_to_docs
from ner_component.data.wikiann import (
    SPLITS,
    WikiANNError,
    available_languages,
    resolve_source,
)
from tests.util import build_dataset_dict


def read_counts(wikiann_dir) -> Dict[str, Dict[str, int]]:
    with (wikiann_dir / "COUNTS.tsv").open() as f:
        return {row["lang"]: {k: int(v) for k, v in row.items() if k != "lang"} for row in csv.DictReader(f, delimiter="\t")}


def converted_counts(wikiann_dir, lang: str) -> Dict[str, int]:
    """What the conversion of each split of `lang` counts, keyed like COUNTS.tsv."""
    source = resolve_source(str(wikiann_dir), lang)
    counts = {}
    for split in SPLITS:
        _, report = sentences_to_docs(source.sentences(split))
        counts.update({f"{split}_sents": report["sentences"], f"{split}_tokens": report["tokens"]})
    return counts


def test_every_language_converts_with_the_published_counts(wikiann_dir):
    counts = read_counts(wikiann_dir)
    langs = available_languages(wikiann_dir)
    assert len(langs) == len(counts) == 151
    # one language per process, on every core: 151 languages take a minute on one
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        converted = dict(zip(langs, pool.map(converted_counts, [wikiann_dir] * len(langs), langs)))
    for lang in langs:
        assert converted[lang] == counts[lang], lang


def test_missing_language_is_one_clear_line(wikiann_dir):
    with pytest.raises(WikiANNError) as err:
        resolve_source(str(wikiann_dir), "fr")
    message = str(err.value)
    assert "no WikiANN data for language 'fr'" in message and "bn, " in message and "\n" not in message


@pytest.mark.parametrize("lang", ["bn", "zh-classical"])
def test_archive_and_saved_dataset_give_identical_corpora(wikiann_dir, tmp_path, lang):
    """Source (a) against (c): a datasets copy built locally from the archive (bn, and
    a code with a hyphen in a language written without spaces)."""
    archive = resolve_source(str(wikiann_dir), lang)
    dataset = build_dataset_dict(archive)
    dataset.save_to_disk(str(tmp_path / "saved"))
    for split, data in dataset.items():
        data.to_parquet(str(tmp_path / "parquet" / f"{split}-00000-of-00001.parquet"))
    convert(archive, tmp_path / "a", lang)
    for other in ("saved", "parquet"):
        convert(resolve_source(str(tmp_path / other), lang), tmp_path / other / "corpus", lang)
        for split in SPLITS:
            a = read_docs(tmp_path / "a" / f"{split}.spacy")
            c = read_docs(tmp_path / other / "corpus" / f"{split}.spacy")
            assert [d.to_json() for d in a] == [d.to_json() for d in c], (other, split)
