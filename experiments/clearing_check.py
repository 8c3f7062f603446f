"""How much capacity the month's compute market leaves unrented, and where (docs/VALIDATION.md,
"Substitute products": cleared together by default, one at a time under the rule before).

    python experiments/clearing_check.py [SCENARIO] [SEEDS] [WORKERS] [joint|ignored|netted]

Steps the model month by month and reads every public cloud's offers after the labs' round: the
chips free when the market opened, those still free after it, and whether the product was tight
(its competitive price above the seller's floor: every chip should find a buyer at that price).
Months 12 to the end (the first year's contracts are the ladder of those signed before the
simulation). Defaults: baseline, 5 seeds, 2 workers, the scenario's own ``negotiation.substitutes``
(the last argument overrides it: "joint", "ignored" or "netted").
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor

import polars as pl

import market
from market.model import MarketModel

FIRST = 12


def _offers(args: tuple[str, int, dict]) -> list[dict]:
    name, seed, overrides = args
    sc = market.load_scenario(name, overrides)
    model = MarketModel(sc, seed=seed, record=False)
    rows = []
    for month in range(sc.steps):
        model.step()
        if month < FIRST:
            continue
        for o in model.compute_market.offers:
            if o.cloud.owner_lab is not None or o.cloud.cfg.pricing.rule != "best_response":
                continue  # captive data centres and cost-plus clouds are not priced by the market
            rows.append({"seed": seed, "month": month, "cloud": o.cloud.cloud_id, "product": o.product,
                         "vendor": o.vendor, "tight": o.scarce, "installed": o.cloud.installed.get(o.product, 0.0),
                         "opened": o.opened, "idle": o.free})
    return rows


def measure(name: str = "baseline", seeds: int = 5, workers: int = 2, overrides: dict | None = None) -> pl.DataFrame:
    """One row per public offer and month (months 12 on): chips installed, free at the open, still
    free (idle) after the labs' round, and whether the product was tight. ``overrides``: dotted
    paths to values, as ``market.load_scenario`` takes them."""
    jobs = [(name, seed, overrides or {}) for seed in range(seeds)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_offers, jobs))
    else:
        parts = [_offers(job) for job in jobs]
    return pl.DataFrame([row for part in parts for row in part])


def main(name: str = "baseline", seeds: int = 5, workers: int = 2, substitutes: str | None = None) -> None:
    df = measure(name, seeds, workers, {"negotiation.substitutes": substitutes} if substitutes else None)
    substitutes = substitutes or market.load_scenario(name).negotiation.substitutes
    total = df.select(pl.col("installed", "opened", "idle").sum()).row(0, named=True)
    tight = df.filter("tight").select(pl.col("opened", "idle").sum()).row(0, named=True)
    markets = df.group_by("seed", "month", "product").agg(pl.col("tight").any())
    print(f"{name}, substitutes {substitutes}, {seeds} seeds, months {FIRST} on: {markets['tight'].mean():.0%} of product-months tight; "
          f"free at the open {total['opened'] / total['installed']:.1%} of installed chips, of which "
          f"{1 - total['idle'] / total['opened']:.1%} rented in the month; idle after it "
          f"{total['idle'] / total['installed']:.1%} of installed")
    print(f"tight offers: {tight['idle'] / tight['opened']:.1%} of their free chips left idle")
    print(df.group_by("vendor").agg((pl.col("idle").sum() / pl.col("installed").sum()).alias("idle_share_of_installed"),
                                     (1 - pl.col("idle").sum() / pl.col("opened").sum()).alias("rented_share_of_free"))
          .sort("vendor"))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "baseline", *(int(a) for a in args[1:3]), *args[3:4])
