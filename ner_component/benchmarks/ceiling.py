"""The fastest any engine could annotate the texts: the encoder's bare forward pass.

The throughput benchmark (`ner_component.benchmarks.throughput`) measures what the
spaCy pipeline and the Hugging Face pipeline do. This one measures the bound both
live under on the same machine, backbone and texts, so that a target such as "twice
the Hugging Face pipeline's words/s" can be checked against what the arithmetic
allows before anyone engineers towards it:

- **forward ceiling**: the encoder alone (no tokenization, alignment, decoding or
  pipeline code), run once over every wordpiece of the texts (each text tokenized
  whole, split without overlap only where it exceeds the model's positions), in the
  most efficient batching this project knows: sequences sorted by length, chunked by
  a token budget, each chunk padded only to its own longest. An engine that annotates
  faster than this does less arithmetic per word (a smaller model, fewer layers,
  lower precision); one at this speed spends nothing outside the encoder.
- **arithmetic ceiling**: the multiply-adds of that forward pass (its Linear layers
  and attention products, counted from the model) at the speed this machine
  multiplies matrices of the model's shapes (`torch.mm`, measured here): the bound if
  layer norms, activations, softmax and memory traffic cost nothing.

With a throughput result (`--throughput metrics/throughput/en.json`), the spaCy
pipeline and the Hugging Face pipeline it names are timed in this process too, each at
its fastest single-process batch size there, **in turn with the encoder**: every round
runs the encoder, `nlp.pipe` and the HF pipeline (in the ceiling's dtype, and in
float32, its default, when that differs) once each over the same texts. On a shared
machine whose speed drifts by tens of percent within minutes, a ratio within a round
holds where figures measured minutes apart in other processes don't; each ratio is the
median of the rounds' ratios, each words/s the median of the rounds. Without
`interleave`, the throughput result's own fastest runs are compared instead.
"""
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from ner_component import reporting
from ner_component.benchmarks.throughput.engines import Annotate, hf_annotator, spacy_annotator
from ner_component.benchmarks.throughput.summary import describe_machine, machine
from ner_component.benchmarks.throughput.texts import (
    DEFAULT_JOIN,
    SETTINGS,
    check_settings,
    count_words,
    describe_texts,
    sentence_texts,
    texts_by_setting,
)
from ner_component.errors import NerComponentError
from ner_component.reporting import figure, number, write_report
from ner_component.runtime.transformer import DEFAULT_PREDICT_TOKEN_BUDGET, pass_cost_positions
from ner_component.util import PathLike, read_json

DTYPES = ("float32", "bfloat16")
DEFAULT_ROUNDS = 3


def split_ids(ids: Sequence[int], max_length: int, cls_id: int, sep_id: int) -> List[List[int]]:
    """A tokenized text ([CLS] ... [SEP]) as sequences of at most `max_length`
    positions, each with its own [CLS] and [SEP], no wordpiece repeated or dropped."""
    if max_length < 3:
        raise ValueError(f"max_length ({max_length}) must be >= 3")
    if len(ids) <= max_length:
        return [list(ids)]
    inner = list(ids[1:-1])
    step = max_length - 2
    return [[cls_id] + inner[i : i + step] + [sep_id] for i in range(0, len(inner), step)]


def encoder_flops_per_position(model: Any, mean_length: float) -> float:
    """Floating point operations (2 per multiply-add) of one position's pass through
    the encoder layers: every Linear in them, plus the attention products (scores and
    weighted sum, 2 x 2 x length x hidden per layer) at the given mean sequence length."""
    import torch

    layers = model.encoder.layer
    linear = sum(2 * m.in_features * m.out_features for m in layers.modules() if isinstance(m, torch.nn.Linear))
    attention = len(layers) * 4 * mean_length * model.config.hidden_size
    return float(linear + attention)


