"""Tests of the Ray Data scale-out (`ner_component.annotate.distributed`) on a local Ray
with 2 CPUs: the same records, in the same order, as the single-process CLI."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from ner_component.annotate.distributed import plan_chunks, read_chunk
from ner_component.annotate.local import (
    AnnotateInputError,
    annotate,
    read_numbered_lines,
)
from tests.pipelines import build_transformer_pipeline
from tests.util import ROOT, TEXTS, many_lines, read_records, write_lines


def chunked_lines(path: Path, lines_per_chunk: int) -> List[Tuple[int, bytes]]:
    lines = []
    for chunk in plan_chunks(str(path), lines_per_chunk):
        chunk_lines = list(read_chunk(chunk["path"], chunk["start"], chunk["end"], chunk["first_line"]))
        assert len(chunk_lines) == chunk["n_lines"]
        lines.extend(chunk_lines)
    return lines


@pytest.mark.parametrize("content", [b"", b"a\n", b"a", b"\n\n\n", b"a\nb\n\nc", "Zoë\r\n東京\n\nx\n".encode(), b"a\rb\nc\n"])
@pytest.mark.parametrize("lines_per_chunk", [1, 2, 3, 100])
def test_chunks_read_the_lines_the_cli_reads(tmp_path: Path, content: bytes, lines_per_chunk: int) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(content)
    expected = [(n, raw.rstrip(b"\n")) for n, raw in read_numbered_lines(io.BytesIO(content))]
    assert chunked_lines(path, lines_per_chunk) == expected


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    ray = pytest.importorskip("ray", reason="Ray isn't installed: pip install 'ray[data]>=2.9'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_model(tiny_bert, tmp_path_factory) -> Path:
    return build_transformer_pipeline(tiny_bert, tmp_path_factory.mktemp("ray_annotate") / "model")


def test_ray_matches_cli_jsonl(ray_local: None, ray_model: Path, tmp_path: Path) -> None:
    from ner_component.annotate.distributed import annotate_ray

    lines = [json.dumps({"id": f"d{i}", "text": text}) for i, text in enumerate(many_lines(40))]
    lines[5] = "not json"
    lines[17] = json.dumps({"id": "no-text"})
    lines[30] = ""
    source = write_lines(tmp_path / "in.jsonl", lines)
    cli = annotate(ray_model, source, tmp_path / "cli.jsonl", on_error="record", progress=False)
    summary = annotate_ray(
        str(ray_model), source, tmp_path / "ray.jsonl", concurrency=2, batch_size=4,
        on_error="record", lines_per_chunk=7, progress=False,
    )
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "cli.jsonl").read_bytes()
    assert len(read_records(tmp_path / "ray.jsonl")) == len(lines)
    assert (summary["lines"], summary["errors"], summary["entities"]) == (cli["lines"], 3, cli["entities"])


def test_ray_matches_cli_text(ray_local: None, ray_model: Path, tmp_path: Path) -> None:
    from ner_component.annotate.distributed import annotate_ray

    source = tmp_path / "in.txt"
    # empty lines are documents; the last line has no newline
    source.write_text("\n".join(TEXTS * 3), encoding="utf8")
    annotate(ray_model, source, tmp_path / "cli.jsonl", progress=False)
    annotate_ray(str(ray_model), source, tmp_path / "ray.jsonl", concurrency=2, batch_size=3, lines_per_chunk=5, progress=False)
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "cli.jsonl").read_bytes()
    assert len(read_records(tmp_path / "ray.jsonl")) == len(TEXTS) * 3


def test_ray_bad_line_names_it(ray_local: None, ray_model: Path, tmp_path: Path) -> None:
    from ner_component.annotate.distributed import annotate_ray

    lines = [json.dumps({"text": text}) for text in many_lines(12)]
    lines[8] = json.dumps({"text": 12})
    source = write_lines(tmp_path / "in.jsonl", lines)
    output = tmp_path / "out.jsonl"
    with pytest.raises(AnnotateInputError, match=r"in\.jsonl: line 9: the 'text' field is a number"):
        annotate_ray(str(ray_model), source, output, concurrency=2, batch_size=4, lines_per_chunk=5, progress=False)
    assert not output.exists()


def test_ray_cli_stdout(ray_model: Path, tmp_path: Path) -> None:
    """The script on its own local Ray, output on stdout: JSON lines and nothing else."""
    pytest.importorskip("ray", reason="Ray isn't installed: pip install 'ray[data]>=2.9'")
    source = write_lines(tmp_path / "in.txt", TEXTS)
    annotate(ray_model, source, tmp_path / "cli.jsonl", progress=False)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "annotate_ray.py"), str(ray_model), str(source), "-", "--concurrency", "2", "--no-progress"],
        capture_output=True, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout == (tmp_path / "cli.jsonl").read_bytes()


@pytest.mark.parametrize("schema", ["hf", "prodigy", "docbin"])
def test_ray_writes_every_schema_as_the_cli_does(ray_local: None, ray_model: Path, tmp_path: Path, schema: str) -> None:
    from spacy.tokens import DocBin

    from ner_component.annotate.distributed import annotate_ray

    lines = [json.dumps({"id": f"d{i}", "text": text}) for i, text in enumerate(many_lines(20))]
    lines[7] = "not json"
    source = write_lines(tmp_path / "in.jsonl", lines)
    suffix = "spacy" if schema == "docbin" else "jsonl"
    cli, ray_out = tmp_path / f"cli.{suffix}", tmp_path / f"ray.{suffix}"
    annotate(ray_model, source, cli, on_error="record", progress=False, schema=schema)
    annotate_ray(
        str(ray_model), source, ray_out, concurrency=2, batch_size=4, on_error="record",
        lines_per_chunk=7, progress=False, schema=schema,
    )
    if schema != "docbin":
        assert ray_out.read_bytes() == cli.read_bytes()
        return
    import spacy

    vocab = spacy.blank("en").vocab
    ray_docs = list(DocBin().from_disk(ray_out).get_docs(vocab))
    cli_docs = list(DocBin().from_disk(cli).get_docs(vocab))
    assert len(ray_docs) == len(lines)
    assert [(d.text, [(e.start_char, e.end_char, e.label_) for e in d.ents], d.user_data) for d in ray_docs] == [
        (d.text, [(e.start_char, e.end_char, e.label_) for e in d.ents], d.user_data) for d in cli_docs
    ]
