"""What every benchmark shares: the sizes, the line of the table a benchmark returns, and timing."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FULL", "QUICK", "SEED_SCENARIOS", "Figure", "Sizes", "fig", "median", "quartiles", "timed"]

SEED_SCENARIOS = ("baseline", "openai_google_tpu", "open_tpu_access", "tpu_merchant", "supply_shock")


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is; ``FULL`` for the figures, ``QUICK`` to prove the code works."""

    steps: int  # of a seed-scenario run (collector, DataCollector)
    batch_scenarios: tuple[str, ...]
    batch_replications: int
    batch_steps: int
    parallel_replications: int  # the seed experiment: five scenarios x replications x steps
    parallel_steps: int
    labs: tuple[int, ...]
    scaling_steps: int  # timed steps after one warm-up step
    memory_runs: tuple[int, int]
    memory_steps: int
    readback_runs: int
    readback_steps: int


FULL = Sizes(steps=60, batch_scenarios=("baseline", "openai_google_tpu"), batch_replications=50, batch_steps=24,
             parallel_replications=20, parallel_steps=60, labs=(100, 1_000, 10_000), scaling_steps=3,
             memory_runs=(100, 2_000), memory_steps=2, readback_runs=10_000, readback_steps=1)
QUICK = Sizes(steps=3, batch_scenarios=("baseline",), batch_replications=2, batch_steps=2,
              parallel_replications=1, parallel_steps=2, labs=(20, 40, 80), scaling_steps=1,
              memory_runs=(4, 8), memory_steps=1, readback_runs=12, readback_steps=1)


@dataclass
class Figure:
    """One line of the table: a measured value, its target and the details behind it."""

    benchmark: str
    figure: str
    value: float | None
    unit: str = ""
    target: str = ""  # e.g. "<= 1.10"; empty for figures without a target
    met: bool | None = None
    details: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _met(value: float | None, target: str) -> bool | None:
    if value is None or not target:
        return None
    op, bound = target.split()
    return value <= float(bound) if op == "<=" else value >= float(bound)


def fig(benchmark: str, figure: str, value: float | None, unit: str = "", target: str = "", details: str = "",
        **data: Any) -> Figure:
    """A :class:`Figure`, with whether it meets ``target`` (e.g. ``"<= 1.10"``)."""
    return Figure(benchmark, figure, value, unit, target, _met(value, target), details, data)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``fn()`` took (after a garbage collection, so that none falls inside), and its result."""
    gc.collect()
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def quartiles(xs: list[float]) -> str:
    return f"{np.percentile(xs, 25):.3f}-{np.percentile(xs, 75):.3f}"
