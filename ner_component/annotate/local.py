"""Annotate large inputs with a trained pipeline: stream lines through `nlp.pipe`
and write one JSON line per input line, in input order.

The input is JSONL (one object per line with a text field and, optionally, an id
field) or plain text (one document per line, empty lines included). Nothing is
loaded whole: lines are read one at a time, travel through `nlp.pipe(...,
as_tuples=True)` with their line number as context, and are written as they come
out, so memory stays flat however long the input is. Every input line gives exactly
one output line: an annotation `{"id", "entities"}` or, for a malformed line under
`on_error="record"`, `{"id", "error"}`.

The same per-line functions serve the Ray Data scale-out (`ner_component.annotate.distributed`),
so both write the same records.
"""
import itertools
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import (
    IO,
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    Union,
)

from spacy.language import Language
from spacy.tokens import Doc, Span

from ner_component.annotate.schemas import STDIO, check_schema, line_record, open_writer, record_to_json
from ner_component.errors import Interrupted, NerComponentError
from ner_component.hardware import bound_kernel_caches, require_device
from ner_component.runtime.token_ner import CONFIDENCE_EXTENSION, doc_confidences, get_confidence
from ner_component.runtime.transformer import pipeline_cpu_inference_dtype
from ner_component.util import PathLike, check_writable

FORMATS = ("auto", "jsonl", "text")
ON_ERROR = ("raise", "record")
# Suffixes read as JSONL when --format is "auto"; everything else is plain text.
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
# Lines per spaCy memory zone: the strings and lexemes of new words seen in a zone
# are freed at its end, so the vocab doesn't grow with the input. With
# n_process > 1 each zone starts its worker processes afresh, which is cheap at
# this size.
DEFAULT_ZONE_LINES = 10_000
# On the GPU a single process feeds the device; a bigger batch keeps it busy.
DEFAULT_GPU_BATCH_SIZE = 256
# PyTorch's per-shape kernel caches are bounded (`kernel_cache`): every new text
# length brings new shapes, and with both caches at their default of 1,024, bfloat16
# annotation of distinct lines grew from 1,238 MB (20k lines) to 1,498 MB (100k);
# bounded, it stays flat (`tests/test_bad_input.py::test_7_*`, docs/annotate.md).
# How much of a bad line an error message quotes.
_SNIPPET_CHARS = 60


class AnnotateError(NerComponentError):
    """Bad options or input for `annotate`: reported in one line by the CLI."""


class AnnotateInputError(AnnotateError):
    """A malformed input line, under `on_error="raise"`."""


@dataclass(frozen=True)
class ParsedLine:
    """One input line, ready for `nlp.pipe`.

    line_no (int): The 1-based line number.
    text (str): The document text; "" for a malformed line.
    id (Any): The id written to the output: the id field of a JSONL record, else the line number.
    error (Optional[str]): Why the line is malformed, or None.
    """

    line_no: int
    text: str
    id: Any
    error: Optional[str] = None


@dataclass(frozen=True)
class LineResult:
    """The output of one input line.

    line_no (int): The 1-based line number.
    record (Any): The JSON-ready record to write, in the run's schema (see
        `ner_component.annotate.schemas`), or `{"id", "error"}`.
    error (Optional[str]): The problem of a malformed line, or None.
    n_entities (int): How many entities the line has.
    """

    line_no: int
    record: Any
    error: Optional[str] = None
    n_entities: int = 0


def resolve_format(path: PathLike, fmt: str) -> str:
    """Decide whether an input is JSONL or plain text.

    path (PathLike): The input file, or "-" for stdin.
    fmt (str): "jsonl", "text", or "auto" (by the file suffix: .jsonl, .ndjson and
        .json are JSONL, anything else is plain text).
    RETURNS (str): "jsonl" or "text".
    """
    if fmt not in FORMATS:
        raise AnnotateError(f"format '{fmt}' is not one of {', '.join(FORMATS)}")
    if fmt != "auto":
        return fmt
    if str(path) == STDIO:
        raise AnnotateError("reading stdin with format 'auto': say what it holds with --format jsonl or --format text")
    return "jsonl" if Path(path).suffix.lower() in JSONL_SUFFIXES else "text"


