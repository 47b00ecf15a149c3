"""Inference throughput: the spaCy pipeline against the Hugging Face
token-classification pipeline on the same backbone, texts and machine.

Both engines annotate the same texts: the sentences of the WikiANN test split
(tokens joined by spaces) and longer documents made by joining consecutive
sentences. Each run is one process of its own, started fresh, so that its peak
memory is its own: the parent samples the resident memory of the whole process
tree (spaCy's worker processes included) and the child reports its own
`ru_maxrss`. Every run uses the same number of PyTorch threads in total; with
`n_process` spaCy workers each gets its share, as `scripts/annotate.py` does.

Timing covers annotation only: the pipeline is loaded and, in a single process,
warmed up on one batch before the clock starts. With `n_process > 1` the workers
are forked when annotation starts, so their start-up is part of the time, as it is
for a user of `nlp.pipe(n_process=...)`.

The spaCy configurations are swept over `nlp.pipe` batch sizes, process counts,
the transformer's CPU prediction dtype (float32, or bfloat16 where the CPU computes
it natively: see `ner_component.runtime.transformer`) and its prediction chunking
(`predict_token_budget`: the pipeline's own, and 0, spacy-transformers' single
padded pass per batch, to show what chunking by length gains); the Hugging Face pipeline over batch
sizes and its model's dtype (float32, its default, and bfloat16), so that the
comparison holds against Hugging Face at its fastest too. Every run's entities are
scored against the gold entities of the test split (exact character spans and
labels, the strict measure), and against the fastest spaCy run (agreement).
"""
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ner_component.errors import NerComponentError
from ner_component.util import (
    PathLike,
    atomic_dir,
    atomic_path,
    write_json_atomic,
    write_text_atomic,
)

ENGINES = ("spacy", "hf")
SETTINGS = ("sentences", "documents")
DEFAULT_SPACY_BATCH_SIZES = (16, 64, 256)
DEFAULT_N_PROCESS = (1, 2)
DEFAULT_HF_BATCH_SIZES = (1, 32)
# spaCy: None keeps the pipeline's configured dtype; HF: the model's torch dtype.
DEFAULT_CPU_DTYPES = ("float32", "auto")
DEFAULT_HF_DTYPES = ("float32", "bfloat16")
# spaCy prediction chunk sizes: None keeps the pipeline's; 0 is one padded pass per batch.
DEFAULT_TOKEN_BUDGETS: Tuple[Optional[int], ...] = (None, 0)
HF_DTYPES = ("float32", "bfloat16")
DEFAULT_JOIN = 16
# The WikiANN tag set of a Hugging Face token-classification folder.
HF_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
# How often the parent samples the memory of a run's process tree. Sampling costs the
# run speed on a 2-core machine (every 50 ms: 18% fewer words/s for spaCy on sentences),
# so it is sparse; each process's own peak (ru_maxrss) fills in what it misses.
_SAMPLE_SECONDS = 0.5

# (doc index, start char, end char, label)
Entity = Tuple[int, int, int, str]


# ----------------------------------------------------------------------- texts


def _sentence_docs(test_path: PathLike, limit: Optional[int]) -> List[Any]:
    from ner_component.data.convert import read_docs

    docs = read_docs(test_path)
    return docs if limit is None else docs[:limit]


def _doc_text(doc: Any) -> str:
    return " ".join(token.text for token in doc)


def _doc_gold(doc: Any) -> List[Tuple[int, int, str]]:
    """A doc's entities as (start char, end char, label) in `_doc_text(doc)`."""
    starts, offset = [], 0
    for token in doc:
        starts.append(offset)
        offset += len(token.text) + 1
    return [(starts[ent.start], starts[ent.end - 1] + len(doc[ent.end - 1].text), ent.label_) for ent in doc.ents]


def sentence_texts(test_path: PathLike, limit: Optional[int] = None) -> List[str]:
    """The sentences of a `.spacy` corpus as texts: tokens joined by spaces.

    test_path (PathLike): The corpus, e.g. `corpus/en/test.spacy`.
    limit (Optional[int]): Keep the first `limit` sentences; None for all.
    RETURNS (List[str]): One text per sentence.
    """
    return [_doc_text(doc) for doc in _sentence_docs(test_path, limit)]


