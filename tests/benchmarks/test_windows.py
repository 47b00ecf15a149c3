"""The windows benchmark: each window's F1 against gold and encoder positions on joined
test sentences, in turn; the pipeline's own alignment and spacy-transformers'."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from ner_component.benchmarks.throughput.summary import agreement, entity_set
from ner_component.benchmarks.throughput.texts import join_documents, join_gold, sentence_gold, sentence_texts
from ner_component.benchmarks.windows import compare_windows, parse_window
from ner_component.errors import NerComponentError
from tests.pipelines import (
    _train,
    add_our_transformer_and_token_ner,
    build_token_ner_pipeline,
    build_transformer_pipeline,
    write_benchmark_corpus,
)
from tests.util import ROOT


@pytest.fixture(scope="module")
def test_corpus(tmp_path_factory) -> Path:
    return write_benchmark_corpus(tmp_path_factory.mktemp("windows") / "test.spacy", copies=8)


@pytest.fixture(scope="module")
def our_pipeline(tiny_bert, tmp_path_factory) -> Path:
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    add_our_transformer_and_token_ner(nlp, tiny_bert)
    _train(nlp, 20)
    path = tmp_path_factory.mktemp("windows") / "ours"
    nlp.to_disk(path)
    return path


def _f1(model: Path, corpus: Path, window: int, stride: int, join: int, first: bool) -> float:
    """F1 against gold of the pipeline with these windows, computed here, not by the benchmark."""
    from spacy_transformers.layers.transformer_model import forward

    nlp = spacy.load(model, config={"components": {"transformer": {"model": {"get_spans": {"window": window, "stride": stride}}}}})
    if first:
        nlp.get_pipe("transformer").model._func = forward
    sentences = sentence_texts(corpus)
    docs = nlp.pipe(join_documents(sentences, join), batch_size=16)
    found = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]
    return 100 * agreement(entity_set(join_gold(sentences, sentence_gold(corpus), join)), entity_set(found))["f1"]


@pytest.mark.parametrize("text", ["128", "a/b", "8/9", "8/0", "8/6/4"])
def test_a_window_is_window_slash_stride(text: str) -> None:
    assert parse_window("128/96") == (128, 96)
    with pytest.raises(NerComponentError, match=f"window '{text}'"):
        parse_window(text)


def test_each_window_in_turn_with_both_alignments(our_pipeline: Path, test_corpus: Path) -> None:
    result = compare_windows(our_pipeline, test_corpus, [(16, 12), (8, 6)], joins=[12], rounds=1, first_window=True, progress=False)
    runs = result["runs"]
    assert [(r["window"], r["stride"], r["alignment"]) for r in runs] == [
        (16, 12, "central"), (16, 12, "first"), (8, 6, "central"), (8, 6, "first"),
    ]
    assert all(r["documents"] == 2 and r["positions"] > 0 and r["encoder_passes"] > 0 for r in runs)
    assert runs[0]["speed"] == 1.0 and all(r["words_per_second"] > 0 for r in runs)
    for r in runs:
        assert r["f1"] == pytest.approx(_f1(our_pipeline, test_corpus, r["window"], r["stride"], 12, r["alignment"] == "first"))
    # the same encoder positions whichever window a token's vectors come from
    assert runs[0]["positions"] == runs[1]["positions"] and runs[2]["positions"] == runs[3]["positions"]


def test_spacy_transformers_own_architecture_runs_its_own_alignment(tiny_bert, test_corpus: Path, tmp_path: Path) -> None:
    model = build_transformer_pipeline(tiny_bert, tmp_path / "stock", steps=2)
    result = compare_windows(model, test_corpus, [(8, 6)], joins=[6], rounds=0, first_window=True, progress=False)
    assert [(r["alignment"], r["words_per_second"], r["speed"]) for r in result["runs"]] == [("first", None, None)]


def test_a_pipeline_without_a_transformer_is_one_line(test_corpus: Path, tmp_path: Path) -> None:
    model = build_token_ner_pipeline(tmp_path / "cnn", steps=2)
    with pytest.raises(NerComponentError, match="transformer"):
        compare_windows(model, test_corpus, [(8, 6)], joins=[6], rounds=0, progress=False)


def test_the_script_writes_the_table_and_refuses_a_bad_window(our_pipeline: Path, test_corpus: Path, tmp_path: Path) -> None:
    script = str(ROOT / "scripts" / "benchmark_windows.py")
    bad = subprocess.run(
        [sys.executable, script, str(our_pipeline), str(test_corpus), str(tmp_path / "bad"), "--windows", "128"],
        capture_output=True, text=True,
    )
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == ["✘ window '128' is not <window>/<stride>, e.g. 128/96"]
    assert not (tmp_path / "bad").exists()
    proc = subprocess.run(
        [sys.executable, script, str(our_pipeline), str(test_corpus), str(tmp_path / "out"), "--windows", "16/12,8/6",
         "--joins", "12", "--rounds", "0"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "en.json").read_text())
    table = (tmp_path / "out" / "en.md").read_text()
    assert [r["window"] for r in result["runs"]] == [16, 8] and "| 12 | 16/12 | central |" in table and table in proc.stdout
