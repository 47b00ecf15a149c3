"""Scale annotation out on Ray: the records of `ner_component.annotate.local`, written by
a Ray Data job across the workers of a cluster.

The plan of the job:

1. The driver scans the input once for line boundaries (a byte count, no parsing)
   and cuts it into chunks of whole lines, each knowing its first line number.
2. `map_batches` over the chunks reads each byte range on a worker and emits
   numbered raw lines.
3. `map_batches(RayAnnotator, concurrency=N)`: a callable class loads the pipeline
   once per worker (with `num_gpus=1` per worker on GPUs) and turns each batch of
   lines into output records with the same per-line code as the single-process
   CLI (`annotate_lines`): same ids, entities, scores and error records.
4. The driver streams the results back with Ray Data's `preserve_order`, checks
   the line numbers run 1, 2, 3... without a gap, and writes one JSONL file
   (atomically), so the output is line for line the CLI's.

Ray's own `read_text`/`read_json` aren't used for the input: `read_text` gives no
line numbers, drops empty lines by default and reads a whole file in one task,
and `read_json` fails a whole file on one malformed line, where the CLI names or
records the line.

On a cluster the input, the pipeline (a package name installed on the workers, or
a folder on shared storage) and this package must be reachable from every worker;
the input may also be a URI pyarrow reads (s3://, gs://, hdfs://).
"""
import os
import sys
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ner_component.annotate.local import (
    STDIO,
    AnnotateError,
    AnnotateInputError,
    annotate_lines,
    check_cpu_dtype,
    check_output,
    load_pipeline,
    resolve_format,
    set_torch_threads,
)
from ner_component.annotate.schemas import check_schema, open_writer, record_to_json, stdout_for_records_only
from ner_component.util import PathLike, require_extra

# Lines per read task: small enough to spread a file over the workers early,
# large enough that the per-task overhead doesn't show.
DEFAULT_LINES_PER_CHUNK = 10_000
_SCAN_BLOCK = 1 << 20


def _filesystem(path: str) -> Tuple[Any, str]:
    """The pyarrow filesystem of a path or URI, and the path within it."""
    from pyarrow import fs

    if "://" not in path:
        path = os.path.abspath(path)
    return fs.FileSystem.from_uri(path)


def plan_chunks(path: str, lines_per_chunk: int = DEFAULT_LINES_PER_CHUNK) -> List[Dict[str, Any]]:
    """Cut a file into byte ranges of whole lines, numbered.

    path (str): A local path or a URI pyarrow reads.
    lines_per_chunk (int): Lines per chunk (the last chunk may have fewer).
    RETURNS (List[Dict[str, Any]]): Chunks {"path", "start", "end", "first_line",
        "n_lines"}: bytes [start, end) hold the n_lines lines first_line, first_line + 1, ...
    """
    if lines_per_chunk < 1:
        raise AnnotateError(f"lines_per_chunk ({lines_per_chunk}) must be >= 1")
    filesystem, inner = _filesystem(path)
    chunks: List[Dict[str, Any]] = []
    chunk_start, chunk_first_line, n_lines, offset = 0, 1, 0, 0
    last_byte = b""
    with filesystem.open_input_stream(inner) as f:
        while True:
            block = f.read(_SCAN_BLOCK)
            if not block:
                break
            position = block.find(b"\n")
            while position != -1:
                n_lines += 1
                if n_lines - chunk_first_line + 1 == lines_per_chunk:
                    end = offset + position + 1
                    chunks.append(
                        {"path": path, "start": chunk_start, "end": end, "first_line": chunk_first_line, "n_lines": lines_per_chunk}
                    )
                    chunk_start, chunk_first_line = end, n_lines + 1
                position = block.find(b"\n", position + 1)
            offset += len(block)
            last_byte = block[-1:]
    if offset > chunk_start:  # the rest, including a last line without a newline
        last_has_newline = last_byte == b"\n"
        n_rest = n_lines - chunk_first_line + 1 + (not last_has_newline)
        chunks.append({"path": path, "start": chunk_start, "end": offset, "first_line": chunk_first_line, "n_lines": n_rest})
    return chunks


