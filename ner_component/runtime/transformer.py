"""The transformer layer, with bfloat16 inference on CPUs that compute it natively.

`ner_component.TransformerModel.v1` is spacy-transformers' `TransformerModel.v3`
(same arguments, same weights, same serialization) plus one setting,
`cpu_inference_dtype`. spacy-transformers' `mixed_precision` only autocasts on CUDA;
on a CPU with native bfloat16 dot products (AVX512-BF16 or AMX: AMD Zen 4 and later,
Intel Cooper Lake / Sapphire Rapids and later) running the forward pass under
`torch.autocast("cpu", dtype=torch.bfloat16)` makes the Linear layers, 87% of
`nlp.pipe` time, about 2.5x faster. It applies to prediction only (`nlp.pipe`,
`nlp(text)`, dev scoring during training); training steps have their own setting,
`cpu_training_dtype` (below).

- "float32": never autocast.
- "bfloat16": always autocast on CPU (slow on CPUs without native bfloat16).
- "auto" (the default in the project's configs): bfloat16 where the CPU reports
  `avx512_bf16` or `amx_bf16` (and `ONEDNN_MAX_CPU_ISA` doesn't hold oneDNN below
  them), float32 elsewhere.

The hidden states come back as float32 either way, so the components that listen to
the transformer see no difference in type. Measured accuracy cost: README,
"Throughput".

A second setting, `predict_token_budget`, removes most of the padding from
prediction. spacy-transformers' `Transformer.pipe` already splits each `nlp.pipe`
batch (`batch_by_length` in spacy_transformers/util.py): it sorts the docs by their
number of spaCy tokens and cuts sub-batches of at most `max_batch_items` (4,096 by
default) padded tokens, longest doc x docs; each sub-batch is one forward pass with
every span padded to the sub-batch's longest span in wordpieces
(`huggingface_tokenize`, `padding="longest"`). Sorting docs by spaCy tokens, not
spans by wordpieces, leaves much padding: over the first 1,000 WikiANN en test
sentences at batch 256 it computed 2.19 positions per wordpiece in 9 passes.
Prediction here sorts each sub-batch's spans by their wordpieces and runs them in
chunks of similar length, each padded only to its own longest span and holding at
most `predict_token_budget` positions (at least one span), cut where padding and the
cost of another forward pass balance (`plan_length_chunks`): 1.08 positions per
wordpiece in 39 passes for the same sentences. It then puts the hidden states back in
their places in the sub-batch's padded layout (padding that no chunk computed is
zeros; no token is aligned to padding). Attention masks make the result the same as
one padded pass, up to float rounding. 0 turns it off. Whether it is faster depends
on the machine: docs/design.md, "Chunked prediction". The plan weighs padding
against what one more forward pass costs, `predict_pass_cost` positions: "auto" (the
default) takes 48 in float32 and 256 under CPU bfloat16 autocast, where the matrix
units make positions cheap and a pass's fixed cost weighs more (measured: the
constants below).

`train_token_budget` does the same for the forward pass of training steps on CPU
(0, the default, keeps spacy-transformers' one padded pass per sub-batch; the CPU
configs set 2,048): spaCy's batcher groups sentences by their spaCy tokens, and a
sub-batch padded to its longest span in wordpieces computed 1.58 positions per
wordpiece over the first English training steps. Each chunk is its own forward
pass, all in one autograd graph: the backward pass runs through every chunk, and
with dropout off the gradients are those of one padded pass, up to float rounding.
`train_pass_cost` weighs one more pass (forward and backward) in positions, as
`predict_pass_cost` does for prediction. Measured: docs/benchmarks.md, "Chunked
training steps".

`cpu_training_dtype` does for training steps what `cpu_inference_dtype` does for
prediction: "bfloat16" runs the forward pass of each training step under CPU
bfloat16 autocast (the backward pass follows the same casts; weights, gradients and
the optimizer stay float32), "auto" where the CPU computes bfloat16 natively. The
default is "float32": a step budget then trains the same model on every CPU.

`layer_lr_decay` (training only) gives each layer its own learning rate: the top
layer the optimizer's, each one below `layer_lr_decay` times the one above it, the
embeddings one step below the lowest layer (through thinc's `lr_scale`, which
`PyTorchShim.finish_update` doesn't pass: this shim's `finish_update` adds it). 1, the
default, keeps one rate throughout.

A fifth, `character_pieces`, is for pipelines whose tokens are single characters
(WikiANN's Chinese, Japanese, Cantonese and Classical Chinese: see
`ner_component.CharacterTokenizer.v1`). A sentencepiece tokenizer reads natural
Chinese text in pieces of several characters (`習近平` is one piece of XLM-R's), and
each spaCy token takes the vector of its first piece: the three characters of
`習近平` would get one vector and could not be tagged B, I, I. With
`character_pieces` every non-space character is its own piece (the tokenizer's
pre-tokenizer splits them first), in training and in prediction alike; the pieces
are the ordinary ones of the model's vocabulary, with no word marker added (`▁`
only where the text has a space or starts), so the text reads as it was written.
The setting changes the Hugging Face tokenizer saved with the pipeline, so a loaded
pipeline reads text the way it was trained.

Where a doc is longer than a window, `strided_spans` puts the tokens where windows
overlap into both, and spacy-transformers aligns each such token to its wordpieces in
both; first-wordpiece pooling then takes the first window's, where a token near that
window's end has little or no right context. This model aligns each token to the one
window where it sits furthest from an edge (`central_alignment`), in training and in
prediction: a doc within one window is aligned exactly as before. Over the WikiANN en
test sentences joined 16 and 64 at a time (windows of 128 tokens every 96), the
default model's F1 rose from 57.73 to 57.95 and from 55.98 to 56.50 at the same speed
(docs/benchmarks.md, "Windows on long documents").

One more difference, in training and prediction alike: each span's text is
tokenized cut at the model's maximum (`model_max_length`, 512) plus one wordpiece.
spacy-transformers cuts spans longer than the maximum too, but only after its
tokenization has padded every span of a batch to the longest one
(`huggingface_tokenize`, `padding="longest"`, then `truncate_oversize_splits`):
one doc of a single token of 30,000 Chinese characters among 200 short sentences
in an `nlp.pipe` batch cost 760 MB more than the short sentences alone, and a
1,000,000-character token (`nlp.max_length`) would cost tens of GB. Cut first,
a batch's wordpieces are at most 513 per span; the first 512 positions of every
span, all that spacy-transformers keeps, are the same, so the model's input,
alignment and output are the same as spacy-transformers' (a test holds it to that).
"""
import functools
import logging
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from spacy.tokens import Doc
from spacy.util import SimpleFrozenDict, registry
from thinc.api import Model

