"""The transformer layer, with bfloat16 inference on CPUs that compute it natively.

`ner_component.TransformerModel.v1` is spacy-transformers' `TransformerModel.v3`
(same arguments, same weights, same serialization) plus one setting,
`cpu_inference_dtype`. spacy-transformers' `mixed_precision` only autocasts on CUDA;
on a CPU with native bfloat16 dot products (AVX512-BF16 or AMX: AMD Zen 4 and later,
Intel Cooper Lake / Sapphire Rapids and later) running the forward pass under
`torch.autocast("cpu", dtype=torch.bfloat16)` makes the Linear layers, 87% of
`nlp.pipe` time, about 2.5x faster. It applies to prediction only (`nlp.pipe`,
`nlp(text)`, dev scoring during training); training steps stay in float32.

- "float32": never autocast.
- "bfloat16": always autocast on CPU (slow on CPUs without native bfloat16).
- "auto" (the default in the project's configs): bfloat16 where the CPU reports
  `avx512_bf16` or `amx_bf16`, float32 elsewhere.

The hidden states come back as float32 either way, so the components that listen to
the transformer see no difference in type. Measured accuracy cost: README,
"Throughput".
"""
import functools
import logging
from pathlib import Path
from typing import Any, Callable, List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model

logger = logging.getLogger(__name__)

CPU_INFERENCE_DTYPES = ("auto", "float32", "bfloat16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 dot products in hardware.

    Reads the kernel's CPU flags (Linux); elsewhere it answers False, so "auto"
    keeps float32.
    """
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(flag in flags for flag in NATIVE_BF16_FLAGS)
    return False


def resolve_cpu_inference_dtype(setting: str) -> str:
    """Turn "auto" into "bfloat16" or "float32" for this machine."""
    if setting not in CPU_INFERENCE_DTYPES:
        raise ValueError(
            f"cpu_inference_dtype must be one of {', '.join(CPU_INFERENCE_DTYPES)}, got {setting!r}"
        )
    if setting == "auto":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return setting


@functools.lru_cache(maxsize=None)
def _autocast_shim_class() -> type:
    """The HFShim subclass (built once, on first use: it imports torch)."""
    import torch
    from spacy_transformers.layers.hf_shim import HFShim

    class CpuAutocastHFShim(HFShim):
        """HFShim whose predict runs under CPU bfloat16 autocast when asked."""

        cpu_inference_dtype: str = "float32"

        def predict(self, inputs: Any) -> Any:
            if self.cpu_inference_dtype != "bfloat16" or self.device.type != "cpu":
                return super().predict(inputs)
            self._model.eval()
            with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                outputs = self._model(*inputs.args, **inputs.kwargs)
            self._model.train()
            return _outputs_to_float32(outputs)

    return CpuAutocastHFShim


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


def set_cpu_inference_dtype(model: Model, setting: str) -> str:
    """Switch a TransformerModel's prediction dtype in place; returns the resolved dtype.

    Works on a loaded pipeline too: `set_cpu_inference_dtype(nlp.get_pipe("transformer").model, "float32")`.
    """
    resolved = resolve_cpu_inference_dtype(setting)
    shim = model.layers[0].shims[0]
    if not isinstance(shim, _autocast_shim_class()):
        shim.__class__ = _autocast_shim_class()
    shim.cpu_inference_dtype = resolved
    model.attrs["cpu_inference_dtype"] = resolved
    return resolved


@registry.architectures("ner_component.TransformerModel.v1")
def create_transformer_model(
    name: str,
    get_spans: Callable[[List[Doc]], Any],
    tokenizer_config: dict = {},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
    cpu_inference_dtype: str = "auto",
) -> Model:
    """spacy-transformers.TransformerModel.v3 with bfloat16 prediction on capable CPUs.

    cpu_inference_dtype (str): "auto", "float32" or "bfloat16"; see the module docstring.
    The other arguments are TransformerModel.v3's.
    """
    from spacy_transformers.layers import TransformerModel

    model = TransformerModel(
        name,
        get_spans,
        tokenizer_config,
        transformer_config,
        mixed_precision,
        grad_scaler_config,
    )
    resolved = set_cpu_inference_dtype(model, cpu_inference_dtype)
    logger.debug("Transformer prediction on CPU in %s (setting %r)", resolved, cpu_inference_dtype)
    return model


def _transformer_models(nlp: Any) -> List[Model]:
    from spacy_transformers import Transformer

    return [pipe.model for _, pipe in nlp.pipeline if isinstance(pipe, Transformer)]


def pipeline_cpu_inference_dtype(nlp: Any) -> Optional[str]:
    """The CPU prediction dtype of a pipeline's transformer: "bfloat16" or
    "float32" (also for spacy-transformers' own architecture); None without one."""
    models = _transformer_models(nlp)
    if not models:
        return None
    return models[0].attrs.get("cpu_inference_dtype", "float32")


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