def matmul_flops_per_second(rows: int, hidden: int, intermediate: int, dtype: str, seconds: float = 1.0) -> float:
    """This machine's speed multiplying matrices of the model's shapes: (rows x hidden)
    @ (hidden x intermediate) and back, the feed-forward products of one chunk."""
    import torch

    a = torch.randn(rows, hidden)
    b = torch.randn(hidden, intermediate)
    c = torch.randn(rows, intermediate)
    d = torch.randn(intermediate, hidden)
    if dtype == "bfloat16":
        a, b, c, d = (t.bfloat16() for t in (a, b, c, d))
    flops_per_round = 2 * 2 * rows * hidden * intermediate
    with torch.inference_mode():
        for _ in range(3):
            torch.mm(a, b), torch.mm(c, d)
        best = float("inf")
        for _ in range(5):
            rounds = 0
            start = time.perf_counter()
            while True:
                torch.mm(a, b)
                torch.mm(c, d)
                rounds += 1
                elapsed = time.perf_counter() - start
                if elapsed >= seconds / 5:
                    break
            best = min(best, elapsed / rounds)
    return flops_per_round / best


def encoder_pass(model: Any, batches: List[Dict[str, Any]], dtype: str) -> Callable[[], None]:
    """One pass of the encoder over all batches, in `dtype` (CPU autocast for
    bfloat16, as the spaCy pipeline's), under `torch.no_grad` as the pipeline
    predicts: on the Intel Xeon with AMX `torch.inference_mode` made the same
    pass 13% slower (docs/benchmarks.md), which would lower the ceiling."""
    import contextlib

    import torch

    def run() -> None:
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bfloat16" else contextlib.nullcontext()
        with torch.no_grad(), autocast:
            for batch in batches:
                model(**batch)

    return run


def timed_rounds(passes: Dict[str, Callable[[], Any]], rounds: int, progress: bool = False) -> Dict[str, List[float]]:
    """The seconds of every pass in each of `rounds` rounds, the passes taking turns
    in the order given, after one untimed pass each (first-call allocations, kernel
    caches). With `progress`, a line per round on stderr."""
    for run in passes.values():
        run()
    seconds: Dict[str, List[float]] = {name: [] for name in passes}
    for i in range(rounds):
        for name, run in passes.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
        if progress:
            times = ", ".join(f"{name} {seconds[name][-1]:.2f} s" for name in passes)
            print(f"  round {i + 1}/{rounds}: {times}", file=sys.stderr, flush=True)
    return seconds


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of the rounds' ratios."""
    return statistics.median(n / d for n, d in zip(numerators, denominators))


def length_batches(sequences: List[List[int]], budget: int, pad_id: int, pass_cost: int) -> List[Dict[str, Any]]:
    """Sequences sorted longest first, chunked by `plan_length_chunks` (one more
    pass weighed at `pass_cost` positions), each chunk padded to its own longest:
    input_ids and attention_mask tensors."""
    import torch

    from ner_component.runtime.transformer import plan_length_chunks

    ordered = sorted(sequences, key=len, reverse=True)
    batches = []
    for start, end in plan_length_chunks([len(s) for s in ordered], budget, pass_cost):
        chunk = ordered[start:end]
        width = len(chunk[0])
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, seq in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        batches.append({"input_ids": ids, "attention_mask": mask})
    return batches


def measure_ceiling(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    token_budget: int,
    dtype: str,
    rounds: int,
    matmul_flops: float,
    engines: Optional[Dict[str, Annotate]] = None,
) -> Dict[str, Any]:
    """Both ceilings for one set of texts (see the module docstring), and each of
    `engines` timed in turn with the encoder: its words/s and its seconds per round."""
    max_length = min(int(model.config.max_position_embeddings), int(getattr(tokenizer, "model_max_length", 10**9)))
    sequences: List[List[int]] = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        sequences.extend(split_ids(ids, max_length, tokenizer.cls_token_id, tokenizer.sep_token_id))
    # planned as the pipeline plans its chunks in this dtype (`predict_pass_cost = "auto"`)
    batches = length_batches(sequences, token_budget, tokenizer.pad_token_id or 0, pass_cost_positions(dtype == "bfloat16"))
    words = count_words(texts)
    positions = sum(len(s) for s in sequences)
    padded = sum(int(b["input_ids"].numel()) for b in batches)
    passes: Dict[str, Callable[[], Any]] = {"encoder": encoder_pass(model, batches, dtype)}
    for name, annotate in (engines or {}).items():
        passes[name] = lambda annotate=annotate: annotate(list(texts))
    timed = timed_rounds(passes, rounds, progress=True)
    seconds = statistics.median(timed["encoder"])
    # Attention cost grows with each sequence's own length: mean length weighted by positions.
    mean_length = sum(len(s) ** 2 for s in sequences) / positions
    flops = encoder_flops_per_position(model, mean_length) * positions
    return {
        "texts": len(texts),
        "words": words,
        "sequences": len(sequences),
        "positions": positions,
        "padded_positions": padded,
        "positions_per_word": positions / words,
        "forward_seconds": seconds,
        "forward_seconds_by_round": timed["encoder"],
        "forward_words_per_second": words / seconds,
        "forward_gflops_per_second": flops / seconds / 1e9,
        "gflop": flops / 1e9,
        "arithmetic_words_per_second": words / (flops / matmul_flops),
        "engines": {
            name: {"seconds_by_round": timed[name], "words_per_second": words / statistics.median(timed[name])}
            for name in engines or {}
        },
    }


