"""One run, in its own process: annotate the texts with one engine and
configuration, and report the time, the entities and this process's peak memory.

Timing covers annotation only: the pipeline is loaded and, in a single process,
warmed up on one batch before the clock starts. With `n_process > 1` the workers
are forked when annotation starts, so their start-up is part of the time, as it is
for a user of `nlp.pipe(n_process=...)`.
"""
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ner_component.benchmarks.throughput.texts import GoldEntity, count_words
from ner_component.util import write_json_atomic

ENGINES = ("spacy", "hf")
HF_DTYPES = ("float32", "bfloat16")

# Annotates texts: the entities of each as (start char, end char, label).
Annotate = Callable[[List[str]], List[List[GoldEntity]]]


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
        annotate_texts, dtype, budget = spacy_annotator(
            spec["model"], batch_size, int(spec.get("n_process", 1)), spec.get("dtype"), spec.get("token_budget")
        )
    elif spec["engine"] == "hf":
        annotate_texts, dtype = hf_annotator(spec["model"], batch_size, spec.get("dtype") or "float32")
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


def spacy_annotator(
    model: str, batch_size: int, n_process: int, cpu_dtype: Optional[str], token_budget: Optional[int] = None
) -> Tuple[Annotate, Optional[str], Optional[int]]:
    """A spaCy pipeline as an `Annotate` function over `nlp.pipe`, with the dtype it
    predicts in and its chunk budget (`predict_token_budget`).

    cpu_dtype (Optional[str]): The CPU prediction dtype; None for the pipeline's config.
    token_budget (Optional[int]): The chunk budget; None for the pipeline's config.
    """
    from ner_component.annotate.local import load_pipeline
    from ner_component.runtime.transformer import (
        apply_predict_token_budget,
        pipeline_cpu_inference_dtype,
        pipeline_predict_token_budget,
    )

    nlp = load_pipeline(model, cpu_dtype=cpu_dtype)
    if token_budget is not None:
        apply_predict_token_budget(nlp, int(token_budget))

    def annotate_texts(texts: List[str]) -> List[List[GoldEntity]]:
        docs = nlp.pipe(texts, batch_size=batch_size, n_process=n_process)
        return [[(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents] for doc in docs]

    return annotate_texts, pipeline_cpu_inference_dtype(nlp), pipeline_predict_token_budget(nlp)


def hf_annotator(model: str, batch_size: int, dtype: str) -> Tuple[Annotate, str]:
    """The Hugging Face token-classification pipeline (`aggregation_strategy="simple"`,
    CPU) as an `Annotate` function, in "float32" (its default) or "bfloat16"."""
    import torch
    from transformers import pipeline

    if dtype not in HF_DTYPES:
        raise ValueError(f"HF dtype '{dtype}' is not one of {', '.join(HF_DTYPES)}")
    torch_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    ner = pipeline("token-classification", model=model, aggregation_strategy="simple", device=-1, torch_dtype=torch_dtype)

    def annotate_texts(texts: List[str]) -> List[List[GoldEntity]]:
        outputs = ner(texts, batch_size=batch_size)
        return [[(int(e["start"]), int(e["end"]), str(e["entity_group"])) for e in output] for output in outputs]

    return annotate_texts, dtype


def run_engine_file(spec_path: str, result_path: str) -> None:
    """The entry point of a run's process: read the spec, write the result."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf8"))
    write_json_atomic(result_path, run_engine(spec))
