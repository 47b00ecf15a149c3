"""Tests of the throughput benchmark (`ner_component.benchmarks.throughput`) on a
tiny spaCy pipeline and a tiny Hugging Face model."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ner_component.benchmarks.throughput import (
    agreement,
    build_random_token_classifier,
    entity_set,
    join_documents,
    join_gold,
    run_benchmark,
    sentence_gold,
    sentence_texts,
)
from ner_component.data.wikiann import TAGS
from ner_component.runtime.transformer import DEFAULT_PREDICT_TOKEN_BUDGET
from tests.pipelines import build_transformer_pipeline, write_benchmark_corpus
from tests.util import ROOT


@pytest.fixture(scope="module")
def test_corpus(tmp_path_factory) -> Path:
    return write_benchmark_corpus(tmp_path_factory.mktemp("throughput") / "test.spacy", copies=4)


def test_texts(test_corpus: Path) -> None:
    sentences = sentence_texts(test_corpus, limit=5)
    assert sentences[:2] == ["Zoë moved to Zürich .", "Acme Corp hired her in 東京"]
    assert len(sentences) == 5
    assert join_documents(sentences, 2) == [" ".join(sentences[0:2]), " ".join(sentences[2:4]), sentences[4]]


def test_gold_offsets_point_at_the_entities(test_corpus: Path) -> None:
    sentences = sentence_texts(test_corpus, limit=5)
    gold = sentence_gold(test_corpus, limit=5)
    assert gold[:3] == [[(0, 3, "PER"), (13, 19, "LOC")], [(0, 9, "ORG"), (23, 25, "LOC")], []]
    documents = join_documents(sentences, 2)
    joined = join_gold(sentences, gold, 2)
    assert len(joined) == len(documents) == 3
    found = [[(doc[start:end], label) for start, end, label in entities] for doc, entities in zip(documents, joined)]
    assert found[0] == [("Zoë", "PER"), ("Zürich", "LOC"), ("Acme Corp", "ORG"), ("東京", "LOC")]
    assert found[1] == [("Zoë", "PER"), ("Zürich", "LOC")]
    assert found[2] == [("Acme Corp", "ORG"), ("東京", "LOC")]


def test_agreement() -> None:
    reference = entity_set([[(0, 3, "PER"), (10, 16, "LOC")], []])
    assert reference == {(0, 0, 3, "PER"), (0, 10, 16, "LOC")}
    same = agreement(reference, reference)
    assert same == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    # the same span in another doc, or with another label, doesn't count
    other = entity_set([[(0, 3, "ORG")], [(10, 16, "LOC")]]) | {(0, 10, 16, "LOC")}
    scores = agreement(reference, other)
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == pytest.approx(1 / 2)
    assert scores["f1"] == pytest.approx(0.4)
    assert agreement(set(), set())["f1"] == 1.0
    assert agreement(reference, set())["f1"] == 0.0


def test_benchmark_end_to_end(test_corpus: Path, tiny_bert: Path, tmp_path: Path) -> None:
    model = build_transformer_pipeline(tiny_bert, tmp_path / "spacy_model")
    hf_model = build_random_token_classifier(tmp_path / "hf_model", tiny_bert, tiny=True)
    config = json.loads((hf_model / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(TAGS))] == list(TAGS)
    result = run_benchmark(
        str(model), test_corpus, hf_model, tmp_path / "metrics", "tiny",
        batch_sizes=[4], n_processes=[1], hf_batch_sizes=[2], torch_threads=2, limit=8, join=3,
        cpu_dtypes=[None, "bfloat16"], token_budgets=[None], hf_dtypes=["float32", "bfloat16"],
    )
    for suffix in (".json", ".md", ".png"):
        assert (tmp_path / "metrics" / f"tiny{suffix}").stat().st_size > 0
    saved = json.loads((tmp_path / "metrics" / "tiny.json").read_text())
    assert saved["torch_threads"] == 2
    assert saved["settings"]["sentences"]["docs"] == 8
    assert saved["settings"]["documents"]["docs"] == 3
    assert saved["settings"]["sentences"]["words"] == saved["settings"]["documents"]["words"]
    runs = saved["runs"]
    # spaCy: 2 dtypes with the pipeline's chunk budget; HF: 2 dtypes; in each of 2 settings
    assert len(runs) == 2 * (2 + 2)
    assert {(run["engine"], run["dtype"]) for run in runs} == {
        ("spacy", "float32"), ("spacy", "bfloat16"), ("hf", "float32"), ("hf", "bfloat16")
    }
    # the stock spacy-transformers layer pads once per batch; switched to bfloat16, it chunks
    assert {run["token_budget_used"] for run in runs if run["engine"] == "spacy"} == {0, DEFAULT_PREDICT_TOKEN_BUDGET}
    for run in runs:
        assert 0.0 <= run["against_gold"]["f1"] <= 1.0
        assert run["words_per_second"] > 0 and run["peak_rss_mb"] > 0
        assert run["cpu_seconds"] > 0 and run["words_per_cpu_second"] > 0 and run["other_load_cores"] >= 0
        assert run["torch_threads"] == 2
        assert "entities" not in run
    # batching doesn't change what spaCy finds (the ruler's entities at least)
    spacy_runs = [run for run in runs if run["engine"] == "spacy"]
    assert all(run["n_entities"] > 0 for run in spacy_runs)
    assert saved["settings"]["sentences"]["min_f1_between_spacy_runs"] == pytest.approx(1.0)
    table = (tmp_path / "metrics" / "tiny.md").read_text()
    assert "| HF pipeline" in table and "| bfloat16 |" in table and "F1 vs gold" in table and "chunk budget" in table
    # 8 sentences: 2, 2, 0, 2, 2, 0, 2, 2 entities; joined documents keep all of them
    assert saved["settings"]["sentences"]["gold_entities"] == saved["settings"]["documents"]["gold_entities"] == 12
    assert result["settings"] == saved["settings"]
    # the machine: the CPU's kind (ner_component.hardware.describe) and the libraries
    machine = saved["machine"]
    assert machine["hardware"].startswith(f"{machine['cpu_count']} CPU cores (") and machine["memory_gb"] > 0
    assert {"cpu", "cpu_native_bf16", "python", "spacy", "torch", "transformers"} <= set(machine)
    assert f"Machine: {machine['hardware']}, {machine['memory_gb']} GB." in table


def test_benchmark_shares_the_threads_among_processes(test_corpus: Path, tiny_bert: Path, tmp_path: Path) -> None:
    """Two spaCy processes get one thread each of the two, and find what one process
    finds; a chunk budget of 0 (one padded pass) overrides bfloat16's chunks."""
    model = build_transformer_pipeline(tiny_bert, tmp_path / "spacy_model")
    hf_model = build_random_token_classifier(tmp_path / "hf_model", tiny_bert, tiny=True)
    saved = run_benchmark(
        str(model), test_corpus, hf_model, tmp_path / "metrics", "tiny",
        batch_sizes=[4], n_processes=[1, 2], hf_batch_sizes=[2], torch_threads=2, limit=8,
        settings=["sentences"], cpu_dtypes=["bfloat16"], token_budgets=[0], hf_dtypes=["float32"],
    )
    spacy_runs = {run["n_process"]: run for run in saved["runs"] if run["engine"] == "spacy"}
    assert {n: run["torch_threads"] for n, run in spacy_runs.items()} == {1: 2, 2: 1}
    assert {run["token_budget_used"] for run in spacy_runs.values()} == {0}
    assert spacy_runs[2]["n_entities"] == spacy_runs[1]["n_entities"] > 0
    assert saved["settings"]["sentences"]["min_f1_between_spacy_runs"] == pytest.approx(1.0)


