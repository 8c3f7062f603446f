"""Scaling: time per step against the number of labs, and its log-log slope."""

from __future__ import annotations

import numpy as np

import market
from market.bench.base import Figure, Sizes, fig, median, timed
from market.model import MarketModel

__all__ = ["bench_scaling"]


def bench_scaling(sizes: Sizes, repeats: int) -> list[Figure]:
    """Time per step against the number of labs (the generated long tail), and the log-log slope."""
    named = len(market.load_scenario("baseline").labs)
    per_step: dict[int, list[float]] = {}
    for r in range(repeats):
        for n in sizes.labs:
            sc = market.load_scenario("baseline", {"long_tail.count": n - named}, steps=1 + sizes.scaling_steps)
            model = MarketModel(sc, seed=r)
            model.step()  # warm-up: the first month signs the standing book of contracts
            seconds, _ = timed(lambda model=model: model.run(sizes.scaling_steps))
            per_step.setdefault(len(model.labs), []).append(seconds / sizes.scaling_steps)
            model.release()
    labs = sorted(per_step)
    med = [median(per_step[n]) for n in labs]
    slope = float(np.polyfit(np.log(labs), np.log(med), 1)[0])
    steps = ", ".join(f"{n:,} labs {t * 1000:.1f} ms" for n, t in zip(labs, med, strict=True))
    return [fig("scaling", f"log-log slope of time per step, {labs[0]:,}-{labs[-1]:,} labs", slope, "", "<= 1.15",
                f"per step (recording on, median of {repeats}): {steps}",
                labs=labs, seconds_per_step=med)]

