"""`ner_component.benchmarks.training_memory`: the reports, and which trimming ran."""
import json

import pytest

from ner_component.benchmarks.training_memory import run_training_memory
from ner_component.data.convert import convert
from ner_component.data.wikiann import ArchiveSource
from ner_component.errors import NerComponentError
from ner_component.training import callbacks
from tests.util import ROOT, write_archive


@pytest.fixture
def corpus(tmp_path):
    convert(ArchiveSource(write_archive(tmp_path), "xy"), tmp_path / "corpus", "xy")
    return tmp_path / "corpus"


@pytest.mark.parametrize("trim_every,trims", [(2, 3), (0, 0), (None, 0)], ids=["every 2", "never", "the config's: none"])
def test_reports_and_trims(monkeypatch, tiny_bert, corpus, tmp_path, trim_every, trims):
    calls = []
    monkeypatch.setattr(callbacks, "malloc_trim", lambda: lambda: calls.append(1))
    output = tmp_path / "out" / "memory.json"
    result = run_training_memory(
        ROOT / "configs" / "cpu_e5.cfg", corpus, "xy", output, steps=6, every=2, trim_every=trim_every,
        overrides={"training.batcher.size": 20}, transformer=str(tiny_bert),
    )
    reports = result["reports"]
    assert [r["step"] for r in reports] == [0, 2, 4, 6]
    assert all(0 < r["rss_mb"] <= r["peak_mb"] for r in reports)
    assert reports[-1]["step_seconds"] >= reports[1]["step_seconds"] > 0
    assert result["trim_every"] == ("config" if trim_every is None else trim_every)
    assert len(calls) == trims  # steps 0, 2, 4 of 6 at every 2; cpu_e5.cfg has no before_update
    assert json.loads(output.read_text()) == result


def test_bad_counts_are_refused(tmp_path):
    with pytest.raises(NerComponentError, match="at least"):
        run_training_memory(ROOT / "configs" / "cpu_e5.cfg", tmp_path, "xy", tmp_path / "m.json", steps=0, every=1)
