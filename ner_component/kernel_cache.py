"""PyTorch's per-shape CPU kernel caches, bounded.

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
from typing import Dict

CACHE_ENV = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
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