logger = logging.getLogger(__name__)

CPU_INFERENCE_DTYPES = ("auto", "float32", "bfloat16")
DEFAULT_PREDICT_TOKEN_BUDGET = 2048
# Outputs laid out (spans, positions, ...): chunked predictions are padded back on dim 1.
_SEQUENCE_OUTPUTS = ("last_hidden_state", "hidden_states")
# Outputs laid out (spans, ...).
_SPAN_OUTPUTS = ("pooler_output",)
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN's instruction sets below AVX512_CORE_BF16 (its cpu_isa enum): held to one of
# them with ONEDNN_MAX_CPU_ISA, as when a newer CPU is made to compute as an AVX2 one,
# oneDNN emulates bfloat16. A 1024x384 by 384x1536 Linear on 2 cores of an AMD EPYC with
# AVX512-BF16: float32 6.7 ms, bfloat16 autocast 45 ms with ONEDNN_MAX_CPU_ISA=AVX2
# (3.2 ms without the limit). Other values (ALL, DEFAULT, newer sets) leave the flags
# to decide.
ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")
# What one forward pass costs beyond its positions, in positions: MiniLM-L6 in
# float32 on 2 AVX2 cores ran about 7,000 positions/s in passes of 1,024 and spent
# about 6 ms more per pass in passes of 32 to 256 (6 ms x 7,000/s = 42 positions;
# rounded up: where padding and another pass cost about the same, fewer passes).
PASS_COST_POSITIONS = 48
# The same in bfloat16 on CPU, where the matrix units make positions cheaper and a
# pass's fixed cost weighs more: multilingual-e5-small under bfloat16 autocast on 2
# cores of an Intel Xeon with AMX, `nlp.pipe` over 1,000 WikiANN en test sentences at
# batch 1,000 ran 1.11x faster planned with 256 (budget 2,048) than with 48 (1.07x at
# 128, 1.10x at 512), and 16-sentence documents 1.05-1.15x; in float32 on the same CPU
# 48 stayed the best (docs/benchmarks.md, "Chunked prediction").
BF16_PASS_COST_POSITIONS = 256
DEFAULT_TRAIN_TOKEN_BUDGET = 0
# transformers' VERY_LARGE_INTEGER: the model_max_length of a tokenizer saved without one
# (imported from transformers it would be the runtime's only import of it).
NO_MAXIMUM = int(1e30)


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo", environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether this CPU computes bfloat16 dot products in hardware, and oneDNN may
    use them.

    Reads the kernel's CPU flags (Linux); elsewhere it answers False, so "auto"
    keeps float32. It also answers False where `ONEDNN_MAX_CPU_ISA` (or its older
    name `DNNL_MAX_CPU_ISA`) holds oneDNN, which computes PyTorch's bfloat16 matrix
    products on CPU, below AVX512_CORE_BF16: oneDNN then emulates bfloat16, several
    times slower than float32 (`ONEDNN_ISAS_WITHOUT_BF16`).

    cpuinfo (str): The file of CPU flags.
    environ (Optional[Mapping[str, str]]): The environment (default: os.environ).
    """
    environ = os.environ if environ is None else environ
    limit = environ.get("ONEDNN_MAX_CPU_ISA") or environ.get("DNNL_MAX_CPU_ISA") or ""
    if limit.strip().upper() in ONEDNN_ISAS_WITHOUT_BF16:
        return False
    return _cpu_flags_have_bf16(cpuinfo)


@functools.lru_cache(maxsize=None)
def _cpu_flags_have_bf16(cpuinfo: str) -> bool:
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(flag in flags for flag in NATIVE_BF16_FLAGS)
    return False


def resolve_cpu_inference_dtype(setting: str, name: str = "cpu_inference_dtype") -> str:
    """Turn "auto" into "bfloat16" or "float32" for this machine."""
    if setting not in CPU_INFERENCE_DTYPES:
        raise ValueError(
            f"{name} must be one of {', '.join(CPU_INFERENCE_DTYPES)}, got {setting!r}"
        )
    if setting == "auto":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return setting


def plan_length_chunks(lengths: List[int], budget: int, pass_cost: int = PASS_COST_POSITIONS) -> List[Tuple[int, int]]:
    """Split lengths sorted longest first into runs [start, end) that cost the
    least: each run is padded to its first (longest) length, costs that many
    positions per member plus `pass_cost` for the forward pass itself, and holds
    at most `budget` positions (at least one length, however long).

    Exact (dynamic programming over the sorted lengths, vectorized per start;
    about 2 ms for 256 spans). Cutting greedily at the budget instead pads short
    spans heavily: over 2,000 WikiANN en test sentences in `nlp.pipe` batches of
    256 it computed 34,055 positions for 25,930 wordpieces (31% padding), this
    plan 28,137 (8.5%) in 76 passes instead of 43: 15% more words/s in the
    throughput benchmark.
    """
    import numpy

    n = len(lengths)
    if n == 0:
        return []
    cost = numpy.zeros(n + 1)
    cut = numpy.zeros(n, dtype=numpy.int64)
    for start in range(n - 1, -1, -1):
        longest = max(int(lengths[start]), 1)
        most = min(n - start, max(1, budget // longest))
        sizes = numpy.arange(1, most + 1)
        total = pass_cost + sizes * longest + cost[start + 1 : start + most + 1]
        # the largest of the cheapest runs: fewer passes when costs tie
        best = most - 1 - int(numpy.argmin(total[::-1]))
        cut[start] = start + best + 1
        cost[start] = total[best]
    chunks = []
    start = 0
    while start < n:
        chunks.append((start, int(cut[start])))
        start = int(cut[start])
    return chunks


def pass_cost_positions(bf16: bool, setting: Optional[int] = None) -> int:
    """What `predict_pass_cost = "auto"` weighs one more forward pass at, in positions:
    `BF16_PASS_COST_POSITIONS` under CPU bfloat16 autocast, else `PASS_COST_POSITIONS`.
    `train_pass_cost = "auto"` takes the same for a training step's forward and
    backward pass: in float32, 48 was the fastest of 48, 128 and 256 there too
    (docs/benchmarks.md, "Chunked training steps"). A `setting` (a shim's pass cost,
    None for "auto") is itself."""
    if setting is not None:
        return setting
    return BF16_PASS_COST_POSITIONS if bf16 else PASS_COST_POSITIONS


@functools.lru_cache(maxsize=None)
def _autocast_shim_class() -> type:
    """The HFShim subclass (built once, on first use: it imports torch)."""
    import contextlib

    import torch
    from spacy_transformers.layers.hf_shim import HFShim
    from thinc.api import xp2torch
    from thinc.util import convert_recursive

    class CpuAutocastHFShim(HFShim):
        """HFShim whose predict runs under CPU bfloat16 autocast when asked, on
        spans chunked by length (`predict_token_budget`).

        It overrides `begin_update`, `finish_update`, `predict` and `use_params`
        and keeps its settings in attributes with class-level defaults: no
        `__init__` and no other state of its own, so that `_shim` may turn an HFShim
        that already exists into one (see there).
        """

        cpu_inference_dtype: str = "float32"
        cpu_training_dtype: str = "float32"
        predict_token_budget: int = DEFAULT_PREDICT_TOKEN_BUDGET
        # None: by the dtype a prediction runs in (`pass_cost_positions`)
        predict_pass_cost: Optional[int] = None
        train_token_budget: int = DEFAULT_TRAIN_TOKEN_BUDGET
        # None: by the training dtype (`pass_cost_positions`)
        train_pass_cost: Optional[int] = None
        layer_lr_decay: float = 1.0

        def begin_update(self, inputs: Any) -> Any:
            # PyTorchShim.begin_update, with the forward pass chunked by length
            # (`train_token_budget`) and under CPU bfloat16 autocast when asked; the
            # backward pass (the callback, run later) outside autocast, as PyTorch
            # wants. `_outputs_to_float32` and `_scatter` work inside the graph, so
            # gradients flow back through them into each chunk's computation. With
            # mixed precision (CUDA, where its grad scaler runs) or neither setting,
            # spacy-transformers' own.
            bf16 = self.cpu_training_dtype == "bfloat16"
            if self.device.type != "cpu" or self._mixed_precision or not (bf16 or self.train_token_budget > 0):
                return super().begin_update(inputs)
            self._model.train()
            pass_cost = pass_cost_positions(bf16, self.train_pass_cost)
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
                outputs = self._run_by_length(inputs, self.train_token_budget, pass_cost)
            if bf16:
                outputs = _outputs_to_float32(outputs)

            def backprop(grads: Any) -> Any:
                # PyTorchShim's backprop without the grad scaler, which is disabled
                # without mixed precision (it would scale by 1 and find no overflow)
                torch.autograd.backward(*grads.args, **grads.kwargs)
                return convert_recursive(lambda x: hasattr(x, "grad"), lambda x: x.grad, inputs)

            return outputs, backprop

        def predict(self, inputs: Any) -> Any:
            bf16 = self.cpu_inference_dtype == "bfloat16" and self.device.type == "cpu"
            if self.device.type == "cuda":
                autocast = torch.autocast(device_type="cuda", enabled=self._mixed_precision)
            elif bf16:
                autocast = torch.autocast(device_type="cpu", dtype=torch.bfloat16)
            else:
                autocast = contextlib.nullcontext()
            self._model.eval()
            pass_cost = pass_cost_positions(bf16, self.predict_pass_cost)
            with torch.no_grad(), autocast:
                outputs = self._run_by_length(inputs, self.predict_token_budget, pass_cost)
            self._model.train()
            return _outputs_to_float32(outputs) if bf16 else outputs

        def finish_update(self, optimizer: Any) -> None:
            # PyTorchShim.finish_update calls `optimizer(key, weights, gradient)`
            # without thinc's `lr_scale`: hand it an optimizer that adds each
            # weight's scale from its layer (`layer_lr_scales`).
            if self.layer_lr_decay == 1.0:
                return super().finish_update(optimizer)
            scales = layer_lr_scales(self._model, self.layer_lr_decay)

            def scaled(key: Any, weights: Any, gradient: Any, *, lr_scale: float = 1.0) -> Any:
                return optimizer(key, weights, gradient, lr_scale=lr_scale * scales.get(key[1], 1.0))

            return super().finish_update(scaled)

        @contextlib.contextmanager
        def use_params(self, params: Any) -> Any:
            # thinc's optimizer keeps this shim's weights, and their averages with
            # `use_averages = true`, under `(shim.id, name)` (PyTorchShim.finish_update),
            # but PyTorchShim.use_params reads only "pytorch_<id>_<name>" keys: the
            # averages would never reach the transformer (dev scores and saved
            # pipelines would use the last weights). Frozen weights have no averages
            # and keep their values.
            weights = dict(self._model.named_parameters())
            own = {
                key[1]: value
                for key, value in params.items()
                if isinstance(key, tuple) and len(key) == 2 and key[0] == self.id and key[1] in weights
            }
            if not own:
                with super().use_params(params):
                    yield
                return
            backup = {name: weights[name].detach().clone() for name in own}
            with torch.no_grad():
                for name, value in own.items():
                    weights[name].copy_(xp2torch(value, device=self.device))
            try:
                yield
            finally:
                with torch.no_grad():
                    for name, value in backup.items():
                        weights[name].copy_(value)

        def _run_by_length(self, inputs: Any, budget: int, pass_cost: int) -> Any:
            # The model over the spans sorted by length, in chunks of at most `budget`
            # positions (`plan_length_chunks`), its outputs put back in the batch's
            # padded layout (`_scatter`); one padded pass when there is nothing to cut.
            kwargs = inputs.kwargs
            mask = kwargs.get("attention_mask")
            config = getattr(self._model, "config", None)
            if (
                budget <= 0
                or inputs.args
                or mask is None
                or mask.dim() != 2
                or mask.shape[0] < 2
                or getattr(config, "output_attentions", False)
            ):
                return self._model(*inputs.args, **kwargs)
            n_spans, width = mask.shape
            lengths = (mask != 0).sum(dim=1)
            # Chunks are cut on the right: only right-padded masks (never 0 then 1) qualify.
            if not bool(((mask[:, 1:] != 0) <= (mask[:, :-1] != 0)).all()):
                return self._model(*inputs.args, **kwargs)
            order = torch.argsort(lengths, descending=True, stable=True)
            sorted_lengths = lengths[order].tolist()
            chunks = plan_length_chunks(sorted_lengths, budget, pass_cost)
            if len(chunks) == 1 and sorted_lengths[0] == width:
                return self._model(*inputs.args, **kwargs)
            row_chunks = []
            outputs = []
            for start, end in chunks:
                rows = order[start:end]
                longest = max(sorted_lengths[start], 1)
                chunk_kwargs = {
                    key: value[rows, :longest]
                    if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape == mask.shape
                    else value
                    for key, value in kwargs.items()
                }
                row_chunks.append(rows)
                outputs.append(self._model(**chunk_kwargs))
            merged = {}
            for key, first in outputs[0].items():
                values = [output[key] for output in outputs]
                if isinstance(first, tuple):
                    merged[key] = tuple(
                        _scatter(key, [value[i] for value in values], row_chunks, n_spans, width) for i in range(len(first))
                    )
                else:
                    merged[key] = _scatter(key, values, row_chunks, n_spans, width)
            return type(outputs[0])(**merged)

    return CpuAutocastHFShim


def _scatter(key: str, chunks: List[Any], row_chunks: List[Any], n_spans: int, width: int) -> Any:
    """One output of the whole batch from its chunks: each chunk's rows go back to
    their places, sequence outputs padded back to the batch's width."""
    import torch

    first = chunks[0]
    if not isinstance(first, torch.Tensor) or key not in _SEQUENCE_OUTPUTS + _SPAN_OUTPUTS:
        raise ValueError(f"Can't chunk the transformer output {key!r}; set predict_token_budget = 0")
    sequence = key in _SEQUENCE_OUTPUTS
    shape = (n_spans, width) + tuple(first.shape[2:]) if sequence else (n_spans,) + tuple(first.shape[1:])
    merged = first.new_zeros(shape)
    for rows, chunk in zip(row_chunks, chunks):
        if sequence:
            merged[rows, : chunk.shape[1]] = chunk
        else:
            merged[rows] = chunk
    return merged


