"""This checkout's speed against another checkout's, run for run (``market bench --against DIR``)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

import market
from market.bench.base import SEED_SCENARIOS, Figure, Sizes, fig, median

__all__ = ["bench_against"]

# The timing process's code, sent as text: the other checkout may have no such file (or an older one).
_CHILD = Path(__file__).with_name("timing_child.py")


class _Timer:
    """A Python process importing ``market`` from ``root``, timing what it is sent line by line."""

    def __init__(self, root: Path, mode: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(root))
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD.read_text(), mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=root)
        self.root = root
        self._read()

    def _read(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the timing process importing market from {self.root} stopped (see its error above)")
        return line.strip()

    def time(self, request: str) -> float:
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return float(self._read())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _in_turn(other: Path, mode: str, requests: list[str]) -> tuple[list[float], list[float]]:
    """Each request timed by a process importing ``other`` and one importing this checkout, in
    turn, the first of the two alternating."""
    here = Path(market.__file__).resolve().parent.parent
    a, b = _Timer(other, mode), _Timer(here, mode)
    times_a: list[float] = []
    times_b: list[float] = []
    try:
        for n, request in enumerate(requests):
            for timer, times in ([(a, times_a), (b, times_b)] if n % 2 == 0 else [(b, times_b), (a, times_a)]):
                times.append(timer.time(request))
    finally:
        a.close()
        b.close()
    return times_a, times_b


def bench_against(sizes: Sizes, repeats: int, other: Path) -> list[Figure]:
    """This checkout's speed against another's (e.g. a git worktree of an earlier commit), run for
    run: two long-lived processes, one importing each, take turns on the same run, so a machine
    whose speed drifts (by tens of per cent within minutes on a shared one) affects both alike and
    the ratio is taken pair by pair. Seed-scenario runs (the five scenarios x ``repeats`` seeds)
    and steps of the largest scaling size (``repeats`` models)."""
    out = []
    runs = [f"{s} {seed} {sizes.steps}" for seed in range(repeats) for s in SEED_SCENARIOS]
    steps = [f"{seed} {sizes.labs[-1]} {sizes.scaling_steps}" for seed in range(repeats)]
    for name, mode, requests, unit, scale in (
            ("seed-scenario run", "runs", runs, "s", 1.0),
            (f"step with {sizes.labs[-1]:,} labs", "step", steps, "ms", 1000.0)):
        theirs, ours = _in_turn(other, mode, requests)
        ratios = [b / a for a, b in zip(theirs, ours, strict=True)]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        digits = 3 if unit == "s" else 0
        out.append(fig("against", f"{name}, this / {other.name}", median(ratios), "x", "<= 1.2",
                       f"{len(ratios)} pairs in turn; medians {median(theirs) * scale:.{digits}f} {unit} "
                       f"({other}) and {median(ours) * scale:.{digits}f} {unit} (this); pair quartiles "
                       f"{q[0]:.2f}-{q[2]:.2f}", other=str(other), theirs=theirs, ours=ours))
    return out

