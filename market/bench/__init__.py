"""Benchmarks side by side with Mesa's own tools, run by ``market bench``.

    market bench                       # full sizes, about ten minutes on two cores
    market bench --quick               # tiny sizes: proves every benchmark works (CI), says nothing about speed
    market bench --only collector --only scaling --json bench.json
    market bench --only against --against /tmp/before   # this checkout against another, run for run

    >>> from market.bench import run_benchmarks
    >>> result = run_benchmarks(quick=True, only=["scaling"])       # doctest: +SKIP

Every figure is a ratio of two things measured side by side in the same process (or the same
call), the median over ``--repeats`` repeats, so that the load of a shared machine cancels out as
far as it can. The table and the JSON carry the machine's core count and library versions.
Sizes, what each side does, and the targets are in docs/PERFORMANCE.md.

One module per benchmark (each a ``bench_<name>(sizes, repeats) -> list[Figure]``); what they share
(sizes, the table's line, timing) is in :mod:`market.bench.base`; Mesa's side of the comparisons in
:mod:`market.bench.mesa_side`. Adding a benchmark is adding a module and a line to ``BENCHMARKS``.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from market.bench.against import bench_against
from market.bench.base import FULL, QUICK, Figure, Sizes, fig
from market.bench.batch_run import bench_batch_run
from market.bench.collector import bench_collector
from market.bench.datacollector import bench_datacollector
from market.bench.memory import bench_memory
from market.bench.parallel import bench_parallel
from market.bench.readback import bench_readback
from market.bench.report import emit, table
from market.bench.scaling import bench_scaling
from market.run import package_version

__all__ = ["BENCHMARKS", "FULL", "QUICK", "Figure", "Sizes", "bench_against", "bench_batch_run", "bench_collector",
           "bench_datacollector", "bench_explore", "bench_memory", "bench_parallel", "bench_readback", "bench_scaling",
           "check_request", "emit", "machine", "run_benchmarks", "table"]


def bench_explore(sizes: Sizes, repeats: int) -> list[Figure]:
    """The explorer (issue 18): first what-if result, sweep-browser redraw (market/explorer/bench.py)."""
    from market.explorer.bench import bench_explore as explorer_figures  # noqa: PLC0415

    return explorer_figures(sizes, repeats, fig)


BENCHMARKS: dict[str, Callable[[Sizes, int], list[Figure]]] = {
    "collector": bench_collector,
    "datacollector": bench_datacollector,
    "batch_run": bench_batch_run,
    "parallel": bench_parallel,
    "scaling": bench_scaling,
    "memory": bench_memory,
    "readback": bench_readback,
    "explore": bench_explore,
}
HEAVY = {"parallel": 3, "memory": 3, "readback": 1}  # repeats divided by this (at least one)


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on every platform
        return None


def _with_load(measure: Callable[[], list[Figure]]) -> list[Figure]:
    """The figures ``measure`` makes, each with the load average before and after: a shared
    machine's load shows in the figures, so say how loaded it was."""
    before = _load()
    got = measure()
    for f in got:
        f.data["load_average"] = [before, _load()]
    return got


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            **{pkg: package_version(pkg) for pkg in ("market", "mesa", "polars", "numpy", "pandas", "dask", "distributed")}}



def check_request(only: list[str] | None, against: str | os.PathLike | None) -> list[str]:
    """The benchmarks ``only`` asks for (all by default; ``against`` is run apart), or a
    ValueError naming the option and what it allows, before anything is run."""
    names = [n for n in only if n != "against"] if only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"--only {unknown[0]!r}: no such benchmark; choose from {', '.join([*BENCHMARKS, 'against'])}.")
    if only and "against" in only and against is None:
        raise ValueError("--only against: give the checkout to time against with --against DIR.")
    if against is not None and not (Path(against) / "market" / "__init__.py").is_file():
        raise ValueError(f"--against {against}: no market/ package there; give another checkout of this repository "
                         "(e.g. git worktree add /tmp/before <commit>).")
    return names



def run_benchmarks(*, quick: bool = False, only: list[str] | None = None, repeats: int | None = None,
                   progress: Callable[[str], None] | None = None,
                   against: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run the benchmarks; returns ``{"machine", "mode", "repeats", "figures": [Figure as dict]}``.
    With ``against`` (another checkout of this repository) also :func:`bench_against` it
    (``only=["against"]``: only that)."""
    names = check_request(only, against)
    sizes = QUICK if quick else FULL
    n = repeats if repeats is not None else (1 if quick else 5)
    figures: list[Figure] = []
    started = time.perf_counter()
    for name in names:
        if progress:
            progress(name)
        figures += _with_load(lambda name=name: BENCHMARKS[name](sizes, max(1, n // HEAVY.get(name, 1))))
    if against is not None:
        if progress:
            progress("against")
        figures += _with_load(lambda: bench_against(sizes, n, Path(against).resolve()))
    return {"machine": machine(), "mode": "quick" if quick else "full", "repeats": n,
            "seconds": time.perf_counter() - started, "figures": [asdict(f) for f in figures]}
