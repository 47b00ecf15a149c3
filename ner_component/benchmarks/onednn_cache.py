"""What oneDNN's kernel cache capacity costs and buys: memory in training, speed of
bfloat16 prediction and bfloat16 training steps.

PyTorch's CPU kernels keep compiled kernels per input shape in two caches
(`ner_component.hardware`: oneDNN's and ideep's, 1,024 entries each by default),
read once, when the process builds its first kernel. Each capacity (set for both)
runs in a fresh process of its own:

- `pipe`: `nlp.pipe` words/s over the first dev sentences, in float32 and bfloat16
  (emulated, and slow, where the CPU has no native bfloat16);
- `train`: spaCy training steps (`nlp.update`, the config's own batcher, float32)
  on the train split: median seconds per step, and the process's resident memory
  after them;
- `train_bf16`: the same batches through the backbone as a Hugging Face token
  classifier under CPU bfloat16 autocast (forward, backward, AdamW): median
  seconds per step.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ner_component import reporting
from ner_component.errors import NerComponentError
from ner_component.hardware import CACHE_ENV
from ner_component.reporting import write_report
from ner_component.util import PathLike, write_json_atomic

DEFAULT_CAPACITIES = (32, 256, 1024)
PHASES = ("pipe", "train", "train_bf16")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pipe_words_per_second(nlp: Any, docs: List[Any], dtype: str) -> float:
    from ner_component.evaluation.crosscheck import predict_docs
    from ner_component.runtime.transformer import apply_cpu_inference_dtype

    apply_cpu_inference_dtype(nlp, dtype)
    predict_docs(nlp, docs[: nlp.batch_size])  # warm-up: one batch
    start = time.perf_counter()
    predict_docs(nlp, docs)
    return sum(len(doc) for doc in docs) / (time.perf_counter() - start)


def _train_batches(nlp: Any, train_path: str, steps: int) -> List[List[Any]]:
    from spacy.training import Corpus
    from spacy.util import registry

    examples = list(Corpus(train_path)(nlp))
    batcher = registry.resolve({"b": nlp.config.interpolate()["training"]["batcher"]})["b"]
    batches = []
    for batch in batcher(examples):
        batches.append(list(batch))
        if len(batches) == steps:
            break
    return batches


def _spacy_steps(nlp: Any, batches: List[List[Any]]) -> List[float]:
    from spacy.util import registry

    # the config's own optimizer and schedule (interpolated: resume_training() can't)
    optimizer = registry.resolve({"o": nlp.config.interpolate()["training"]["optimizer"]})["o"]
    nlp.resume_training(sgd=optimizer)
    times = []
    for batch in batches:
        start = time.perf_counter()
        nlp.update(batch, sgd=optimizer, drop=0.1)
        times.append(time.perf_counter() - start)
    return times


def _bf16_hf_steps(backbone: str, batches: List[List[Any]]) -> List[float]:
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForTokenClassification.from_pretrained(backbone, num_labels=7)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model.train()
    times = []
    for batch in batches:
        words = [[t.text for t in eg.reference] for eg in batch]
        enc = tokenizer(words, is_split_into_words=True, padding=True, truncation=True, max_length=128, return_tensors="pt")
        labels = torch.zeros_like(enc["input_ids"])
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**enc, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return times


def run_worker(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One capacity's measurements, in this (fresh) process."""
    import spacy
    import torch

    from ner_component.data.convert import read_docs

    torch.manual_seed(0)
    result: Dict[str, Any] = {"capacity": os.environ.get(CACHE_ENV[0])}
    nlp = spacy.load(spec["model"])
    if "pipe" in spec["phases"]:
        docs = read_docs(spec["dev"], nlp.vocab)[: spec["pipe_docs"]]
        result["pipe_words"] = sum(len(doc) for doc in docs)
        for dtype in spec["dtypes"]:
            result[f"pipe_{dtype}_wps"] = _pipe_words_per_second(nlp, docs, dtype)
    result["rss_mb_before_training"] = _rss_mb()
    if not {"train", "train_bf16"} & set(spec["phases"]):
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return result
    # the train split is read only when a training phase runs
    batches = _train_batches(nlp, spec["train"], spec["train_steps"])
    if "train" in spec["phases"]:
        times = _spacy_steps(nlp, batches)
        result["train_step_s"] = statistics.median(times[2:] or times)
        result["rss_mb_after_training"] = _rss_mb()
    if "train_bf16" in spec["phases"] and spec.get("backbone"):
        times = _bf16_hf_steps(spec["backbone"], batches[: spec["bf16_steps"]])
        result["train_bf16_step_s"] = statistics.median(times[2:] or times)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def measure_capacities(
    model: PathLike,
    corpus_dir: PathLike,
    capacities: Sequence[int] = DEFAULT_CAPACITIES,
    pipe_docs: int = 2000,
    train_steps: int = 150,
    bf16_steps: int = 40,
    backbone: Optional[str] = None,
    phases: Sequence[str] = PHASES,
    dtypes: Sequence[str] = ("float32", "bfloat16"),
) -> List[Dict[str, Any]]:
    """Run the phases once per capacity, each in a fresh process; rows in order."""
    corpus_dir = Path(corpus_dir)
    for phase in phases:
        if phase not in PHASES:
            raise NerComponentError(f"unknown phase {phase!r}: expected one of {', '.join(PHASES)}")
    for c in capacities:
        if c < 1:
            raise NerComponentError(f"a cache capacity is a whole number >= 1 (LRU_CACHE_CAPACITY=0 crashes PyTorch), got {c}")
    spec = {
        "model": str(model),
        "dev": str(corpus_dir / "dev.spacy"),
        "train": str(corpus_dir / "train.spacy"),
        "pipe_docs": pipe_docs,
        "train_steps": train_steps,
        "bf16_steps": bf16_steps,
        "backbone": backbone,
        "phases": list(phases),
        "dtypes": list(dtypes),
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="onednn-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        for capacity in capacities:
            out = Path(tmp) / f"{capacity}.json"
            env = dict(os.environ, **{name: str(capacity) for name in CACHE_ENV})
            print(f"capacity {capacity}: running {', '.join(phases)}", flush=True)
            proc = subprocess.run(
                [sys.executable, "-m", "ner_component.benchmarks.onednn_cache", str(spec_path), str(out)], env=env
            )
            if proc.returncode != 0:
                raise NerComponentError(f"the run with kernel cache capacity {capacity} failed (exit {proc.returncode})")
            rows.append(json.loads(out.read_text()))
            print(markdown_table(rows[-1:]), flush=True)
    return rows


# (result key, column, format) of the table, in order; a column shows where a row has its key
COLUMNS = (
    ("capacity", "capacity", "{}"),
    ("pipe_float32_wps", "pipe float32 words/s", "{:,.0f}"),
    ("pipe_bfloat16_wps", "pipe bfloat16 words/s", "{:,.0f}"),
    ("train_step_s", "train step (float32) s", "{:.3f}"),
    ("rss_mb_after_training", "RSS after training MB", "{:,.0f}"),
    ("train_bf16_step_s", "HF bf16 autocast step s", "{:.3f}"),
    ("peak_rss_mb", "peak RSS MB", "{:,.0f}"),
)


def markdown_table(rows: Sequence[Dict[str, Any]]) -> str:
    """One row per capacity, the columns some row has."""
    present = [c for c in COLUMNS if any(c[0] in row for row in rows)]
    cells = [[form.format(row[key]) if key in row else "" for key, _, form in present] for row in rows]
    return reporting.markdown_table([c[1] for c in present], cells, "r" * len(present)) + "\n"


def run_benchmark(model: PathLike, corpus_dir: PathLike, output_dir: PathLike, name: str, **kwargs: Any) -> List[Dict[str, Any]]:
    """Measure, then write `<name>.json` and `<name>.md` to `output_dir`."""
    from ner_component.runtime.transformer import cpu_has_native_bf16

    rows = measure_capacities(model, corpus_dir, **kwargs)
    result = {"native_bf16": cpu_has_native_bf16(), "model": str(model), "rows": rows, "settings": dict(kwargs)}
    table = markdown_table(rows)
    write_report(output_dir, name, result, table)
    print(table)
    return rows


if __name__ == "__main__":
    spec_arg, out_arg = sys.argv[1:3]
    write_json_atomic(out_arg, run_worker(json.loads(Path(spec_arg).read_text())))
