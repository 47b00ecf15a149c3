"""Markdown tables and PNG figures (`ner_component.reporting`): the layout every
report shares."""
import json

import pytest

from ner_component.reporting import (
    figure,
    markdown_table,
    number,
    per_type_table,
    percent,
    scores_table,
    spacy_prf,
    write_report,
)


def test_markdown_table_aligns_a_name_then_figures():
    table = markdown_table(["texts", "words/s"], [["sentences", 1200], ["documents", ""]])
    assert table == "| texts | words/s |\n|---|---:|\n| sentences | 1200 |\n| documents | |"


def test_markdown_table_with_explicit_alignment_and_empty_header():
    assert markdown_table(["", ""], [("spaCy", "3.8")], align="ll") == "| | |\n|---|---|\n| spaCy | 3.8 |"
    assert markdown_table(["a", "b", "c"], [], align="rcl").splitlines()[1] == "|---:|:---:|---|"


def test_markdown_table_refuses_mismatched_rows_and_alignments():
    with pytest.raises(ValueError, match="a row has 1 cells, the header 2"):
        markdown_table(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="align \\('lx'\\)"):
        markdown_table(["a", "b"], [], align="lx")
    with pytest.raises(ValueError, match="for each of 2 columns"):
        markdown_table(["a", "b"], [], align="l")


def test_figures_as_text():
    assert percent(0.81234) == "81.23" and percent(0.81234, 1) == "81.2"
    assert percent(None) == "" and percent(None, missing="-") == "-"
    assert number(12345.6) == "12,346" and number(2.25, 1) == "2.2" and number(None, missing="-") == "-"


def test_scores_and_per_type_tables():
    strict = {"precision": 0.5, "recall": 0.75, "f1": 0.6, "accuracy": 0.91}
    spacy = {"ents_p": 0.5, "ents_r": 0.75, "ents_f": 0.6}
    assert scores_table([("seqeval strict IOB2", strict), ("spaCy scorer", spacy_prf(spacy))]) == (
        "| scorer | precision | recall | F1 | token accuracy |\n"
        "|---|---:|---:|---:|---:|\n"
        "| seqeval strict IOB2 | 50.00 | 75.00 | 60.00 | 91.00 |\n"
        "| spaCy scorer | 50.00 | 75.00 | 60.00 | |"
    )
    per_type = {"PER": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}}
    assert per_type_table(per_type) == (
        "| type | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|\n| PER | 100.00 | 50.00 | 66.67 | 2 |"
    )


def test_figure_saves_a_png_and_nothing_on_failure(tmp_path):
    path = tmp_path / "out" / "plot.png"
    with figure(path, figsize=(2, 2)) as (fig, ax):
        ax.plot([0, 1], [0, 1])
    assert path.read_bytes()[:4] == b"\x89PNG"
    import matplotlib.pyplot as plt

    assert not plt.get_fignums()  # closed
    failed = tmp_path / "failed.png"
    with pytest.raises(RuntimeError):
        with figure(failed) as (fig, ax):
            raise RuntimeError("drawing failed")
    assert not failed.exists() and list(tmp_path.iterdir()) == [tmp_path / "out"]
    assert not plt.get_fignums()


def test_write_report(tmp_path):
    def plot(result, path):
        with figure(path, figsize=(2, 2)) as (_, ax):
            ax.bar([0], [result["x"]])

    json_path = write_report(tmp_path / "metrics", "en", {"x": 1}, "| a |\n", plot)
    assert json.loads(json_path.read_text()) == {"x": 1}
    assert (tmp_path / "metrics" / "en.md").read_text() == "| a |\n"
    assert (tmp_path / "metrics" / "en.png").read_bytes()[:4] == b"\x89PNG"
    write_report(tmp_path / "metrics", "benchmark", {"x": 2}, "", plot, png_name="curve.png")
    assert (tmp_path / "metrics" / "curve.png").exists() and not (tmp_path / "metrics" / "benchmark.png").exists()
