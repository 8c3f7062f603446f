"""Collector overhead: a seed-scenario run with recording on / the same run with recording off."""

from __future__ import annotations

import gc
import time

import market
from market.bench.base import SEED_SCENARIOS, Figure, Sizes, fig, median, quartiles, timed
from market.model import MarketModel

__all__ = ["bench_collector"]


def bench_collector(sizes: Sizes, repeats: int) -> list[Figure]:
    """A seed-scenario run with recording on / the same run with recording off, stepped side by side.

    The two runs (same scenario, same seed) advance in turn, one step each, which of them goes
    first alternating from step to step. A shared machine's speed changes from one second to the
    next; stepping the runs in turn lets both sides meet the same speed, where timing whole runs
    one after the other does not (on a busy 2-core VM the ratio of whole runs spread from 0.96 to
    1.15 between quartiles, and these from 1.07 to 1.09). Each side's time is its model's
    construction and its steps, and for the side that records, the making of its tables: all of
    ``market.run`` but the provenance row, which is the same on both sides (leaving it out makes
    the ratio a little higher, not lower). Recording must not change the run: both runs end in
    the same state, which is checked. Whole runs one after the other are timed too, for the
    seconds per run and as a cross-check of the ratio.
    """
    ratios, same = [], True
    for r in range(repeats):
        for name in SEED_SCENARIOS:
            sc = market.load_scenario(name, steps=sizes.steps)
            spent = {True: 0.0, False: 0.0}
            models = {}
            gc.collect()
            for record in ((True, False) if r % 2 == 0 else (False, True)):
                started = time.perf_counter()
                models[record] = MarketModel(sc, seed=r, record=record)
                spent[record] += time.perf_counter() - started
            for i in range(sc.steps):
                for record in ((True, False) if i % 2 == 0 else (False, True)):
                    started = time.perf_counter()
                    models[record].step()
                    spent[record] += time.perf_counter() - started
            on = models[True]
            started = time.perf_counter()
            on.recorder.tables(on.run_id)
            spent[True] += time.perf_counter() - started
            same &= _state(on) == _state(models[False])
            for m in models.values():
                m.release()
            ratios.append(spent[True] / spent[False])
    whole, seconds = [], []
    for r in range(repeats):
        for name in SEED_SCENARIOS:
            sc = market.load_scenario(name, steps=sizes.steps)
            took = {}
            for record in ((True, False) if r % 2 == 0 else (False, True)):
                took[record], _ = timed(lambda sc=sc, r=r, record=record: market.run(sc, seed=r, record=record))
            whole.append(took[True] / took[False])
            seconds.append(took[True])
    return [
        fig("collector", "collector overhead (recording on / off)", median(ratios), "x", "<= 1.10",
            f"{len(ratios)} pairs of runs stepped side by side: the five seed scenarios x {repeats} repeats, "
            f"{sizes.steps} steps; quartiles {quartiles(ratios)}; same end state: {'yes' if same else 'NO'}; "
            f"whole runs one after the other: {median(whole):.3f} (quartiles {quartiles(whole)})",
            ratios=ratios, identical=same, whole_runs=whole),
        fig("collector", "seconds per seed-scenario run", median(seconds), "s", "",
            f"median of {len(seconds)} runs (market.run, {sizes.steps} steps, recording on, one process)",
            seconds=seconds),
    ]


def _state(m: MarketModel) -> tuple:
    """What a run has come to: its contracts, every lab's demand and readiness, every price."""
    return (m.t, m._contract_seq, [(lab.demand, lab.budget, list(lab.readiness.values())) for lab in m.lab_list],
            [dict(c.rental_price) for c in m.cloud_list], [dict(v.list_price) for v in m.vendor_list])

