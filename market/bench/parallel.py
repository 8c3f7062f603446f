"""Parallel efficiency of a sweep: serial time / (2 x time on 2 workers), local pool and Dask."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import market
from market.batch.experiment import Experiment
from market.bench.base import SEED_SCENARIOS, Figure, Sizes, fig, median, timed

__all__ = ["bench_parallel"]


def _seed_experiment(sizes: Sizes) -> Experiment:
    """experiments/seed_scenarios.toml (at full size), built here so the benchmark needs no checkout."""
    return Experiment(name="seed_scenarios", scenarios=list(SEED_SCENARIOS),
                      replications=sizes.parallel_replications, steps=sizes.parallel_steps, base_seed=20250601)


def bench_parallel(sizes: Sizes, repeats: int) -> list[Figure]:
    """Serial time / (2 x time on 2 workers) for the seed experiment: local pool and Dask."""
    from distributed import LocalCluster

    exp = _seed_experiment(sizes)
    n_runs = len(exp.runs())
    local, dask, rps = [], [], []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, tempfile.TemporaryDirectory() as tmp:
        def sweep(tag: str, **kw: Any) -> float:
            seconds, report = timed(lambda: market.sweep(exp, Path(tmp) / tag, overwrite=True, progress=False, **kw))
            assert report.completed == n_runs, (tag, report.failures)
            return seconds

        sweep("warm", workers=2)  # first start of worker processes, imports and caches
        for r in range(repeats):
            order = ("serial", "local", "dask") if r % 2 == 0 else ("dask", "local", "serial")
            s = {}
            for tag in order:
                kw = {"workers": 1} if tag == "serial" else {"workers": 2} if tag == "local" else {
                    "scheduler": cluster.scheduler_address}
                s[tag] = sweep(tag, **kw)
            local.append(s["serial"] / (2 * s["local"]))
            dask.append(s["serial"] / (2 * s["dask"]))
            rps.append(n_runs / s["local"] / 2)
    detail = (f"the seed experiment: {n_runs} runs ({len(exp.scenarios)} scenarios x {exp.replications} x "
              f"{exp.steps} steps), {repeats} repeat(s); workers started beforehand")
    return [
        fig("parallel", "parallel efficiency, local pool (2 workers)", median(local), "", ">= 0.85", detail,
            values=local),
        fig("parallel", "parallel efficiency, Dask cluster (2 workers)", median(dask), "", ">= 0.8",
            "LocalCluster of 2 worker processes on 127.0.0.1", values=dask),
        fig("parallel", "runs per second per core (local pool)", median(rps), "runs/s", "",
            f"seed-scenario runs of {exp.steps} steps, recorded and written to Parquet", values=rps),
    ]