def _outputs_to_float32(outputs: Any) -> Any:
    import torch

    for key, value in list(outputs.items()):
        if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16:
            outputs[key] = value.float()
        elif isinstance(value, tuple):
            outputs[key] = tuple(
                v.float() if isinstance(v, torch.Tensor) and v.dtype == torch.bfloat16 else v for v in value
            )
    return outputs


@functools.lru_cache(maxsize=None)
def _cut_tokenizer_class(tokenizer_class: type) -> type:
    """`tokenizer_class` whose calls cut each text at the model's maximum plus one
    wordpiece, unless the caller says how to truncate (see the module docstring)."""

    class CutTokenizer(tokenizer_class):  # type: ignore[valid-type, misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            maximum = self.model_max_length
            cut = kwargs.get("truncation") in (None, False) and kwargs.get("max_length") is None and maximum < NO_MAXIMUM
            if cut:
                kwargs.update(truncation=True, max_length=maximum + 1)
            encoding = super().__call__(*args, **kwargs)
            shape = getattr(encoding.get("input_ids"), "shape", None)
            if cut and shape is not None and shape[-1] > maximum:
                _warn_cut_once(maximum)
            return encoding

    CutTokenizer.__name__ = CutTokenizer.__qualname__ = f"Cut{tokenizer_class.__name__}"
    return CutTokenizer


