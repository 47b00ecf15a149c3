"""Training callbacks registered with spaCy (`[initialize.after_init]` and friends)."""
import ctypes
import platform
import re
from fnmatch import fnmatch
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.util import registry
from wasabi import msg


def torch_modules(nlp: Language) -> Iterator[Tuple[str, "object"]]:
    """The PyTorch modules inside the pipeline's thinc models, with the name of the
    pipe that holds each (spacy-transformers keeps the Hugging Face model in a
    PyTorch shim of the `transformer` pipe's model)."""
    import torch

    seen = set()
    for pipe_name, pipe in nlp.components:
        model = getattr(pipe, "model", None)
        if model is None or not hasattr(model, "walk"):
            continue
        for node in model.walk():
            for shim in node.shims:
                module = getattr(shim, "_model", None)
                if isinstance(module, torch.nn.Module) and id(module) not in seen:
                    seen.add(id(module))
                    yield pipe_name, module


# The index of the encoder layer a parameter belongs to, in the Hugging Face models'
# names: "encoder.layer.3.attention..." (BERT, RoBERTa, XLM-R, e5), "transformer.layer.3..."
# (DistilBERT), "layers.3..." (others).
LAYER_INDEX = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def layer_index(name: str) -> Optional[int]:
    """The encoder layer a transformer parameter belongs to, or None (embeddings, pooler)."""
    match = LAYER_INDEX.search(name)
    return int(match.group(1)) if match else None


@registry.callbacks("ner_component.freeze_transformer.v1")
def create_freeze_transformer(patterns: List[str], lowest_layers: int = 0) -> Callable[[Language], Language]:
    """An `after_init` callback that stops training the transformer's parameters whose
    names match one of `patterns` (shell-style globs over PyTorch parameter names,
    e.g. "embeddings.word_embeddings.*"), and those of its `lowest_layers` lowest
    encoder layers.

    A frozen parameter gets no gradient, so thinc's optimizer skips it: no Adam
    moments are kept for it and no update is computed. For multilingual backbones
    this matters: multilingual-e5-small's 250k x 384 word-embedding table holds 96M
    of its 118M parameters, and most of its rows never occur in one language's data.
    With the embeddings and the lowest layers all frozen, no gradient flows below the
    first trained layer, and PyTorch skips their backward pass: the step is faster.

    A backbone with no more layers than `lowest_layers` keeps its top layer trained
    (a 2-layer test model freezes 1), and the message says how many were frozen.

    patterns (List[str]): Globs over parameter names; each must match at least one.
    lowest_layers (int): How many encoder layers to freeze, from the bottom.
    RETURNS (Callable[[Language], Language]): The callback.
    """
    if not isinstance(lowest_layers, int) or lowest_layers < 0:
        raise ValueError(f"ner_component.freeze_transformer.v1: lowest_layers must be an integer >= 0, got {lowest_layers!r}")

    def freeze_transformer(nlp: Language) -> Language:
        n_frozen = n_total = 0
        unmatched = set(patterns)
        for _, module in torch_modules(nlp):
            params = [(name, param, layer_index(name)) for name, param in module.named_parameters()]
            indices = [index for _, _, index in params if index is not None]
            if lowest_layers and not indices:
                raise ValueError(
                    f"ner_component.freeze_transformer.v1: lowest_layers is {lowest_layers} but no "
                    "transformer parameter names an encoder layer ('encoder.layer.<n>.', "
                    "'transformer.layer.<n>.' or 'layers.<n>.'); freeze by patterns instead"
                )
            n_layers = max(indices) + 1 if indices else 0
            n_lowest = min(lowest_layers, n_layers - 1) if lowest_layers else 0
            for name, param, index in params:
                n_total += param.numel()
                hits = [p for p in patterns if fnmatch(name, p)]
                unmatched.difference_update(hits)
                if hits or (index is not None and index < n_lowest):
                    param.requires_grad_(False)
                    param.grad = None
                    n_frozen += param.numel()
            if lowest_layers:
                msg.info(f"Frozen the lowest {n_lowest} of the transformer's {n_layers} layers")
        if unmatched:
            raise ValueError(
                f"ner_component.freeze_transformer.v1: no transformer parameter matches "
                f"{sorted(unmatched)}; parameter names look like 'embeddings.word_embeddings.weight'"
            )
        msg.info(f"Frozen {n_frozen:,} of {n_total:,} transformer parameters")
        return nlp

    return freeze_transformer


def malloc_trim() -> Optional[Callable[[], int]]:
    """glibc's `malloc_trim(0)`, which hands the heap's free pages back to the
    operating system; None where the C library isn't glibc (macOS, musl, Windows)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    function = ctypes.CDLL(None).malloc_trim
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return lambda: function(0)


@registry.callbacks("ner_component.trim_freed_memory.v1")
def create_trim_freed_memory(every_n_steps: int = 50) -> Callable[[Language, Dict[str, Any]], None]:
    """A `[training.before_update]` callback that returns the memory glibc's malloc
    keeps after PyTorch frees it, every `every_n_steps` training steps.

    Each CPU training step allocates and frees activations of a new shape; glibc keeps
    the freed pages for reuse, so a training process holds far more than it uses
    between steps: 120 steps of `configs/cpu_e5.cfg` grew it from 1.6 to 5.3 GB, and
    `malloc_trim(0)` took it back to 2.2 GB. It lowers the peak less (a step's own
    activations make most of it: 5.6 instead of 6.1 GB over 240 steps at every 10;
    `accumulate_gradient` does more), so no config uses it by default
    (docs/benchmarks.md, "Memory of training"). Trimming costs the page faults of
    touching that memory again. Neither PyTorch, thinc nor spaCy trim; elsewhere than
    glibc this does nothing.

    every_n_steps (int): Trim before every this many steps (step 0 included).
    RETURNS (Callable[[Language, Dict[str, Any]], None]): The callback.
    """
    if not isinstance(every_n_steps, int) or every_n_steps < 1:
        raise ValueError(f"ner_component.trim_freed_memory.v1: every_n_steps must be an integer >= 1, got {every_n_steps!r}")
    trim = malloc_trim()

    def trim_freed_memory(nlp: Language, info: Dict[str, Any]) -> None:
        if trim is not None and info["step"] % every_n_steps == 0:
            trim()

    return trim_freed_memory


@registry.callbacks("ner_component.trim_before_to_disk.v1")
def create_trim_before_to_disk() -> Callable[[Language], Language]:
    """A `[training.before_to_disk]` callback that returns the memory glibc's malloc
    keeps after PyTorch frees it before each save of model-best and model-last.

    Saving copies the transformer's weights three times over (spacy-transformers
    writes `torch.save` into memory, then msgpack); on top of the heap the training
    steps and dev scoring leave behind, that was the training process's peak.
    Elsewhere than glibc this does nothing.

    RETURNS (Callable[[Language], Language]): The callback.
    """
    trim = malloc_trim()

    def trim_before_to_disk(nlp: Language) -> Language:
        if trim is not None:
            trim()
        return nlp

    return trim_before_to_disk