def read_chunk(path: str, start: int, end: int, first_line: int) -> Iterator[Tuple[int, bytes]]:
    """The numbered raw lines of one chunk (see `plan_chunks`).

    path (str): A local path or a URI pyarrow reads.
    start (int): The chunk's first byte.
    end (int): One past its last byte.
    first_line (int): The line number of its first line.
    YIELDS (Tuple[int, bytes]): Line numbers and raw lines, as `read_numbered_lines` does.
    """
    filesystem, inner = _filesystem(path)
    with filesystem.open_input_file(inner) as f:
        data = f.read_at(end - start, start)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the chunk ends with a newline: no line after it
    for i, line in enumerate(lines):
        yield first_line + i, line


def _read_chunks(chunks: "Any") -> "Any":
    """`map_batches` function: chunk rows in, numbered raw lines out (pandas)."""
    import pandas

    line_nos: List[int] = []
    raws: List[bytes] = []
    for chunk in chunks.to_dict("records"):
        for line_no, raw in read_chunk(chunk["path"], int(chunk["start"]), int(chunk["end"]), int(chunk["first_line"])):
            line_nos.append(line_no)
            raws.append(raw)
    return pandas.DataFrame({"line_no": pandas.Series(line_nos, dtype="int64"), "raw": pandas.Series(raws, dtype=object)})


class RayAnnotator:
    """The per-worker annotator of `map_batches`: loads the pipeline once, then
    turns each batch of numbered raw lines into output records."""

    def __init__(
        self,
        model: str,
        fmt: str,
        text_field: str = "text",
        id_field: str = "id",
        spacy_batch_size: Optional[int] = None,
        use_gpu: bool = False,
        torch_threads: Optional[int] = None,
        cpu_dtype: Optional[str] = None,
        schema: str = "native",
    ) -> None:
        """Load the pipeline.

        model (str): A package name installed on the workers, or a folder they can read.
        fmt (str): "jsonl" or "text".
        text_field (str): The JSONL field with the text.
        id_field (str): The JSONL field with the id.
        spacy_batch_size (Optional[int]): `nlp.pipe` batch size; None for the pipeline's own.
        use_gpu (bool): Run on the GPU Ray gave this worker (`num_gpus=1`; Ray sets
            CUDA_VISIBLE_DEVICES, so it is device 0 here).
        torch_threads (Optional[int]): PyTorch threads in this worker; None to keep
            what Ray sets (OMP_NUM_THREADS = the worker's CPUs).
        cpu_dtype (Optional[str]): Transformer prediction dtype on CPU (see `load_pipeline`).
        schema (str): The records' schema (`ner_component.annotate.schemas`).
        """
        set_torch_threads(torch_threads)
        self.nlp = load_pipeline(model, 0 if use_gpu else -1, cpu_dtype)
        self.fmt = fmt
        self.text_field = text_field
        self.id_field = id_field
        self.spacy_batch_size = spacy_batch_size
        self.schema = schema

    def __call__(self, batch: "Any") -> "Any":
        """Annotate a batch: columns line_no, raw in; line_no, output (the JSON
        line), error ("" for a good line) and n_entities out."""
        import pandas

        lines = zip((int(n) for n in batch["line_no"]), batch["raw"])
        line_nos, outputs, errors, n_entities = [], [], [], []
        results = annotate_lines(
            self.nlp, lines, self.fmt, self.text_field, self.id_field, self.spacy_batch_size, schema=self.schema
        )
        for result in results:
            line_nos.append(result.line_no)
            outputs.append(record_to_json(result.record))
            errors.append(result.error or "")
            n_entities.append(result.n_entities)
        return pandas.DataFrame(
            {
                "line_no": pandas.Series(line_nos, dtype="int64"),
                "output": outputs,
                "error": errors,
                "n_entities": pandas.Series(n_entities, dtype="int64"),
            }
        )


