"""The sweep: every spaCy and Hugging Face configuration on every setting's texts,
one fresh process each, then the summary and the reports."""
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ner_component.benchmarks.throughput.engines import HF_DTYPES
from ner_component.benchmarks.throughput.report import markdown_table, plot_throughput
from ner_component.benchmarks.throughput.runner import measure, run_label
from ner_component.benchmarks.throughput.summary import machine, summarize
from ner_component.benchmarks.throughput.texts import (
    DEFAULT_JOIN,
    SETTINGS,
    GoldEntity,
    check_settings,
    doc_gold,
    doc_text,
    join_gold,
    sentence_docs,
    texts_by_setting,
)
from ner_component.errors import NerComponentError
from ner_component.reporting import write_report
from ner_component.util import PathLike, require_extra

DEFAULT_SPACY_BATCH_SIZES = (16, 64, 256, 1000)
DEFAULT_N_PROCESS = (1, 2)
DEFAULT_HF_BATCH_SIZES = (1, 32)
# spaCy: None keeps the pipeline's configured dtype; HF: the model's torch dtype.
DEFAULT_CPU_DTYPES = ("float32", "auto")
DEFAULT_HF_DTYPES = ("float32", "bfloat16")
# spaCy prediction chunk sizes: None keeps the pipeline's; 0 is one padded pass per batch.
DEFAULT_TOKEN_BUDGETS: Tuple[Optional[int], ...] = (None, 0)


def run_benchmark(
    model: str,
    test_path: PathLike,
    hf_model: PathLike,
    output_dir: PathLike,
    name: str,
    batch_sizes: Sequence[int] = DEFAULT_SPACY_BATCH_SIZES,
    n_processes: Sequence[int] = DEFAULT_N_PROCESS,
    hf_batch_sizes: Sequence[int] = DEFAULT_HF_BATCH_SIZES,
    torch_threads: Optional[int] = None,
    limit: Optional[int] = None,
    join: int = DEFAULT_JOIN,
    settings: Sequence[str] = SETTINGS,
    cpu_dtypes: Sequence[Optional[str]] = DEFAULT_CPU_DTYPES,
    hf_dtypes: Sequence[str] = DEFAULT_HF_DTYPES,
    token_budgets: Sequence[Optional[int]] = DEFAULT_TOKEN_BUDGETS,
) -> Dict[str, Any]:
    """Benchmark the spaCy pipeline against the Hugging Face pipeline and write
    `<name>.json`, `<name>.md` and `<name>.png` to `output_dir`.

    model (str): The spaCy pipeline: a folder or an installed package name.
    test_path (PathLike): The test `.spacy` corpus whose sentences are the texts.
    hf_model (PathLike): A Hugging Face token-classification folder on the same backbone.
    output_dir (PathLike): Where to write the results, e.g. `metrics/throughput`.
    name (str): The results' file name, e.g. "en".
    batch_sizes (Sequence[int]): spaCy `nlp.pipe` batch sizes to sweep.
    n_processes (Sequence[int]): spaCy process counts to sweep.
    hf_batch_sizes (Sequence[int]): Hugging Face pipeline batch sizes.
    torch_threads (Optional[int]): PyTorch threads in all, shared by a run's
        processes; None for the number of CPU cores.
    limit (Optional[int]): Use the first `limit` test sentences; None for all.
    join (int): Sentences per document in the "documents" setting.
    settings (Sequence[str]): Which of "sentences" and "documents" to run.
    cpu_dtypes (Sequence[Optional[str]]): spaCy CPU prediction dtypes to sweep
        ("auto", "float32", "bfloat16"; None for the pipeline's config).
        Requests that resolve to the same dtype on this machine ("auto" and
        "float32" without native bfloat16) run once.
    hf_dtypes (Sequence[str]): Hugging Face model dtypes ("float32", "bfloat16").
    token_budgets (Sequence[Optional[int]]): spaCy prediction chunk sizes
        (`predict_token_budget`; None for the pipeline's, 0 for one padded pass).
    RETURNS (Dict[str, Any]): The results.
    """
    require_extra("psutil", "bench", "The throughput benchmark (process CPU and memory)")
    _check_sweep(batch_sizes, n_processes, hf_batch_sizes, settings)
    _check_dtypes(cpu_dtypes, hf_dtypes)
    _check_token_budgets(token_budgets)
    cpu_dtypes = _distinct_dtypes(cpu_dtypes)
    _check_inputs(test_path, hf_model)
    total_threads = torch_threads if torch_threads is not None else (os.cpu_count() or 1)
    if total_threads < 1:
        raise NerComponentError(f"torch_threads ({total_threads}) must be >= 1")
    texts, gold = _texts_and_gold(test_path, limit, join)
    runs: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="throughput.") as work:
        for setting in settings:
            texts_path = Path(work) / f"{setting}.json"
            texts_path.write_text(json.dumps(texts[setting], ensure_ascii=False), encoding="utf8")
            specs = spacy_specs(str(model), batch_sizes, n_processes, cpu_dtypes, token_budgets, total_threads)
            specs += hf_specs(str(hf_model), hf_batch_sizes, hf_dtypes, total_threads)
            for spec in specs:
                spec.update({"setting": setting, "texts_path": str(texts_path)})
                runs.append(_measure_and_tell(spec, work))
    result = summarize(runs, texts, settings, gold)
    result.update(
        {
            "name": name,
            "model": str(model),
            "hf_model": str(hf_model),
            "test": str(test_path),
            "limit": limit,
            "join": join,
            "torch_threads": total_threads,
            "machine": machine(),
        }
    )
    write_report(output_dir, name, result, markdown_table(result), plot_throughput)
    return result