@functools.lru_cache(maxsize=None)
def _warn_cut_once(maximum: int) -> None:
    # what Hugging Face's "Token indices sequence length is longer than the specified
    # maximum" said before (it only warns when it doesn't cut), once per process
    logger.warning(
        "A span of more than %d wordpieces: its wordpieces past the %dth are dropped "
        "(spacy-transformers' truncation), and the tokens there get zero vectors",
        maximum,
        maximum,
    )


def cut_tokenizer(tokenizer: Any) -> Any:
    """The same tokenizer (it shares the object's state: nothing is copied), as an
    instance of a subclass that cuts each text at the model's maximum plus one
    wordpiece (see the module docstring). The tokenizer the pipeline saves is the
    original: this is what the forward pass tokenizes with.

    tokenizer (Any): A Hugging Face tokenizer, or None before initialization.
    RETURNS (Any): The cutting view of it, or None.
    """
    if tokenizer is None:
        return None
    view = object.__new__(_cut_tokenizer_class(type(tokenizer)))
    view.__dict__ = tokenizer.__dict__
    return view


def central_alignment(align: Any, span_lengths: Any, width: int) -> Any:
    """Each token's wordpieces from one window only: the one where the token sits
    furthest from the window's nearer edge (ties: the first window).

    Overlapping windows (`strided_spans`) put a token near a window's right edge
    into the next window too, near its left edge; spacy-transformers aligns the
    token to its wordpieces in both, and first-wordpiece pooling takes the first
    window's, where a token at the edge has no right context at all. Tokens in one
    window only keep their alignment as it is.

    align (Ragged): Wordpiece indices per token, into the batch's spans x `width`
        positions (`FullTransformerBatch.align`).
    span_lengths (Array1d): Each span's wordpieces, special tokens included (at
        most `width` count).
    width (int): The padded positions per span.
    RETURNS (Ragged): The alignment with each token's wordpieces in one span.
    """
    # spacy-transformers builds alignments with numpy, on CPU and GPU alike
    import numpy
    from thinc.types import Ragged

    index = numpy.asarray(align.dataXd).ravel()
    lengths = numpy.asarray(align.lengths)
    row = index // width
    position = index - row * width
    last = numpy.minimum(numpy.asarray(span_lengths), width)[row] - 1
    margin = numpy.minimum(position, last - position)
    token = numpy.repeat(numpy.arange(lengths.shape[0]), lengths)
    # each token's widest margin first (stable: the first window on ties)
    order = numpy.lexsort(numpy.stack([-margin, token]))
    first = numpy.cumsum(lengths) - lengths
    best_row = numpy.full(lengths.shape[0], -1, dtype=row.dtype)
    nonempty = lengths > 0
    best_row[nonempty] = row[order[first[nonempty]]]
    keep = row == best_row[token]
    if bool(keep.all()):
        return align
    kept_lengths = numpy.bincount(token[keep], minlength=lengths.shape[0]).astype(lengths.dtype)
    return Ragged(align.dataXd[keep], kept_lengths)


