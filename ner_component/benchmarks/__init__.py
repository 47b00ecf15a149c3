"""Benchmarks against the Hugging Face baseline on the same backbone, data and machine:
accuracy per training minute (`accuracy`), inference throughput (`throughput`), and
the speed ceiling both engines live under (`ceiling`: the encoder's bare forward pass);
resident memory of `annotate` (`annotate_memory`) and of training (`training_memory`)."""
import json
import os
from typing import Any, Dict, Iterable

from ner_component.util import PathLike, write_json_atomic


def record_reports(reports: Iterable[Dict[str, Any]], output: PathLike, settings: Dict[str, Any], key: str) -> Dict[str, Any]:
    """Print each report as a JSON line as it comes, then write them all under `key`
    to `output` (JSON), with the run's `settings`, the CPU and the kernel cache
    capacities.

    RETURNS (Dict[str, Any]): What was written.
    """
    from ner_component.hardware import CACHE_ENV, describe

    collected = []
    for report in reports:
        print(json.dumps(report), flush=True)
        collected.append(report)
    result = {
        **settings,
        "hardware": describe(),
        "kernel_cache_capacity": {name: os.environ.get(name) for name in CACHE_ENV},
        key: collected,
    }
    write_json_atomic(output, result)  # creates the folder
    return result