def _fastest(
    runs: List[Dict[str, Any]], setting: str, engine: str, dtype: str, single_process: bool = False
) -> Optional[Dict[str, Any]]:
    found = [
        run
        for run in runs
        if run.get("setting") == setting
        and run.get("engine") == engine
        and (run.get("dtype") or "float32") == dtype
        and (not single_process or int(run.get("n_process", 1)) == 1)
    ]
    return max(found, key=lambda run: run["words_per_second"]) if found else None


def check_throughput(throughput: Dict[str, Any], source: str, words: Dict[str, int]) -> None:
    """Raise unless `throughput` is a throughput result over the same texts (`words`
    per setting)."""
    if "runs" not in throughput or "settings" not in throughput:
        raise NerComponentError(f"{source} is not a throughput result (no 'runs' or 'settings'; written by scripts/benchmark_throughput.py)")
    for setting, count in words.items():
        measured = throughput["settings"].get(setting, {}).get("words")
        if measured is not None and measured != count:
            raise NerComponentError(
                f"{source} measured {measured} words of {setting}, this run {count}: "
                "use the same test corpus, --limit and --join"
            )


def compared_runs(throughput: Dict[str, Any], setting: str, dtype: str, single_process: bool) -> Dict[str, Dict[str, Any]]:
    """The throughput runs to compare with: the fastest spaCy and HF runs in `dtype`
    ("spacy", "hf") and, when `dtype` isn't float32, the fastest HF run in float32, its
    default ("hf_default")."""
    picks = {
        "spacy": _fastest(throughput["runs"], setting, "spacy", dtype, single_process),
        "hf": _fastest(throughput["runs"], setting, "hf", dtype),
    }
    if dtype != "float32":
        picks["hf_default"] = _fastest(throughput["runs"], setting, "hf", "float32")
    return {name: run for name, run in picks.items() if run is not None}


def load_engines(runs: Dict[str, Dict[str, Any]], throughput: Dict[str, Any], source: str, dtype: str) -> Dict[str, Annotate]:
    """The engines of `runs` (`compared_runs`), loaded from the models the throughput
    result names, each at its run's batch size (and spaCy at its chunk budget), spaCy
    in `dtype`."""
    engines: Dict[str, Annotate] = {}
    for name, run in runs.items():
        key = "model" if name == "spacy" else "hf_model"
        model = throughput.get(key)
        if not model or not Path(model).exists():
            raise NerComponentError(
                f"{source}: its {key} {model!r} does not exist here (run from the folder it was measured in, or without interleaving)"
            )
        if name == "spacy":
            engines[name] = spacy_annotator(model, int(run["batch_size"]), 1, dtype, run.get("token_budget_used"))[0]
        else:
            engines[name] = hf_annotator(model, int(run["batch_size"]), run.get("dtype") or "float32")[0]
    return engines