def sentence_gold(test_path: PathLike, limit: Optional[int] = None) -> List[List[Tuple[int, int, str]]]:
    """The gold entities of the texts `sentence_texts` makes: (start char, end char,
    label) in the space-joined sentence."""
    return [_doc_gold(doc) for doc in _sentence_docs(test_path, limit)]


def join_gold(
    sentences: Sequence[str], gold: Sequence[Sequence[Tuple[int, int, str]]], n: int
) -> List[List[Tuple[int, int, str]]]:
    """The gold entities of `join_documents(sentences, n)`, shifted into each document."""
    joined: List[List[Tuple[int, int, str]]] = []
    for i in range(0, len(sentences), n):
        doc: List[Tuple[int, int, str]] = []
        offset = 0
        for sentence, entities in zip(sentences[i : i + n], gold[i : i + n]):
            doc.extend((start + offset, end + offset, label) for start, end, label in entities)
            offset += len(sentence) + 1
        joined.append(doc)
    return joined


def join_documents(sentences: Sequence[str], n: int) -> List[str]:
    """Longer documents: every `n` consecutive sentences joined by a space.

    sentences (Sequence[str]): The sentences.
    n (int): Sentences per document (the last document may have fewer).
    RETURNS (List[str]): The documents.
    """
    if n < 1:
        raise ValueError(f"n ({n}) must be >= 1")
    return [" ".join(sentences[i : i + n]) for i in range(0, len(sentences), n)]


def count_words(texts: Iterable[str]) -> int:
    """Whitespace-separated words: the unit of words/s, the same for both engines."""
    return sum(len(text.split()) for text in texts)


# ------------------------------------------------------------ a stand-in model


def build_random_token_classifier(output: PathLike, backbone: PathLike, tiny: bool = False, seed: int = 0) -> Path:
    """Write a Hugging Face token-classification folder with the WikiANN tags and
    an untrained classification head: a stand-in for the fine-tuned model, with
    the same inference cost, where none has been trained yet.

    output (PathLike): The folder to write (replaced when complete).
    backbone (PathLike): A BERT folder whose tokenizer (and, unless `tiny`, weights) to use.
    tiny (bool): A 2-layer, 32-wide random BERT around the backbone's tokenizer
        (for tests) instead of the backbone's own weights.
    seed (int): Seed of the random weights.
    RETURNS (Path): The folder.
    """
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForTokenClassification,
        set_seed,
    )

    set_seed(seed)
    id2label = dict(enumerate(HF_LABELS))
    label2id = {label: i for i, label in id2label.items()}
    tokenizer = AutoTokenizer.from_pretrained(str(backbone))
    if tiny:
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
            num_labels=len(HF_LABELS),
            id2label=id2label,
            label2id=label2id,
        )
        model = BertForTokenClassification(config)
    else:
        model = BertForTokenClassification.from_pretrained(
            str(backbone), num_labels=len(HF_LABELS), id2label=id2label, label2id=label2id
        )
    output = Path(output)
    with atomic_dir(output) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return output


# --------------------------------------------------------------- one run (child)


