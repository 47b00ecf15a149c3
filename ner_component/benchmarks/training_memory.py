"""Resident memory and step time of training steps, with and without trimming.

A training step's peak is its activations (set by the batch size and
`accumulate_gradient`) on top of what glibc's malloc keeps of earlier steps' freed
memory; `ner_component.trim_freed_memory.v1` (a `[training.before_update]` callback)
hands the latter back every N steps. This runs a config's own training steps (spaCy's
`init_nlp`, then sub-batches and updates as `spacy train` makes them, over the same
batches) in one process, with the config's `before_update`, a trim interval or none,
and reports the resident memory, its peak and the summed step time. Dev scoring and
saving are left out: a whole `spacy project run all` measures those
(docs/benchmarks.md, "Memory of training").
"""
import time
from typing import Any, Dict, Iterator, Optional

from ner_component.benchmarks import record_reports
from ner_component.errors import NerComponentError
from ner_component.util import PathLike, check_writable

TRIM_CALLBACK = "ner_component.trim_freed_memory.v1"


def _memory(step: int, seconds: float) -> Dict[str, Any]:
    """A report: the resident memory now and its peak so far (Linux, in MB)."""
    with open("/proc/self/status") as status:
        kb = {line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith(("VmRSS", "VmHWM"))}
    # the kernel updates the high-water mark lazily: it may trail the current figure
    peak = max(kb["VmHWM"], kb["VmRSS"])
    return {"step": step, "rss_mb": round(kb["VmRSS"] / 1024, 1), "peak_mb": round(peak / 1024, 1), "step_seconds": round(seconds, 2)}


def training_memory(
    config_path: PathLike,
    corpus_dir: PathLike,
    lang: str,
    steps: int,
    every: int,
    trim_every: Optional[int] = None,
    overrides: Optional[Dict[str, Any]] = None,
    transformer: Optional[str] = None,
) -> Iterator[Dict[str, Any]]:
    """Run `steps` training steps of a config and report every `every` steps.

    config_path (PathLike): The training config, or `configs/auto` (`resolve_config`).
    corpus_dir (PathLike): The folder with `train.spacy` and `dev.spacy`.
    lang (str): The WikiANN language code.
    steps (int): Training steps to run.
    every (int): Report after every this many steps (and after the last).
    trim_every (Optional[int]): None keeps the config's `[training.before_update]`;
        0 runs without one; N > 0 trims freed memory every N steps.
    overrides (Optional[Dict[str, Any]]): More config overrides (e.g. the training
        dtype); $SPACY_CONFIG_OVERRIDES is read as well, as `spacy train` does.
    transformer (Optional[str]): The backbone (alias, folder or hub id); None: the config's.
    YIELDS (Dict[str, Any]): {"step", "rss_mb", "peak_mb", "step_seconds"}, the last
        the sum of the update times so far (trimming included, batching not).
    RAISES (NerComponentError): When steps or every is < 1, or trim_every < 0.
    """
    if steps < 1 or every < 1 or (trim_every is not None and trim_every < 0):
        raise NerComponentError(f"steps ({steps}) and every ({every}) must be at least 1, trim_every ({trim_every}) at least 0")
    from spacy import registry
    from spacy.cli._util import parse_config_overrides
    from spacy.schemas import ConfigSchemaTraining
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import create_train_batches, subdivide_batch
    from spacy.util import load_config, resolve_dot_names

    from ner_component.backbones import config_transformer, resolve_transformer
    from ner_component.hardware import bound_kernel_caches
    from ner_component.training.train import corpus_overrides, resolve_config

    bound_kernel_caches()
    config_path = resolve_config(config_path)
    all_overrides = corpus_overrides(config_path, corpus_dir, lang)
    transformer = transformer or config_transformer(config_path)
    if transformer is not None:
        all_overrides["paths.transformer"] = resolve_transformer(transformer)
    if trim_every == 0:
        all_overrides["training.before_update"] = None
    elif trim_every is not None:
        all_overrides["training.before_update"] = {"@callbacks": TRIM_CALLBACK, "every_n_steps": trim_every}
    all_overrides.update(parse_config_overrides([]))
    all_overrides.update(overrides or {})
    config = load_config(config_path, overrides=all_overrides, interpolate=False)
    nlp = init_nlp(config)
    training = registry.resolve(nlp.config.interpolate()["training"], schema=ConfigSchemaTraining)
    (train_corpus,) = resolve_dot_names(nlp.config.interpolate(), [training["train_corpus"]])
    optimizer, before_update = training["optimizer"], training["before_update"]
    batches = create_train_batches(nlp, train_corpus, training["batcher"], training["max_epochs"])
    seconds = 0.0
    yield _memory(0, seconds)
    for step, (epoch, batch) in enumerate(batches, start=1):
        start = time.perf_counter()
        if before_update is not None:
            before_update(nlp, {"step": step - 1, "epoch": epoch})
        # as spacy.training.loop.train_while_improving: sub-batches, then one update
        for subbatch in subdivide_batch(batch, training["accumulate_gradient"]):
            nlp.update(subbatch, drop=training["dropout"], sgd=False, losses={})
        for _, pipe in nlp.pipeline:
            if getattr(pipe, "is_trainable", False) and pipe.model not in (True, False, None):
                pipe.finish_update(optimizer)
        optimizer.step_schedules()
        seconds += time.perf_counter() - start
        if step % every == 0 or step == steps:
            yield _memory(step, seconds)
        if step == steps:
            break


def run_training_memory(
    config_path: PathLike,
    corpus_dir: PathLike,
    lang: str,
    output: PathLike,
    steps: int,
    every: int,
    trim_every: Optional[int] = None,
    overrides: Optional[Dict[str, Any]] = None,
    transformer: Optional[str] = None,
) -> Dict[str, Any]:
    """Measure `training_memory`, print each report as a JSON line and write them all,
    with the settings and the CPU, to `output` (JSON).

    RETURNS (Dict[str, Any]): What was written.
    """
    check_writable(output, "file")
    settings = {
        "config": str(config_path),
        "lang": lang,
        "steps": steps,
        "trim_every": "config" if trim_every is None else trim_every,
        "overrides": overrides or {},
        "transformer": transformer,
    }
    reports = training_memory(config_path, corpus_dir, lang, steps, every, trim_every, overrides, transformer)
    return record_reports(reports, output, settings, "reports")
