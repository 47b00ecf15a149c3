"""The output schemas of annotate (`ner_component.annotate.schemas`), each read back
by its consumer's own reader where that is installable."""
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest
import spacy
import srsly
from spacy.tokens import DocBin

from ner_component.annotate.local import annotate
from ner_component.errors import NerComponentError
from tests.pipelines import TRAIN_DATA, build_token_ner_pipeline
from tests.util import ROOT, read_records, write_lines

TEXTS = [text for text, _ in TRAIN_DATA] + ["Zoë moved from Zürich to 東京", ""]


@pytest.fixture(scope="module")
def token_ner_model(tmp_path_factory) -> Path:
    """A trained token_ner pipeline: its entities carry confidences."""
    return build_token_ner_pipeline(tmp_path_factory.mktemp("schemas") / "token_ner")


@pytest.fixture(scope="module")
def native(token_ner_model: Path, tmp_path_factory) -> List[Dict[str, Any]]:
    folder = tmp_path_factory.mktemp("native")
    lines = [json.dumps({"id": f"d{i}", "text": text}) for i, text in enumerate(TEXTS)] + ["not json"]
    source = write_lines(folder / "in.jsonl", lines)
    annotate(token_ner_model, source, folder / "native.jsonl", on_error="record", progress=False)
    records = read_records(folder / "native.jsonl")
    assert sum(len(r.get("entities", [])) for r in records) >= 3, "the trained token_ner finds its entities"
    return records


def run(model: Path, folder: Path, schema: str, suffix: str = "jsonl") -> Path:
    lines = [json.dumps({"id": f"d{i}", "text": text}) for i, text in enumerate(TEXTS)] + ["not json"]
    source = write_lines(folder / "in.jsonl", lines)
    output = folder / f"out.{suffix}"
    annotate(model, source, output, on_error="record", progress=False, schema=schema)
    return output


def test_hf_records_are_the_hf_pipelines(token_ner_model, native, tmp_path, tiny_bert):
    """Same keys and value types as `pipeline("token-classification",
    aggregation_strategy="simple")` gives, read from the real pipeline's output."""
    from transformers import pipeline

    hf_output = pipeline("token-classification", model=str(tiny_bert), aggregation_strategy="simple")(
        "Barack Obama visited Paris today with Google"
    )
    assert hf_output, "the random tiny model tags something"
    hf_types = {key: type(json.loads(json.dumps(value, default=float))) for key, value in hf_output[0].items()}

    records = read_records(run(token_ner_model, tmp_path, "hf"))
    assert records[-1] == native[-1] and "error" in records[-1]  # the bad line: an error record
    for record, expected, text in zip(records, native, TEXTS):
        assert isinstance(record, list) and len(record) == len(expected["entities"])
        for entity, ent in zip(record, expected["entities"]):
            assert {key: type(value) for key, value in entity.items()} == hf_types
            assert entity["word"] == text[entity["start"] : entity["end"]] == ent["text"]
            assert entity["entity_group"] == ent["label"]
            assert entity["score"] == pytest.approx(ent["score"], rel=1e-9)  # BLAS threads: last bits differ


def test_prodigy_tasks(token_ner_model, native, tmp_path):
    """Prodigy isn't installable here; its task format is: text, spans with character
    offsets and labels, meta. Read with srsly, Prodigy's own JSONL reader."""
    tasks = list(srsly.read_jsonl(run(token_ner_model, tmp_path, "prodigy")))
    assert tasks[-1] == native[-1]
    for task, expected, text in zip(tasks, native, TEXTS):
        assert set(task) == {"text", "spans", "meta"} and task["text"] == text
        assert task["meta"]["id"] == expected["id"]
        assert [(s["start"], s["end"], s["label"]) for s in task["spans"]] == [
            (e["start"], e["end"], e["label"]) for e in expected["entities"]
        ]
        assert task["meta"]["scores"] == pytest.approx([e["score"] for e in expected["entities"]], rel=1e-9)
        # spaCy, as Prodigy does, makes the spans token spans of the text
        doc = spacy.blank("en").make_doc(task["text"])
        assert all(doc.char_span(s["start"], s["end"]) is not None for s in task["spans"])


def test_docbin_round_trips_through_spacy(token_ner_model, native, tmp_path):
    output = run(token_ner_model, tmp_path, "docbin", suffix="spacy")
    nlp = spacy.load(token_ner_model)
    docs = list(DocBin().from_disk(output).get_docs(nlp.vocab))
    assert len(docs) == len(native)
    for doc, expected, text in zip(docs[:-1], native, TEXTS):
        assert doc.text == text and doc.user_data["id"] == expected["id"]
        assert [(e.start_char, e.end_char, e.label_, e.text) for e in doc.ents] == [
            (e["start"], e["end"], e["label"], e["text"]) for e in expected["entities"]
        ]
        assert doc.user_data["scores"] == pytest.approx([e["score"] for e in expected["entities"]], rel=1e-9)
    bad = docs[-1]
    assert len(bad) == 0 and bad.user_data["error"] == native[-1]["error"]