def read_numbered_lines(stream: IO[bytes]) -> Iterator[Tuple[int, bytes]]:
    """Yield the lines of a binary stream with 1-based line numbers.

    Lines end at b"\\n" only (a lone "\\r" or a Unicode line separator inside a
    document doesn't split it, unlike `str.splitlines`), so the line numbers are
    those of `wc -l` and of an editor. A final line without a newline counts.

    stream (IO[bytes]): The input, opened in binary mode.
    YIELDS (Tuple[int, bytes]): The line number and the raw line, newline included.
    """
    for line_no, raw in enumerate(stream, 1):
        yield line_no, raw


def parse_line(raw: bytes, line_no: int, fmt: str, text_field: str = "text", id_field: str = "id") -> ParsedLine:
    """Read one input line.

    raw (bytes): The raw line, with or without its line ending.
    line_no (int): The 1-based line number.
    fmt (str): "jsonl" or "text".
    text_field (str): The JSONL field that holds the text.
    id_field (str): The JSONL field that holds the id; records without it get the line number.
    RETURNS (ParsedLine): The text and id, or the error of a malformed line.
    """
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        line = raw.decode("utf8")
    except UnicodeDecodeError as e:
        return ParsedLine(line_no, "", line_no, f"not valid UTF-8 ({e.reason} at byte {e.start}): {_snippet(raw)}")
    if line_no == 1 and line.startswith("\ufeff"):
        line = line[1:]
    if fmt == "text":
        return ParsedLine(line_no, line, line_no)
    if fmt != "jsonl":
        raise ValueError(f"format '{fmt}' is not 'jsonl' or 'text'")
    if not line.strip():
        return ParsedLine(line_no, "", line_no, "empty line, expected a JSON object")
    try:
        record = json.loads(line, parse_constant=_NumberLiteral, parse_float=_parse_float)
    except json.JSONDecodeError as e:
        return ParsedLine(line_no, "", line_no, f"invalid JSON ({e.msg} at column {e.colno}): {_snippet(line)}")
    except RecursionError:
        return ParsedLine(line_no, "", line_no, f"invalid JSON (nested too deeply to read): {_snippet(line)}")
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        return ParsedLine(line_no, "", line_no, f"invalid JSON (an integer of more than {sys.get_int_max_str_digits()} digits): {_snippet(line)}")
    if not isinstance(record, dict):
        return ParsedLine(line_no, "", line_no, f"expected a JSON object, got {_json_type(record)}: {_snippet(line)}")
    doc_id = record.get(id_field, line_no)
    try:
        # Written back as is, so it must encode (non-finite numbers are strings already).
        json.dumps(doc_id, ensure_ascii=False).encode("utf8")
    except UnicodeEncodeError:
        return ParsedLine(line_no, "", line_no, f"the '{id_field}' field has a lone surrogate, not valid Unicode: {_snippet(line)}")
    if text_field not in record:
        keys = ", ".join(repr(key) for key in list(record)[:10]) or "none"
        return ParsedLine(line_no, "", doc_id, f"no '{text_field}' field (the object's keys: {keys})")
    text = record[text_field]
    if not isinstance(text, str) or isinstance(text, _NumberLiteral):
        value = text if isinstance(text, _NumberLiteral) else json.dumps(text, ensure_ascii=False)
        value = value[:_SNIPPET_CHARS] + ("..." if len(value) > _SNIPPET_CHARS else "")
        problem = f"the '{text_field}' field is {_json_type(text)} ({value}), expected a string"
        return ParsedLine(line_no, "", doc_id, problem)
    try:
        text.encode("utf8")
    except UnicodeEncodeError as e:
        # a JSON escape of half a surrogate pair ("\ud800"): not a character
        problem = f"the '{text_field}' field has a lone surrogate {text[e.start]!r} at character {e.start}, not valid Unicode"
        return ParsedLine(line_no, "", doc_id, problem)
    return ParsedLine(line_no, text, doc_id)


class _NumberLiteral(str):
    """A JSON number no float holds (NaN, Infinity, -Infinity, 1e400), kept as
    its literal: an id like that is written back as a string, so the output stays JSON."""


def _parse_float(literal: str) -> Any:
    value = float(literal)
    return value if math.isfinite(value) else _NumberLiteral(literal)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    if isinstance(value, _NumberLiteral):
        return "a number"
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _snippet(value: Union[str, bytes]) -> str:
    text = repr(value[:_SNIPPET_CHARS])
    return text + ("..." if len(value) > _SNIPPET_CHARS else "")


