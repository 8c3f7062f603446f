"""What a 12-month halving of packaging capacity should do, and what the model does (docs/VALIDATION.md).

    python experiments/supply_shock_check.py [SEEDS] [WORKERS]

Paired runs of ``openai_google_tpu`` and ``supply_shock`` (same seeds, 36 months). The prediction
is built in three steps, each adding one thing the model states, so that the distance left between
prediction and model says what the prediction leaves out:

1. **Back of the envelope.** While packaging is cut in half, half of the chips that would have been
   made are not; they would have come online a vendor lead time plus a data-centre build later, so
   the installed stock falls short of its path by up to ``0.5 x (chips made during the shock) /
   stock``. If the market clears at capacity, price rises by ``-dlnK / e`` for the labs' short-run
   elasticity ``e`` (training's and inference's, weighted by the compute each purpose rents).
2. **With the long run.** Labs' demand answers to price against their own price level, a moving
   average over ``demand.adjustment_months`` that follows the prices they pay; their demand at
   that level has the long-run elasticity (docs/ODD.md 7.8). Month by month, with ``dlnL`` the
   level's shift: ``dlnQ = e dlnp + (e_long - e) dlnL`` and ``dlnL`` moves toward ``dlnp`` by
   ``1 / adjustment_months`` a month. ``dlnQ`` is the shortfall of the compute under contract
   (what is rented, not what is installed: idle capacity could absorb part of the cut).
3. **With budgets.** A lab whose budget binds spends it whatever the price: its demand has
   elasticity -1. Its share of demand is read off the runs without the shock (labs spending 98 %
   or more of their budget).

The model's price: posted asks (per product, mean log ratio over the products both runs price)
and new contracts like for like (the same product, contract kind and term in the same month).
"""

from __future__ import annotations

import math
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

import market
from market.scenario import Demand, Shock

STEPS = 36
BASE, SHOCK = "openai_google_tpu", "supply_shock"
BUDGET_BOUND = 0.98  # a lab spending this share of its budget or more is bound by it
SHORT = -0.02  # months with the stock at least 2 % below its path: the window the averages cover


@dataclass(frozen=True)
class Check:
    """Means over paired seeds, month by month (index = step), and the inputs of the prediction."""

    stock: np.ndarray  # dln installed PFLOP/s (shock vs without)
    rented: np.ndarray  # dln contracted PFLOP/s
    budget_bound: np.ndarray  # share of demand of labs bound by their budget (without the shock)
    unmet: np.ndarray  # change of the unmet share of demand (points)
    posted: np.ndarray  # posted asks, change
    contracts: np.ndarray  # new contracts like for like, change
    predicted_gap: float  # the back of the envelope's stock shortfall at the worst month
    worst_month: float
    training_share: float  # of the compute rented without the shock
    demand: Demand  # the scenario's demand response
    shock: Shock  # the packaging shock
    seeds: int

    @property
    def elasticity(self) -> float:
        """The labs' short-run elasticity, training's and inference's weighted by what they rent."""
        share = self.training_share
        return share * self.demand.training_elasticity + (1 - share) * self.demand.inference_elasticity

    def predicted(self, quantity: np.ndarray, long_run: bool, budgets: bool) -> np.ndarray:
        """Price change a month (as a change, not a log) that makes demand fall by ``quantity``."""
        e, e_long, months = self.elasticity, self.demand.long_run_elasticity, self.demand.adjustment_months
        level, out = 0.0, np.zeros(len(quantity))
        for t, dq in enumerate(quantity):
            b = self.budget_bound[t] if budgets else 0.0
            shift = (1.0 - b) * (e_long - e) * level if long_run else 0.0
            out[t] = (dq - shift) / (-b + (1.0 - b) * e)
            level += (out[t] - level) / months
        return np.expm1(out)

    @property
    def window(self) -> np.ndarray:
        return self.stock < SHORT


def _pair(seed: int) -> dict[str, dict[str, pl.DataFrame]]:
    out = {}
    for name in (BASE, SHOCK):
        r = market.run(market.load_scenario(name, steps=STEPS), seed=seed)
        out[name] = {k: r.tables[k] for k in ("steps", "contracts", "labs", "prices", "lab_mix", "shares")}
    return out


def _change(a: pl.DataFrame, b: pl.DataFrame, key: list[str], col: str) -> pl.DataFrame:
    """Per step: the mean over ``key`` cells both hold of ln(b / a)."""
    j = a.select(*key, pl.col(col).alias("a")).join(b.select(*key, pl.col(col).alias("b")), on=key)
    return j.group_by("step").agg((pl.col("b") / pl.col("a")).log().mean().alias(col))


def _new_contracts(c: pl.DataFrame) -> pl.DataFrame:
    key = ["step", "product", "kind", "months"]
    return (c.filter(pl.col("lab").is_not_null()).group_by(key)
            .agg(((pl.col("price_usd_per_chip_hour") * pl.col("chips")).sum() / pl.col("chips").sum()).alias("price")))


