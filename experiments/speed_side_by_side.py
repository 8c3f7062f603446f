"""Time two versions of the model side by side: seed-scenario runs and a 10,000-lab step.

    git worktree add /tmp/before a96cffe          # any earlier commit
    python experiments/speed_side_by_side.py /tmp/before [--rounds 3] [--big-rounds 4]

This machine's speed drifts by tens of per cent within minutes, so two benchmark runs made one
after the other do not give a ratio. Here two long-lived processes, one importing the other
checkout (on ``PYTHONPATH``) and one this checkout, are handed the same run in turn, alternating
which goes first, and the ratio is taken pair by pair (docs/PERFORMANCE.md, "How it is measured").
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

SCENARIOS = ["baseline", "openai_google_tpu", "open_tpu_access", "tpu_merchant", "supply_shock"]

RUNS = r'''
import sys, time, market
market.run("baseline", seed=0, steps=6)  # warm up: imports and first calls
print("ready", flush=True)
for line in sys.stdin:
    scenario, seed = line.split()
    t = time.perf_counter()
    market.run(scenario, seed=int(seed))
    print(time.perf_counter() - t, flush=True)
'''

BIG_STEP = r'''
import sys, time, market
from market.model import MarketModel
named = len(market.load_scenario("baseline").labs)
print("ready", flush=True)
for line in sys.stdin:
    sc = market.load_scenario("baseline", {"long_tail.count": 10_000 - named}, steps=4)
    model = MarketModel(sc, seed=int(line))
    model.step()  # warm-up month: the standing book of contracts is signed
    t = time.perf_counter()
    for _ in range(3):
        model.step()
    print((time.perf_counter() - t) / 3, flush=True)
'''


class Worker:
    """A Python process importing ``market`` from ``root``, timing what it is sent line by line."""

    def __init__(self, root: Path, code: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(root))
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=root)
        assert self._line() == "ready"

    def _line(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the worker for {self.proc.args} stopped (see its error above)")
        return line.strip()

    def time(self, request: str) -> float:
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return float(self._line())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def side_by_side(other: Path, here: Path, code: str, requests: list[str]) -> tuple[list[float], list[float]]:
    a, b = Worker(other, code), Worker(here, code)
    times_a, times_b = [], []
    try:
        for n, request in enumerate(requests):
            order = [(a, times_a), (b, times_b)] if n % 2 == 0 else [(b, times_b), (a, times_a)]
            for worker, times in order:
                times.append(worker.time(request))
    finally:
        a.close()
        b.close()
    return times_a, times_b


def report(what: str, times_a: list[float], times_b: list[float], unit: float, label: str) -> None:
    ratios = [b / a for a, b in zip(times_a, times_b, strict=True)]
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    digits = 3 if unit == 1.0 else 0
    print(f"{what}: other {statistics.median(times_a) * unit:.{digits}f} {label}, this "
          f"{statistics.median(times_b) * unit:.{digits}f} {label} (medians); ratio this / other "
          f"{statistics.median(ratios):.2f} (quartiles {q[0]:.2f}-{q[2]:.2f}), {len(ratios)} pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="another checkout of this repository (e.g. a git worktree)")
    parser.add_argument("--rounds", type=int, default=3, help="seeds per built-in scenario (default 3)")
    parser.add_argument("--big-rounds", type=int, default=4, help="10,000-lab models, one seed each (default 4; 0 skips)")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    other = args.other.resolve()
    if not (other / "market" / "__init__.py").is_file():
        parser.error(f"other: {other} holds no market/ package; give a checkout of this repository")
    requests = [f"{s} {seed}" for seed in range(args.rounds) for s in SCENARIOS]
    report("seed-scenario run", *side_by_side(other, here, RUNS, requests), 1.0, "s")
    if args.big_rounds:
        report("10,000-lab step", *side_by_side(other, here, BIG_STEP, [str(s) for s in range(args.big_rounds)]),
               1000.0, "ms")


if __name__ == "__main__":
    main()