def run_engine(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Annotate texts with one engine and configuration, in this process.

    spec (Dict[str, Any]): engine ("spacy" or "hf"), model, texts_path (a JSON
        list of texts), batch_size, n_process (spaCy only), torch_threads
        (per process) and dtype (spaCy: the CPU prediction dtype, None for the
        pipeline's config; HF: "float32" or "bfloat16").
    RETURNS (Dict[str, Any]): load_seconds, seconds and cpu_seconds_main
        (annotation only, this process), docs, words, entities ([start, end,
        label] per doc), max_rss_mb of this process and of its finished children,
        and dtype (what the transformer predicted in).
    """
    import resource

    import torch

    torch.set_num_threads(int(spec["torch_threads"]))
    texts: List[str] = json.loads(Path(spec["texts_path"]).read_text(encoding="utf8"))
    batch_size = int(spec["batch_size"])
    start = time.perf_counter()
    if spec["engine"] == "spacy":
        annotate_texts, dtype, budget = _spacy_annotator(
            spec["model"], batch_size, int(spec.get("n_process", 1)), spec.get("dtype"), spec.get("token_budget")
        )
    elif spec["engine"] == "hf":
        annotate_texts, dtype = _hf_annotator(spec["model"], batch_size, spec.get("dtype") or "float32")
        budget = None
    else:
        raise ValueError(f"engine '{spec['engine']}' is not one of {', '.join(ENGINES)}")
    load_seconds = time.perf_counter() - start
    if int(spec.get("n_process", 1)) == 1:
        annotate_texts(texts[:batch_size])  # warm-up: first-call allocations and caches
    cpu_start = time.process_time()
    start = time.perf_counter()
    entities = annotate_texts(texts)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    kb_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kb_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "load_seconds": load_seconds,
        "seconds": seconds,
        "cpu_seconds_main": cpu_seconds,
        "docs": len(texts),
        "words": count_words(texts),
        "entities": entities,
        "max_rss_mb_self": kb_self / 1024,
        "max_rss_mb_children": kb_children / 1024,
        "torch_threads": torch.get_num_threads(),
        "dtype": dtype,
        "token_budget_used": budget,
    }


def _spacy_annotator(
    model: str, batch_size: int, n_process: int, cpu_dtype: Optional[str], token_budget: Optional[int] = None
) -> Tuple[Callable, Optional[str], Optional[int]]:
    from ner_component.annotate.local import load_pipeline
    from ner_component.runtime.transformer import (
        apply_predict_token_budget,
        pipeline_cpu_inference_dtype,
        pipeline_predict_token_budget,
    )

    nlp = load_pipeline(model, cpu_dtype=cpu_dtype)
    if token_budget is not None:
        apply_predict_token_budget(nlp, int(token_budget))

    def annotate_texts(texts: List[str]) -> List[List[Tuple[int, int, str]]]:
        docs = nlp.pipe(texts, batch_size=batch_size, n_process=n_process)
        return [[(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents] for doc in docs]

    return annotate_texts, pipeline_cpu_inference_dtype(nlp), pipeline_predict_token_budget(nlp)


def _hf_annotator(model: str, batch_size: int, dtype: str) -> Tuple[Callable, str]:
    import torch
    from transformers import pipeline

    if dtype not in HF_DTYPES:
        raise ValueError(f"HF dtype '{dtype}' is not one of {', '.join(HF_DTYPES)}")
    torch_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    ner = pipeline("token-classification", model=model, aggregation_strategy="simple", device=-1, torch_dtype=torch_dtype)

    def annotate_texts(texts: List[str]) -> List[List[Tuple[int, int, str]]]:
        outputs = ner(texts, batch_size=batch_size)
        return [[(int(e["start"]), int(e["end"]), str(e["entity_group"])) for e in output] for output in outputs]

    return annotate_texts, dtype


def run_engine_file(spec_path: str, result_path: str) -> None:
    """The entry point of a run's process: read the spec, write the result."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf8"))
    write_json_atomic(result_path, run_engine(spec))


# -------------------------------------------------------------- one run (parent)


def measure(spec: Dict[str, Any], work_dir: PathLike) -> Dict[str, Any]:
    """Run one engine configuration in a fresh process and measure its peak memory.

    spec (Dict[str, Any]): See `run_engine`.
    work_dir (PathLike): Where to keep the spec, result and log of the run.
    RETURNS (Dict[str, Any]): The run's result, plus peak_rss_mb (the largest sum of
        the resident memory of the process and its children, sampled every 0.5 s, or
        the run's own peak plus its largest worker's peak, whichever is larger),
        words_per_second, cpu_seconds (annotation, all processes: the main one's own
        count plus the sampled CPU time of its worker processes), words_per_cpu_second
        (less sensitive than words/s to other load on the machine) and
        other_load_cores (the CPU time other processes used during the run,
        divided by its length: how busy the machine was besides the run).
    """
    import psutil

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    label = run_label(spec)
    spec_path = work_dir / f"{label}.spec.json"
    result_path = work_dir / f"{label}.result.json"
    log_path = work_dir / f"{label}.log"
    write_json_atomic(spec_path, spec)
    threads = str(spec["torch_threads"])
    env = dict(
        os.environ,
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    code = "import sys; from ner_component.benchmarks.throughput import run_engine_file; run_engine_file(sys.argv[1], sys.argv[2])"
    peak = 0
    cpu_by_pid: Dict[int, float] = {}
    machine_busy_start = _machine_busy_seconds()
    children_cpu_start = _reaped_children_cpu_seconds()
    wall_start = time.perf_counter()
    with log_path.open("wb") as log:
        proc = psutil.Popen([sys.executable, "-c", code, str(spec_path), str(result_path)], stdout=log, stderr=log, env=env)
        while proc.poll() is None:
            peak = max(peak, _sample_tree(proc, cpu_by_pid))
            time.sleep(_SAMPLE_SECONDS)
    wall = time.perf_counter() - wall_start
    machine_busy = _machine_busy_seconds() - machine_busy_start
    if proc.returncode != 0 or not result_path.exists():
        lines = log_path.read_text(encoding="utf8", errors="replace").strip().splitlines()
        raise NerComponentError(f"The {label} run failed (exit {proc.returncode}): {lines[-1] if lines else 'no output'} (log: {log_path})")
    result = json.loads(result_path.read_text(encoding="utf8"))
    # The run's processes, reaped (exact) or sampled (workers that were never reaped).
    own_cpu = max(_reaped_children_cpu_seconds() - children_cpu_start, sum(cpu_by_pid.values()))
    workers_cpu = sum(cpu for pid, cpu in cpu_by_pid.items() if pid != proc.pid)
    cpu_seconds = result["cpu_seconds_main"] + workers_cpu
    result.update(
        {
            "cpu_seconds": cpu_seconds,
            "words_per_cpu_second": result["words"] / cpu_seconds if cpu_seconds > 0 else 0.0,
            "other_load_cores": max(0.0, machine_busy - own_cpu) / wall if wall > 0 else 0.0,
        }
    )
    result.update(
        {
            "engine": spec["engine"],
            "setting": spec.get("setting"),
            "batch_size": spec["batch_size"],
            "n_process": spec.get("n_process", 1),
            "dtype_setting": spec.get("dtype"),
            "label": label,
            "peak_rss_mb": max(peak / (1024 * 1024), result["max_rss_mb_self"] + result["max_rss_mb_children"]),
            "words_per_second": result["words"] / result["seconds"],
            "docs_per_second": result["docs"] / result["seconds"],
        }
    )
    return result


def _sample_tree(proc: Any, cpu_by_pid: Dict[int, float]) -> int:
    """The summed RSS of a process and its descendants; records each one's CPU time."""
    import psutil

    total = 0
    try:
        processes = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in processes:
        try:
            with process.oneshot():
                total += process.memory_info().rss
                times = process.cpu_times()
            cpu_by_pid[process.pid] = times.user + times.system
        except psutil.Error:
            pass
    return total


def _machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (all cores)."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _reaped_children_cpu_seconds() -> float:
    """CPU seconds of this process's finished children and the descendants they reaped."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_label(spec: Dict[str, Any]) -> str:
    """A short name for a run, e.g. "sentences-spacy-bs64-np2-auto-tbconfig"."""
    parts = [spec.get("setting") or "texts", spec["engine"], f"bs{spec['batch_size']}"]
    if spec["engine"] == "spacy":
        parts.append(f"np{spec.get('n_process', 1)}")
    parts.append(spec.get("dtype") or "config")
    if spec["engine"] == "spacy":
        budget = spec.get("token_budget")
        parts.append(f"tb{'config' if budget is None else budget}")
    return "-".join(parts)


# ------------------------------------------------------------------ agreement


def entity_set(entities: Sequence[Sequence[Sequence[Any]]]) -> Set[Entity]:
    """The entities of a run as (doc index, start char, end char, label)."""
    return {(i, int(start), int(end), str(label)) for i, doc in enumerate(entities) for start, end, label in doc}


def agreement(reference: Set[Entity], other: Set[Entity]) -> Dict[str, float]:
    """Precision, recall and F1 of `other` against `reference` (exact char spans and labels).

    reference (Set[Entity]): The reference entities.
    other (Set[Entity]): The entities compared to them.
    RETURNS (Dict[str, float]): precision, recall, f1 (1.0 when both are empty).
    """
    both = len(reference & other)
    precision = both / len(other) if other else float(not reference)
    recall = both / len(reference) if reference else float(not other)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


# ------------------------------------------------------------------ benchmark


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
    _check_sweep(batch_sizes, n_processes, hf_batch_sizes, settings)
    _check_dtypes(cpu_dtypes, hf_dtypes)
    if not token_budgets or any(b is not None and int(b) < 0 for b in token_budgets):
        raise NerComponentError(f"token budgets ({', '.join(str(b) for b in token_budgets) or 'none'}) must be integers >= 0 or config")
    cpu_dtypes = _distinct_dtypes(cpu_dtypes)
    if not Path(test_path).is_file():
        raise NerComponentError(f"test corpus {test_path} does not exist")
    if not (Path(hf_model) / "config.json").is_file():
        raise NerComponentError(f"--hf-model {hf_model} is not a Hugging Face model folder (no config.json)")
    total_threads = torch_threads if torch_threads is not None else (os.cpu_count() or 1)
    if total_threads < 1:
        raise NerComponentError(f"torch_threads ({total_threads}) must be >= 1")
    docs = _sentence_docs(test_path, limit)
    sentences = [_doc_text(doc) for doc in docs]
    if not sentences:
        raise NerComponentError(f"test corpus {test_path} has no sentences")
    texts_by_setting = {"sentences": sentences, "documents": join_documents(sentences, join)}
    gold = [_doc_gold(doc) for doc in docs]
    gold_by_setting = {"sentences": gold, "documents": join_gold(sentences, gold, join)}
    output_dir = Path(output_dir)
    runs: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="throughput.") as work:
        for setting in settings:
            texts_path = Path(work) / f"{setting}.json"
            texts_path.write_text(json.dumps(texts_by_setting[setting], ensure_ascii=False), encoding="utf8")
            specs = [
                {
                    "engine": "spacy",
                    "model": str(model),
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
            specs += [
                {"engine": "hf", "model": str(hf_model), "batch_size": bs, "n_process": 1, "torch_threads": total_threads, "dtype": dtype}
                for dtype in hf_dtypes
                for bs in hf_batch_sizes
            ]
            for spec in specs:
                spec.update({"setting": setting, "texts_path": str(texts_path)})
                print(f"\u2139 {run_label(spec)} ...", file=sys.stderr, flush=True)
                run = measure(spec, work)
                print(
                    f"  {run['words_per_second']:.0f} words/s, peak RSS {run['peak_rss_mb']:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
                runs.append(run)
    result = summarize(runs, texts_by_setting, settings, gold_by_setting)
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
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output_dir / f"{name}.json", result)
    write_text_atomic(output_dir / f"{name}.md", markdown_table(result))
    plot_throughput(result, output_dir / f"{name}.png")
    return result


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


def _check_sweep(
    batch_sizes: Sequence[int], n_processes: Sequence[int], hf_batch_sizes: Sequence[int], settings: Sequence[str]
) -> None:
    for option, values in (("batch sizes", batch_sizes), ("n_process", n_processes), ("HF batch sizes", hf_batch_sizes)):
        if not values or any(int(v) < 1 for v in values):
            raise NerComponentError(f"{option} ({', '.join(str(v) for v in values) or 'none'}) must be integers >= 1")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        raise NerComponentError(f"settings ({', '.join(settings) or 'none'}) must be among {', '.join(SETTINGS)}")


def summarize(
    runs: List[Dict[str, Any]],
    texts_by_setting: Dict[str, List[str]],
    settings: Sequence[str],
    gold_by_setting: Optional[Dict[str, List[List[Tuple[int, int, str]]]]] = None,
) -> Dict[str, Any]:
    """Put the runs together: the fastest spaCy configuration of each setting,
    each run's entity agreement with it and, with gold entities, its strict F1
    against them; the runs without their entities.

    runs (List[Dict[str, Any]]): The results of `measure`.
    texts_by_setting (Dict[str, List[str]]): The texts of each setting.
    settings (Sequence[str]): The settings run.
    gold_by_setting (Optional[Dict[str, List[List[Tuple[int, int, str]]]]]): The gold
        entities of each setting's texts.
    RETURNS (Dict[str, Any]): settings {setting: {docs, words, best_spacy, best_hf,
        speedups, agreement}} and runs.
    """
    summary: Dict[str, Any] = {}
    for setting in settings:
        setting_runs = [run for run in runs if run["setting"] == setting]
        spacy_runs = [run for run in setting_runs if run["engine"] == "spacy"]
        hf_runs = [run for run in setting_runs if run["engine"] == "hf"]
        best_spacy = max(spacy_runs, key=lambda run: run["words_per_second"])
        best_hf = max(hf_runs, key=lambda run: run["words_per_second"])
        hf_default = [run for run in hf_runs if run.get("dtype", "float32") == "float32"]
        best_hf_default = max(hf_default, key=lambda run: run["words_per_second"]) if hf_default else None
        reference = entity_set(best_spacy["entities"])
        gold = entity_set(gold_by_setting[setting]) if gold_by_setting else None
        for run in setting_runs:
            found = entity_set(run["entities"])
            run["agreement_with_best_spacy"] = agreement(reference, found)
            run["n_entities"] = sum(len(doc) for doc in run["entities"])
            if gold is not None:
                run["against_gold"] = agreement(gold, found)
        summary[setting] = {
            "docs": len(texts_by_setting[setting]),
            "words": count_words(texts_by_setting[setting]),
            "best_spacy": best_spacy["label"],
            "best_spacy_batch_size": best_spacy["batch_size"],
            "best_spacy_n_process": best_spacy["n_process"],
            "best_hf": best_hf["label"],
            "best_spacy_dtype": best_spacy.get("dtype"),
            "speedup_best_spacy_over_best_hf": best_spacy["words_per_second"] / best_hf["words_per_second"],
            "best_hf_float32": best_hf_default["label"] if best_hf_default else None,
            "speedup_best_spacy_over_best_hf_float32": (
                best_spacy["words_per_second"] / best_hf_default["words_per_second"] if best_hf_default else None
            ),
            "gold_entities": len(gold) if gold is not None else None,
            "hf_f1_against_spacy": best_hf["agreement_with_best_spacy"]["f1"],
            "min_f1_between_spacy_runs": min(run["agreement_with_best_spacy"]["f1"] for run in spacy_runs),
        }
    slim_runs = [{key: value for key, value in run.items() if key != "entities"} for run in runs]
    return {"settings": summary, "runs": slim_runs}


def machine() -> Dict[str, Any]:
    """What the benchmark ran on."""
    import psutil
    import spacy
    import torch
    import transformers

    from ner_component.runtime.transformer import cpu_has_native_bf16

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "spacy": spacy.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


# -------------------------------------------------------------------- reports


def markdown_table(result: Dict[str, Any]) -> str:
    """The runs as a Markdown table, one per setting, with the summary under it."""
    lines: List[str] = [
        f"Texts: {result['test']} ({'first ' + str(result['limit']) if result['limit'] is not None else 'all'} sentences); "
        f"documents = {result['join']} sentences joined. PyTorch threads: {result['torch_threads']} in all "
        f"(per process: {result['torch_threads']} // n_process). Machine: {result['machine']['cpu_count']} CPU cores, "
        f"{result['machine']['memory_gb']} GB, native bfloat16: {'yes' if result['machine'].get('cpu_native_bf16') else 'no'}. Peak RSS: summed over a run's processes (spaCy's workers included), "
        "sampled every 0.5 s, at least the main process's own peak plus its largest worker's. Other load: CPU time other processes used during a run / its length (0 on a quiet "
        "machine); words/CPU-s is less sensitive to it than words/s. dtype: what the transformer computed in "
        "(spaCy: its CPU prediction dtype; HF: the model's torch dtype). Chunk budget: the transformer's "
        "predict_token_budget (0: one forward pass per batch, padded to its longest span). F1 vs gold: strict (exact character "
        "span and label) against the test split's entities.",
        "",
    ]
    for setting, summary in result["settings"].items():
        lines += [
            f"### {setting}: {summary['docs']} docs, {summary['words']} words",
            "",
            "| engine | dtype | chunk budget | batch size | processes | threads/process | words/s | docs/s | words/CPU-s | peak RSS (MB) | load (s) | entities | F1 vs gold | F1 vs fastest spaCy | other load (cores) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for run in result["runs"]:
            if run["setting"] != setting:
                continue
            engine = "spaCy" if run["engine"] == "spacy" else "HF pipeline"
            best = " **(fastest)**" if run["label"] in (summary["best_spacy"], summary["best_hf"]) else ""
            gold = f"{100 * run['against_gold']['f1']:.1f}" if "against_gold" in run else "-"
            lines.append(
                f"| {engine}{best} | {run.get('dtype') or '-'} | {_budget(run)} | {run['batch_size']} | {run['n_process']} | {run['torch_threads']} | "
                f"{run['words_per_second']:.0f} | {run['docs_per_second']:.1f} | {run['words_per_cpu_second']:.0f} | "
                f"{run['peak_rss_mb']:.0f} | {run['load_seconds']:.1f} | {run['n_entities']} | {gold} | "
                f"{100 * run['agreement_with_best_spacy']['f1']:.1f} | {run['other_load_cores']:.2f} |"
            )
        versus_default = ""
        if summary.get("speedup_best_spacy_over_best_hf_float32") is not None:
            versus_default = f"{summary['speedup_best_spacy_over_best_hf_float32']:.2f}x the fastest HF run in float32 (its default) and "
        gold_count = f" ({summary['gold_entities']} gold entities)" if summary.get("gold_entities") is not None else ""
        lines += [
            "",
            f"Fastest spaCy: batch size {summary['best_spacy_batch_size']}, n_process {summary['best_spacy_n_process']}, "
            f"{summary.get('best_spacy_dtype') or 'no transformer'}; {versus_default}"
            f"{summary['speedup_best_spacy_over_best_hf']:.2f}x the fastest HF run of all. "
            f"Entity agreement (char span + label F1) of the fastest HF run with it: {100 * summary['hf_f1_against_spacy']:.1f}; "
            f"lowest between spaCy configurations: {100 * summary['min_f1_between_spacy_runs']:.1f}{gold_count}.",
            "",
        ]
    return "\n".join(lines)


def _budget(run: Dict[str, Any]) -> str:
    budget = run.get("token_budget_used")
    return "-" if budget is None else str(budget)


def plot_throughput(result: Dict[str, Any], path: PathLike) -> None:
    """Bar charts of words/s per configuration (one panel per setting), peak RSS on each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(result["settings"])
    rows = max(sum(run["setting"] == setting for run in result["runs"]) for setting in settings)
    fig, axes = plt.subplots(1, len(settings), figsize=(6.5 * len(settings), max(4.0, 1.0 + 0.3 * rows)), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        runs = [run for run in result["runs"] if run["setting"] == setting]
        names = [
            f"spaCy bs={r['batch_size']} np={r['n_process']} {r.get('dtype') or ''} tb={_budget(r)}"
            if r["engine"] == "spacy"
            else f"HF bs={r['batch_size']} {r.get('dtype') or ''}"
            for r in runs
        ]
        speeds = [r["words_per_second"] for r in runs]
        colors = ["tab:blue" if r["engine"] == "spacy" else "tab:orange" for r in runs]
        ys = range(len(runs))
        ax.barh(list(ys), speeds, color=colors)
        for y, run in zip(ys, runs):
            gold = f", F1 {100 * run['against_gold']['f1']:.1f}" if "against_gold" in run else ""
            ax.text(run["words_per_second"], y, f" {run['peak_rss_mb']:.0f} MB{gold}", va="center", fontsize=7)
        ax.set_yticks(list(ys), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("words/s (peak RSS and F1 vs gold at the bar's end)")
        ax.set_xlim(0, max(speeds) * 1.45)
        ax.set_title(f"{setting} ({result['settings'][setting]['docs']} docs), {result['torch_threads']} torch threads", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