def compare(ceiling: Dict[str, Any], runs: Dict[str, Dict[str, Any]], interleaved: bool, dtype: str) -> Dict[str, Any]:
    """The engines' words/s beside the ceiling and the ratios between them: from the
    rounds timed in turn with the encoder (medians of the rounds' ratios) when
    `interleaved`, else from the throughput runs. In float32 the HF run is its default."""
    seconds = {"encoder": ceiling["forward_seconds_by_round"]}
    speed = {"encoder": ceiling["forward_words_per_second"]}
    fields: Dict[str, Any] = {}
    for name, run in runs.items():
        fields[f"{name}_run"] = run["label"]
        if interleaved:
            speed[name] = ceiling["engines"][name]["words_per_second"]
            seconds[name] = ceiling["engines"][name]["seconds_by_round"]
        else:
            speed[name] = run["words_per_second"]
        fields[f"{name}_words_per_second"] = speed[name]

    def over(fast: str, slow: str) -> Optional[float]:
        if fast not in speed or slow not in speed:
            return None
        if interleaved:
            return median_ratio(seconds[slow], seconds[fast])
        return speed[fast] / speed[slow]

    fields["spacy_over_ceiling"] = over("spacy", "encoder")
    fields["spacy_over_hf"] = over("spacy", "hf")
    fields["spacy_over_hf_default"] = fields["spacy_over_hf"] if dtype == "float32" else over("spacy", "hf_default")
    fields["forward_ceiling_over_hf"] = over("encoder", "hf")
    fields["arithmetic_ceiling_over_hf"] = ceiling["arithmetic_words_per_second"] / speed["hf"] if "hf" in speed else None
    return fields


