"""The speed ceilings: sequence splitting, chunking, FLOP counting, timed rounds, and
runs on a tiny BERT: against a throughput result's runs, and with a tiny spaCy
pipeline and HF pipeline timed in turn with the encoder."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ner_component.benchmarks.ceiling import (
    compare,
    encoder_flops_per_position,
    length_batches,
    median_ratio,
    run_ceiling,
    split_ids,
    timed_rounds,
)
from ner_component.benchmarks.throughput import build_random_token_classifier
from ner_component.errors import NerComponentError
from tests.pipelines import build_transformer_pipeline, write_benchmark_corpus
from tests.util import ROOT


@pytest.fixture(scope="module")
def test_corpus(tmp_path_factory) -> Path:
    return write_benchmark_corpus(tmp_path_factory.mktemp("ceiling") / "test.spacy", copies=3)


def test_split_ids_keeps_every_wordpiece_once() -> None:
    ids = [101] + list(range(1, 11)) + [102]
    assert split_ids(ids, 12, 101, 102) == [ids]
    pieces = split_ids(ids, 5, 101, 102)
    assert all(len(p) <= 5 and p[0] == 101 and p[-1] == 102 for p in pieces)
    assert [i for p in pieces for i in p[1:-1]] == list(range(1, 11))
    assert len(pieces) == 4  # 3 + 3 + 3 + 1 inner wordpieces
    with pytest.raises(ValueError, match="max_length"):
        split_ids(ids, 2, 101, 102)


def test_length_batches_sort_chunk_and_pad() -> None:
    sequences = [[1] * n for n in (3, 9, 5, 9, 2, 7)]
    batches = length_batches(sequences, budget=18, pad_id=0, pass_cost=48)
    shapes = [tuple(b["input_ids"].shape) for b in batches]
    # sorted 9 9 7 5 3 2: two of 9, then 7 5 (width 7: 18 // 7 = 2), then 3 2 (18 // 3 = 6)
    assert shapes == [(2, 9), (2, 7), (2, 3)]
    assert sum(int(b["attention_mask"].sum()) for b in batches) == sum(len(s) for s in sequences)
    assert all(int((b["input_ids"] * (1 - b["attention_mask"])).sum()) == 0 for b in batches)
    # a sequence longer than the budget still runs, alone
    assert [tuple(b["input_ids"].shape) for b in length_batches([[1] * 30, [1] * 4, [1] * 3], 10, 0, 48)] == [(1, 30), (2, 4)]
    # a dearer pass pads more to make fewer: 9 9 7 5 3 2 in one pass of 54 positions
    # (cost 54 + 48) rather than three of 34 (34 + 3 x 48)
    assert [tuple(b["input_ids"].shape) for b in length_batches(sequences, 64, 0, 48)] == [(6, 9)]


def test_encoder_flops_count_the_linear_layers_and_attention(tiny_bert: Path) -> None:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(tiny_bert), add_pooling_layer=False)
    hidden, inner, layers = 32, 64, 2
    linear = 2 * (4 * hidden * hidden + 2 * hidden * inner)
    assert encoder_flops_per_position(model, 10.0) == layers * (linear + 4 * 10 * hidden)


def test_timed_rounds_take_turns_after_one_untimed_pass(capsys) -> None:
    calls = []
    seconds = timed_rounds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3, progress=True)
    assert calls == ["a", "b"] * 4
    assert list(seconds) == ["a", "b"] and all(len(v) == 3 and min(v) >= 0 for v in seconds.values())
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and lines[2].startswith("  round 3/3: a ") and ", b " in lines[2]
    # each round's ratio, then the median: one slow round of either doesn't decide it
    assert median_ratio([2.0, 9.0, 4.0], [1.0, 3.0, 1.0]) == 3.0


def test_compare_names_the_hf_default_only_when_it_ran() -> None:
    ceiling = {"forward_seconds_by_round": [1.0], "forward_words_per_second": 400.0, "arithmetic_words_per_second": 800.0}
    runs = {
        "spacy": {"label": "s", "words_per_second": 300.0},
        "hf": {"label": "h", "words_per_second": 100.0},
    }
    bf16 = compare(ceiling, runs, interleaved=False, dtype="bfloat16")
    assert bf16["spacy_over_hf"] == pytest.approx(3.0) and bf16["spacy_over_hf_default"] is None
    assert bf16["spacy_over_ceiling"] == pytest.approx(0.75) and bf16["arithmetic_ceiling_over_hf"] == pytest.approx(8.0)
    # in float32 the HF run is its default
    assert compare(ceiling, runs, interleaved=False, dtype="float32")["spacy_over_hf_default"] == pytest.approx(3.0)


def _throughput(words: int) -> dict:
    runs = []
    for setting in ("sentences", "documents"):
        runs += [
            {"setting": setting, "engine": "spacy", "dtype": "float32", "words_per_second": 300.0, "label": f"{setting}-spacy-fp32"},
            {"setting": setting, "engine": "spacy", "dtype": "bfloat16", "words_per_second": 900.0, "label": f"{setting}-spacy-bf16"},
            {"setting": setting, "engine": "hf", "dtype": "float32", "words_per_second": 100.0, "label": f"{setting}-hf-fp32-a"},
            {"setting": setting, "engine": "hf", "dtype": "float32", "words_per_second": 150.0, "label": f"{setting}-hf-fp32-b"},
        ]
    return {"settings": {s: {"words": words} for s in ("sentences", "documents")}, "runs": runs}


def test_run_ceiling_on_a_tiny_bert(tiny_bert: Path, test_corpus: Path, tmp_path: Path) -> None:
    words = 3 * (5 + 6 + 2)
    throughput = tmp_path / "throughput.json"
    throughput.write_text(json.dumps(_throughput(words)))
    result = run_ceiling(
        tiny_bert, test_corpus, tmp_path / "out", "tiny", join=4, token_budget=16, rounds=1,
        torch_threads=1, throughput=throughput, interleave=False,
    )
    for suffix in (".json", ".md", ".png"):
        assert (tmp_path / "out" / f"tiny{suffix}").stat().st_size > 0
    assert json.loads((tmp_path / "out" / "tiny.json").read_text()) == result
    sentences, documents = result["settings"]["sentences"], result["settings"]["documents"]
    assert sentences["texts"] == 9 and documents["texts"] == 3
    assert sentences["words"] == documents["words"] == words
    # each sentence adds [CLS] and [SEP]; joined, 4 sentences share one pair
    assert sentences["positions"] - documents["positions"] == 2 * (9 - 3)
    assert sentences["padded_positions"] >= sentences["positions"]
    for c in (sentences, documents):
        assert c["forward_words_per_second"] > 0 and c["arithmetic_words_per_second"] > 0
        # the fastest float32 runs: bfloat16 spaCy and the slower HF run are not compared
        assert c["spacy_over_hf"] == c["spacy_over_hf_default"] == pytest.approx(2.0)
        assert c["forward_ceiling_over_hf"] == pytest.approx(c["forward_words_per_second"] / 150.0)
        assert c["spacy_over_ceiling"] == pytest.approx(300.0 / c["forward_words_per_second"])
        assert c["engines"] == {} and len(c["forward_seconds_by_round"]) == 1
    table = (tmp_path / "out" / "tiny.md").read_text()
    assert "| documents | 39 |" in table and "2.00x" in table
    assert "spaCy and HF: the fastest float32 runs of" in table
    assert f"PyTorch threads; {result['machine']['hardware']}. " in table  # the CPU's kind


def test_run_ceiling_rejects_other_texts_and_bad_json(tiny_bert: Path, test_corpus: Path, tmp_path: Path, capsys) -> None:
    throughput = tmp_path / "throughput.json"
    throughput.write_text(json.dumps(_throughput(1000)))
    with pytest.raises(NerComponentError, match="measured 1000 words of sentences, this run 39"):
        run_ceiling(tiny_bert, test_corpus, tmp_path / "out", "tiny", rounds=1, settings=["sentences"], throughput=throughput)
    assert not (tmp_path / "out" / "tiny.json").exists()
    throughput.write_text('{"settings": {},\n "runs": [,]}')
    with pytest.raises(NerComponentError, match=f"{throughput} line 2: not JSON"):
        run_ceiling(tiny_bert, test_corpus, tmp_path / "out", "tiny", throughput=throughput)
    with pytest.raises(NerComponentError, match="dtype 'int8' must be one of float32, bfloat16"):
        run_ceiling(tiny_bert, test_corpus, tmp_path / "out", "tiny", dtype="int8")


def test_cli(tiny_bert: Path, test_corpus: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_ceiling.py"), str(tiny_bert), str(test_corpus),
         str(tmp_path / "out"), "--name", "tiny", "--settings", "documents", "--rounds", "1", "--limit", "4"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "forward ceiling" in proc.stderr
    saved = json.loads((tmp_path / "out" / "tiny.json").read_text())
    assert list(saved["settings"]) == ["documents"] and saved["settings"]["documents"]["texts"] == 1


def test_pipelines_timed_in_turn_with_the_encoder(tiny_bert: Path, test_corpus: Path, tmp_path: Path, monkeypatch) -> None:
    """With a throughput result, the spaCy and HF pipelines it names run in this
    process, each at its fastest single-process batch size, one pass per round after
    the encoder's; their figures are these passes', not the result's. bfloat16 on a
    CPU without it is emulated: slow, but the same code path."""
    spacy_model = build_transformer_pipeline(tiny_bert, tmp_path / "spacy_model")
    hf_model = build_random_token_classifier(tmp_path / "hf_model", tiny_bert, tiny=True)
    words = 3 * (5 + 6 + 2)
    runs = []
    for setting in ("sentences", "documents"):
        runs += [
            # faster on paper, but with 2 processes: not what one process can time
            {"setting": setting, "engine": "spacy", "dtype": "bfloat16", "n_process": 2, "batch_size": 64,
             "token_budget_used": 1024, "words_per_second": 1e6, "label": f"{setting}-spacy-np2"},
            {"setting": setting, "engine": "spacy", "dtype": "bfloat16", "n_process": 1, "batch_size": 2,
             "token_budget_used": 8, "words_per_second": 1e5, "label": f"{setting}-spacy-np1"},
            {"setting": setting, "engine": "spacy", "dtype": "float32", "n_process": 1, "batch_size": 4,
             "token_budget_used": 8, "words_per_second": 1e7, "label": f"{setting}-spacy-fp32"},
            {"setting": setting, "engine": "hf", "dtype": "bfloat16", "batch_size": 2, "words_per_second": 1e5,
             "label": f"{setting}-hf-bf16"},
            {"setting": setting, "engine": "hf", "dtype": "float32", "batch_size": 1, "words_per_second": 1e5,
             "label": f"{setting}-hf-fp32"},
        ]
    throughput = tmp_path / "throughput.json"
    throughput.write_text(json.dumps({
        "model": spacy_model.name, "hf_model": hf_model.name, "runs": runs,  # relative, as a project writes them
        "settings": {s: {"words": words} for s in ("sentences", "documents")},
    }))
    monkeypatch.chdir(tmp_path)  # the result's model paths are relative to where it was measured
    result = run_ceiling(
        tiny_bert, test_corpus, tmp_path / "out", "tiny", join=4, dtype="bfloat16", token_budget=16, rounds=3,
        torch_threads=1, throughput=throughput,
    )
    assert result["interleaved"] is True
    for setting, c in result["settings"].items():
        assert set(c["engines"]) == {"spacy", "hf", "hf_default"}
        assert (c["spacy_run"], c["hf_run"], c["hf_default_run"]) == (
            f"{setting}-spacy-np1", f"{setting}-hf-bf16", f"{setting}-hf-fp32"
        )
        encoder = c["forward_seconds_by_round"]
        spacy_seconds = c["engines"]["spacy"]["seconds_by_round"]
        assert len(encoder) == len(spacy_seconds) == 3
        # the figures are this run's passes, not the throughput result's
        assert c["spacy_words_per_second"] == pytest.approx(words / sorted(spacy_seconds)[1])
        assert c["spacy_words_per_second"] < 1e5
        assert c["spacy_over_ceiling"] == pytest.approx(median_ratio(encoder, spacy_seconds))
        assert c["spacy_over_hf_default"] == pytest.approx(
            median_ratio(c["engines"]["hf_default"]["seconds_by_round"], spacy_seconds)
        )
    table = (tmp_path / "out" / "tiny.md").read_text()
    assert "timed in this process in turn with the encoder" in table and "sentences-spacy-np1" in table
    assert "| spaCy / HF default |" in table and "medians of 3 rounds" in table
    # a result whose models aren't here: one line naming them
    monkeypatch.chdir(tmp_path / "out")
    with pytest.raises(NerComponentError, match="its model 'spacy_model' does not exist here"):
        run_ceiling(tiny_bert, test_corpus, tmp_path / "out2", "tiny", join=4, rounds=1, throughput=throughput)