def test_dtype_requests_that_compute_alike_run_once(monkeypatch) -> None:
    import ner_component.runtime.transformer as module
    from ner_component.benchmarks.throughput.benchmark import _distinct_dtypes

    monkeypatch.setattr(module, "cpu_has_native_bf16", lambda: False)
    assert _distinct_dtypes(["float32", "auto", None, "bfloat16"]) == ["float32", None, "bfloat16"]
    monkeypatch.setattr(module, "cpu_has_native_bf16", lambda: True)
    assert _distinct_dtypes(["float32", "auto", "bfloat16"]) == ["float32", "auto"]


def test_cli_rejects_a_folder_without_a_model(test_corpus: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_throughput.py"), "some_model", str(test_corpus),
         str(tmp_path / "out"), "--hf-model", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 1
    assert "is not a Hugging Face model folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_runs_process_loads_no_spacy_before_its_engine() -> None:
    """What a run's process imports first (`runner.CHILD_CODE`) loads neither spaCy
    nor the HF recipe's dependencies: a Hugging Face run's memory and start-up are
    its own."""
    code = (
        "import sys; import ner_component.benchmarks.throughput.engines; "
        "print(sorted(m for m in ('spacy', 'thinc', 'seqeval', 'torch', 'transformers') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout.strip() == "[]"