def test_docbin_long_text_is_one_doc(token_ner_model, tmp_path):
    """A text longer than nlp.max_length is annotated in pieces and still one Doc."""
    nlp = spacy.load(token_ner_model)
    text = " ".join(["Barack Obama visited Paris today ."] * 40)
    source = write_lines(tmp_path / "in.txt", [text])
    native_out, docbin_out = tmp_path / "native.jsonl", tmp_path / "out.spacy"
    import ner_component.annotate.local as local

    original = local.load_pipeline

    def short_max_length(*args, **kwargs):
        loaded = original(*args, **kwargs)
        loaded.max_length = 200
        return loaded

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(local, "load_pipeline", short_max_length)
        annotate(token_ner_model, source, native_out, progress=False)
        annotate(token_ner_model, source, docbin_out, progress=False, schema="docbin")
    (doc,) = DocBin().from_disk(docbin_out).get_docs(nlp.vocab)
    (record,) = read_records(native_out)
    assert doc.text == text
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
        (e["start"], e["end"], e["label"]) for e in record["entities"]
    ]


def test_bad_schema_and_docbin_to_stdout_are_refused_before_loading(tmp_path):
    source = write_lines(tmp_path / "in.txt", ["Paris"])
    with pytest.raises(NerComponentError, match="schema 'conll' is not one of native, hf, prodigy, docbin"):
        annotate("no-such-model", source, tmp_path / "out.jsonl", schema="conll", progress=False)
    with pytest.raises(NerComponentError, match="docbin writes a .spacy file"):
        annotate("no-such-model", source, "-", schema="docbin", progress=False)
    assert not (tmp_path / "out.jsonl").exists()


def test_readme_shows_each_schema():
    readme = (ROOT / "README.md").read_text(encoding="utf8") + "".join(
        p.read_text(encoding="utf8") for p in (ROOT / "docs").glob("*.md")
    )
    for schema in ("native", "hf", "prodigy", "docbin"):
        assert f"--schema {schema}" in readme


_NOISY_WRITER = """
import os, sys
from ner_component.annotate.schemas import open_writer, stdout_for_records_only
with stdout_for_records_only("-") as stdout, open_writer("native", "-", stdout) as out:
    out.write('{"id": 1}')
    print("a print while the records run")
    sys.stdout.write("sys.stdout while the records run\\n")
    os.write(1, b"file descriptor 1 while the records run\\n")
    {ray_error}
    out.write('{"id": 2}')
print("after the records: stdout again")
"""

# what Ray's driver does with an error it hears of (ray._private.worker.listen_error_messages)
_RAY_ERROR = (
    "from ray._private.worker import print_to_stdstream; "
    "print_to_stdstream({'lines': ['A worker died or was killed'], 'pid': 'raylet', 'is_err': False}, ignore_prefix=False)"
)


@pytest.mark.parametrize("ray_error", [False, True], ids=["prints", "ray-error"])
def test_stdout_carries_the_records_alone(ray_error):
    """With the records on stdout, whatever else the process writes to stdout while
    they run goes to stderr: Python's prints, and Ray's driver, which prints the errors
    it hears of to stdout even with log_to_driver off (it once broke the Ray CLI's
    JSON lines); stdout is stdout again afterwards."""
    import subprocess
    import sys

    if ray_error:
        pytest.importorskip("ray", reason="Ray isn't installed: pip install 'ray[data]>=2.9'")
    code = _NOISY_WRITER.replace("{ray_error}", _RAY_ERROR if ray_error else "pass")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '{"id": 1}\n{"id": 2}\nafter the records: stdout again\n'
    for noise in ("a print while", "sys.stdout while", "file descriptor 1 while"):
        assert noise in proc.stderr
    assert ("A worker died or was killed" in proc.stderr) == ray_error


def test_stdout_for_records_only_without_a_file_descriptor(capsys):
    """Where sys.stdout is no file descriptor (a notebook, pytest's capture), the
    records go to that stream and other prints to stderr, at the Python level."""
    from ner_component.annotate.schemas import open_writer, stdout_for_records_only

    with stdout_for_records_only("-") as stdout, open_writer("native", "-", stdout) as out:
        out.write('{"id": 1}')
        print("a print while the records run")
    print("afterwards")
    captured = capsys.readouterr()
    assert captured.out == '{"id": 1}\nafterwards\n'
    assert "a print while the records run" in captured.err
