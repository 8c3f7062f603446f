"""Where the month's bilateral bargains end: at the protocol's split, or at an outside option
(docs/VALIDATION.md §4, the paragraph on bargaining power).

    python experiments/outside_options_check.py [SCENARIO] [SEED] [MONTHS]

Runs the scenario once under each bargaining protocol (``negotiation.protocol``: nash, rubinstein,
concession) and counts, over every arm's-length bargain the labs strike, where the price ends
(docs/ODD.md §7.12): at the **buyer's option** (what the seller's market power gets: its posted ask,
or its best reply while capacity binds), at the **seller's reservation** (its avoidable cost, or the
competitive price while capacity binds), or **inside**, at the protocol's split. It also gives the
chip-weighted mean price of the contracts signed after the first month (anchor deals left out).
Where outside options bind, the protocol and the parties' bargaining power do not move prices
(Binmore, Shaked and Sutton 1989). Defaults: baseline, seed 1, 24 months.

The count wraps ``market.markets.with_outside_options`` in this process only, to see each bargain's
outcome before and after the outside options; nothing in the model changes.
"""

from __future__ import annotations

import sys

import polars as pl

import market
import market.markets as markets


def bargains(name: str, seed: int, months: int, protocol: str) -> dict[str, float]:
    counts = {"buyer's option": 0, "seller's reservation": 0, "inside (the split)": 0, "no deal": 0}
    bound = markets.with_outside_options

    def counted(outcome, reservation, buyer_option):
        out = bound(outcome, reservation, buyer_option)
        if out is None or outcome is None:
            counts["no deal"] += 1
        elif out.price < outcome.price:
            counts["buyer's option"] += 1
        elif out.price > outcome.price:
            counts["seller's reservation"] += 1
        else:
            counts["inside (the split)"] += 1
        return out

    markets.with_outside_options = counted
    try:
        sc = market.load_scenario(name, {"negotiation.protocol": protocol}, steps=months)
        signed = market.run(sc, seed=seed).contracts.filter(pl.col("step") >= 1, pl.col("kind") != "anchor")
    finally:
        markets.with_outside_options = bound
    price = (signed["price_usd_per_chip_hour"] * signed["chips"]).sum() / signed["chips"].sum()
    return {**counts, "mean contract price (USD per chip-hour)": round(float(price), 4)}


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "baseline"
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    months = int(sys.argv[3]) if len(sys.argv) > 3 else 24
    rows = [{"protocol": p, **bargains(name, seed, months, p)} for p in ("nash", "rubinstein", "concession")]
    print(f"{name}, seed {seed}, {months} months: where each arm's-length bargain ends")
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_width_chars=200, tbl_cols=10):
        print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
