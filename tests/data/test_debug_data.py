"""`spacy project run debug-data`: spaCy's own `debug data` on the converted corpus."""
import json
import os
import re
import subprocess
import sys

import pytest

from ner_component.data.convert import convert
from ner_component.data.wikiann import resolve_source
from tests.util import copy_project


# bn: space-separated; zh-classical: written without spaces, one WikiANN token per
# character (the corpus's own tokens must be read, not the whitespace tokenizer's).
@pytest.mark.parametrize("lang", ["bn", "zh-classical"])
def test_debug_data_counts_the_labels_of_report_json(tmp_path, wikiann_dir, lang):
    root = copy_project(tmp_path / "project")
    report = convert(resolve_source(str(wikiann_dir), lang), root / "corpus" / lang, lang)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "debug-data", str(root), "--vars.lang", lang],
        cwd=root, env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("Labels in train data:"))
    counts = {label: int(n) for label, n in re.findall(r"'(\w+)' \((\d+)\)", line)}
    assert counts == report["splits"]["train"]["entities"], (line, json.dumps(report["splits"]["train"]))
    assert f"{report['splits']['train']['sentences']} training docs" in proc.stdout
    assert "misaligned" not in proc.stdout
