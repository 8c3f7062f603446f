"""Peak memory of a sweep against its size: results stream to disk, so the parent's peak RSS
should not grow with the number of runs.

    python experiments/measure_sweep_memory.py [--runs 100 2000] [--steps 2] [--workers 2]

Each sweep runs in a fresh Python process; the script prints the parent's and the largest
worker's peak RSS (getrusage) for each size, and the ratio of the largest to the smallest.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import market
from market.batch.experiment import Experiment
exp = Experiment(name="memory", scenarios=["baseline"], replications=int(sys.argv[1]), steps=int(sys.argv[2]),
                 base_seed=1)
t = time.perf_counter()
report = market.sweep(exp, sys.argv[3], workers=int(sys.argv[4]), progress=False)
wall = time.perf_counter() - t
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"runs": report.total, "failed": report.failed, "wall_seconds": wall,
                  "parent_peak_mb": self_kb / 1024, "worker_peak_mb": child_kb / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[100, 2000])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.runs:
            out = Path(tmp) / f"sweep{n}"
            line = subprocess.run([sys.executable, "-c", CHILD, str(n), str(args.steps), str(out), str(args.workers)],
                                  check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            results.append(json.loads(line))
            r = results[-1]
            print(f"{r['runs']:>6} runs: parent peak {r['parent_peak_mb']:7.1f} MB, worker peak "
                  f"{r['worker_peak_mb']:7.1f} MB, {r['wall_seconds']:6.1f} s, {r['runs'] / r['wall_seconds']:.1f} runs/s")
    small, large = results[0], results[-1]
    print(f"peak RSS ratio {large['runs']}/{small['runs']} runs: parent {large['parent_peak_mb'] / small['parent_peak_mb']:.2f}, "
          f"worker {large['worker_peak_mb'] / small['worker_peak_mb']:.2f}")


if __name__ == "__main__":
    main()
