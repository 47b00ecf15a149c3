"""The machine a run uses: the GPU check, the CPU's description, and PyTorch's
per-shape CPU kernel caches, bounded.

Kernel caches.

PyTorch's CPU kernels (oneDNN, through ideep) compile a kernel per input shape and
keep it in two LRU caches of 1,024 entries each by default:
`ONEDNN_PRIMITIVE_CACHE_CAPACITY` (oneDNN's primitives) and `LRU_CACHE_CAPACITY`
(ideep's). Padded training batches and chunked prediction come in hundreds of shapes,
and full caches grew training by 1.3-1.6 GB and a 200,000-line annotation by about
1 GB. With no cache (0) every call rebuilds its kernels, which float32 hardly
notices and bfloat16 does; 32 is too small for a bfloat16 training step, which ran
3.7-9.5x slower than at 256 (float32 steps alike at both), and
`LRU_CACHE_CAPACITY=0` crashes PyTorch 2.13. 256 holds a quarter of the default's
kernels. Measured with `scripts/benchmark_onednn_cache.py` (docs/design.md,
"oneDNN's kernel cache").

Both variables are read once, when the process builds its first kernel: bound them
before the first PyTorch CPU operation. A value already in the environment wins.
"""
import os
import platform
from typing import Any, Dict, Optional

from ner_component.errors import NerComponentError

CACHE_ENV = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
# Variables that hold the libraries computing on CPU to older instruction sets (ATen's
# vectorized kernels, MKL, oneDNN): set, a run computes as an older CPU would (the way
# docs/benchmarks.md measures AVX2 on a newer CPU), and the machine's description
# names them beside the CPU.
KERNEL_LIMITS = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# Training (and its dev scoring) and annotation alike.
DEFAULT_CAPACITY = 256


def bound_kernel_caches(capacity: int = DEFAULT_CAPACITY) -> Dict[str, str]:
    """Set both cache capacities unless the environment already sets them.

    capacity (int): Kernels per cache, at least 1.
    RETURNS (Dict[str, str]): The capacities in effect, by variable.
    """
    if capacity < 1:
        raise ValueError(f"a kernel cache capacity is a whole number >= 1, got {capacity}")
    return {name: os.environ.setdefault(name, str(capacity)) for name in CACHE_ENV}


def gpu_problem(gpu_id: int) -> Optional[str]:
    """Say why GPU `gpu_id` can't be used, or return None when it can."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU is available (torch.cuda.is_available() is False)"
    if gpu_id >= torch.cuda.device_count():
        return f"only {torch.cuda.device_count()} CUDA device(s) are visible"
    try:
        import cupy  # noqa: F401  thinc's GPU ops need it
    except ImportError:
        return "CuPy is not installed"
    return None


def require_device(gpu_id: int) -> None:
    """Refuse, in one line, a GPU that is asked for and can't be used.

    gpu_id (int): -1 for the CPU, otherwise the CUDA device index.
    RAISES (NerComponentError): The GPU can't be used, and why.
    """
    if gpu_id < 0:
        return
    problem = gpu_problem(gpu_id)
    if problem is not None:
        raise NerComponentError(
            f"gpu_id is {gpu_id} but {problem}. Run on the CPU with --vars.gpu_id -1 "
            "(or --gpu-id -1), or install the GPU extra: pip install '.[gpu]'"
        )


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(gpu_id: int = -1) -> str:
    """The device a run used, as train_info.json, model cards and benchmark reports
    name it: the GPU's name, or the CPU cores, model and whether bfloat16 is native,
    and the instruction-set limits set in the environment if any (every figure names
    the kind of CPU it was measured on)."""
    if gpu_id >= 0:
        import torch

        return torch.cuda.get_device_name(gpu_id)
    from ner_component.runtime.transformer import cpu_has_native_bf16

    kind = "native bfloat16" if cpu_has_native_bf16() else "no native bfloat16"
    limits = kernel_limits()
    held = "; kernels held to " + ", ".join(f"{k}={v}" for k, v in limits.items()) if limits else ""
    return f"{os.cpu_count()} CPU cores ({cpu_model()}, {kind}{held})"


def kernel_limits() -> Dict[str, str]:
    """The instruction-set limits set in the environment (`KERNEL_LIMITS`), by name."""
    return {name: os.environ[name].strip() for name in KERNEL_LIMITS if os.environ.get(name, "").strip()}


def memory_gb() -> Optional[float]:
    """The machine's physical memory in GB (1024**3 bytes), None where the system
    doesn't say (`os.sysconf` is POSIX; psutil isn't needed for this)."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)
    except (AttributeError, ValueError, OSError):
        return None


def describe_dict(gpu_id: int = -1) -> Dict[str, Any]:
    """The machine a figure was measured on, as fields for a JSON result: what
    `describe` says, and its parts.

    gpu_id (int): -1 for the CPU, otherwise the CUDA device the run used.
    RETURNS (Dict[str, Any]): hardware (`describe(gpu_id)`), cpu (the model name),
        cpu_count, cpu_native_bf16, kernel_limits (`kernel_limits()`) and memory_gb.
    """
    from ner_component.runtime.transformer import cpu_has_native_bf16

    return {
        "hardware": describe(gpu_id),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "kernel_limits": kernel_limits(),
        "memory_gb": memory_gb(),
    }