def run_ceiling(
    hf_model: PathLike,
    test_path: PathLike,
    output_dir: PathLike,
    name: str,
    limit: Optional[int] = None,
    join: int = DEFAULT_JOIN,
    settings: Sequence[str] = SETTINGS,
    dtype: str = "float32",
    token_budget: int = DEFAULT_PREDICT_TOKEN_BUDGET,
    rounds: int = DEFAULT_ROUNDS,
    torch_threads: Optional[int] = None,
    throughput: Optional[PathLike] = None,
    interleave: bool = True,
) -> Dict[str, Any]:
    """Measure both ceilings for the throughput benchmark's texts and write
    `<name>.json`, `<name>.md` and `<name>.png` to `output_dir`.

    hf_model (PathLike): A Hugging Face folder on the backbone (its encoder is used).
    test_path (PathLike): The test `.spacy` corpus whose sentences are the texts.
    output_dir (PathLike): Where to write the results, e.g. `metrics/ceiling`.
    name (str): The results' file name, e.g. "en".
    limit (Optional[int]): Use the first `limit` test sentences; None for all.
    join (int): Sentences per document in the "documents" setting.
    settings (Sequence[str]): Which of "sentences" and "documents" to run.
    dtype (str): "float32" or "bfloat16" (CPU autocast, as the spaCy pipeline's).
    token_budget (int): Padded positions per forward pass (>= 1).
    rounds (int): Timed rounds (each a pass of the encoder, and of each engine when
        interleaving); medians count.
    torch_threads (Optional[int]): PyTorch threads; None for the number of CPU cores.
    throughput (Optional[PathLike]): A throughput benchmark's JSON on the same texts,
        to compare with.
    interleave (bool): With `throughput`, time the spaCy and HF pipelines it names in
        turn with the encoder (see the module docstring); else compare with its runs.
    RETURNS (Dict[str, Any]): The results.
    """
    if dtype not in DTYPES:
        raise NerComponentError(f"dtype {dtype!r} must be one of {', '.join(DTYPES)}")
    if token_budget < 1 or rounds < 1:
        raise NerComponentError(f"token budget ({token_budget}) and rounds ({rounds}) must be >= 1")
    check_settings(settings)
    if not (Path(hf_model) / "config.json").is_file():
        raise NerComponentError(f"{hf_model} is not a Hugging Face model folder (no config.json)")
    if not Path(test_path).is_file():
        raise NerComponentError(f"test corpus {test_path} does not exist")
    throughput_result = None
    if throughput is not None:
        if not Path(throughput).is_file():
            raise NerComponentError(f"throughput result {throughput} does not exist (run scripts/benchmark_throughput.py first)")
        try:
            throughput_result = read_json(throughput)
        except json.JSONDecodeError as err:
            raise NerComponentError(f"{throughput} line {err.lineno}: not JSON ({err.msg})")
    sentences = sentence_texts(test_path, limit)
    if not sentences:
        raise NerComponentError(f"test corpus {test_path} has no sentences")
    texts = texts_by_setting(sentences, join)
    if throughput_result is not None:
        check_throughput(throughput_result, str(throughput), {s: count_words(texts[s]) for s in settings})
    import torch
    from transformers import AutoModel, AutoTokenizer

    threads = torch_threads if torch_threads is not None else (os.cpu_count() or 1)
    if threads < 1:
        raise NerComponentError(f"torch_threads ({threads}) must be >= 1")
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(str(hf_model))
    model = AutoModel.from_pretrained(str(hf_model), add_pooling_layer=False).eval()
    config = model.config
    matmul = matmul_flops_per_second(min(token_budget, 4096), config.hidden_size, config.intermediate_size, dtype)
    print(f"\u2139 matrix products ({dtype}): {matmul / 1e9:.0f} GFLOP/s", file=sys.stderr, flush=True)
    interleaved = throughput_result is not None and interleave
    result: Dict[str, Any] = {
        "name": name,
        "hf_model": str(hf_model),
        "test": str(test_path),
        "limit": limit,
        "join": join,
        "dtype": dtype,
        "token_budget": token_budget,
        "pass_cost": pass_cost_positions(dtype == "bfloat16"),
        "rounds": rounds,
        "interleaved": interleaved,
        "throughput": str(throughput) if throughput is not None else None,
        "torch_threads": threads,
        "matmul_gflops_per_second": matmul / 1e9,
        "model": {
            "layers": config.num_hidden_layers,
            "hidden_size": config.hidden_size,
            "intermediate_size": config.intermediate_size,
            "max_positions": config.max_position_embeddings,
        },
        "machine": machine(),
        "settings": {},
    }
    for setting in settings:
        runs = compared_runs(throughput_result, setting, dtype, interleaved) if throughput_result is not None else {}
        engines = load_engines(runs, throughput_result, str(throughput), dtype) if interleaved else {}
        timed = ", ".join(["the encoder"] + [runs[e]["label"] for e in engines])
        print(f"\u2139 {setting}: {rounds} rounds of {timed} ...", file=sys.stderr, flush=True)
        ceiling = measure_ceiling(model, tokenizer, texts[setting], token_budget, dtype, rounds, matmul, engines)
        del engines
        gc.collect()
        if runs:
            ceiling.update(compare(ceiling, runs, interleaved, dtype))
        print(
            f"  forward ceiling {ceiling['forward_words_per_second']:.0f} words/s, "
            f"arithmetic ceiling {ceiling['arithmetic_words_per_second']:.0f} words/s"
            + "".join(f", {e} {ceiling['engines'][e]['words_per_second']:.0f}" for e in ceiling["engines"]),
            file=sys.stderr,
            flush=True,
        )
        result["settings"][setting] = ceiling
    write_report(output_dir, name, result, markdown_table(result), plot_ceiling)
    return result


def _x(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.0%}"


