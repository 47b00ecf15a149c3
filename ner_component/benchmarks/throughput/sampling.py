"""What a run's processes use, seen from the parent: the resident memory and CPU
time of a process tree, sampled, and the machine's and reaped children's CPU time.

Sampling costs the run speed on a 2-core machine (every 50 ms: 18% fewer words/s
for spaCy on sentences), so the parent samples sparsely (`SAMPLE_SECONDS`); each
process's own peak (`ru_maxrss`) fills in what the samples miss.
"""
import resource
from typing import Any, Dict

SAMPLE_SECONDS = 0.5


def sample_tree(proc: Any, cpu_by_pid: Dict[int, float]) -> int:
    """The summed RSS of a process and its descendants; records each one's CPU time.

    proc (psutil.Process): The run's process.
    cpu_by_pid (Dict[int, float]): CPU seconds by process id, updated in place.
    RETURNS (int): Bytes, 0 when the process is gone.
    """
    import psutil

    total = 0
    try:
        processes = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in processes:
        try:
            with process.oneshot():
                total += process.memory_info().rss
                times = process.cpu_times()
            cpu_by_pid[process.pid] = times.user + times.system
        except psutil.Error:
            pass
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (all cores)."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def reaped_children_cpu_seconds() -> float:
    """CPU seconds of this process's finished children and the descendants they reaped."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
