"""Accuracy per training minute: the Hugging Face `Trainer` recipe and our spaCy
pipeline, on the same language, backbone, data and machine, under the same
wall-clock budget of training (evaluation excluded), side by side.

Each side writes its own `results.json` in the same shape (train: seconds, words,
words/s, eval seconds; dev_curve: (train_seconds, dev_f1) points on the same dev
subset; test: seqeval strict IOB2 and default figures on the full test split), and
this module puts them together as JSON, a Markdown table and a plot of dev F1
against training minutes.
"""
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from thinc.api import Config
from wasabi import msg

from ner_component import reporting
from ner_component.backbones import config_transformer
from ner_component.benchmarks.hf_recipe import load_config, run_recipe
from ner_component.data.convert import REPORT_NAME, read_docs
from ner_component.errors import NerComponentError
from ner_component.evaluation.crosscheck import crosscheck
from ner_component.hardware import describe, require_device
from ner_component.reporting import figure, number, percent, write_report
from ner_component.training.loggers import read_log
from ner_component.training.train import resolve_config, train
from ner_component.util import (
    PathLike,
    read_json,
    require_extra,
    write_json_atomic,
    write_text_atomic,
)

SIDES = ("hf", "spacy")
SIDE_NAMES = {"hf": "HF Trainer recipe", "spacy": "spaCy pipeline"}
RESULTS_NAME = "results.json"
LOG_NAME = "train_log.jsonl"
TIMED_LOGGER = "ner_component.TimedConsoleLogger.v1"
BENCHMARK_NAME = "benchmark"
BENCHMARK_JSON = f"{BENCHMARK_NAME}.json"
BENCHMARK_MD = f"{BENCHMARK_NAME}.md"
BENCHMARK_PNG = "dev_f1_curve.png"


def spacy_dev_limit(config_path: PathLike) -> int:
    """The number of dev sentences the spaCy config scores during training
    (`corpora.dev.limit`; 0 for all)."""
    config = Config().from_disk(config_path, interpolate=False)
    return int(config["corpora"]["dev"].get("limit") or 0)


def timed_config(config_path: PathLike, budget_seconds: Optional[float], log_path: PathLike) -> Config:
    """The spaCy config with its logger replaced by the timed console logger.

    The whole logger block is replaced, not overridden key by key: a config may use
    another logger whose settings the timed logger doesn't take.

    config_path (PathLike): The training config.
    budget_seconds (Optional[float]): Training seconds allowed; None for no budget.
    log_path (PathLike): The logger's JSONL file.
    RETURNS (Config): The config, variables not interpolated.
    """
    config = Config().from_disk(config_path, interpolate=False)
    old = config["training"].get("logger", {})
    progress_bar = old.get("progress_bar") if old.get("@loggers") in ("spacy.ConsoleLogger.v3", TIMED_LOGGER) else None
    config["training"]["logger"] = {
        "@loggers": TIMED_LOGGER,
        "budget_seconds": budget_seconds,
        "log_path": str(log_path),
        "final_evaluation": True,
        "progress_bar": progress_bar,
        "console_output": True,
        "output_file": None,
    }
    return config