def doc_entities(doc: Doc, offset: int = 0) -> List[Dict[str, Any]]:
    """The entities of a doc as JSON-ready dicts.

    doc (Doc): An annotated doc.
    offset (int): Added to the offsets: where the doc's text starts in the input
        text (a piece of a long text, see `split_text`).
    RETURNS (List[Dict[str, Any]]): One dict per entity: label, start and end
        (character offsets into the text, end exclusive), text, and score:
        `Span._.confidence` where the extension exists and is set (a `token_ner`
        component sets it), else None.
    """
    has_confidence = Span.has_extension(CONFIDENCE_EXTENSION)
    # Ours reads every entity's score in one pass (the getter scans the doc
    # per entity); an extension another package registered is read as it is.
    ours = has_confidence and Span.get_extension(CONFIDENCE_EXTENSION)[2] is get_confidence
    scores = doc_confidences(doc) if ours else {}
    entities = []
    for ent in doc.ents:
        if ours:
            score = scores.get((ent.start, ent.end, ent.label))
        else:
            score = getattr(ent._, CONFIDENCE_EXTENSION) if has_confidence else None
        entities.append(
            {
                "label": ent.label_,
                "start": offset + ent.start_char,
                "end": offset + ent.end_char,
                "text": ent.text,
                "score": None if score is None else float(score),
            }
        )
    return entities


def annotate_lines(
    nlp: Language,
    lines: Iterable[Tuple[int, bytes]],
    fmt: str,
    text_field: str = "text",
    id_field: str = "id",
    batch_size: Optional[int] = None,
    n_process: int = 1,
    zone_lines: Optional[int] = DEFAULT_ZONE_LINES,
    schema: str = "native",
) -> Iterator[LineResult]:
    """Annotate numbered input lines, lazily and in order: one result per line.

    Malformed lines go through `nlp.pipe` as empty texts carrying their error, so
    they keep their place in the order, also with several processes. Every
    `zone_lines` lines run in a spaCy memory zone (`nlp.memory_zone()`): a doc is
    turned into plain JSON-ready values before the next one is read, and nothing
    of it outlives the zone, so memory stays flat even when every line brings new
    words.

    nlp (Language): The pipeline.
    lines (Iterable[Tuple[int, bytes]]): Line numbers and raw lines, e.g. from
        `read_numbered_lines`; consumed lazily.
    fmt (str): "jsonl" or "text".
    text_field (str): The JSONL field with the text.
    id_field (str): The JSONL field with the id.
    batch_size (Optional[int]): `nlp.pipe` batch size; None for the pipeline's own.
    n_process (int): Processes for `nlp.pipe`.
    zone_lines (Optional[int]): Lines per memory zone; None for no memory zones.
    schema (str): The records' schema (`ner_component.annotate.schemas.SCHEMAS`).
    YIELDS (LineResult): The result of each line, in input order.
    """
    if zone_lines is not None and zone_lines < 1:
        raise AnnotateError(f"zone_lines ({zone_lines}) must be >= 1")
    parsed = (parse_line(raw, line_no, fmt, text_field, id_field) for line_no, raw in lines)
    zones = _zones(parsed, zone_lines) if zone_lines is not None else iter([parsed])
    for zone in zones:
        with nlp.memory_zone() if zone_lines is not None else nullcontext():
            # A text longer than nlp.max_length goes through in pieces (all in this
            # zone, consecutive, in order); its entities are joined back at their offsets.
            pieces = ((text, (p, offset, last)) for p in zone for offset, text, last in split_text(p.text, nlp.max_length))
            docs = nlp.pipe(pieces, as_tuples=True, batch_size=batch_size, n_process=n_process)
            entities: List[Dict[str, Any]] = []
            pieces_of_line: List[Doc] = []  # the docbin schema needs the doc itself
            for doc, (item, offset, last) in docs:
                if item.error is None:
                    entities.extend(doc_entities(doc, offset))
                    if schema == "docbin":
                        pieces_of_line.append(doc)
                if not last:
                    continue
                if item.error is not None:
                    record = {"id": item.id, "error": f"line {item.line_no}: {item.error}"}
                    yield LineResult(item.line_no, record, item.error)
                else:
                    whole = None
                    if pieces_of_line:
                        whole = pieces_of_line[0] if len(pieces_of_line) == 1 else Doc.from_docs(pieces_of_line, ensure_whitespace=False)
                    record = line_record(schema, item.id, item.text, entities, whole)
                    whole = None
                    yield LineResult(item.line_no, record, n_entities=len(entities))
                # No doc may outlive its memory zone.
                del doc
                entities, pieces_of_line = [], []


