"""How much the first month's diversification penalty matters (docs/ODD.md §7.10, the paragraph on
month 0).

    python experiments/first_month_diversification_check.py [SCENARIO ...] [--seeds N]

A lab's concentration penalty on a vendor is ``1 + diversification x`` that vendor's share of the
compute it holds when the month opens (docs/ODD.md §7.10). In month 0 the labs hold nothing yet but
the anchor deals signed before their rounds (OpenAI's), so every other lab chooses its first book,
the one that stands for the contracts signed before the simulation, without the penalty. This
script measures what that does: each run is paired with one whose month-0 penalty reads the vendor
shares of the lab's own first book instead (from a first pass of month 0 with the same seed, then
one more pass with those shares, whose book is used). It also says whether the first book's
shares settle: a penalty linear in its own shares makes each lab's best book a corner, so passes
of month 0 may flip between corners rather than converge.

The swap wraps ``ComputeMarket.open`` in this process only; nothing in the model changes.
Defaults: baseline and openai_google_tpu, seeds 0-9, 60 months.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl

import market
import market.markets as markets
from market.agents.lab import AILab
from market.analysis.compare import paired_differences
from market.model import MarketModel
from market.run import run_model

Shares = dict[str, dict[str, float]]


@contextmanager
def month0_shares(shares: Shares | None) -> Iterator[None]:
    """While it lasts, month 0's market opens with each lab's vendor shares taken from ``shares``
    (lab id -> vendor -> share; a lab not named holds none); None: the model as it is."""
    opened = markets.ComputeMarket.open
    own = AILab.vendor_shares

    def open_(self: markets.ComputeMarket) -> None:
        if shares is None or self.model.t != 0:
            return opened(self)
        AILab.vendor_shares = lambda lab: dict(shares.get(lab.lab_id, {}))
        try:
            return opened(self)
        finally:
            AILab.vendor_shares = own

    markets.ComputeMarket.open = open_
    try:
        yield
    finally:
        markets.ComputeMarket.open = opened
        AILab.vendor_shares = own


def first_book(sc: market.Scenario, seed: int, shares: Shares | None) -> Shares:
    """Each lab's vendor shares after month 0 (labs with a diversification penalty)."""
    with month0_shares(shares):
        model = MarketModel(sc, seed=seed, record=False)
        model.step()
    return {lab.lab_id: lab.vendor_shares() for lab in model.lab_list if lab.cfg.diversification > 0}


def measures(tables: dict[str, pl.DataFrame]) -> dict[str, float]:
    """Nvidia's share of contracted compute, OpenAI's Nvidia share, and the mean posted rental
    price per PFLOP-hour (products on sale), at a few months."""
    nvidia = dict(tables["shares"].filter(pl.col("vendor") == "nvidia").select("step", "compute_share").iter_rows())
    mix = tables["lab_mix"].filter(pl.col("lab") == "openai").group_by("step").agg(
        (pl.col("pflops").filter(pl.col("vendor") == "nvidia").sum() / pl.col("pflops").sum()).alias("nvidia"))
    openai = dict(mix.select("step", "nvidia").iter_rows())
    price = tables["prices"].filter(pl.col("on_sale")).group_by("step").agg(
        pl.col("rental_price_usd_per_pflop_hour").mean().alias("price"))
    last = int(price["step"].max())

    def mean_price(lo: int, hi: int) -> float:
        return float(price.filter(pl.col("step").is_between(lo, hi))["price"].mean())

    out = {f"Nvidia share, month {t}": nvidia[t] for t in (0, 11, 23, last) if t in nvidia}
    out |= {f"OpenAI's Nvidia share, month {t}": openai.get(t, 0.0) for t in (0, 11, last)}
    out |= {"posted price, months 0-11": mean_price(0, 11), f"posted price, months {last - 11}-{last}":
            mean_price(last - 11, last)}
    return out


def paired(name: str, seed: int, months: int) -> tuple[dict[str, float], dict[str, float], bool]:
    """The run as it is, the run whose month-0 penalty reads its first book's shares, and whether
    a further pass of month 0 left those shares where they were."""
    sc = market.load_scenario(name, steps=months)
    once = first_book(sc, seed, None)
    twice = first_book(sc, seed, once)
    settled = first_book(sc, seed, twice) == twice
    with month0_shares(None):
        plain = measures(run_model(MarketModel(sc, seed=seed), sc, seed).tables)
    with month0_shares(twice):
        swapped = measures(run_model(MarketModel(sc, seed=seed), sc, seed).tables)
    return plain, swapped, settled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", default=["baseline", "openai_google_tpu"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--months", type=int, default=60)
    args = parser.parse_args()
    for name in args.scenarios:
        pairs = [paired(name, seed, args.months) for seed in range(args.seeds)]
        print(f"\n{name}, seeds 0-{args.seeds - 1}, {args.months} months: month-0 penalty on the first book's "
              f"shares minus as is ({sum(s for *_, s in pairs)} of {len(pairs)} first books settled)")
        table = paired_differences([(a, b) for a, b, _ in pairs], ("as is", "first book's shares"))
        with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True, float_precision=4, tbl_width_chars=120,
                       fmt_str_lengths=40):
            print(table)


if __name__ == "__main__":
    main()
