"""Tests of streaming annotation (`ner_component.annotate.local`, `scripts/annotate.py`)."""
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from ner_component.annotate.local import (
    AnnotateError,
    AnnotateInputError,
    annotate,
    annotate_lines,
    check_processes,
    doc_entities,
    load_pipeline,
    parse_line,
    resolve_format,
)
from ner_component.errors import NerComponentError
from tests.pipelines import build_token_ner_pipeline, build_transformer_pipeline
from tests.util import ROOT, TEXTS, many_lines, read_records, write_lines

SCRIPT = ROOT / "scripts" / "annotate.py"


@pytest.fixture(scope="session")
def annotate_model(tiny_bert, tmp_path_factory) -> Path:
    return build_transformer_pipeline(tiny_bert, tmp_path_factory.mktemp("annotate") / "model")


def run_script(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], input=stdin.encode("utf8"), capture_output=True, env=env, cwd=ROOT
    )


# ---------------------------------------------------------------- line parsing


def test_parse_line_jsonl() -> None:
    line = parse_line(b'{"id": "a1", "text": "Zo\\u00eb here"}\r\n', 3, "jsonl")
    assert (line.line_no, line.id, line.text, line.error) == (3, "a1", "Zoë here", None)
    # without the id field, the id is the line number
    assert parse_line('{"text": "x"}\n'.encode(), 7, "jsonl").id == 7
    assert parse_line(b'{"body": "x", "key": 9}', 2, "jsonl", text_field="body", id_field="key").id == 9


@pytest.mark.parametrize(
    "raw,expected",
    [
        (b"not json\n", "invalid JSON"),
        (b"\n", "empty line"),
        (b"[1, 2]\n", "expected a JSON object, got an array"),
        (b'{"id": 1, "body": "x"}\n', "no 'text' field"),
        (b'{"text": 42}\n', "the 'text' field is a number (42), expected a string"),
        (b'{"text": null}\n', "the 'text' field is null"),
        (b'{"text": "caf\xe9"}\n', "not valid UTF-8"),
    ],
)
def test_parse_line_errors(raw: bytes, expected: str) -> None:
    line = parse_line(raw, 4, "jsonl")
    assert line.text == ""
    assert line.error is not None and expected in line.error
    assert "\n" not in line.error


def test_parse_line_text_keeps_everything_but_the_newline() -> None:
    assert parse_line(b"  spaced \t\r\n", 1, "text").text == "  spaced \t"
    assert parse_line(b"\n", 2, "text").text == ""
    # a BOM on the first line isn't part of the document
    assert parse_line("\ufeffZoë\n".encode(), 1, "text").text == "Zoë"
    # a lone \r or a Unicode line separator doesn't end a line
    assert parse_line("a\rb\u2028c\n".encode(), 1, "text").text == "a\rb\u2028c"


def test_resolve_format() -> None:
    assert resolve_format("x.jsonl", "auto") == "jsonl"
    assert resolve_format("x.txt", "auto") == "text"
    assert resolve_format("-", "text") == "text"
    with pytest.raises(AnnotateError, match="--format"):
        resolve_format("-", "auto")
    with pytest.raises(AnnotateError, match="csv"):
        resolve_format("x.jsonl", "csv")


def test_gpu_with_several_processes_is_refused() -> None:
    with pytest.raises(AnnotateError, match=r"n_process \(2\) > 1 with gpu_id 0"):
        check_processes(2, 0)
    check_processes(2, -1)
    check_processes(1, 0)


def test_gpu_without_a_gpu_is_one_line(annotate_model: Path, tmp_path: Path, capsys) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    source = write_lines(tmp_path / "in.txt", ["Zoë"])
    with pytest.raises(NerComponentError) as exc:
        annotate(annotate_model, source, tmp_path / "out.jsonl", gpu_id=0, progress=False)
    (line,) = str(exc.value).splitlines()
    assert "gpu_id is 0 but" in line
    assert not (tmp_path / "out.jsonl").exists()


# ------------------------------------------------------------- annotation


