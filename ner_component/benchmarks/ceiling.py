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

With a throughput result (`--throughput metrics/throughput/en.json`), each ceiling is
also given as a multiple of the fastest Hugging Face run in the same dtype: the most
any engine in that arithmetic could be ahead of it.
"""
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ner_component import reporting
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
from ner_component.util import PathLike, read_json

DTYPES = ("float32", "bfloat16")
DEFAULT_REPEATS = 3


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


def forward_seconds(model: Any, batches: List[Dict[str, Any]], dtype: str, repeats: int) -> float:
    """The fastest of `repeats` passes of the encoder over all batches (after one
    warm-up pass)."""
    import contextlib

    import torch

    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bfloat16" else contextlib.nullcontext()
    best = float("inf")
    with torch.inference_mode(), autocast:
        for i in range(repeats + 1):
            start = time.perf_counter()
            for batch in batches:
                model(**batch)
            if i:
                best = min(best, time.perf_counter() - start)
    return best


def length_batches(sequences: List[List[int]], budget: int, pad_id: int) -> List[Dict[str, Any]]:
    """Sequences sorted longest first, chunked by `plan_length_chunks`, each chunk
    padded to its own longest: input_ids and attention_mask tensors."""
    import torch

    from ner_component.runtime.transformer import plan_length_chunks

    ordered = sorted(sequences, key=len, reverse=True)
    batches = []
    for start, end in plan_length_chunks([len(s) for s in ordered], budget):
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
    repeats: int,
    matmul_flops: float,
) -> Dict[str, Any]:
    """Both ceilings for one set of texts; see the module docstring."""
    max_length = min(int(model.config.max_position_embeddings), int(getattr(tokenizer, "model_max_length", 10**9)))
    sequences: List[List[int]] = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        sequences.extend(split_ids(ids, max_length, tokenizer.cls_token_id, tokenizer.sep_token_id))
    batches = length_batches(sequences, token_budget, tokenizer.pad_token_id or 0)
    words = count_words(texts)
    positions = sum(len(s) for s in sequences)
    padded = sum(int(b["input_ids"].numel()) for b in batches)
    seconds = forward_seconds(model, batches, dtype, repeats)
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
        "forward_words_per_second": words / seconds,
        "forward_gflops_per_second": flops / seconds / 1e9,
        "gflop": flops / 1e9,
        "arithmetic_words_per_second": words / (flops / matmul_flops),
    }


def _fastest(runs: List[Dict[str, Any]], setting: str, engine: str, dtype: str) -> Optional[Dict[str, Any]]:
    found = [
        run
        for run in runs
        if run.get("setting") == setting and run.get("engine") == engine and (run.get("dtype") or "float32") == dtype
    ]
    return max(found, key=lambda run: run["words_per_second"]) if found else None


def compare_with_throughput(result: Dict[str, Any], throughput: Dict[str, Any], source: str) -> None:
    """Add the fastest spaCy and Hugging Face runs of a throughput result, in the
    ceiling's dtype, and the ceilings as multiples of the Hugging Face one (in place)."""
    if "runs" not in throughput or "settings" not in throughput:
        raise NerComponentError(f"{source} is not a throughput result (no 'runs' or 'settings'; written by scripts/benchmark_throughput.py)")
    for setting, ceiling in result["settings"].items():
        words = throughput["settings"].get(setting, {}).get("words")
        if words is not None and words != ceiling["words"]:
            raise NerComponentError(
                f"{source} measured {words} words of {setting}, this run {ceiling['words']}: "
                "use the same test corpus, --limit and --join"
            )
        spacy_run = _fastest(throughput["runs"], setting, "spacy", result["dtype"])
        hf_run = _fastest(throughput["runs"], setting, "hf", result["dtype"])
        ceiling["spacy_words_per_second"] = spacy_run["words_per_second"] if spacy_run else None
        ceiling["spacy_run"] = spacy_run["label"] if spacy_run else None
        ceiling["hf_words_per_second"] = hf_run["words_per_second"] if hf_run else None
        ceiling["hf_run"] = hf_run["label"] if hf_run else None
        if hf_run:
            hf = hf_run["words_per_second"]
            ceiling["forward_ceiling_over_hf"] = ceiling["forward_words_per_second"] / hf
            ceiling["arithmetic_ceiling_over_hf"] = ceiling["arithmetic_words_per_second"] / hf
            if spacy_run:
                ceiling["spacy_over_hf"] = spacy_run["words_per_second"] / hf
    result["throughput"] = source