def _forward_with_central_windows(model: Model, docs: List[Doc], is_train: bool) -> Any:
    """spacy-transformers' forward pass, each token aligned to the window where it
    is most central (`central_alignment`) when a doc spans several windows."""
    from spacy_transformers.layers.transformer_model import forward

    output, backprop = forward(model, docs, is_train)
    if any(len(spans) > 1 for spans in output.spans):
        wordpieces = output.wordpieces
        output.align = central_alignment(output.align, wordpieces.lengths, wordpieces.input_ids.shape[1])
    return output, backprop


@functools.lru_cache(maxsize=None)
def _transformer_model_class() -> type:
    """spacy-transformers' TransformerModel whose forward pass (and init) tokenize
    with `cut_tokenizer` and align tokens to their most central window
    (`_forward_with_central_windows`); built once, on first use: it imports torch."""
    from spacy_transformers.layers import TransformerModel

    class CutTransformerModel(TransformerModel):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._func = _forward_with_central_windows

        @property
        def tokenizer(self) -> Any:
            return cut_tokenizer(super().tokenizer)

        def copy(self) -> Any:
            # spaCy's replace_listeners copies the model. TransformerModel.copy
            # builds its own class and a fresh attrs dict (get_spans only), which
            # would drop this architecture's settings (dtypes, pass cost,
            # character pieces and the set_transformer that reads them); the
            # shim with its per-instance settings is deep-copied by it already.
            copied = super().copy()
            copied.__class__ = type(self)
            copied._func = _forward_with_central_windows
            copied.attrs.update(self.attrs)
            return copied

        def from_bytes(self, bytes_data: bytes) -> Any:
            # thinc restores the attrs that were saved, among them the dtypes "auto"
            # resolved to on the machine that saved the pipeline; the shim keeps
            # what they resolved to here (the config's setting, resolved when the
            # pipeline was built), and that is what predicts and trains.
            loaded = super().from_bytes(bytes_data)
            shim = _shim(self)
            self.attrs["cpu_inference_dtype"] = shim.cpu_inference_dtype
            self.attrs["cpu_training_dtype"] = shim.cpu_training_dtype
            return loaded

    return CutTransformerModel


