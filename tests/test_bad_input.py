"""Fault injection (issue 14): hostile-but-ordinary input to annotate, convert and
train. Each test feeds exactly one case of the issue and asserts the outcome: the
one-line message naming the file (and line), the exit status, that nothing beside
the intended output is written, and that a previous good output is byte-identical."""
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from ner_component.annotate.local import annotate, annotate_lines, load_pipeline
from ner_component.data.convert import convert
from ner_component.data.wikiann import ArchiveSource, WikiANNError, resolve_source
from ner_component.errors import NerComponentError
from tests.pipelines import build_transformer_pipeline
from tests.util import ROOT

SCRIPTS = ROOT / "scripts"
# Lines with ruler entities (deterministic whatever the tiny model predicts).
ZURICH = "Zoë moved from Zürich to 東京 with Acme Corp"
# Hand-made WikiANN splits of language "xy" (every sentence with an entity).
SPLITS = {
    "train": "xy:R.H.\tB-ORG\nxy:Saunders\tI-ORG\nxy:(\tO\n\nxy:12:30\tO\nxy:Paris\tB-LOC\n\n",
    "dev": "xy:Ada\tB-PER\nxy:Lovelace\tI-PER\n\nxy:the\tO\nxy:UN\tB-ORG\n",
    "test": "xy:Berlin\tB-LOC\nxy:Mitte\tI-LOC\nxy:and\tO\nxy:Bonn\tB-LOC\n",
}


@pytest.fixture(scope="module")
def model(tiny_bert, tmp_path_factory) -> Path:
    return build_transformer_pipeline(tiny_bert, tmp_path_factory.mktemp("bad_input") / "model")


def run(script: str, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    environ = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, env=environ, cwd=ROOT
    )


def error_line(proc: subprocess.CompletedProcess, status: int = 1) -> str:
    """The one error line of a failed run (no traceback)."""
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("\u2718")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def snapshot(folder: Path) -> Dict[str, bytes]:
    """Every file and folder under `folder` (hidden ones too), with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


def write_jsonl(path: Path, lines: List[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf8")
    return path


def strict_json(line: str) -> object:
    """json.loads that refuses NaN/Infinity, which are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)


# ------------------------------------------------------------------ annotate