def split_text(text: str, max_length: int) -> List[Tuple[int, str, bool]]:
    """Cut a text longer than `max_length` (spaCy's `nlp.max_length`, which a
    longer text would fail with E088) into pieces spaCy takes.

    Each cut is at the last newline of the piece's second half, else at its last
    whitespace, else (a run of `max_length // 2` characters without a space) at
    `max_length`; the whitespace at a cut stays with the piece before it, so an
    entity is only ever cut where there is no whitespace for half a piece.

    text (str): The text.
    max_length (int): The longest piece.
    RETURNS (List[Tuple[int, str, bool]]): (offset of the piece in `text`, piece,
        is the last piece); one piece `(0, text, True)` when it fits.
    """
    if len(text) <= max_length:
        return [(0, text, True)]
    pieces = []
    start = 0
    while len(text) - start > max_length:
        window = text[start : start + max_length]
        half = max_length // 2
        cut = window.rfind("\n", half) + 1
        if cut == 0:
            cut = max((window.rfind(space, half) for space in (" ", "\t", "\r")), default=-1) + 1
        if cut == 0:
            cut = max_length
        pieces.append((start, window[:cut], False))
        start += cut
    pieces.append((start, text[start:], True))
    return pieces


def _zones(items: Iterator[ParsedLine], size: int) -> Iterator[Iterator[ParsedLine]]:
    """Lazy consecutive slices of `size` items; each must be used up before the next."""
    while True:
        first = next(items, None)
        if first is None:
            return
        yield itertools.chain([first], itertools.islice(items, size - 1))


@contextmanager
def open_input(path: PathLike) -> Iterator[IO[bytes]]:
    """Open an input in binary mode; "-" is stdin."""
    if str(path) == STDIO:
        yield sys.stdin.buffer
        return
    with Path(path).open("rb") as f:
        yield f


def count_lines(path: PathLike) -> Optional[int]:
    """The number of lines of a file (for the progress bar), None for stdin."""
    if str(path) == STDIO:
        return None
    n_lines = 0
    last = b"\n"
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n_lines += chunk.count(b"\n")
            last = chunk[-1:]
    return n_lines + (last != b"\n")


def load_pipeline(
    model: PathLike, gpu_id: int = -1, cpu_dtype: Optional[str] = None, config: Optional[Dict[str, Any]] = None
) -> Language:
    """Load a pipeline (a folder or an installed package name) for annotation.

    model (PathLike): The pipeline.
    gpu_id (int): -1 for the CPU, else the CUDA device.
    cpu_dtype (Optional[str]): The transformer's prediction dtype on CPU, "auto",
        "float32" or "bfloat16" (see `ner_component.runtime.transformer`); None for what
        the pipeline's config says.
    config (Optional[Dict[str, Any]]): Overrides of the pipeline's config, as
        `spacy.load` takes them.
    RETURNS (Language): The loaded pipeline.
    """
    import spacy

    from ner_component.runtime.transformer import apply_cpu_inference_dtype

    check_cpu_dtype(cpu_dtype)
    bound_kernel_caches()
    _register_components()
    require_device(gpu_id)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        nlp = spacy.load(model, config=config or {})
    except OSError as e:
        raise AnnotateError(f"can't load the pipeline '{model}': {e}") from e
    if cpu_dtype is not None:
        apply_cpu_inference_dtype(nlp, cpu_dtype)
    return nlp


def check_cpu_dtype(cpu_dtype: Optional[str]) -> None:
    """Refuse a CPU prediction dtype that isn't one (None: the pipeline's config)."""
    from ner_component.runtime.transformer import CPU_INFERENCE_DTYPES

    if cpu_dtype is not None and cpu_dtype not in CPU_INFERENCE_DTYPES:
        raise AnnotateError(f"cpu_dtype '{cpu_dtype}' is not one of {', '.join(CPU_INFERENCE_DTYPES)}")


def _register_components() -> None:
    """Register this package's components, so that a pipeline using them loads
    even where the package's spaCy entry points aren't installed."""
    try:
        from ner_component.runtime import token_ner, transformer  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name not in (f"{__package__}.token_ner", f"{__package__}.transformer"):
            raise