def run_spacy_side(
    config_path: PathLike,
    corpus_dir: PathLike,
    output_dir: PathLike,
    lang: str,
    transformer: Optional[str],
    budget_seconds: Optional[float],
    gpu_id: int = -1,
    max_steps: Optional[int] = None,
) -> Dict[str, Any]:
    """Train our spaCy pipeline under the time budget, score the test split, and
    write `results.json` (and `config.cfg`, `train_log.jsonl`) to `output_dir`.

    The model scored on test is `model-best` (the best of spaCy's evaluations on the
    dev subset), or `model-last` when the logger's evaluation of the weights at the
    stop scored higher on the same dev subset.

    config_path (PathLike): The training config, e.g. `configs/cpu.cfg`.
    corpus_dir (PathLike): The folder with train/dev/test `.spacy` files.
    output_dir (PathLike): The run's folder (model-best, model-last, results.json).
    lang (str): The WikiANN language code.
    transformer (Optional[str]): Overrides `paths.transformer`.
    budget_seconds (Optional[float]): Training seconds allowed; None for no budget.
    gpu_id (int): -1 for the CPU, else the CUDA device.
    max_steps (Optional[int]): Overrides `training.max_steps` (also the length of
        the learning-rate schedule); training stops at whichever comes first.
    RETURNS (Dict[str, Any]): What `results.json` holds.
    """
    import spacy

    corpus_dir, output_dir = Path(corpus_dir), Path(output_dir)
    test_path = corpus_dir / "test.spacy"
    if not test_path.exists():
        raise NerComponentError(f"{test_path} not found: run the convert step first")
    output_dir.mkdir(parents=True, exist_ok=True)
    log_path = output_dir / LOG_NAME
    derived = output_dir / "config.cfg"
    write_text_atomic(derived, timed_config(config_path, budget_seconds, log_path).to_str())
    load_start, cpu_start = os.getloadavg(), time.process_time()
    info = train(derived, output_dir, corpus_dir, lang, transformer, gpu_id, max_steps)
    cpu_seconds, load_end = time.process_time() - cpu_start, os.getloadavg()
    rows, end = read_log(log_path)
    if end is None or not rows:
        raise NerComponentError(f"{log_path}: the timed logger wrote no totals; training did not finish")
    spacy_rows = [r for r in rows if r["source"] == "spacy"]
    best = max(spacy_rows, key=lambda r: (r["score"], r["step"]))  # spaCy keeps the latest of ties
    last = rows[-1]
    if last["source"] == "final" and last["score"] > best["score"]:
        chosen, chosen_row = output_dir / "model-last", last
    else:
        chosen, chosen_row = output_dir / "model-best", best

    require_device(gpu_id)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(chosen)
    docs = read_docs(test_path, nlp.vocab)
    started = time.perf_counter()
    scored = crosscheck(nlp, docs)
    test_seconds = time.perf_counter() - started
    n_words = sum(len(doc) for doc in docs)
    report = read_json(corpus_dir / REPORT_NAME) if (corpus_dir / REPORT_NAME).exists() else {}
    curve_keys = ("step", "epoch", "words", "train_seconds", "eval_seconds", "dev_f1",
                  "dev_precision", "dev_recall", "final", "source")
    results: Dict[str, Any] = {
        "system": "spacy",
        "lang": lang,
        "source": report.get("source", str(corpus_dir)),
        "config": str(config_path),
        "transformer": transformer,
        "dev_limit": spacy_dev_limit(config_path),
        "dev_sentences": _dev_sentences(report, spacy_dev_limit(config_path)),
        "train": {
            "seconds": end["train_seconds"],
            "eval_seconds": end["eval_seconds"],
            "checkpoint_seconds": end["checkpoint_seconds"],
            "words": end["words"],
            "words_per_second": end["words_per_second"],
            "stopped_by_budget": end["stopped_by_budget"],
            "budget_seconds": budget_seconds,
            "wall_seconds": info["train_seconds"],
            "steps": end["steps"],
            "epochs": end["epoch"],
            # how much CPU the run got (initialization included): a shared machine shows here
            "process_cpu_seconds": round(cpu_seconds, 1),
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in load_end],
        },
        "dev_curve": [{k: row.get(k) for k in curve_keys} for row in rows],
        "test": {
            "sentences": len(docs),
            "words": n_words,
            "seconds": round(test_seconds, 2),
            "words_per_second": round(n_words / test_seconds, 1) if test_seconds > 0 else None,
            "seqeval_strict": scored["seqeval_strict"],
            "seqeval_default": scored["seqeval_default"],
            "spacy": scored["spacy"],
            "problems": scored["problems"],
        },
        "model": str(chosen),
        "model_choice": (
            f"{chosen.name}: dev F1 {chosen_row['dev_f1']:.4f} at step {chosen_row['step']} "
            f"(best of spaCy's evaluations: step {best['step']}, {best['dev_f1']:.4f}; "
            f"at the stop: step {last['step']}, {last['dev_f1']:.4f})"
        ),
        "device": f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu",
        "hardware": describe(gpu_id),
    }
    write_json_atomic(output_dir / RESULTS_NAME, results)
    strict = scored["seqeval_strict"]
    msg.good(
        f"spaCy: test F1 {100 * strict['f1']:.2f} (seqeval strict IOB2) after "
        f"{end['train_seconds']:.0f} s of training, {end['words_per_second']} words/s"
    )
    return results


