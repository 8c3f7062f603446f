"""What a 12-month halving of packaging capacity should do, and what the model does (docs/VALIDATION.md).

    python experiments/supply_shock_check.py [SEEDS]

The back-of-envelope: while packaging is cut in half, half of the chips that would have been made
are not. They would have come online a vendor lead time plus a data-centre build later, so the
installed stock falls short of its path by up to ``0.5 x (chips made during the shock) / stock``.
If the market clears at capacity, price rises by ``-dlnK / e`` for demand elasticity ``e`` (the
labs' short-run elasticities, weighted by their mix of training and inference), and the demand
priced out is recorded as unmet: about the stock shortfall. The script takes every input from
paired runs of ``openai_google_tpu`` and ``supply_shock`` (same seeds) and prints the prediction
beside the model's own numbers.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import polars as pl

import market

STEPS = 36


def main(seeds: int = 10) -> None:
    sc = market.load_scenario("supply_shock", steps=STEPS)
    (shock,) = sc.packaging.shocks
    months = range(shock.start_step, shock.end_step)
    demand = sc.demand
    train = np.mean([lab.training_share for lab in sc.labs.values()])
    e = train * demand.training_elasticity + (1 - train) * demand.inference_elasticity
    rows = []
    for seed in range(seeds):
        base = market.run(market.load_scenario("openai_google_tpu", steps=STEPS), seed=seed)
        hit = market.run(sc, seed=seed)
        b, h = base.steps.sort("step"), hit.steps.sort("step")
        shipped = base.vendors.group_by("step").agg(pl.col("shipped_chips").sum()).sort("step")
        pf = base.tables["vendors"].join(base.tables["shares"].select("step", "vendor", "shipped_pflops"),
                                         on=["step", "vendor"]).group_by("step").agg(pl.col("shipped_pflops").sum()).sort("step")
        made = pf.filter(pl.col("step").is_in(list(months)))["shipped_pflops"].sum()
        k_end = b["installed_pflops"].to_numpy()
        gap = h["installed_pflops"].to_numpy() / k_end - 1.0  # the stock's shortfall, month by month
        worst = int(np.argmin(gap))
        price = _price_index(base, hit)
        unmet_b = (b["unmet_pflops"] / b["demand_pflops"]).to_numpy()
        unmet_h = (h["unmet_pflops"] / h["demand_pflops"]).to_numpy()
        rows.append({
            "predicted_gap": -0.5 * made / k_end[min(worst, STEPS - 1)],
            "model_gap": gap[worst], "worst_month": worst,
            "predicted_price": math.exp(math.log1p(gap[worst]) / e) - 1.0,
            "model_price": price[worst], "model_price_peak": float(np.nanmax(price)),
            "model_unmet_change": float(unmet_h[worst] - unmet_b[worst]),
            "shipped_chips_in_shock": shipped.filter(pl.col("step").is_in(list(months)))["shipped_chips"].sum(),
        })
        rows[-1]["gap_path"] = gap
        rows[-1]["price_path"] = price
    paths = {k: np.nanmean([r.pop(k) for r in rows], axis=0) for k in ("gap_path", "price_path")}
    df = pl.DataFrame(rows)
    print(f"shock: packaging x {shock.factor} in months {shock.start_step}-{shock.end_step - 1}; "
          f"short-run elasticity (mix of training {train:.2f}): {e:.2f}; {seeds} paired seeds, {STEPS} months")
    print(df.mean().transpose(include_header=True, column_names=["mean"]))
    window = paths["gap_path"] < -0.02
    g = paths["gap_path"][window]
    print(f"months with the stock 2% or more short ({int(window.sum())}): mean stock gap {g.mean():+.1%}, "
          f"predicted price change {np.mean(np.exp(np.log1p(g) / e) - 1):+.1%}, "
          f"model's {np.nanmean(paths['price_path'][window]):+.1%}")
    print("month  stock gap  predicted price  model price (means over seeds)")
    for t in range(0, STEPS, 3):
        g, p = paths["gap_path"][t], paths["price_path"][t]
        print(f"{t:5d}  {g:+9.1%}  {math.exp(math.log1p(g) / e) - 1:+15.1%}  {p:+11.1%}")


def _price_index(base: market.RunResult, hit: market.RunResult) -> np.ndarray:
    """Per month: mean over products of log(price in the shock / price without), as a change."""
    key = ["step", "product"]
    b = base.prices.drop_nulls("contract_price_usd_per_chip_hour").select(*key, pl.col("contract_price_usd_per_chip_hour").alias("a"))
    h = hit.prices.drop_nulls("contract_price_usd_per_chip_hour").select(*key, pl.col("contract_price_usd_per_chip_hour").alias("b"))
    j = b.join(h, on=key).group_by("step").agg(((pl.col("b") / pl.col("a")).log()).mean().alias("d")).sort("step")
    out = np.full(STEPS, np.nan)
    out[j["step"].to_numpy()] = np.expm1(j["d"].to_numpy())
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
