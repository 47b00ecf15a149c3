"""Resident memory of `annotate` over a long stream of distinct text.

Every line is new text (random words of 3-12 letters, 3-25 a line), the worst case
for memory: each new word is a new string and lexeme, and each new length a new
input shape for PyTorch's per-shape kernel caches. `annotate` runs every 10,000
lines in a spaCy memory zone and bounds both kernel caches
(`ner_component.hardware.bound_kernel_caches`), so the resident memory should level
off; this measures it, one process, one PyTorch thread (as `annotate --torch-threads 1`).
"""
import random
import string
import time
from typing import Any, Dict, Iterator, Optional, Tuple

from ner_component.benchmarks import record_reports
from ner_component.errors import NerComponentError
from ner_component.util import PathLike, check_writable, require_extra


def distinct_lines(n_lines: int, seed: int = 0) -> Iterator[Tuple[int, bytes]]:
    """Numbered lines of random words, as `annotate_lines` reads them.

    n_lines (int): How many lines.
    seed (int): Seed of the random words.
    YIELDS (Tuple[int, bytes]): The line number (from 1) and the line.
    """
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(3, 12)))

    for line_no in range(1, n_lines + 1):
        yield line_no, (" ".join(word() for _ in range(rng.randint(3, 25))) + "\n").encode()


def rss_over_stream(
    model: PathLike, n_lines: int, every: int, cpu_dtype: Optional[str] = "auto", seed: int = 0
) -> Iterator[Dict[str, Any]]:
    """Annotate `n_lines` distinct lines and report the resident memory every
    `every` lines.

    model (PathLike): The trained pipeline.
    n_lines (int): Lines to annotate.
    every (int): Report after every this many lines (and after the last).
    cpu_dtype (Optional[str]): The pipeline's CPU prediction dtype; None keeps its own.
    seed (int): Seed of the random words.
    YIELDS (Dict[str, Any]): {"line", "rss_mb", "seconds"} at each report.
    RAISES (NerComponentError): When n_lines or every is < 1.
    """
    if n_lines < 1 or every < 1:
        raise NerComponentError(f"lines ({n_lines}) and every ({every}) must be at least 1")
    import psutil

    from ner_component.annotate.local import annotate_lines, load_pipeline, set_torch_threads

    set_torch_threads(1)
    nlp = load_pipeline(model, cpu_dtype=cpu_dtype)
    process = psutil.Process()
    start = time.perf_counter()
    for result in annotate_lines(nlp, distinct_lines(n_lines, seed), "text"):
        if result.line_no % every == 0 or result.line_no == n_lines:
            yield {
                "line": result.line_no,
                "rss_mb": round(process.memory_info().rss / 2**20, 1),
                "seconds": round(time.perf_counter() - start, 1),
            }


def run_annotate_memory(
    model: PathLike, output: PathLike, n_lines: int, every: int, cpu_dtype: Optional[str] = "auto"
) -> Dict[str, Any]:
    """Measure `rss_over_stream`, print each report as a JSON line and write them all,
    with the kernel cache capacities and the CPU, to `output` (JSON).

    RETURNS (Dict[str, Any]): What was written.
    """
    require_extra("psutil", "bench", "The annotate memory benchmark")
    check_writable(output, "file")
    settings = {"model": str(model), "lines": n_lines, "cpu_dtype": cpu_dtype}
    return record_reports(rss_over_stream(model, n_lines, every, cpu_dtype), output, settings, "rss_mb")