def _shim(model: Model) -> Any:
    """The shim of a TransformerModel, as a `CpuAutocastHFShim`.

    `ner_component.TransformerModel.v1` builds its shim as one (`_build_transformer_model`).
    A pipeline built with spacy-transformers' own architecture
    (`spacy-transformers.TransformerModel.v3`, which `apply_cpu_inference_dtype`
    and `apply_predict_token_budget` accept too) has a plain HFShim: its
    `HFWrapper` (spacy_transformers/layers/hf_wrapper.py) constructs `HFShim(...)`
    itself and takes no shim class. That shim already holds the loaded weights, the
    tokenizer, the grad scaler and the `id` that keys its optimizer state, and is
    what `model.from_bytes` fills in place; building a new one would mean copying
    PyTorchShim's private state over by hand. So this one object gets the
    subclass's class: safe because the subclass adds methods and class-level
    defaults only, no instance state (a test holds it to that).
    """
    shim = model.layers[0].shims[0]
    shim_class = _autocast_shim_class()
    if not isinstance(shim, shim_class):
        shim.__class__ = shim_class
    return shim


def set_predict_token_budget(model: Model, budget: int) -> int:
    """Set a TransformerModel's prediction chunk size in padded positions (0: one
    padded forward pass per spacy-transformers sub-batch, its own way); in place."""
    if not isinstance(budget, int) or budget < 0:
        raise ValueError(f"predict_token_budget must be an integer >= 0, got {budget!r}")
    _shim(model).predict_token_budget = budget
    return budget


def _set_pass_cost(model: Model, name: str, setting: Union[int, str]) -> Union[int, str]:
    """Set a plan's pass cost `name` ("predict_pass_cost" or "train_pass_cost") of a
    TransformerModel: positions, or "auto" (None on the shim: by the dtype the pass
    runs in, `pass_cost_positions`); in place."""
    if setting != "auto" and (isinstance(setting, bool) or not isinstance(setting, int) or setting < 0):
        raise ValueError(f'{name} must be "auto" or an integer >= 0, got {setting!r}')
    setattr(_shim(model), name, None if setting == "auto" else setting)
    model.attrs[name] = setting
    return setting


def set_predict_pass_cost(model: Model, setting: Union[int, str]) -> Union[int, str]:
    """Set what a TransformerModel's prediction plan weighs one more forward pass at,
    in positions ("auto": by the dtype the prediction runs in); in place."""
    return _set_pass_cost(model, "predict_pass_cost", setting)


def set_train_token_budget(model: Model, budget: int) -> int:
    """Set a TransformerModel's training chunk size in padded positions (0: one padded
    forward pass per sub-batch, spacy-transformers' way); in place."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ValueError(f"train_token_budget must be an integer >= 0, got {budget!r}")
    _shim(model).train_token_budget = budget
    model.attrs["train_token_budget"] = budget
    return budget


def set_train_pass_cost(model: Model, setting: Union[int, str]) -> Union[int, str]:
    """Set what a TransformerModel's training plan weighs one more pass at, in
    positions ("auto": by the training dtype); in place."""
    return _set_pass_cost(model, "train_pass_cost", setting)


_LAYER_INDEX = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def layer_lr_scales(hf_model: Any, decay: float) -> Dict[str, float]:
    """Each weight's learning-rate scale for layer-wise decay: the top layer 1, each
    layer below it `decay` times the one above, the embeddings `decay` times the
    lowest layer. Weights of neither (a pooler) keep 1.

    hf_model (torch.nn.Module): A Hugging Face encoder whose layers are named
        `...layer.<i>.` or `...layers.<i>.` (BERT, XLM-R, DistilBERT and the like).
    decay (float): In (0, 1]; 1 scales nothing.
    RETURNS (Dict[str, float]): Scales by parameter name.
    """
    names = [name for name, _ in hf_model.named_parameters()]
    indices = {name: int(m.group(1)) for name in names if (m := _LAYER_INDEX.search(name))}
    if not indices:
        raise ValueError(f"layer_lr_decay: no numbered layers among {type(hf_model).__name__}'s weights")
    top = max(indices.values())
    scales = {name: decay ** (top - index) for name, index in indices.items()}
    scales.update({name: decay ** (top + 1) for name in names if name.startswith("embeddings.") or ".embeddings." in name})
    return scales


def set_layer_lr_decay(model: Model, decay: float) -> float:
    """Set a TransformerModel's layer-wise learning-rate decay (1: none) in place."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay <= 1:
        raise ValueError(f"layer_lr_decay must be a number in (0, 1], got {decay!r}")
    _shim(model).layer_lr_decay = float(decay)
    model.attrs["layer_lr_decay"] = float(decay)
    return float(decay)