def test_plain_text(annotate_model: Path, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.txt", TEXTS)
    summary = annotate(annotate_model, source, tmp_path / "out.jsonl", progress=False)
    records = read_records(tmp_path / "out.jsonl")
    assert len(records) == len(TEXTS) == summary["lines"]
    assert [r["id"] for r in records] == list(range(1, len(TEXTS) + 1))
    # the empty line is a document too, without entities
    assert records[2] == {"id": 3, "entities": []}
    for text, record in zip(TEXTS, records):
        assert set(record) == {"id", "entities"}
        for ent in record["entities"]:
            assert set(ent) == {"label", "start", "end", "text", "score"}
            assert text[ent["start"] : ent["end"]] == ent["text"]
            assert ent["score"] is None  # no token_ner: no confidences
    assert sum(len(r["entities"]) for r in records) == summary["entities"] > 0


def test_non_ascii_offsets(annotate_model: Path, tmp_path: Path) -> None:
    text = TEXTS[3]
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "x", "text": text}, ensure_ascii=True) + "\n", encoding="utf8")
    annotate(annotate_model, source, tmp_path / "out.jsonl", progress=False)
    (record,) = read_records(tmp_path / "out.jsonl")
    found = {(e["text"], e["label"], e["start"], e["end"]) for e in record["entities"]}
    for word, label in (("Zürich", "LOC"), ("東京", "LOC"), ("Acme Corp", "ORG")):
        start = text.index(word)
        assert (word, label, start, start + len(word)) in found
    for ent in record["entities"]:
        assert text[ent["start"] : ent["end"]] == ent["text"]
    # the output file keeps non-ASCII text as UTF-8
    assert "東京" in (tmp_path / "out.jsonl").read_text(encoding="utf8")


def test_jsonl_ids_and_fields(annotate_model: Path, tmp_path: Path) -> None:
    lines = [
        json.dumps({"doc": "d-1", "body": TEXTS[1]}),
        json.dumps({"body": TEXTS[0], "other": [1, 2]}),
        json.dumps({"doc": 17, "body": ""}),
    ]
    source = write_lines(tmp_path / "in.jsonl", lines)
    annotate(annotate_model, source, tmp_path / "out.jsonl", text_field="body", id_field="doc", progress=False)
    records = read_records(tmp_path / "out.jsonl")
    assert [r["id"] for r in records] == ["d-1", 2, 17]
    assert records[2]["entities"] == []
    assert "Zürich" in {e["text"] for e in records[0]["entities"]}


def test_order_with_two_processes(annotate_model: Path, tmp_path: Path) -> None:
    lines = many_lines(60)
    source = write_lines(tmp_path / "in.txt", lines)
    annotate(annotate_model, source, tmp_path / "one.jsonl", batch_size=4, n_process=1, torch_threads=1, progress=False)
    # several memory zones, each with its own worker processes
    annotate(annotate_model, source, tmp_path / "two.jsonl", batch_size=4, n_process=2, zone_lines=16, progress=False)
    one, two = read_records(tmp_path / "one.jsonl"), read_records(tmp_path / "two.jsonl")
    assert len(two) == len(lines)
    assert [r["id"] for r in two] == list(range(1, len(lines) + 1))
    for text, record in zip(lines, two):
        found = {(e["text"], e["start"]) for e in record["entities"]}
        assert ("Zürich", text.index("Zürich")) in found
        assert len([e for e in record["entities"] if e["text"] == "東京"]) == text.count("東京")
    assert two == one


def test_bad_line_stops_naming_it_and_leaves_no_output(annotate_model: Path, tmp_path: Path) -> None:
    lines = [json.dumps({"text": t}) for t in TEXTS[:3]] + ['{"text": "unterminated'] + [json.dumps({"text": "x"})]
    source = write_lines(tmp_path / "in.jsonl", lines)
    output = tmp_path / "out.jsonl"
    with pytest.raises(AnnotateInputError, match=r"in\.jsonl: line 4: invalid JSON"):
        annotate(annotate_model, source, output, progress=False)
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [source]  # no temporary file left either
    # an existing output is left as it was
    output.write_text("previous\n")
    with pytest.raises(AnnotateInputError):
        annotate(annotate_model, source, output, progress=False)
    assert output.read_text() == "previous\n"


def test_on_error_record_keeps_every_line(annotate_model: Path, tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "ok", "text": TEXTS[1]}),
        "not json at all",
        "",
        json.dumps({"id": "no-text", "body": "x"}),
        json.dumps({"id": "number", "text": 3}),
        json.dumps(["a", "list"]),
        json.dumps({"text": TEXTS[0]}),
    ]
    source = write_lines(tmp_path / "in.jsonl", lines)
    summary = annotate(annotate_model, source, tmp_path / "out.jsonl", on_error="record", progress=False)
    records = read_records(tmp_path / "out.jsonl")
    assert len(records) == len(lines) == summary["lines"]
    assert summary["errors"] == 5
    assert [r["id"] for r in records] == ["ok", 2, 3, "no-text", "number", 6, 7]
    assert "entities" in records[0] and "entities" in records[6]
    for line_no, record in enumerate(records[1:6], 2):
        assert set(record) == {"id", "error"}
        assert record["error"].startswith(f"line {line_no}: ")


def test_streams_lazily(annotate_model: Path) -> None:
    """The input is pulled through nlp.pipe as output is needed, never read whole."""
    nlp = load_pipeline(annotate_model)
    consumed = 0

    def endless() -> Iterator[Tuple[int, bytes]]:
        nonlocal consumed
        for line_no in itertools.count(1):
            consumed += 1
            yield line_no, f"Zoë number {line_no}\n".encode()

    results = annotate_lines(nlp, endless(), "text", batch_size=8)
    first = list(itertools.islice(results, 20))
    assert [r.line_no for r in first] == list(range(1, 21))
    assert consumed <= 40