def connect(address: Optional[str] = None, log_to_driver: bool = True) -> bool:
    """Connect to Ray: `address` ("ray://head:10001", "auto"), else $RAY_ADDRESS,
    else a new local instance. Does nothing when Ray is already initialised.

    address (Optional[str]): The cluster address.
    log_to_driver (bool): Stream the workers' stdout and stderr to the driver's;
        off when the driver's stdout is the output.
    RETURNS (bool): Whether this call initialised Ray (then it is the caller's to shut down).
    """
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=address, log_to_driver=log_to_driver)
    return True


def check_gpus(concurrency: int) -> None:
    """Stop with one line when the cluster has fewer GPUs than GPU workers asked for
    (Ray Data would wait for them for ever)."""
    import ray

    available = int(ray.cluster_resources().get("GPU", 0))
    if available < concurrency:
        raise AnnotateError(
            f"{concurrency} GPU workers need {concurrency} GPUs but the Ray cluster has {available}; "
            "lower --concurrency or leave out --gpu"
        )


def annotate_ray(
    model: str,
    input_path: PathLike,
    output_path: PathLike,
    fmt: str = "auto",
    text_field: str = "text",
    id_field: str = "id",
    concurrency: int = 2,
    batch_size: int = 256,
    spacy_batch_size: Optional[int] = None,
    use_gpu: bool = False,
    num_cpus: float = 1.0,
    on_error: str = "raise",
    address: Optional[str] = None,
    lines_per_chunk: int = DEFAULT_LINES_PER_CHUNK,
    progress: bool = True,
    cpu_dtype: Optional[str] = None,
    schema: str = "native",
) -> Dict[str, Any]:
    """Annotate an input file on Ray into what the single-process CLI writes.

    model (str): A package name installed on the workers, or a folder they can read.
    input_path (PathLike): JSONL or plain text: a path the workers can read or a URI.
    output_path (PathLike): The JSONL output on the driver, "-" for stdout; a file
        is written atomically.
    fmt (str): "auto", "jsonl" or "text" (see `resolve_format`).
    text_field (str): The JSONL field with the text.
    id_field (str): The JSONL field with the id; without it a record's id is its line number.
    concurrency (int): Annotation workers, each loading the pipeline once.
    batch_size (int): Lines per `map_batches` batch handed to a worker.
    spacy_batch_size (Optional[int]): `nlp.pipe` batch size inside a worker.
    use_gpu (bool): Give each worker one GPU (`num_gpus=1`).
    num_cpus (float): CPUs reserved per worker; its PyTorch threads.
    on_error (str): "raise" or "record", as for `annotate`.
    address (Optional[str]): The Ray cluster (see `connect`).
    lines_per_chunk (int): Lines per read task.
    progress (bool): Show a progress bar (docs/s) on stderr.
    cpu_dtype (Optional[str]): Transformer prediction dtype on the workers' CPUs
        (see `load_pipeline`); None for the pipeline's config.
    schema (str): The output schema, as for `annotate`.
    RETURNS (Dict[str, Any]): Counts: lines, entities, errors, seconds, docs_per_second.

    Ray initialised by this call (a new local instance, or the connection to
    `address`) is shut down before it returns; Ray already initialised is left as it is.
    """

    require_extra("ray", "ray", "Annotating on Ray")
    import ray

    if on_error not in ("raise", "record"):
        raise AnnotateError(f"on_error '{on_error}' is not one of raise, record")
    if concurrency < 1:
        raise AnnotateError(f"concurrency ({concurrency}) must be >= 1")
    check_cpu_dtype(cpu_dtype)
    check_schema(schema, output_path)
    if batch_size < 1:
        raise AnnotateError(f"batch_size ({batch_size}) must be >= 1")
    path = str(input_path)
    if path == STDIO:
        raise AnnotateError("Ray workers read the input themselves: give a file or a URI, not stdin")
    fmt = resolve_format(path, fmt)
    if "://" not in path:
        check_output(path, output_path)
    try:
        chunks = plan_chunks(path, lines_per_chunk)
    except (FileNotFoundError, OSError) as e:
        raise AnnotateError(f"can't read the input {path}: {e}") from e
    annotator = {
        "model": str(model),
        "fmt": fmt,
        "text_field": text_field,
        "id_field": id_field,
        "spacy_batch_size": spacy_batch_size,
        "use_gpu": use_gpu,
        "torch_threads": max(1, int(num_cpus)),
        "cpu_dtype": cpu_dtype,
        "schema": schema,
    }
    workers = {
        "batch_size": batch_size,
        "concurrency": concurrency,
        "num_cpus": num_cpus,
        "num_gpus": 1 if use_gpu else None,
    }
    # With the records on stdout nothing else may reach it until Ray is done, and a
    # Ray this call started is shut down inside: its driver prints late errors (a
    # worker that died at shutdown) to stdout.
    with stdout_for_records_only(output_path) as stdout:
        started = connect(address, log_to_driver=str(output_path) != STDIO)
        try:
            if use_gpu:
                check_gpus(concurrency)
            with open_writer(schema, output_path, stdout) as out:
                return _annotate_chunks(chunks, annotator, workers, out, path, on_error, progress)
        finally:
            if started:
                ray.shutdown()