def set_cpu_training_dtype(model: Model, setting: str) -> str:
    """Switch a TransformerModel's training dtype on CPU in place ("auto",
    "float32", "bfloat16", as for prediction); returns the resolved dtype."""
    resolved = resolve_cpu_inference_dtype(setting, "cpu_training_dtype")
    _shim(model).cpu_training_dtype = resolved
    model.attrs["cpu_training_dtype"] = resolved
    return resolved


def set_cpu_inference_dtype(model: Model, setting: str) -> str:
    """Switch a TransformerModel's prediction dtype in place; returns the resolved dtype.

    Works on a loaded pipeline too: `set_cpu_inference_dtype(nlp.get_pipe("transformer").model, "float32")`.
    """
    resolved = resolve_cpu_inference_dtype(setting)
    shim = _shim(model)
    shim.cpu_inference_dtype = resolved
    model.attrs["cpu_inference_dtype"] = resolved
    return resolved


@registry.architectures("ner_component.TransformerModel.v1")
def create_transformer_model(
    name: str,
    get_spans: Callable[[List[Doc]], Any],
    tokenizer_config: Dict[str, Any] = SimpleFrozenDict(),
    transformer_config: Dict[str, Any] = SimpleFrozenDict(),
    mixed_precision: bool = False,
    grad_scaler_config: Dict[str, Any] = SimpleFrozenDict(),
    cpu_inference_dtype: str = "auto",
    predict_token_budget: int = DEFAULT_PREDICT_TOKEN_BUDGET,
    character_pieces: bool = False,
    cpu_training_dtype: str = "float32",
    layer_lr_decay: float = 1.0,
    predict_pass_cost: Union[int, str] = "auto",
    train_token_budget: int = DEFAULT_TRAIN_TOKEN_BUDGET,
    train_pass_cost: Union[int, str] = "auto",
) -> Model:
    """spacy-transformers.TransformerModel.v3 with bfloat16 prediction on capable CPUs,
    length-chunked prediction, spans cut at the model's maximum before padding, and
    each token aligned to the window where it is most central.

    cpu_inference_dtype (str): "auto", "float32" or "bfloat16"; see the module docstring.
    predict_token_budget (int): padded positions per forward pass in prediction, spans
        sorted by length; 0 for one padded pass per spacy-transformers sub-batch.
        See the module docstring.
    predict_pass_cost (Union[int, str]): what the prediction plan weighs one more
        forward pass at, in positions; "auto" (the default): 48 in float32, 256
        under CPU bfloat16 autocast. See the module docstring.
    character_pieces (bool): every non-space character its own wordpiece, for
        pipelines whose tokens are characters; see the module docstring.
    cpu_training_dtype (str): "float32" (the default), "bfloat16" or "auto": the
        training forward pass under CPU bfloat16 autocast (the weights, their
        gradients and the optimizer stay float32); see the module docstring.
    layer_lr_decay (float): layer-wise learning-rate decay in training, in (0, 1]:
        the top layer learns at the optimizer's rate, each one below at `decay`
        times the rate of the one above (`layer_lr_scales`); 1 (the default) for
        one rate throughout.
    train_token_budget (int): padded positions per forward pass in training steps
        on CPU, spans sorted by length; 0 (the default) for one padded pass per
        sub-batch, spacy-transformers' way. See the module docstring.
    train_pass_cost (Union[int, str]): what the training plan weighs one more
        forward and backward pass at, in positions; "auto" (the default): 48 in
        float32, 256 under CPU bfloat16 autocast.
    The other arguments are TransformerModel.v3's. spacy-transformers writes into
    its config dicts (`grad_scaler_config["enabled"]` in HFShim,
    `trf_config["return_dict"]` in `huggingface_from_pretrained`), so it gets
    copies: the frozen defaults and the caller's dicts stay as they are.
    """
    model = _build_transformer_model(
        name, get_spans, dict(tokenizer_config), dict(transformer_config), mixed_precision, dict(grad_scaler_config)
    )
    resolved = set_cpu_inference_dtype(model, cpu_inference_dtype)
    set_predict_token_budget(model, predict_token_budget)
    set_predict_pass_cost(model, predict_pass_cost)
    set_cpu_training_dtype(model, cpu_training_dtype)
    set_layer_lr_decay(model, layer_lr_decay)
    set_train_token_budget(model, train_token_budget)
    set_train_pass_cost(model, train_pass_cost)
    model.attrs["character_pieces"] = bool(character_pieces)
    if character_pieces:
        # spacy-transformers' init loads the Hugging Face objects and hands them to
        # this hook; a loaded pipeline gets its (already split) tokenizer from disk.
        model.attrs["set_transformer"] = functools.partial(_set_transformer_with_character_pieces, model.attrs["set_transformer"])
    logger.debug("Transformer prediction on CPU in %s (setting %r)", resolved, cpu_inference_dtype)
    return model


