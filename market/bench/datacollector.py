"""Our collector / Mesa's ``DataCollector``: the same values from the same model, timed side by side."""

from __future__ import annotations

import polars as pl

import market
from market.bench.base import SEED_SCENARIOS, Figure, Sizes, fig, median, timed
from market.bench.mesa_side import mesa_collect, mesa_collector, mesa_frames
from market.model import MarketModel
from market.recording import Recorder

__all__ = ["bench_datacollector"]


def bench_datacollector(sizes: Sizes, repeats: int) -> list[Figure]:
    """The same values from the same model, by Mesa's DataCollector (then to polars) / by ours."""
    ratios, same = [], True
    for r in range(repeats):
        sc = market.load_scenario(SEED_SCENARIOS[r % len(SEED_SCENARIOS)], steps=sizes.steps)
        model = MarketModel(sc, seed=r, record=False)
        ours, dc = Recorder(model), mesa_collector(model)
        t_ours = t_mesa = 0.0
        for i in range(sizes.steps):
            model.step()
            for side in ((0, 1) if i % 2 == 0 else (1, 0)):
                if side == 0:
                    dt, _ = timed(ours.collect)
                    t_ours += dt
                else:
                    dt, _ = timed(lambda m=model, dc=dc: mesa_collect(m, dc))
                    t_mesa += dt
        dt, ours_tables = timed(lambda o=ours, m=model: o.tables(m.run_id))
        t_ours += dt
        dt, theirs = timed(lambda dc=dc: mesa_frames(dc))
        t_mesa += dt
        same &= _same_values(ours_tables, theirs)
        model.release()
        ratios.append(t_mesa / t_ours)
    return [fig("datacollector", "Mesa DataCollector / ours (collect + to polars)", median(ratios), "x", ">= 3",
                f"{repeats} runs of {sizes.steps} steps, seed scenarios in turn; values identical: "
                f"{'yes' if same else 'NO'}", ratios=ratios, identical=same)]


KEYS = {"labs": ["lab"], "steps": [], "prices": ["product"], "vendors": ["vendor"], "shares": ["vendor"],
        "clouds": ["cloud"], "readiness": ["lab", "purpose", "ecosystem"], "fleet": ["cloud", "product"],
        "contracts": ["contract_id"], "withholding": ["holder", "buyer", "product"],
        "lab_mix": ["lab", "vendor", "purpose"]}


def _same_values(ours: dict[str, pl.DataFrame], theirs: dict[str, pl.DataFrame]) -> bool:
    """Both sides recorded the same values, exactly, in every table (Mesa keys agent records by
    ``model.steps``, one more than our ``step``; pandas turns a missing float into NaN)."""
    try:
        for table, keys in KEYS.items():
            a = ours[table].drop("run_id", "date", strict=False)
            b = theirs[table]
            if "Step" in b.columns:
                b = b.with_columns(step=pl.col("Step") - 1)
            b = b.select(a.columns).cast(a.schema).fill_nan(None)
            if not a.sort("step", *keys).equals(b.sort("step", *keys)):
                return False
        return True
    except Exception:  # noqa: BLE001 - reported as "not identical"
        return False

