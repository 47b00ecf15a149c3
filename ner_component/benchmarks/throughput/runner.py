"""One run, from the parent: start it in a fresh process (so that its peak memory is
its own), sample its process tree while it runs, and put its figures together.

Every run uses the same number of PyTorch threads in total; with `n_process` spaCy
workers each gets its share, as `scripts/annotate.py` does.
"""
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict

from ner_component.benchmarks.throughput.sampling import (
    SAMPLE_SECONDS,
    machine_busy_seconds,
    reaped_children_cpu_seconds,
    sample_tree,
)
from ner_component.errors import NerComponentError
from ner_component.util import PathLike, write_json_atomic

# What a run's process executes: `engines.run_engine_file(spec, result)`.
CHILD_CODE = (
    "import sys; from ner_component.benchmarks.throughput.engines import run_engine_file; "
    "run_engine_file(sys.argv[1], sys.argv[2])"
)


@dataclass
class ProcessUse:
    """What a run's process tree used, seen from the parent."""

    returncode: int
    peak_bytes: int  # the largest sampled sum of the tree's resident memory
    cpu_by_pid: Dict[int, float] = field(default_factory=dict)  # sampled CPU seconds
    own_cpu: float = 0.0  # CPU seconds of the whole tree
    wall: float = 0.0
    machine_busy: float = 0.0  # CPU seconds of every process of the machine meanwhile


def run_label(spec: Dict[str, Any]) -> str:
    """A short name for a run, e.g. "sentences-spacy-bs64-np2-auto-tbconfig"."""
    parts = [spec.get("setting") or "texts", spec["engine"], f"bs{spec['batch_size']}"]
    if spec["engine"] == "spacy":
        parts.append(f"np{spec.get('n_process', 1)}")
    parts.append(spec.get("dtype") or "config")
    if spec["engine"] == "spacy":
        budget = spec.get("token_budget")
        parts.append(f"tb{'config' if budget is None else budget}")
    return "-".join(parts)


def measure(spec: Dict[str, Any], work_dir: PathLike) -> Dict[str, Any]:
    """Run one engine configuration in a fresh process and measure its peak memory.

    spec (Dict[str, Any]): See `engines.run_engine`.
    work_dir (PathLike): Where to keep the spec, result and log of the run.
    RETURNS (Dict[str, Any]): The run's result, plus peak_rss_mb (the largest sum of
        the resident memory of the process and its children, sampled every 0.5 s, or
        the run's own peak plus its largest worker's peak, whichever is larger),
        words_per_second, cpu_seconds (annotation, all processes: the main one's own
        count plus the sampled CPU time of its worker processes), words_per_cpu_second
        (less sensitive than words/s to other load on the machine) and
        other_load_cores (the CPU time other processes used during the run,
        divided by its length: how busy the machine was besides the run).
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    label = run_label(spec)
    spec_path = work_dir / f"{label}.spec.json"
    result_path = work_dir / f"{label}.result.json"
    log_path = work_dir / f"{label}.log"
    write_json_atomic(spec_path, spec)
    use = run_process(spec_path, result_path, log_path, int(spec["torch_threads"]))
    if use.returncode != 0 or not result_path.exists():
        lines = log_path.read_text(encoding="utf8", errors="replace").strip().splitlines()
        raise NerComponentError(f"The {label} run failed (exit {use.returncode}): {lines[-1] if lines else 'no output'} (log: {log_path})")
    result = json.loads(result_path.read_text(encoding="utf8"))
    result.update(_figures(result, use))
    result.update(
        {
            "engine": spec["engine"],
            "setting": spec.get("setting"),
            "batch_size": spec["batch_size"],
            "n_process": spec.get("n_process", 1),
            "dtype_setting": spec.get("dtype"),
            "label": label,
        }
    )
    return result


def run_process(spec_path: Path, result_path: Path, log_path: Path, torch_threads: int) -> ProcessUse:
    """Run `engines.run_engine_file` in a fresh process with `torch_threads` threads
    and offline Hugging Face libraries, sampling its process tree until it ends.

    RETURNS (ProcessUse): Its exit code, peak memory and CPU time.
    """
    import psutil

    threads = str(torch_threads)
    env = dict(
        os.environ,
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    peak = 0
    cpu_by_pid: Dict[int, float] = {}
    machine_busy_start = machine_busy_seconds()
    children_cpu_start = reaped_children_cpu_seconds()
    wall_start = time.perf_counter()
    with log_path.open("wb") as log:
        proc = psutil.Popen([sys.executable, "-c", CHILD_CODE, str(spec_path), str(result_path)], stdout=log, stderr=log, env=env)
        while proc.poll() is None:
            peak = max(peak, sample_tree(proc, cpu_by_pid))
            time.sleep(SAMPLE_SECONDS)
    wall = time.perf_counter() - wall_start
    # The run's processes, reaped (exact) or sampled (workers that were never reaped).
    own_cpu = max(reaped_children_cpu_seconds() - children_cpu_start, sum(cpu_by_pid.values()))
    cpu_by_pid.pop(proc.pid, None)  # the main process counts its own annotation time
    return ProcessUse(proc.returncode, peak, cpu_by_pid, own_cpu, wall, machine_busy_seconds() - machine_busy_start)


def _figures(result: Dict[str, Any], use: ProcessUse) -> Dict[str, Any]:
    """The run's speed, CPU and memory figures from its own report and the parent's samples."""
    cpu_seconds = result["cpu_seconds_main"] + sum(use.cpu_by_pid.values())
    return {
        "cpu_seconds": cpu_seconds,
        "words_per_cpu_second": result["words"] / cpu_seconds if cpu_seconds > 0 else 0.0,
        "other_load_cores": max(0.0, use.machine_busy - use.own_cpu) / use.wall if use.wall > 0 else 0.0,
        "peak_rss_mb": max(use.peak_bytes / (1024 * 1024), result["max_rss_mb_self"] + result["max_rss_mb_children"]),
        "words_per_second": result["words"] / result["seconds"],
        "docs_per_second": result["docs"] / result["seconds"],
    }
