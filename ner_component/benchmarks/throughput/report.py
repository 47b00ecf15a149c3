"""The throughput result as Markdown (a table per setting, with its summary) and as
a bar chart of words/s per configuration."""
from typing import Any, Dict, List

from ner_component import reporting
from ner_component.benchmarks.throughput.summary import describe_machine
from ner_component.benchmarks.throughput.texts import describe_texts
from ner_component.reporting import figure, percent
from ner_component.util import PathLike

RUN_COLUMNS = (
    "engine", "dtype", "chunk budget", "batch size", "processes", "threads/process", "words/s", "docs/s",
    "words/CPU-s", "peak RSS (MB)", "load (s)", "entities", "F1 vs gold", "F1 vs fastest spaCy", "other load (cores)",
)


def markdown_table(result: Dict[str, Any]) -> str:
    """The runs as a Markdown table, one per setting, with the summary under it."""
    lines: List[str] = [_preamble(result), ""]
    for setting, summary in result["settings"].items():
        runs = [run for run in result["runs"] if run["setting"] == setting]
        lines += [
            f"### {setting}: {summary['docs']} docs, {summary['words']} words",
            "",
            reporting.markdown_table(RUN_COLUMNS, [_run_cells(run, summary) for run in runs], "ll" + "r" * (len(RUN_COLUMNS) - 2)),
            "",
            _setting_summary(summary),
            "",
        ]
    return "\n".join(lines)


def _preamble(result: Dict[str, Any]) -> str:
    return (
        f"{describe_texts(result['test'], result['limit'], result['join'])} PyTorch threads: {result['torch_threads']} in all "
        f"(per process: {result['torch_threads']} // n_process). "
        f"Machine: {describe_machine(result['machine'], memory=True)}. Peak RSS: summed over a run's processes (spaCy's workers included), "
        "sampled every 0.5 s, at least the main process's own peak plus its largest worker's. Other load: CPU time other processes used during a run / its length (0 on a quiet "
        "machine); words/CPU-s is less sensitive to it than words/s. dtype: what the transformer computed in "
        "(spaCy: its CPU prediction dtype; HF: the model's torch dtype). Chunk budget: the transformer's "
        "predict_token_budget (0: one forward pass per batch, padded to its longest span). F1 vs gold: strict (exact character "
        "span and label) against the test split's entities."
    )


def _run_cells(run: Dict[str, Any], summary: Dict[str, Any]) -> List[Any]:
    engine = "spaCy" if run["engine"] == "spacy" else "HF pipeline"
    best = " **(fastest)**" if run["label"] in (summary["best_spacy"], summary["best_hf"]) else ""
    return [
        f"{engine}{best}",
        run.get("dtype") or "-",
        _budget(run),
        run["batch_size"],
        run["n_process"],
        run["torch_threads"],
        f"{run['words_per_second']:.0f}",
        f"{run['docs_per_second']:.1f}",
        f"{run['words_per_cpu_second']:.0f}",
        f"{run['peak_rss_mb']:.0f}",
        f"{run['load_seconds']:.1f}",
        run["n_entities"],
        percent(run.get("against_gold", {}).get("f1"), 1, missing="-"),
        percent(run["agreement_with_best_spacy"]["f1"], 1),
        f"{run['other_load_cores']:.2f}",
    ]


def _setting_summary(summary: Dict[str, Any]) -> str:
    versus_default = ""
    if summary.get("speedup_best_spacy_over_best_hf_float32") is not None:
        versus_default = f"{summary['speedup_best_spacy_over_best_hf_float32']:.2f}x the fastest HF run in float32 (its default) and "
    gold_count = f" ({summary['gold_entities']} gold entities)" if summary.get("gold_entities") is not None else ""
    return (
        f"Fastest spaCy: batch size {summary['best_spacy_batch_size']}, n_process {summary['best_spacy_n_process']}, "
        f"{summary.get('best_spacy_dtype') or 'no transformer'}; {versus_default}"
        f"{summary['speedup_best_spacy_over_best_hf']:.2f}x the fastest HF run of all. "
        f"Entity agreement (char span + label F1) of the fastest HF run with it: {percent(summary['hf_f1_against_spacy'], 1)}; "
        f"lowest between spaCy configurations: {percent(summary['min_f1_between_spacy_runs'], 1)}{gold_count}."
    )


def _budget(run: Dict[str, Any]) -> str:
    budget = run.get("token_budget_used")
    return "-" if budget is None else str(budget)


def _bar_name(run: Dict[str, Any]) -> str:
    if run["engine"] == "spacy":
        return f"spaCy bs={run['batch_size']} np={run['n_process']} {run.get('dtype') or ''} tb={_budget(run)}"
    return f"HF bs={run['batch_size']} {run.get('dtype') or ''}"


def plot_throughput(result: Dict[str, Any], path: PathLike) -> None:
    """Bar charts of words/s per configuration (one panel per setting), peak RSS on each bar."""
    settings = list(result["settings"])
    rows = max(sum(run["setting"] == setting for run in result["runs"]) for setting in settings)
    size = (6.5 * len(settings), max(4.0, 1.0 + 0.3 * rows))
    with figure(path, ncols=len(settings), figsize=size, squeeze=False) as (_, axes):
        for ax, setting in zip(axes[0], settings):
            runs = [run for run in result["runs"] if run["setting"] == setting]
            speeds = [r["words_per_second"] for r in runs]
            ys = range(len(runs))
            ax.barh(list(ys), speeds, color=["tab:blue" if r["engine"] == "spacy" else "tab:orange" for r in runs])
            for y, run in zip(ys, runs):
                gold = f", F1 {percent(run['against_gold']['f1'], 1)}" if "against_gold" in run else ""
                ax.text(run["words_per_second"], y, f" {run['peak_rss_mb']:.0f} MB{gold}", va="center", fontsize=7)
            ax.set_yticks(list(ys), [_bar_name(r) for r in runs], fontsize=8)
            ax.invert_yaxis()
            ax.set_xlabel("words/s (peak RSS and F1 vs gold at the bar's end)")
            ax.set_xlim(0, max(speeds) * 1.45)
            ax.set_title(f"{setting} ({result['settings'][setting]['docs']} docs), {result['torch_threads']} torch threads", fontsize=9)