def markdown_table(result: Dict[str, Any]) -> str:
    """The ceilings as a Markdown table, with the engines beside them."""
    default = result["dtype"] != "float32"
    columns = [
        "texts", "words", "wordpieces/word", "forward ceiling (words/s)", "forward GFLOP/s", "arithmetic ceiling (words/s)",
        "spaCy (words/s)", "spaCy / forward ceiling", "HF pipeline (words/s)", "spaCy / HF",
    ]
    if default:
        columns += ["HF pipeline float32, its default (words/s)", "spaCy / HF default"]
    columns += ["forward ceiling / HF", "arithmetic ceiling / HF"]
    rows = []
    for setting, c in result["settings"].items():
        row = [
            setting, number(c["words"]), f"{c['positions_per_word']:.2f}", number(c["forward_words_per_second"], missing="-"),
            f"{c['forward_gflops_per_second']:.0f}", number(c["arithmetic_words_per_second"], missing="-"),
            number(c.get("spacy_words_per_second"), missing="-"), _percent(c.get("spacy_over_ceiling")),
            number(c.get("hf_words_per_second"), missing="-"), _x(c.get("spacy_over_hf")),
        ]
        if default:
            row += [number(c.get("hf_default_words_per_second"), missing="-"), _x(c.get("spacy_over_hf_default"))]
        row += [_x(c.get("forward_ceiling_over_hf")), _x(c.get("arithmetic_ceiling_over_hf"))]
        rows.append(row)
    lines = [
        f"Encoder: {result['hf_model']} ({result['model']['layers']} layers, hidden {result['model']['hidden_size']}, "
        f"feed-forward {result['model']['intermediate_size']}), {result['dtype']}, chunks of at most "
        f"{result['token_budget']} padded positions (one more pass weighed at {result['pass_cost']} positions), "
        f"medians of {result['rounds']} rounds; {result['torch_threads']} "
        f"PyTorch threads; {describe_machine(result['machine'])}. "
        f"Matrix products of the model's shapes: {result['matmul_gflops_per_second']:.0f} GFLOP/s. "
        + describe_texts(result["test"], result["limit"], result["join"]),
        "",
        reporting.markdown_table(columns, rows),
        "",
        "Forward ceiling: words / time of the encoder's bare forward pass over every wordpiece of the texts, "
        "sorted and chunked by length (no tokenization, alignment, decoding or overlap). Arithmetic ceiling: "
        "words / (the pass's multiply-adds at the measured matrix-product speed). A ceiling / HF below a target "
        "means no engine reaches it in this dtype with this encoder on this machine.",
    ]
    if result.get("interleaved"):
        labels = sorted({c[key] for c in result["settings"].values() for key in c if key.endswith("_run")})
        lines.append(
            f"spaCy and HF: the pipelines {result['throughput']} measured, each at its fastest single-process batch "
            f"size there ({', '.join(labels)}), spaCy in {result['dtype']}, timed in this process in turn with the "
            "encoder, one pass each per round; ratios are medians of the rounds' ratios."
        )
    elif result.get("throughput"):
        lines.append(f"spaCy and HF: the fastest {result['dtype']} runs of {result['throughput']}.")
    return "\n".join(lines) + "\n"


def plot_ceiling(result: Dict[str, Any], path: PathLike) -> None:
    """Bars per setting: the HF pipeline (in the ceiling's dtype and in its default,
    float32), spaCy, and both ceilings, words/s; a line at twice the HF default."""
    settings = list(result["settings"])
    with figure(path, ncols=len(settings), figsize=(6.0 * len(settings), 3.2), squeeze=False) as (_, axes):
        for ax, setting in zip(axes[0], settings):
            c = result["settings"][setting]
            bars = [
                ("HF pipeline float32 (default)", c.get("hf_default_words_per_second"), "moccasin"),
                (f"HF pipeline {result['dtype']}", c.get("hf_words_per_second"), "tab:orange"),
                (f"spaCy {result['dtype']}", c.get("spacy_words_per_second"), "tab:blue"),
                ("forward ceiling", c["forward_words_per_second"], "tab:gray"),
                ("arithmetic ceiling", c["arithmetic_words_per_second"], "lightgray"),
            ]
            bars = [bar for bar in bars if bar[1] is not None]
            ys = list(range(len(bars)))
            ax.barh(ys, [b[1] for b in bars], color=[b[2] for b in bars])
            for y, (_, value, _) in zip(ys, bars):
                ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
            # the target: twice the HF pipeline's default (float32)
            hf_default = c.get("hf_default_words_per_second") or (c.get("hf_words_per_second") if result["dtype"] == "float32" else None)
            if hf_default:
                ax.axvline(2 * hf_default, color="tab:red", linestyle="--", linewidth=1)
                ax.text(2 * hf_default, len(bars) - 0.5, " 2x HF default", color="tab:red", fontsize=8, va="bottom")
            ax.set_yticks(ys, [b[0] for b in bars], fontsize=8)
            ax.invert_yaxis()
            ax.set_xlim(0, max([b[1] for b in bars] + [2 * (hf_default or 0)]) * 1.3)
            ax.set_xlabel(f"words/s ({result['dtype']}, {result['torch_threads']} threads)")
            ax.set_title(f"{setting}: {c['positions_per_word']:.2f} wordpieces/word", fontsize=9)