def _dev_sentences(report: Dict[str, Any], limit: int) -> Optional[int]:
    """How many dev sentences the evaluations score: the limit, or the whole split
    when it is smaller (known from the corpus report)."""
    available = report.get("splits", {}).get("dev", {}).get("sentences")
    if available is None:
        return limit or None
    return min(limit, available) if limit else available


def run_hf_side(
    config_path: PathLike,
    output_dir: PathLike,
    lang: str,
    data: str,
    transformer: Optional[str],
    budget_seconds: Optional[float],
    dev_limit: int,
    gpu_id: int = -1,
    root: PathLike = ".",
    overrides: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Run the Hugging Face recipe with the benchmark's language, data, backbone,
    budget and dev subset put over its config.

    config_path (PathLike): The recipe's config, e.g. `configs/hf_recipe.cfg`.
    output_dir (PathLike): The run's folder.
    lang (str): The WikiANN language code.
    data (str): The WikiANN source ("auto", "hub" or a path).
    transformer (Optional[str]): The backbone; None keeps the config's.
    budget_seconds (Optional[float]): Training seconds allowed; None for no budget.
    dev_limit (int): Dev sentences scored during training (the spaCy config's).
    gpu_id (int): -1 for the CPU, else the CUDA device.
    root (PathLike): The project root, for data = "auto".
    overrides (Optional[Dict[str, Any]]): More config overrides.
    RETURNS (Dict[str, Any]): What `results.json` holds.
    """
    all_overrides: Dict[str, Any] = {
        "paths.data": data,
        "data.lang": lang,
        "data.dev_limit": dev_limit,
        "budget.budget_seconds": budget_seconds,
    }
    if transformer is not None:
        all_overrides["paths.transformer"] = transformer
    all_overrides.update(overrides or {})
    config = load_config(config_path, all_overrides)
    return run_recipe(config, output_dir, gpu_id, root)


def run_benchmark(
    lang: str,
    corpus_dir: PathLike,
    spacy_config: PathLike,
    hf_config: PathLike,
    training_dir: PathLike,
    metrics_dir: PathLike,
    transformer: Optional[str],
    budget_seconds: Optional[float],
    data: str = "auto",
    sides: Sequence[str] = SIDES,
    gpu_id: int = -1,
    spacy_max_steps: Optional[int] = None,
    root: PathLike = ".",
    hf_overrides: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Run the benchmark's sides and write the comparison.

    Sides not run are read from their previous `results.json` when there is one, so
    the two can run one after the other (e.g. each under its own CPU lock).

    lang (str): The WikiANN language code.
    corpus_dir (PathLike): The spaCy corpus folder of the language.
    spacy_config (PathLike): Our pipeline's training config.
    hf_config (PathLike): The Hugging Face recipe's config.
    training_dir (PathLike): Where `hf/` and `spacy/` runs go.
    metrics_dir (PathLike): Where `benchmark.json`, `.md` and the plot go.
    transformer (Optional[str]): The backbone of both sides; None: the spaCy config's.
    budget_seconds (Optional[float]): Training seconds allowed to each side.
    data (str): The WikiANN source of the HF side (the corpus was converted from it).
    sides (Sequence[str]): The sides to run: "hf", "spacy", both, or none to only
        put the last results together again.
    gpu_id (int): -1 for the CPU, else the CUDA device.
    spacy_max_steps (Optional[int]): Overrides the spaCy config's training.max_steps.
    root (PathLike): The project root, for data = "auto".
    hf_overrides (Optional[Dict[str, Any]]): More overrides of the HF recipe's config.
    RETURNS (Dict[str, Any]): What `benchmark.json` holds.
    """
    unknown = [side for side in sides if side not in SIDES]
    if unknown:
        raise NerComponentError(f"sides {','.join(sides)!r}: expected one or more of {', '.join(SIDES)}")
    if "hf" in sides:
        require_extra("accelerate", "bench", "The Hugging Face Trainer recipe (the benchmark's hf side)")
    training_dir, metrics_dir = Path(training_dir), Path(metrics_dir)
    spacy_config = resolve_config(spacy_config)
    if transformer is None:
        transformer = config_transformer(spacy_config)
    results: Dict[str, Optional[Dict[str, Any]]] = {}
    if "hf" in sides:
        results["hf"] = run_hf_side(
            hf_config, training_dir / "hf", lang, data, transformer, budget_seconds,
            spacy_dev_limit(spacy_config), gpu_id, root, hf_overrides,
        )
    if "spacy" in sides:
        results["spacy"] = run_spacy_side(
            spacy_config, corpus_dir, training_dir / "spacy", lang, transformer,
            budget_seconds, gpu_id, spacy_max_steps,
        )
    for side in SIDES:
        if side not in results:
            previous = training_dir / side / RESULTS_NAME
            results[side] = read_json(previous) if previous.exists() else None
            if results[side] is not None:
                msg.info(f"{SIDE_NAMES[side]}: results of an earlier run, {previous}")
    if all(result is None for result in results.values()):
        raise NerComponentError(f"{training_dir}: no results of either side to compare; run at least one side")
    comparison = compare(results, lang, budget_seconds, corpus_dir)
    table = markdown_table(comparison)
    write_report(metrics_dir, BENCHMARK_NAME, comparison, table, plot_curves, BENCHMARK_PNG)
    print(table)
    return comparison


def compare(
    results: Dict[str, Optional[Dict[str, Any]]],
    lang: str,
    budget_seconds: Optional[float],
    corpus_dir: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Put both sides' results together and list where they weren't run alike.

    results (Dict[str, Optional[Dict[str, Any]]]): `results.json` by side, None
        for a side without results.
    lang (str): The benchmark's language.
    budget_seconds (Optional[float]): The benchmark's budget.
    corpus_dir (Optional[PathLike]): The spaCy corpus, whose report.json gives the
        test split's size to check the HF side's against.
    RETURNS (Dict[str, Any]): {"lang", "budget_seconds", "sides", "warnings"}.
    """
    warnings: List[str] = []
    present = {side: r for side, r in results.items() if r is not None}
    for side, result in present.items():
        if result["lang"] != lang:
            warnings.append(f"{SIDE_NAMES[side]} ran on '{result['lang']}', not '{lang}'")
        if result["train"].get("budget_seconds") != budget_seconds:
            warnings.append(
                f"{SIDE_NAMES[side]} had a budget of {result['train'].get('budget_seconds')} s, "
                f"not {budget_seconds} s"
            )
    if len(present) == 2:
        hf, sp = present["hf"], present["spacy"]
        if hf.get("dev_sentences") != sp.get("dev_sentences"):
            warnings.append(
                f"dev subsets differ: HF {hf.get('dev_sentences')}, spaCy {sp.get('dev_sentences')} sentences"
            )
        if hf["test"]["sentences"] != sp["test"]["sentences"] or hf["test"]["words"] != sp["test"]["words"]:
            warnings.append(
                f"test splits differ: HF {hf['test']['sentences']} sentences / {hf['test']['words']} words, "
                f"spaCy {sp['test']['sentences']} / {sp['test']['words']}"
            )
        if sp.get("transformer") not in (None, hf["transformer"]):
            warnings.append(f"backbones differ: HF {hf['transformer']}, spaCy {sp['transformer']}")
        if hf.get("hardware") != sp.get("hardware"):
            warnings.append(f"hardware differs: HF {hf.get('hardware')}, spaCy {sp.get('hardware')}")
    report_path = Path(corpus_dir) / REPORT_NAME if corpus_dir is not None else None
    if "hf" in present and report_path is not None and report_path.exists():
        test = read_json(report_path).get("splits", {}).get("test", {})
        hf_test = present["hf"]["test"]
        if (test.get("sentences"), test.get("tokens")) != (hf_test["sentences"], hf_test["words"]):
            warnings.append(
                f"HF test split ({hf_test['sentences']} sentences, {hf_test['words']} words) is not "
                f"the corpus's ({test.get('sentences')}, {test.get('tokens')}; {report_path})"
            )
    return {"lang": lang, "budget_seconds": budget_seconds, "sides": results, "warnings": warnings}


def markdown_table(comparison: Dict[str, Any]) -> str:
    """The comparison as a Markdown table, one column per side."""
    sides = [s for s in SIDES if comparison["sides"].get(s) is not None]
    results = [comparison["sides"][s] for s in sides]
    budget = comparison["budget_seconds"]
    rows: List[List[str]] = []

    def row(name: str, cell: Callable[[Dict[str, Any]], str]) -> None:
        rows.append([name, *(cell(r) for r in results)])

    row("test F1, seqeval strict IOB2", lambda r: percent(r["test"]["seqeval_strict"]["f1"]))
    row("test precision / recall (strict)", lambda r: (
        f"{percent(r['test']['seqeval_strict']['precision'])} / {percent(r['test']['seqeval_strict']['recall'])}"))
    labels = sorted({label for r in results for label in r["test"]["seqeval_strict"]["per_type"]})
    for label in labels:
        row(f"test F1 {label} (strict)", lambda r, lb=label: percent(
            r["test"]["seqeval_strict"]["per_type"].get(lb, {}).get("f1")))
    row("test F1, seqeval default mode", lambda r: percent(r["test"]["seqeval_default"]["f1"]))
    row("best dev F1 during training", lambda r: percent(max((p["dev_f1"] or 0.0) for p in r["dev_curve"])))
    row("dev sentences scored", lambda r: number(r.get("dev_sentences")))
    row("training seconds (evaluation excluded)", lambda r: number(r["train"]["seconds"], 1))
    row("evaluation seconds during training", lambda r: number(r["train"]["eval_seconds"], 1))
    row("training words/s", lambda r: number(r["train"]["words_per_second"]))
    row("words trained on", lambda r: number(r["train"]["words"]))
    row("steps / epochs", lambda r: f"{r['train']['steps']} / {r['train']['epochs']}")
    row("stopped by the budget", lambda r: "yes" if r["train"]["stopped_by_budget"] else "no")
    row("process CPU s / wall s (training with its evaluations)", lambda r: (
        f"{number(r['train'].get('process_cpu_seconds'))} / {number(r['train'].get('wall_seconds'))}"))
    row("load average at start / end", lambda r: (
        f"{number((r['train'].get('load_average_start') or [None])[0], 1)} / "
        f"{number((r['train'].get('load_average_end') or [None])[0], 1)}"))
    row("test scoring seconds (words/s)", lambda r: (
        f"{number(r['test']['seconds'], 1)} ({number(r['test']['words_per_second'])})"))
    row("setup", _setup)
    row("hardware", lambda r: r.get("hardware", ""))
    lines = [
        f"### WikiANN {comparison['lang']}: accuracy after "
        f"{'no budget' if budget is None else f'{budget / 60:g} minutes'} of training",
        "",
        "Training time excludes evaluation; dev F1 is scored on the same first dev "
        "sentences on both sides, test F1 on the full test split, word by word "
        "(the HF side reads each word's first subword).",
        "",
        reporting.markdown_table(["", *(SIDE_NAMES[s] for s in sides)], rows),
    ]
    for warning in comparison["warnings"]:
        lines.append(f"\n**Not alike:** {warning}")
    return "\n".join(lines) + "\n"


def _setup(result: Dict[str, Any]) -> str:
    if result["system"] == "spacy":
        return f"`{result['config']}`"
    training = result["config"]["training"]
    return (
        f"lr {training['learning_rate']:g}, batch {training['per_device_train_batch_size']}, "
        f"{training['num_train_epochs']} epochs, subword labels {result['subword_labels']}"
    )


def plot_curves(comparison: Dict[str, Any], path: PathLike) -> None:
    """Dev F1 against training minutes (evaluation excluded), one line per side."""
    with figure(path, figsize=(7, 4.2)) as (_, ax):
        dev_limits = set()
        for side in SIDES:
            result = comparison["sides"].get(side)
            if result is None:
                continue
            dev_limits.add(result.get("dev_sentences") or result["dev_limit"])
            points = [p for p in result["dev_curve"] if p.get("dev_f1") is not None]
            xs = [p["train_seconds"] / 60 for p in points]
            ys = [100 * p["dev_f1"] for p in points]
            test_f1 = 100 * result["test"]["seqeval_strict"]["f1"]
            ax.plot(xs, ys, marker="o", markersize=3, label=f"{SIDE_NAMES[side]} (test F1 {test_f1:.1f})")
        budget = comparison["budget_seconds"]
        if budget is not None:
            ax.axvline(budget / 60, color="grey", linestyle=":", linewidth=1, label="budget")
        limit = ", ".join(str(d or "all") for d in sorted(dev_limits, key=lambda d: d or 0))
        ax.set_xlabel("training minutes (evaluation excluded)")
        ax.set_ylabel(f"dev F1, seqeval strict (first {limit} sentences)")
        ax.set_ylim(0, 100)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.set_title(f"WikiANN {comparison['lang']}: dev F1 per training minute")
        ax.legend(loc="lower right", fontsize=8)