def test_memory_zones_keep_the_vocab_flat(annotate_model: Path) -> None:
    """New words don't pile up in the vocab: each zone frees its strings."""
    nlp = load_pipeline(annotate_model)
    lines = [(i, f"Zoë met Xq{i}zw and Yv{i}kp in Zürich\n".encode()) for i in range(1, 61)]
    list(annotate_lines(nlp, lines[:5], "text", zone_lines=10))
    n_strings = len(nlp.vocab.strings)
    results = list(annotate_lines(nlp, lines, "text", zone_lines=10))
    assert len(results) == len(lines)
    assert len(nlp.vocab.strings) <= n_strings + 5
    assert "Xq60zw" not in nlp.vocab.strings
    # without memory zones, they stay
    list(annotate_lines(nlp, lines, "text", zone_lines=None))
    assert len(nlp.vocab.strings) >= n_strings + 2 * len(lines)


# -------------------------------------------------------------------- CLI


def test_cli_stdin_stdout(annotate_model: Path, tmp_path: Path) -> None:
    lines = [json.dumps({"id": f"doc{i}", "text": t}) for i, t in enumerate(TEXTS)]
    proc = run_script(str(annotate_model), "-", "-", "--format", "jsonl", "--no-progress", stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr.decode()
    out = [json.loads(line) for line in proc.stdout.decode("utf8").splitlines()]
    assert [r["id"] for r in out] == [f"doc{i}" for i in range(len(TEXTS))]
    # the same records as the function writes to a file
    source = write_lines(tmp_path / "in.jsonl", lines)
    annotate(annotate_model, source, tmp_path / "out.jsonl", progress=False)
    assert out == read_records(tmp_path / "out.jsonl")


def test_cli_bad_line_is_one_error_line(annotate_model: Path, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [json.dumps({"text": "fine"}), json.dumps({"text": ["not", "a", "string"]})])
    output = tmp_path / "out.jsonl"
    proc = run_script(str(annotate_model), str(source), str(output), "--no-progress")
    assert proc.returncode == 1
    stderr = proc.stderr.decode("utf8")
    assert "Traceback" not in stderr
    (error,) = [line for line in stderr.splitlines() if line.startswith("\u2718")]
    assert "in.jsonl: line 2: the 'text' field is an array" in error
    assert not output.exists()
    # stdin without --format: told what to do, in one line
    proc = run_script(str(annotate_model), "-", "-", "--no-progress", stdin="x\n")
    assert proc.returncode == 1
    assert "--format jsonl or --format text" in proc.stderr.decode()


# ------------------------------------------------------- token_ner confidences


def test_token_ner_confidences(tmp_path: Path) -> None:
    pytest.importorskip("ner_component.runtime.token_ner")
    from tests.pipelines import TRAIN_DATA

    model = build_token_ner_pipeline(tmp_path / "token_ner")
    texts = [text for text, _ in TRAIN_DATA]
    source = write_lines(tmp_path / "in.txt", texts)
    annotate(model, source, tmp_path / "one.jsonl", progress=False)
    records = read_records(tmp_path / "one.jsonl")
    entities = [e for r in records for e in r["entities"]]
    assert entities, "the trained token_ner predicts its training entities"
    for ent in entities:
        assert isinstance(ent["score"], float) and 0.0 <= ent["score"] <= 1.0
    # the confidences survive the trip back from worker processes
    annotate(model, source, tmp_path / "two.jsonl", n_process=2, progress=False)
    assert read_records(tmp_path / "two.jsonl") == records


def test_doc_entities_reads_another_packages_confidence() -> None:
    # where another package registered `Span._.confidence` first, its getter is
    # what the records carry, not token_ner's span groups
    import spacy
    from spacy.tokens import Span

    from ner_component.runtime.token_ner import CONFIDENCE_EXTENSION

    doc = spacy.blank("en")("Ada Lovelace met Babbage")
    doc.ents = [Span(doc, 0, 2, label="PER")]
    getter = Span.get_extension(CONFIDENCE_EXTENSION)[2]
    assert getter is not None, "token_ner registers a getter"
    try:
        Span.set_extension(CONFIDENCE_EXTENSION, getter=lambda span: 0.25, force=True)
        assert [e["score"] for e in doc_entities(doc)] == [0.25]
        Span.remove_extension(CONFIDENCE_EXTENSION)
        assert [e["score"] for e in doc_entities(doc)] == [None]
    finally:
        Span.set_extension(CONFIDENCE_EXTENSION, getter=getter, force=True)
    # token_ner's own getter: no span group scored this entity
    assert [e["score"] for e in doc_entities(doc)] == [None]