def derive(seeds: int = 10, workers: int = 2) -> Check:
    sc = market.load_scenario(SHOCK, steps=STEPS)
    (shock,) = sc.packaging.shocks
    months = list(range(shock.start_step, shock.end_step))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            pairs = list(pool.map(_pair, range(seeds)))
    else:
        pairs = [_pair(seed) for seed in range(seeds)]
    per_seed, gaps, worsts, train = [], [], [], []
    for pair in pairs:
        b, h = pair[BASE], pair[SHOCK]
        steps = b["steps"].join(h["steps"], on="step", suffix="_h").sort("step")
        stock = np.log(steps["installed_pflops_h"] / steps["installed_pflops"]).to_numpy()
        worst = int(np.argmin(stock))
        made = b["shares"].filter(pl.col("step").is_in(months))["shipped_pflops"].sum()
        gaps.append(-0.5 * made / steps["installed_pflops"][worst])
        worsts.append(worst)
        mix = b["lab_mix"].group_by("purpose").agg(pl.col("pflops").sum())
        train.append(mix.filter(pl.col("purpose") == "training")["pflops"].sum() / mix["pflops"].sum())
        bound = (b["labs"].group_by("step").agg(
            (pl.col("demand_pflops").filter(pl.col("spend_usd") >= BUDGET_BOUND * pl.col("budget_usd")).sum()
             / pl.col("demand_pflops").sum()).alias("budget_bound")))
        priced = "rental_price_usd_per_chip_hour"
        posted = _change(b["prices"].drop_nulls(priced), h["prices"].drop_nulls(priced), ["step", "product"], priced)
        contracts = _change(_new_contracts(b["contracts"]), _new_contracts(h["contracts"]),
                            ["step", "product", "kind", "months"], "price")
        per_seed.append(steps.select(
            "step", stock=(pl.col("installed_pflops_h") / pl.col("installed_pflops")).log(),
            rented=(pl.col("contracted_pflops_h") / pl.col("contracted_pflops")).log(),
            unmet=pl.col("unmet_pflops_h") / pl.col("demand_pflops_h") - pl.col("unmet_pflops") / pl.col("demand_pflops"),
        ).join(bound, on="step").join(posted, on="step", how="left").join(contracts, on="step", how="left"))
    means = pl.concat(per_seed).group_by("step").agg(pl.all().mean()).sort("step")
    return Check(
        stock=means["stock"].to_numpy(), rented=means["rented"].to_numpy(),
        budget_bound=means["budget_bound"].to_numpy(), unmet=means["unmet"].to_numpy(),
        posted=np.expm1(means[priced].fill_null(0.0).to_numpy()),
        contracts=np.expm1(means["price"].fill_null(0.0).to_numpy()),
        predicted_gap=float(np.mean(gaps)), worst_month=float(np.mean(worsts)),
        training_share=float(np.mean(train)), demand=sc.demand, shock=shock, seeds=seeds)


def main(seeds: int = 10, workers: int = 2) -> Check:
    c = derive(seeds, workers)
    w = c.window
    shock = c.shock
    print(f"shock: packaging x {shock.factor} in months {shock.start_step}-{shock.end_step - 1}; {c.seeds} paired "
          f"seeds, {STEPS} months; short-run elasticity {c.elasticity:.2f} (training's share of rented compute "
          f"{c.training_share:.2f})")
    print(f"installed stock at its worst (month {c.worst_month:.1f}): back of the envelope "
          f"{c.predicted_gap:+.1%}, model {math.expm1(c.stock.min()):+.1%}")
    print(f"{int(w.sum())} months with the stock 2% or more short: stock {np.mean(np.expm1(c.stock[w])):+.1%}, "
          f"compute rented {np.mean(np.expm1(c.rented[w])):+.1%}, labs bound by their budget "
          f"{c.budget_bound[w].mean():.0%} of demand, unmet share of demand {c.unmet[w].mean() * 100:+.1f} points")
    layers = {
        "1. stock, short-run elasticity": c.predicted(c.stock, long_run=False, budgets=False),
        "2. rented, with the long run": c.predicted(c.rented, long_run=True, budgets=False),
        "3. and budgets that bind": c.predicted(c.rented, long_run=True, budgets=True),
    }
    paths = list(layers.values())
    print("price change over those months (mean; peak month):")
    for label, path in layers.items():
        print(f"  predicted {label:32s} {np.mean(path[w]):+6.1%}; {path.max():+6.1%}")
    for label, path in (("posted asks", c.posted), ("new contracts like for like", c.contracts)):
        print(f"  model     {label:32s} {np.mean(path[w]):+6.1%}; {path[w].max():+6.1%}")
    full, start = paths[2], int(np.argmax(w))
    lags = {lag: float(np.corrcoef(full[start - 3:STEPS - lag], c.posted[start - 3 + lag:])[0, 1]) for lag in range(5)}
    lag = max(lags, key=lags.get)
    print(f"posted asks follow prediction 3 best {lag} months later (correlation {lags[lag]:.2f} from month "
          f"{start - 3}; {lags[0]:.2f} without a lag)")
    print("month  stock  rented  predicted(1)  predicted(3)  posted  contracts")
    for t in range(0, STEPS, 3):
        print(f"{t:5d}  {math.expm1(c.stock[t]):+5.1%}  {math.expm1(c.rented[t]):+6.1%}  {paths[0][t]:+12.1%}  "
              f"{paths[2][t]:+12.1%}  {c.posted[t]:+6.1%}  {c.contracts[t]:+9.1%}")
    return c


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