def check_processes(n_process: int, gpu_id: int) -> None:
    """Refuse process counts that can't work.

    n_process (int): Processes for `nlp.pipe`.
    gpu_id (int): -1 for the CPU, else the CUDA device.
    """
    if n_process < 1:
        raise AnnotateError(f"n_process ({n_process}) must be >= 1")
    if gpu_id >= 0 and n_process > 1:
        raise AnnotateError(
            f"n_process ({n_process}) > 1 with gpu_id {gpu_id}: worker processes forked after CUDA "
            "is initialised crash or hang, and one process already keeps a GPU busy; "
            "use --n-process 1 with a larger --batch-size"
        )


def annotate(
    model: PathLike,
    input_path: PathLike,
    output_path: PathLike,
    fmt: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
    batch_size: Optional[int] = None,
    n_process: int = 1,
    gpu_id: int = -1,
    on_error: str = "raise",
    torch_threads: Optional[int] = None,
    progress: bool = True,
    zone_lines: Optional[int] = DEFAULT_ZONE_LINES,
    cpu_dtype: Optional[str] = None,
    schema: str = "native",
) -> Dict[str, Any]:
    """Annotate an input file (or stdin) into a JSONL output file (or stdout), or a
    `.spacy` file (`schema="docbin"`).

    model (PathLike): The pipeline: a folder or an installed package name.
    input_path (PathLike): JSONL or plain text, "-" for stdin.
    output_path (PathLike): The JSONL output, "-" for stdout; a file is written atomically.
    fmt (str): "auto", "jsonl" or "text" (see `resolve_format`).
    text_field (str): The JSONL field with the text.
    id_field (str): The JSONL field with the id; without it a record's id is its line number.
    batch_size (Optional[int]): `nlp.pipe` batch size; None for the pipeline's own
        on the CPU and `DEFAULT_GPU_BATCH_SIZE` on a GPU.
    n_process (int): Processes for `nlp.pipe` (CPU only).
    gpu_id (int): -1 for the CPU, else the CUDA device (one process).
    on_error (str): For a malformed line, "raise" (stop with an `AnnotateInputError`
        naming the line; nothing is left at `output_path`) or "record" (write
        `{"id", "error"}` in its place).
    torch_threads (Optional[int]): PyTorch threads per process; None for
        cpu_count // n_process when n_process > 1, else PyTorch's default.
    progress (bool): Show a progress bar (docs/s) on stderr.
    zone_lines (Optional[int]): Lines per spaCy memory zone (see `annotate_lines`).
    cpu_dtype (Optional[str]): Transformer prediction dtype on CPU (see `load_pipeline`).
    schema (str): The output schema: native, hf, prodigy or docbin (see
        `ner_component.annotate.schemas`).
    RETURNS (Dict[str, Any]): Counts: lines, entities, errors, seconds, docs_per_second,
        cpu_dtype (the dtype the transformer predicted in on CPU; None without one).
    """
    from tqdm import tqdm

    if on_error not in ON_ERROR:
        raise AnnotateError(f"on_error '{on_error}' is not one of {', '.join(ON_ERROR)}")
    if batch_size is not None and batch_size < 1:
        raise AnnotateError(f"batch_size ({batch_size}) must be >= 1")
    check_processes(n_process, gpu_id)
    check_schema(schema, output_path)
    fmt = resolve_format(input_path, fmt)
    if str(input_path) != STDIO and not Path(input_path).is_file():
        raise AnnotateError(f"input file {input_path} does not exist")
    check_output(input_path, output_path)
    set_torch_threads(torch_threads, n_process)
    nlp = load_pipeline(model, gpu_id, cpu_dtype)
    dtype_used = pipeline_cpu_inference_dtype(nlp) if gpu_id < 0 else None
    if progress and dtype_used is not None:
        print(f"\u2139 Transformer predicts in {dtype_used} on the CPU", file=sys.stderr)
    if batch_size is None and gpu_id >= 0:
        batch_size = max(DEFAULT_GPU_BATCH_SIZE, nlp.batch_size)
    total = count_lines(input_path) if progress else None
    counts = {"lines": 0, "entities": 0, "errors": 0}
    start = time.perf_counter()
    with open_input(input_path) as stream, open_writer(schema, output_path) as out:
        lines = read_numbered_lines(stream)
        results = annotate_lines(nlp, lines, fmt, text_field, id_field, batch_size, n_process, zone_lines, schema)
        bar = tqdm(results, total=total, unit="doc", desc="Annotating", file=sys.stderr, disable=not progress, dynamic_ncols=True)
        with bar:
            for result in bar:
                _write_result(result, out, input_path, on_error, counts)
    seconds = time.perf_counter() - start
    return {
        **counts,
        "seconds": seconds,
        "docs_per_second": counts["lines"] / seconds if seconds > 0 else 0.0,
        "cpu_dtype": dtype_used,
    }