def test_1_bad_records_are_recorded_or_named(model: Path, tmp_path: Path) -> None:
    """A lone surrogate, JSON nested 200,000 deep and a 5,000-digit integer each
    become an error record under --on-error record; under raise, one line names
    the file and line, and the previous output is left as it was."""
    lines = [
        json.dumps({"id": "ok", "text": ZURICH}),
        '{"id": "surrogate", "text": "x \\ud800"}',
        "[" * 200_000 + "]" * 200_000,
        '{"id": ' + "7" * 5000 + ', "text": "x"}',
        json.dumps({"id": "last", "text": ZURICH}),
    ]
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    output = tmp_path / "out.jsonl"
    proc = run("annotate.py", str(model), str(source), str(output), "--on-error", "record", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    records = [strict_json(line) for line in output.read_text(encoding="utf8").splitlines()]
    assert [r["id"] for r in records] == ["ok", "surrogate", 3, 4, "last"]
    assert records[1]["error"] == "line 2: the 'text' field has a lone surrogate '\\ud800' at character 2, not valid Unicode"
    assert records[2]["error"].startswith("line 3: invalid JSON (nested too deeply to read)")
    assert records[3]["error"].startswith("line 4: invalid JSON (an integer of more than 4300 digits)")
    assert [e["text"] for e in records[4]["entities"] if e["label"] == "LOC"] == ["Zürich", "東京"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
    before = snapshot(tmp_path)
    proc = run("annotate.py", str(model), str(source), str(output), "--no-progress")
    assert error_line(proc).endswith(
        "in.jsonl: line 2: the 'text' field has a lone surrogate '\\ud800' at character 2, not valid Unicode "
        "(use --on-error record to write an error line instead)"
    )
    assert snapshot(tmp_path) == before


def test_1_text_over_max_length_is_split_and_rejoined(model: Path) -> None:
    """A text longer than nlp.max_length (spaCy's E088) is annotated in pieces cut
    at whitespace, and its entities come back at their offsets in the whole text."""
    nlp = load_pipeline(model)
    nlp.max_length = 60
    # cut at the newlines, then at spaces in the run of words
    text = f"{ZURICH}\n{ZURICH} and\n{ZURICH} , " + "word " * 20 + "in Zürich"
    (result,) = annotate_lines(nlp, [(1, json.dumps({"text": text}).encode())], "jsonl")
    assert result.error is None
    ents = result.record["entities"]
    for ent in ents:
        assert text[ent["start"] : ent["end"]] == ent["text"]
    zurich = [ent["start"] for ent in ents if ent["text"] == "Zürich"]
    assert zurich == [i for i in range(len(text)) if text.startswith("Zürich", i)]
    assert len([ent for ent in ents if ent["text"] == "Acme Corp"]) == 3


@pytest.mark.slow
def test_1_text_of_a_million_characters(model: Path, tmp_path: Path) -> None:
    """The issue's input: a text of 1,000,001 characters (nlp.max_length is 1,000,000)."""
    text = "a " * 499_997 + "Zürich"
    assert len(text) == 1_000_000 and len(text + "!") == 1_000_001
    source = write_jsonl(tmp_path / "in.jsonl", [json.dumps({"id": "long", "text": text + "!"})])
    proc = run("annotate.py", str(model), str(source), str(tmp_path / "out.jsonl"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    (record,) = [strict_json(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf8").splitlines()]
    assert {"label": "LOC", "start": 999_994, "end": 1_000_000, "text": "Zürich", "score": None} in record["entities"]


def _descendants(pid: int) -> List[int]:
    import psutil

    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def interrupt(model: Path, tmp_path: Path, n_process: int, signum: int, group: bool) -> subprocess.CompletedProcess:
    """Start annotating a long input in a new session, signal it once it is
    annotating (with `n_process` workers), and check it ends within 10 s with
    128 + signum, its workers gone, no temporary file and the previous output intact."""
    source = tmp_path / "in.txt"
    source.write_text("".join(f"{ZURICH} number {i}\n" for i in range(200_000)), encoding="utf8")
    output = tmp_path / "out.jsonl"
    output.write_text('{"id": "previous"}\n')
    before = snapshot(tmp_path)
    args = [str(model), str(source), str(output), "--no-progress", "--n-process", str(n_process), "--batch-size", "8"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "annotate.py"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        children: List[int] = []
        while time.monotonic() < deadline and proc.poll() is None:
            children = _descendants(proc.pid)
            annotating = any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
            if annotating and len(children) >= (n_process if n_process > 1 else 0):
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(1.0)  # let the workers get busy
        children = _descendants(proc.pid)
        assert len(children) >= (n_process if n_process > 1 else 0)
        if group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=10)
        deadline = time.monotonic() + 10
        while not all(_gone(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(pid) for pid in children), children
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert f"\u2718 Stopped by {signal.Signals(signum).name}; {output} not written" in stderr.splitlines()
    assert snapshot(tmp_path) == before
    return proc


@pytest.mark.parametrize(
    "signum,group",
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
    ids=["SIGTERM-parent", "SIGINT-parent", "SIGINT-group"],
)
def test_2_signal_stops_the_workers(model: Path, tmp_path: Path, signum: int, group: bool) -> None:
    """--n-process 2: SIGTERM or SIGINT to the parent alone (kill PID, a
    supervisor) stops both workers; Ctrl-C to the process group still works."""
    interrupt(model, tmp_path, 2, signum, group)


def test_3_output_folder_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    """OUTPUT a folder, under a file, or in a read-only folder: refused at once,
    before the pipeline is loaded (MODEL doesn't even exist here)."""
    source = write_jsonl(tmp_path / "in.jsonl", [json.dumps({"text": "x"})])
    (tmp_path / "out").mkdir()
    before = snapshot(tmp_path)
    proc = run("annotate.py", "no-such-model", str(source), str(tmp_path / "out"), "--no-progress")
    assert error_line(proc) == f"\u2718 {tmp_path / 'out'}: is a folder; the output must be a file path"
    proc = run("annotate.py", "no-such-model", str(source), str(tmp_path / "in.jsonl" / "out.jsonl"), "--no-progress")
    assert error_line(proc) == f"\u2718 {tmp_path / 'in.jsonl' / 'out.jsonl'}: can't be created, {source} is not a folder"
    assert snapshot(tmp_path) == before
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "out").chmod(0o555)
        proc = run("annotate.py", "no-such-model", str(source), str(tmp_path / "out" / "o.jsonl"), "--no-progress")
        assert error_line(proc).endswith(f"can't be written, {tmp_path / 'out'} is not writable")


def test_4_output_equal_to_input_is_refused(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [json.dumps({"text": "x"})])
    (tmp_path / "link.jsonl").symlink_to(source)
    before = snapshot(tmp_path)
    for output in (source, tmp_path / "link.jsonl", tmp_path / "." / "in.jsonl"):
        proc = run("annotate.py", "no-such-model", str(source), str(output), "--no-progress")
        assert error_line(proc) == f"\u2718 {output}: OUTPUT is the INPUT file, which it would replace; write to another file"
    assert snapshot(tmp_path) == before


def test_5_non_finite_ids_are_written_as_strings(model: Path, tmp_path: Path) -> None:
    """NaN, Infinity, -Infinity and 1e400 ids come back as strings: the output is JSON."""
    literals = ["NaN", "Infinity", "-Infinity", "1e400", "-1E+400"]
    lines = [f'{{"id": {literal}, "text": "Zürich"}}' for literal in literals] + ['{"id": [1.5, NaN], "text": "x"}']
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    annotate(model, source, tmp_path / "out.jsonl", progress=False)
    records = [strict_json(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf8").splitlines()]
    assert [r["id"] for r in records] == literals + [[1.5, "NaN"]]
    assert all("entities" in r for r in records)


def test_6_sigterm_with_one_process_leaves_no_temporary_file(model: Path, tmp_path: Path) -> None:
    interrupt(model, tmp_path, 1, signal.SIGTERM, False)


# Measured here (Xeon with AMX, bfloat16), from 20k to 60k lines: +178 MB with
# PyTorch's default kernel caches (1,024), +24 MB with both at 32, +43-44 MB with
# both at 256 (three runs, 2026-11-30: the larger caches are still filling). On an AMD
# EPYC with AVX2 only (float32, 2026-12-03): +79 MB alone and +86 MB in the parallel
# test run with both at 256, +76 MB with both at 1,024 (there the growth isn't the
# caches). The bound sits between: 80 failed one CI run there.
MEMORY_FIRST, MEMORY_LAST, MEMORY_BOUND_MB = 20_000, 60_000, 120


@pytest.mark.slow
def test_7_memory_stays_flat(model: Path, tmp_path: Path) -> None:
    """40,000 more distinct lines (every word new, many lengths) grow RSS by less
    than MEMORY_BOUND_MB: spaCy's memory zones free the new strings and lexemes,
    and PyTorch's per-shape kernel caches are capped. Measured in a fresh process
    by `scripts/benchmark_annotate_memory.py`, the command of the documented figures."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        env.pop(name, None)
    output = tmp_path / "memory.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_annotate_memory.py"), str(model), str(output),
         "--lines", str(MEMORY_LAST), "--every", str(MEMORY_FIRST)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(output.read_text())
    assert result["kernel_cache_capacity"] == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "256", "LRU_CACHE_CAPACITY": "256"}
    rss = {report["line"]: report["rss_mb"] for report in result["rss_mb"]}
    assert sorted(rss) == [MEMORY_FIRST, 2 * MEMORY_FIRST, MEMORY_LAST]
    growth = rss[MEMORY_LAST] - rss[MEMORY_FIRST]
    assert growth < MEMORY_BOUND_MB, rss


# ------------------------------------------------------------------ convert


def write_archive(path: Path, files: Dict[str, str] = SPLITS, raw: Optional[Dict[str, bytes]] = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in {**{k: v.encode("utf8") for k, v in files.items()}, **(raw or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A good corpus converted before each bad case, to compare with afterwards."""
    out = tmp_path / "corpus"
    convert(ArchiveSource(write_archive(tmp_path / "good.tar.gz"), "xy"), out, "xy")
    return out


def convert_fails(tmp_path: Path, corpus: Path, data: Path) -> str:
    """Run scripts/convert.py on bad data over the good corpus: one line, exit 1,
    the corpus byte-identical and nothing else written."""
    before = snapshot(tmp_path)
    proc = run("convert.py", "xy", str(corpus), "--data", str(data))
    line = error_line(proc)
    assert snapshot(tmp_path) == before
    return line


@pytest.mark.parametrize("bad", ["empty", "no-entities"])
def test_8_empty_or_entity_free_split_replaces_nothing(tmp_path: Path, corpus: Path, bad: str) -> None:
    text = "" if bad == "empty" else "xy:the\tO\nxy:end\tO\n"
    (tmp_path / "bad").mkdir()
    data = write_archive(tmp_path / "bad" / "xy.tar.gz", dict(SPLITS, dev=text))
    expected = "no sentences (an empty split)" if bad == "empty" else "1 sentences but not one entity (every WikiANN sentence has one)"
    assert convert_fails(tmp_path, corpus, data) == f"\u2718 {data}/dev: {expected}"


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _bit_flipped(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    return bytes(flipped)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "zero-byte", "uncompressed", "bit-flipped"])
def test_9_damaged_archive_is_one_line(tmp_path: Path, corpus: Path, damage: str) -> None:
    (tmp_path / "bad").mkdir()
    good = write_archive(tmp_path / "xy.tar.gz").read_bytes()
    (tmp_path / "xy.tar.gz").unlink()
    data = {
        "truncated": lambda: _truncated(good),
        "garbage": lambda: os.urandom(4096),
        "zero-byte": lambda: b"",
        "uncompressed": lambda: gzip.decompress(good),
        "bit-flipped": lambda: _bit_flipped(good),
    }[damage]()
    path = tmp_path / "bad" / "xy.tar.gz"
    path.write_bytes(data)
    line = convert_fails(tmp_path, corpus, path)
    assert line.startswith(f"\u2718 {path}"), line


def test_9_non_utf8_byte_names_the_line(tmp_path: Path, corpus: Path) -> None:
    (tmp_path / "bad").mkdir()
    path = write_archive(tmp_path / "bad" / "xy.tar.gz", raw={"test": b"xy:Berlin\tB-LOC\nxy:M\xfctte\tI-LOC\n"})
    line = convert_fails(tmp_path, corpus, path)
    assert line == f"\u2718 {path}/test:2: not valid UTF-8 (invalid start byte at byte 4): b'xy:M\\xfctte\\tI-LOC\\n'"


def test_10_extracted_folder_missing_a_split_names_it(tmp_path: Path, corpus: Path) -> None:
    folder = tmp_path / "extracted"
    folder.mkdir()
    for name in ("train", "dev"):
        (folder / name).write_text(SPLITS[name], encoding="utf8")
    line = convert_fails(tmp_path, corpus, folder)
    assert line == f"\u2718 {folder / 'test'}: missing split file 'test' (the folder has train, dev)"


def test_11_failed_conversion_creates_no_folder(tmp_path: Path) -> None:
    data = write_archive(tmp_path / "xy.tar.gz", dict(SPLITS, test="xy:Bonn\tB-MISC\n"))
    before = snapshot(tmp_path)
    proc = run("convert.py", "xy", str(tmp_path / "corpus" / "xy"), "--data", str(data))
    assert error_line(proc) == f"\u2718 {data}/test:1: unknown tag 'B-MISC', expected one of O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC"
    assert snapshot(tmp_path) == before  # neither corpus/ nor corpus/xy


def test_12_unwritable_output_folder_is_one_line(tmp_path: Path, monkeypatch) -> None:
    data = write_archive(tmp_path / "xy.tar.gz")
    (tmp_path / "a-file").write_text("x")
    before = snapshot(tmp_path)
    proc = run("convert.py", "xy", str(tmp_path / "a-file" / "corpus"), "--data", str(data))
    assert error_line(proc) == f"\u2718 {tmp_path / 'a-file' / 'corpus'}: can't be created, {tmp_path / 'a-file'} is not a folder"
    assert snapshot(tmp_path) == before
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o555)
        proc = run("convert.py", "xy", str(tmp_path / "ro" / "corpus"), "--data", str(data))
        assert error_line(proc).endswith(f"can't be written, {tmp_path / 'ro'} is not writable")
    # a folder that turns out unwritable only when written to (a full disk, a read-only
    # mount, root): one error, and the folders this run created are gone
    import ner_component.data.convert as convert_module

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(convert_module, "write_json_atomic", refuse)
    with pytest.raises(NerComponentError, match=r"corpus/xy: can't write the corpus \(Permission denied\)$"):
        convert(ArchiveSource(data, "xy"), tmp_path / "corpus" / "xy", "xy")
    assert snapshot(tmp_path) == before


def test_13_two_members_named_like_a_split_are_ambiguous(tmp_path: Path, corpus: Path) -> None:
    (tmp_path / "bad").mkdir()
    path = write_archive(tmp_path / "bad" / "xy.tar.gz", dict(SPLITS, **{"sub/test": SPLITS["test"]}))
    line = convert_fails(tmp_path, corpus, path)
    assert line == f"\u2718 {path}: 2 files named 'test' in the archive (test, sub/test): ambiguous"
    with pytest.raises(WikiANNError, match="ambiguous"):
        list(resolve_source(str(path), "xy").sentences("test"))


# ------------------------------------------------------------------ train


@pytest.fixture
def train_setup(tmp_path: Path, corpus: Path) -> Path:
    """A training config (the project's CPU config) and a corpus, in tmp_path."""
    config = tmp_path / "train.cfg"
    config.write_text((ROOT / "configs" / "cpu.cfg").read_text(encoding="utf8"), encoding="utf8")
    return config


@pytest.mark.parametrize("steps", ["-5", "0"])
def test_14_max_steps_below_one_is_refused(tmp_path: Path, train_setup: Path, corpus: Path, steps: str) -> None:
    before = snapshot(tmp_path)
    proc = run("train.py", str(train_setup), str(tmp_path / "training" / "xy"), "--corpus", str(corpus), "--lang", "xy", "--max-steps", steps)
    assert error_line(proc) == f"\u2718 --max-steps: expected at least 1 step, found {steps}"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "edit,expected",
    [
        (("[training.optimizer]", "[training.optimiser]"), "[training.optimiser] is not a training setting; did you mean [training.optimizer]?"),
        (("[components.ner.model]", "[components.nerr.model]"), "[components.nerr.model]: Section 'nerr' is not defined; did you mean [components.ner.model]?"),
    ],
    ids=["training.optimiser", "components.nerr.model"],
)
def test_15_misspelt_section_is_one_line(tmp_path: Path, train_setup: Path, corpus: Path, edit, expected: str) -> None:
    old, new = edit
    text = train_setup.read_text(encoding="utf8")
    assert old in text
    train_setup.write_text(text.replace(old, new).replace(old.replace("]", "."), new.replace("]", ".")), encoding="utf8")
    before = snapshot(tmp_path)
    proc = run("train.py", str(train_setup), str(tmp_path / "training" / "xy"), "--corpus", str(corpus), "--lang", "xy", "--max-steps", "1")
    assert error_line(proc) == f"\u2718 {train_setup}: {expected}"
    assert snapshot(tmp_path) == before  # no training/xy


def test_15_unknown_hub_model_offline_is_one_line(tmp_path: Path, train_setup: Path, corpus: Path) -> None:
    before = snapshot(tmp_path)
    args = ["--corpus", str(corpus), "--lang", "xy", "--max-steps", "1", "--transformer", "no-such-org/no-such-model"]
    proc = run("train.py", str(train_setup), str(tmp_path / "training" / "xy"), *args)
    line = error_line(proc)
    assert line.startswith(
        "\u2718 transformer 'no-such-org/no-such-model' is not a local folder, an offline alias or a Hugging Face "
        "hub model that loads here (HF_HUB_OFFLINE is set: only models in the local Hugging Face cache load): "
    ), line
    assert snapshot(tmp_path) == before