def spacy_specs(
    model: str,
    batch_sizes: Sequence[int],
    n_processes: Sequence[int],
    cpu_dtypes: Sequence[Optional[str]],
    token_budgets: Sequence[Optional[int]],
    total_threads: int,
) -> List[Dict[str, Any]]:
    """The spaCy runs of a setting: every dtype, chunk budget, process count and
    batch size; the threads shared by a run's processes."""
    return [
        {
            "engine": "spacy",
            "model": model,
            "batch_size": bs,
            "n_process": n,
            "torch_threads": max(1, total_threads // n),
            "dtype": dtype,
            "token_budget": budget,
        }
        for dtype in cpu_dtypes
        for budget in token_budgets
        for n in n_processes
        for bs in batch_sizes
    ]


def hf_specs(model: str, batch_sizes: Sequence[int], dtypes: Sequence[str], total_threads: int) -> List[Dict[str, Any]]:
    """The Hugging Face runs of a setting: every dtype and batch size, one process."""
    return [
        {"engine": "hf", "model": model, "batch_size": bs, "n_process": 1, "torch_threads": total_threads, "dtype": dtype}
        for dtype in dtypes
        for bs in batch_sizes
    ]


def _measure_and_tell(spec: Dict[str, Any], work_dir: PathLike) -> Dict[str, Any]:
    print(f"\u2139 {run_label(spec)} ...", file=sys.stderr, flush=True)
    run = measure(spec, work_dir)
    print(f"  {run['words_per_second']:.0f} words/s, peak RSS {run['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    return run


def _texts_and_gold(
    test_path: PathLike, limit: Optional[int], join: int
) -> Tuple[Dict[str, List[str]], Dict[str, List[List[GoldEntity]]]]:
    """The texts of each setting and their gold entities."""
    docs = sentence_docs(test_path, limit)
    sentences = [doc_text(doc) for doc in docs]
    if not sentences:
        raise NerComponentError(f"test corpus {test_path} has no sentences")
    gold = [doc_gold(doc) for doc in docs]
    return texts_by_setting(sentences, join), {"sentences": gold, "documents": join_gold(sentences, gold, join)}


def _check_inputs(test_path: PathLike, hf_model: PathLike) -> None:
    if not Path(test_path).is_file():
        raise NerComponentError(f"test corpus {test_path} does not exist")
    if not (Path(hf_model) / "config.json").is_file():
        raise NerComponentError(f"--hf-model {hf_model} is not a Hugging Face model folder (no config.json)")


def _distinct_dtypes(cpu_dtypes: Sequence[Optional[str]]) -> List[Optional[str]]:
    """Drop requests that compute in the same dtype as an earlier one here."""
    from ner_component.runtime.transformer import resolve_cpu_inference_dtype

    kept: List[Optional[str]] = []
    seen: Set[Optional[str]] = set()
    for dtype in cpu_dtypes:
        resolved = resolve_cpu_inference_dtype(dtype) if dtype is not None else None
        if resolved in seen:
            print(f"\u2139 CPU dtype {dtype} computes in {resolved} on this machine: run once", file=sys.stderr)
            continue
        seen.add(resolved)
        kept.append(dtype)
    return kept


def _check_dtypes(cpu_dtypes: Sequence[Optional[str]], hf_dtypes: Sequence[str]) -> None:
    from ner_component.runtime.transformer import CPU_INFERENCE_DTYPES

    bad = [str(d) for d in cpu_dtypes if d is not None and d not in CPU_INFERENCE_DTYPES]
    if bad or not cpu_dtypes:
        raise NerComponentError(f"CPU dtypes ({', '.join(bad) or 'none'}) must be among {', '.join(CPU_INFERENCE_DTYPES)} or config")
    bad = [str(d) for d in hf_dtypes if d not in HF_DTYPES]
    if bad or not hf_dtypes:
        raise NerComponentError(f"HF dtypes ({', '.join(bad) or 'none'}) must be among {', '.join(HF_DTYPES)}")


def _check_token_budgets(token_budgets: Sequence[Optional[int]]) -> None:
    if not token_budgets or any(b is not None and int(b) < 0 for b in token_budgets):
        raise NerComponentError(f"token budgets ({', '.join(str(b) for b in token_budgets) or 'none'}) must be integers >= 0 or config")


def _check_sweep(
    batch_sizes: Sequence[int], n_processes: Sequence[int], hf_batch_sizes: Sequence[int], settings: Sequence[str]
) -> None:
    for option, values in (("batch sizes", batch_sizes), ("n_process", n_processes), ("HF batch sizes", hf_batch_sizes)):
        if not values or any(int(v) < 1 for v in values):
            raise NerComponentError(f"{option} ({', '.join(str(v) for v in values) or 'none'}) must be integers >= 1")
    check_settings(settings)