def check_output(input_path: PathLike, output_path: PathLike) -> None:
    """Refuse, before anything is loaded or read, an output that can't be written
    (a folder, a missing or read-only folder) or that is the input itself (the
    atomic rename would replace the input with its annotations).

    input_path (PathLike): The input, "-" for stdin.
    output_path (PathLike): The output, "-" for stdout.
    RAISES (NerComponentError): One line naming OUTPUT.
    """
    if str(output_path) == STDIO:
        return
    check_writable(output_path, "file")
    same = str(input_path) != STDIO and Path(input_path).exists() and Path(output_path).exists()
    if same and os.path.samefile(input_path, output_path):
        raise AnnotateError(f"{output_path}: OUTPUT is the INPUT file, which it would replace; write to another file")


def _write_result(result: LineResult, out: Any, input_path: PathLike, on_error: str, counts: Dict[str, int]) -> None:
    if result.error is not None:
        if on_error == "raise":
            name = "stdin" if str(input_path) == STDIO else str(input_path)
            raise AnnotateInputError(
                f"{name}: line {result.line_no}: {result.error} (use --on-error record to write an error line instead)"
            )
        counts["errors"] += 1
    else:
        counts["entities"] += result.n_entities
    out.write(record_to_json(result.record))
    counts["lines"] += 1


def set_torch_threads(torch_threads: Optional[int], n_process: int = 1) -> Optional[int]:
    """Set PyTorch's intra-op threads before any process is forked (children inherit it).

    With several processes on a few cores, each process using every core only
    oversubscribes them; by default each gets its share.

    torch_threads (Optional[int]): Threads per process; None for the default.
    n_process (int): The number of processes that will run the model.
    RETURNS (Optional[int]): The number set, or None when left alone.
    """
    if torch_threads is None and n_process > 1:
        torch_threads = max(1, (os.cpu_count() or 1) // n_process)
    if torch_threads is None:
        return None
    if torch_threads < 1:
        raise AnnotateError(f"torch_threads ({torch_threads}) must be >= 1")
    import torch

    torch.set_num_threads(torch_threads)
    return torch_threads


# After a signal, the process is gone within this many seconds, cleanup or not.
STOP_SECONDS = 8.0


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into `Interrupted` in this process, after
    terminating its `nlp.pipe` worker processes.

    Sent to the parent alone (`kill PID`, a supervisor, Kubernetes), the default
    SIGTERM killed the parent without cleanup and left its workers running for ever,
    and SIGINT could hang in the exit of spaCy's worker queues. Forked workers
    inherit the handler; in them it restores the default and re-sends the signal,
    so they end as before. A watchdog ends the process `STOP_SECONDS` after the
    first signal, should cleanup block; further signals meanwhile are ignored.
    """
    parent = os.getpid()
    stopping = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != parent:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if stopping.is_set():
            return
        stopping.set()
        watchdog = threading.Timer(STOP_SECONDS, os._exit, args=(128 + signum,))
        watchdog.daemon = True
        watchdog.start()
        for child in multiprocessing.active_children():
            child.terminate()
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def annotate_until_stopped(**kwargs: Any) -> Dict[str, Any]:
    """`annotate` for a command line: SIGINT or SIGTERM stops the workers and raises
    `Interrupted` (which says that OUTPUT was not written), leaving no temporary file
    (see `stop_on_signals`). `ner_component.cli.run` turns it into one line and exit
    status 130 or 143.

    RETURNS (Dict[str, Any]): `annotate`'s summary.
    """
    output_path = kwargs.get("output_path", STDIO)
    try:
        with stop_on_signals():
            return annotate(**kwargs)
    except Interrupted as e:
        e.note = "" if str(output_path) == STDIO else f"{output_path} not written"
        raise


def summary_line(summary: Dict[str, Any]) -> str:
    """The one line a command prints (to stderr: stdout may be the output) at the end."""
    return (
        f"\u2714 {summary['lines']} lines ({summary['errors']} errors), {summary['entities']} entities "
        f"in {summary['seconds']:.1f}s ({summary['docs_per_second']:.1f} docs/s)"
    )