def run_ceiling(
    hf_model: PathLike,
    test_path: PathLike,
    output_dir: PathLike,
    name: str,
    limit: Optional[int] = None,
    join: int = DEFAULT_JOIN,
    settings: Sequence[str] = SETTINGS,
    dtype: str = "float32",
    token_budget: int = 1024,
    repeats: int = DEFAULT_REPEATS,
    torch_threads: Optional[int] = None,
    throughput: Optional[PathLike] = None,
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
    repeats (int): Timed passes over the texts; the fastest counts.
    torch_threads (Optional[int]): PyTorch threads; None for the number of CPU cores.
    throughput (Optional[PathLike]): A throughput benchmark's JSON on the same texts,
        to compare with.
    RETURNS (Dict[str, Any]): The results.
    """
    if dtype not in DTYPES:
        raise NerComponentError(f"dtype {dtype!r} must be one of {', '.join(DTYPES)}")
    if token_budget < 1 or repeats < 1:
        raise NerComponentError(f"token budget ({token_budget}) and repeats ({repeats}) must be >= 1")
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
    import torch
    from transformers import AutoModel, AutoTokenizer

    threads = torch_threads if torch_threads is not None else (os.cpu_count() or 1)
    if threads < 1:
        raise NerComponentError(f"torch_threads ({threads}) must be >= 1")
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(str(hf_model))
    model = AutoModel.from_pretrained(str(hf_model), add_pooling_layer=False).eval()
    sentences = sentence_texts(test_path, limit)
    if not sentences:
        raise NerComponentError(f"test corpus {test_path} has no sentences")
    texts = texts_by_setting(sentences, join)
    config = model.config
    matmul = matmul_flops_per_second(min(token_budget, 4096), config.hidden_size, config.intermediate_size, dtype)
    print(f"\u2139 matrix products ({dtype}): {matmul / 1e9:.0f} GFLOP/s", file=sys.stderr, flush=True)
    result: Dict[str, Any] = {
        "name": name,
        "hf_model": str(hf_model),
        "test": str(test_path),
        "limit": limit,
        "join": join,
        "dtype": dtype,
        "token_budget": token_budget,
        "repeats": repeats,
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
        print(f"\u2139 {setting}: encoder forward passes ...", file=sys.stderr, flush=True)
        ceiling = measure_ceiling(model, tokenizer, texts[setting], token_budget, dtype, repeats, matmul)
        print(
            f"  forward ceiling {ceiling['forward_words_per_second']:.0f} words/s, "
            f"arithmetic ceiling {ceiling['arithmetic_words_per_second']:.0f} words/s",
            file=sys.stderr,
            flush=True,
        )
        result["settings"][setting] = ceiling
    if throughput_result is not None:
        compare_with_throughput(result, throughput_result, str(throughput))
    write_report(output_dir, name, result, markdown_table(result), plot_ceiling)
    return result


def _x(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


CEILING_COLUMNS = (
    "texts", "words", "wordpieces/word", "forward ceiling (words/s)", "forward GFLOP/s", "arithmetic ceiling (words/s)",
    "spaCy, fastest (words/s)", "HF pipeline, fastest (words/s)", "spaCy / HF", "forward ceiling / HF", "arithmetic ceiling / HF",
)


def markdown_table(result: Dict[str, Any]) -> str:
    """The ceilings as a Markdown table, with the throughput runs beside them."""
    rows = [
        [
            setting, number(c["words"]), f"{c['positions_per_word']:.2f}", number(c["forward_words_per_second"], missing="-"),
            f"{c['forward_gflops_per_second']:.0f}", number(c["arithmetic_words_per_second"], missing="-"),
            number(c.get("spacy_words_per_second"), missing="-"), number(c.get("hf_words_per_second"), missing="-"),
            _x(c.get("spacy_over_hf")), _x(c.get("forward_ceiling_over_hf")), _x(c.get("arithmetic_ceiling_over_hf")),
        ]
        for setting, c in result["settings"].items()
    ]
    lines = [
        f"Encoder: {result['hf_model']} ({result['model']['layers']} layers, hidden {result['model']['hidden_size']}, "
        f"feed-forward {result['model']['intermediate_size']}), {result['dtype']}, chunks of at most "
        f"{result['token_budget']} padded positions, fastest of {result['repeats']} passes; {result['torch_threads']} "
        f"PyTorch threads; {describe_machine(result['machine'])}. "
        f"Matrix products of the model's shapes: {result['matmul_gflops_per_second']:.0f} GFLOP/s. "
        + describe_texts(result["test"], result["limit"], result["join"]),
        "",
        reporting.markdown_table(CEILING_COLUMNS, rows),
        "",
        "Forward ceiling: words / time of the encoder's bare forward pass over every wordpiece of the texts, "
        "sorted and chunked by length (no tokenization, alignment, decoding or overlap). Arithmetic ceiling: "
        "words / (the pass's multiply-adds at the measured matrix-product speed). A ceiling / HF below a target "
        "means no engine reaches it in this dtype with this encoder on this machine.",
    ]
    if result.get("throughput"):
        lines.append(f"spaCy and HF: the fastest {result['dtype']} runs of {result['throughput']}.")
    return "\n".join(lines) + "\n"


def plot_ceiling(result: Dict[str, Any], path: PathLike) -> None:
    """Bars per setting: the HF pipeline, spaCy, and both ceilings, words/s."""
    settings = list(result["settings"])
    with figure(path, ncols=len(settings), figsize=(6.0 * len(settings), 3.2), squeeze=False) as (_, axes):
        for ax, setting in zip(axes[0], settings):
            c = result["settings"][setting]
            bars = [
                ("HF pipeline", c.get("hf_words_per_second"), "tab:orange"),
                ("spaCy", c.get("spacy_words_per_second"), "tab:blue"),
                ("forward ceiling", c["forward_words_per_second"], "tab:gray"),
                ("arithmetic ceiling", c["arithmetic_words_per_second"], "lightgray"),
            ]
            bars = [bar for bar in bars if bar[1] is not None]
            ys = list(range(len(bars)))
            ax.barh(ys, [b[1] for b in bars], color=[b[2] for b in bars])
            for y, (_, value, _) in zip(ys, bars):
                ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
            if c.get("hf_words_per_second"):
                ax.axvline(2 * c["hf_words_per_second"], color="tab:red", linestyle="--", linewidth=1)
                ax.text(2 * c["hf_words_per_second"], len(bars) - 0.5, " 2x HF", color="tab:red", fontsize=8, va="bottom")
            ax.set_yticks(ys, [b[0] for b in bars], fontsize=8)
            ax.invert_yaxis()
            ax.set_xlim(0, max(b[1] for b in bars) * 1.3)
            ax.set_xlabel(f"words/s ({result['dtype']}, {result['torch_threads']} threads)")
            ax.set_title(f"{setting}: {c['positions_per_word']:.2f} wordpieces/word", fontsize=9)
