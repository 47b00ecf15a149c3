"""`ner_component.benchmarks.annotate_memory`: the stream and its reports (the
memory bound itself: `tests/test_bad_input.py::test_7_memory_stays_flat`)."""
import json

import pytest
import torch

from ner_component.benchmarks.annotate_memory import distinct_lines, run_annotate_memory
from ner_component.errors import NerComponentError
from tests.pipelines import build_transformer_pipeline


def test_distinct_lines_are_reproducible_and_new():
    lines = list(distinct_lines(2_000))
    assert lines == list(distinct_lines(2_000))
    assert [n for n, _ in lines] == list(range(1, 2_001))
    assert len({text for _, text in lines}) == 2_000
    assert all(text.endswith(b"\n") and 3 <= len(text.split()) <= 25 for _, text in lines)


def test_reports_every_n_lines_and_the_last(tiny_bert, tmp_path):
    model = build_transformer_pipeline(tiny_bert, tmp_path / "model")
    threads = torch.get_num_threads()
    try:
        result = run_annotate_memory(model, tmp_path / "out" / "memory.json", 250, 100, None)
    finally:
        torch.set_num_threads(threads)  # the benchmark runs on one thread, like annotate --torch-threads 1
    assert [r["line"] for r in result["rss_mb"]] == [100, 200, 250]
    assert all(r["rss_mb"] > 0 for r in result["rss_mb"])
    assert json.loads((tmp_path / "out" / "memory.json").read_text()) == result


def test_bad_counts_are_refused(tmp_path):
    with pytest.raises(NerComponentError, match="at least 1"):
        run_annotate_memory(tmp_path, tmp_path / "memory.json", 0, 10)