def _set_transformer_with_character_pieces(set_transformer: Callable[[Model, Any], None], model: Model, hf_model: Any) -> None:
    split_into_characters(hf_model.tokenizer)
    set_transformer(model, hf_model)


def split_into_characters(tokenizer: Any) -> None:
    """Make a fast Hugging Face tokenizer give each non-space character its own
    piece, in place: a pre-tokenizer step isolates each character before the
    tokenizer's own (which still turns spaces into its word marker).

    tokenizer (PreTrainedTokenizerFast): The tokenizer.
    RAISES (ValueError): For a tokenizer without a `tokenizers` backend.
    """
    from tokenizers import Regex, pre_tokenizers

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"character_pieces needs a fast tokenizer (use_fast = true); {type(tokenizer).__name__} is not one")
    own = backend.pre_tokenizer
    if isinstance(own, pre_tokenizers.Metaspace):
        # "always" would put a word marker before every character: natural text has
        # one only after a space and at the start
        own = pre_tokenizers.Metaspace(replacement=own.replacement, prepend_scheme="first", split=own.split)
    steps = [pre_tokenizers.Split(Regex(r"\S"), behavior="isolated")]
    backend.pre_tokenizer = pre_tokenizers.Sequence(steps + ([own] if own is not None else []))


def _build_transformer_model(
    name: str,
    get_spans: Callable[[List[Doc]], Any],
    tokenizer_config: Dict[str, Any],
    transformer_config: Dict[str, Any],
    mixed_precision: bool,
    grad_scaler_config: Dict[str, Any],
) -> Model:
    """spacy-transformers' TransformerModel (as `_transformer_model_class`, which
    tokenizes with `cut_tokenizer`) with a `CpuAutocastHFShim` as its shim,
    constructed from the same arguments as the HFShim it replaces, before anything
    has used or loaded that one. Loading fills this shim in place
    (`Model.from_bytes` calls each shim's `from_bytes`, which HFShim implements by
    setting its own attributes), so it stays a `CpuAutocastHFShim`.
    """
    from spacy_transformers.data_classes import HFObjects

    model = _transformer_model_class()(
        name, get_spans, tokenizer_config, transformer_config, mixed_precision, dict(grad_scaler_config)
    )
    # As TransformerModel.__init__ builds them: the tokenizer and transformer come in `initialize` or loading.
    hf_objects = HFObjects(None, None, None, tokenizer_config, transformer_config)
    # HFWrapper takes no shim class (spacy_transformers/layers/hf_wrapper.py): replace its shim.
    model.layers[0].shims[0] = _autocast_shim_class()(
        hf_objects, mixed_precision=mixed_precision, grad_scaler_config=grad_scaler_config
    )
    return model


def _transformer_models(nlp: Any) -> List[Model]:
    from spacy_transformers import Transformer

    return [pipe.model for _, pipe in nlp.pipeline if isinstance(pipe, Transformer)]


def pipeline_cpu_inference_dtype(nlp: Any) -> Optional[str]:
    """The CPU prediction dtype of a pipeline's transformer on this machine:
    "bfloat16" or "float32" (also for spacy-transformers' own architecture); None
    without one. Read from the shim, which is what predicts."""
    models = _transformer_models(nlp)
    if not models:
        return None
    return str(getattr(models[0].layers[0].shims[0], "cpu_inference_dtype", "float32"))


def apply_predict_token_budget(nlp: Any, budget: int) -> Optional[int]:
    """Set the prediction chunk size of every transformer in a loaded pipeline,
    whatever architecture its config names (0: one padded pass per spacy-transformers sub-batch);
    returns it (None without a transformer). Lives in this process, like
    `apply_cpu_inference_dtype`."""
    models = _transformer_models(nlp)
    for model in models:
        set_predict_token_budget(model, budget)
    return budget if models else None


def pipeline_predict_token_budget(nlp: Any) -> Optional[int]:
    """The prediction chunk size of a pipeline's transformer (0 for spacy-transformers'
    own architecture, which pads each sub-batch once); None without one."""
    models = _transformer_models(nlp)
    if not models:
        return None
    return int(getattr(models[0].layers[0].shims[0], "predict_token_budget", 0))


def apply_cpu_inference_dtype(nlp: Any, setting: str) -> Optional[str]:
    """Set the CPU prediction dtype of every transformer in a loaded pipeline,
    whatever architecture its config names; returns the resolved dtype (None
    without a transformer).

    The change lives in this process (and in `nlp.pipe` workers, which Linux
    forks from it); to make it part of a saved pipeline, set
    `cpu_inference_dtype` in the config instead.
    """
    models = _transformer_models(nlp)
    resolved = None
    for model in models:
        resolved = set_cpu_inference_dtype(model, setting)
    return resolved
