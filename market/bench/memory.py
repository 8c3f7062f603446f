"""Memory: peak RSS of a large sweep / of a small one, the parent's and its workers'.

Results stream to disk, so neither the parent's peak nor a worker's should grow with the number of
runs. Each sweep runs in a fresh Python process (:func:`measure_sweep`). Its pool's workers are
forked by a fork server, not by the parent, so ``getrusage(RUSAGE_CHILDREN)`` never sees them: once
the sweep is done, before the pool stops, each worker reports its own peak.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import market
from market.batch.experiment import Experiment
from market.batch.runner import RestartingPool
from market.bench.base import Figure, Sizes, fig, median

__all__ = ["bench_memory", "measure_sweep", "peak_rss_kb", "worker_peaks"]

WORKERS = 2


def peak_rss_kb() -> int:
    """This process's peak resident set size in KiB: ``VmHWM`` (``ru_maxrss`` would carry over the
    peak of the process that exec'd this one, on Linux), or ``ru_maxrss`` where there is no /proc."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _report_peak(barrier: Any) -> tuple[int, int]:
    barrier.wait(timeout=120)  # holds this worker until every worker has taken one request
    return os.getpid(), peak_rss_kb()


def worker_peaks(pool: Executor, workers: int) -> dict[int, int]:
    """Each of the pool's ``workers`` processes' own peak RSS in KiB, by process id: every worker
    is sent one request, and none answers before all of them hold one."""
    with multiprocessing.get_context("spawn").Manager() as manager:  # spawn: never fork a process using polars
        barrier = manager.Barrier(workers)
        return dict(f.result() for f in [pool.submit(_report_peak, barrier) for _ in range(workers)])


def measure_sweep(runs: int, steps: int, out: str | os.PathLike, workers: int = WORKERS) -> dict[str, Any]:
    """A sweep of ``runs`` baseline runs of ``steps`` months on the pool a sweep makes itself, in
    this process: its wall time, and the peak RSS of this process and of each worker (and their
    process ids), in MiB."""
    exp = Experiment(name="memory", scenarios=["baseline"], replications=runs, steps=steps, base_seed=1)
    pool = RestartingPool(workers)
    try:
        report = market.sweep(exp, out, workers=workers, executor=pool, progress=False)
        peaks = worker_peaks(pool, workers)
    finally:
        pool.shutdown()
    return {"runs": report.completed, "failed": report.failed, "wall_seconds": report.wall_seconds,
            "parent_mb": peak_rss_kb() / 1024, "worker_mb": max(peaks.values()) / 1024,
            "workers_mb": sorted(kb / 1024 for kb in peaks.values()), "worker_pids": sorted(peaks)}


_CHILD = "import json, sys; from market.bench.memory import measure_sweep; print(json.dumps(measure_sweep(" \
         "int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])))"


def bench_memory(sizes: Sizes, repeats: int) -> list[Figure]:
    """Peak RSS of a large sweep / of a small one, each in a fresh process (parent and workers)."""
    ratios, seen = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            peak = {}
            for n in sizes.memory_runs:
                out = Path(tmp) / f"sweep{n}-{r}"
                # cwd: the package is imported as installed, never from a checkout in the current folder
                done = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(sizes.memory_steps), str(out)],
                                      check=True, capture_output=True, text=True, cwd=tmp)
                peak[n] = json.loads(done.stdout.strip().splitlines()[-1])
                seen.append(peak[n])
            small, large = (peak[n] for n in sizes.memory_runs)
            ratios.append(max(large["parent_mb"] / small["parent_mb"], large["worker_mb"] / small["worker_mb"]))
    small, large = sizes.memory_runs
    last = {n: next(p for p in reversed(seen) if p["runs"] == n) for n in sizes.memory_runs}
    detail = (f"{large:,}-run / {small:,}-run sweep ({sizes.memory_steps} steps, {WORKERS} workers), larger of the "
              f"parent's and the largest worker's ratio; parent {last[small]['parent_mb']:.0f} -> "
              f"{last[large]['parent_mb']:.0f} MB, worker {last[small]['worker_mb']:.0f} -> "
              f"{last[large]['worker_mb']:.0f} MB (each worker's own peak); "
              + ", ".join(f"{n:,} runs in {last[n]['wall_seconds']:.1f} s" for n in sizes.memory_runs))
    return [fig("memory", f"peak RSS, {large:,}-run / {small:,}-run sweep", median(ratios), "x", "<= 1.2", detail,
                runs=seen)]