def _annotate_chunks(
    chunks: List[Dict[str, Any]],
    annotator: Dict[str, Any],
    workers: Dict[str, Any],
    out: Any,
    path: str,
    on_error: str,
    progress: bool,
) -> Dict[str, Any]:
    """Run the Ray Data job over the input's chunks, in order, writing each line's
    record to `out`; returns the counts of `annotate_ray`."""
    import ray
    from tqdm import tqdm

    ray.data.DataContext.get_current().execution_options.preserve_order = True
    counts = {"lines": 0, "entities": 0, "errors": 0}
    start = time.perf_counter()
    if chunks:
        total = sum(chunk["n_lines"] for chunk in chunks)
        dataset = ray.data.from_items(chunks, override_num_blocks=len(chunks))
        dataset = dataset.map_batches(_read_chunks, batch_size=1, batch_format="pandas")
        dataset = dataset.map_batches(RayAnnotator, fn_constructor_kwargs=annotator, batch_format="pandas", **workers)
        bar = tqdm(total=total, unit="doc", desc="Annotating (Ray)", file=sys.stderr, disable=not progress, dynamic_ncols=True)
        with bar:
            for batch in dataset.iter_batches(batch_size=None, batch_format="pandas"):
                rows = zip(batch["line_no"], batch["output"], batch["error"], batch["n_entities"])
                for line_no, output, error, n_entities in rows:
                    _write_line(int(line_no), output, error, int(n_entities), counts, out, path, on_error)
                bar.update(len(batch))
    seconds = time.perf_counter() - start
    return {**counts, "seconds": seconds, "docs_per_second": counts["lines"] / seconds if seconds > 0 else 0.0}


def _write_line(
    line_no: int, output: str, error: str, n_entities: int, counts: Dict[str, int], out: Any, path: str, on_error: str
) -> None:
    expected = counts["lines"] + 1
    if line_no != expected:
        # Never a silently missing or reordered line.
        raise AnnotateError(f"{path}: the Ray job returned line {line_no} where line {expected} was due")
    if error:
        if on_error == "raise":
            raise AnnotateInputError(
                f"{path}: line {line_no}: {error} (use --on-error record to write an error line instead)"
            )
        counts["errors"] += 1
    else:
        counts["entities"] += n_entities
    out.write(output)
    counts["lines"] += 1
