"""Two small effects of the Morris screening, measured (docs/VALIDATION.md §4, the screening's
paragraph on OpenAI's diversification and DeepMind's growth).

    python experiments/screening_effects_check.py [diversification|deepmind] [--seeds N]

``diversification``: in ``openai_google_tpu`` (36 months), OpenAI's ``diversification`` 0 -> 1, paired by
seed, as the scenario is and with the clouds' investment held at the diversification-0 run's path
("replay": every cloud's chip orders of that run, month by month, placed again; vendors' rationing
and anchor deals stay as the model makes them), and replayed with the clouds' pricing blind to
OpenAI's diversification from month 33 (the joint clearing, from which the pricing takes what each
lab rents of other products and nets from its demand for one, sees OpenAI's penalties without the
diversification factor; OpenAI's own negotiation keeps it). The frontier-class posted price and
the B200 posted ask (USD per PFLOP-hour) in the last month and over months 24-35, B200's
competitive price (USD per chip-hour), the B200 installed and OpenAI's B200 chips.

``deepmind``: DeepMind made an arm's-length buyer of Google Cloud (no affiliation), its demand growth
0.04 against 0.06, over months 24-35: Google Cloud's TPU7x posted ask, its market power (its best
reply with rivals at the competitive price; the ask moves halfway to its reply at quarterly
reviews), the competitive price, and DeepMind's compute held and spend over budget; as the file
is, and with DeepMind's value of compute at $4 per useful PFLOP-hour instead of $6.

The replay wraps ``CloudProvider.place_orders`` and ``ChipVendor.order``, the blind pricing
``ComputeMarket._joint``, in this process only; nothing in the model changes. Defaults: both
questions, 10 seeds.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext

import numpy as np
import polars as pl

import market
from market.agents.cloud import CloudProvider
from market.agents.vendor import ChipVendor
from market.analysis.compare import paired_differences
from market.markets import ComputeMarket
from market.model import MarketModel
from market.recording import weighted_rental_price
from market.run import run_model

MONTHS = 36
FROM = 24  # the window the means are over: months 24-35
BLIND_FROM = 33  # the month from which the blind pricing counts OpenAI's rentals as if it did not diversify
Orders = dict[tuple[int, str], list[tuple[str, str, float]]]  # (month, cloud) -> (vendor, product, chips)


@contextmanager
def clouds_orders(record: Orders | None = None, replay: Orders | None = None) -> Iterator[None]:
    """While it lasts, the clouds' chip orders are written to ``record``, or (``replay``) those of
    an earlier run are placed instead of the clouds' own decisions."""
    place, order = CloudProvider.place_orders, ChipVendor.order
    placing: list[str] = []

    def order_(vendor: ChipVendor, buyer: str, product: str, chips: float):
        if record is not None and placing:
            record.setdefault((vendor.model.t, placing[-1]), []).append((vendor.vendor_id, product, float(chips)))
        return order(vendor, buyer, product, chips)

    def place_(cloud: CloudProvider) -> None:
        if replay is not None:
            for vendor, product, chips in replay.get((cloud.model.t, cloud.cloud_id), []):
                order(cloud.model.vendors[vendor], cloud.cloud_id, product, chips)
            return None
        placing.append(cloud.cloud_id)
        try:
            return place(cloud)
        finally:
            placing.pop()

    CloudProvider.place_orders, ChipVendor.order = place_, order_
    try:
        yield
    finally:
        CloudProvider.place_orders, ChipVendor.order = place, order


@contextmanager
def pricing_blind_to_diversification(lab_id: str, start: int) -> Iterator[None]:
    """While it lasts, from month ``start`` on, the clouds' joint clearing takes the penalties of lab
    ``lab_id`` without its diversification factor (``1 + diversification x`` its share of the offer's
    vendor, docs/ODD.md 7.10, as ``ComputeMarket._penalties`` multiplies it in): the pricing nets the lab's demand for a product of what it would rent
    of the others were it not diversifying. The lab's own negotiation keeps the penalty. At
    diversification 0 the factor is 1 and nothing changes."""
    joint = ComputeMarket._joint

    def joint_(market: ComputeMarket, priced, price, useful, penalty):
        if market.model.t >= start:
            i = market.lab_index[lab_id]
            shares = market.model.labs[lab_id].vendor_shares()
            factor = np.array([1.0 + market._diversification[i] * shares.get(o.vendor, 0.0) for o in market.offers])
            penalty = penalty.copy()
            penalty[:, i, :] /= factor[:, None]
        return joint(market, priced, price, useful, penalty)

    ComputeMarket._joint = joint_
    try:
        yield
    finally:
        ComputeMarket._joint = joint


def diversification_run(diversification: float, seed: int, record: Orders | None = None,
                        replay: Orders | None = None, blind: bool = False) -> dict[str, float]:
    """One run's figures for question ``diversification``; ``blind``: the clouds' pricing blind to
    OpenAI's diversification from month ``BLIND_FROM`` (:func:`pricing_blind_to_diversification`)."""
    sc = market.load_scenario("openai_google_tpu", {"labs.openai.diversification": diversification}, steps=MONTHS)
    cleared: dict[int, float] = {}

    def after(model: MarketModel, month: int) -> None:
        if month == MONTHS - 1:
            cleared[month] = model.compute_market._cleared.get("b200", float("nan"))

    with clouds_orders(record, replay), (pricing_blind_to_diversification("openai", BLIND_FROM) if blind
                                         else nullcontext()):
        tables = run_model(MarketModel(sc, seed=seed), sc, seed, after=after).tables
    prices = tables["prices"].filter(pl.col("step") >= FROM)
    frontier = (prices.filter(pl.col("performance_class") == "frontier", pl.col("rental_price_usd_per_pflop_hour").is_not_null())
                .group_by("step").agg(weighted_rental_price().alias("price")).sort("step")["price"])
    b200 = prices.filter(pl.col("product") == "b200").sort("step")["rental_price_usd_per_pflop_hour"]
    last = MONTHS - 1
    fleet = tables["fleet"].filter(pl.col("step") == last, pl.col("product") == "b200")
    openai = tables["contracts"].filter(pl.col("lab") == "openai", pl.col("product") == "b200",
                                        pl.col("step") + pl.col("months") > last)
    return {"frontier-class posted price, month 35": frontier[-1],
            "frontier-class posted price, months 24-35": frontier.mean(),
            "B200 posted ask, month 35": b200[-1], "B200 posted ask, months 24-35": b200.mean(),
            "B200 competitive price (chip-hour), month 35": cleared[last],
            "B200 installed (chips), month 35": float(fleet["installed_chips"].sum()),
            "OpenAI's B200 (chips), month 35": float(openai["chips"].sum())}


def _diversification_seed(seed: int) -> tuple[dict[str, float], ...]:
    orders: Orders = {}
    low = diversification_run(0.0, seed, record=orders)
    return (low, diversification_run(1.0, seed), diversification_run(1.0, seed, replay=orders),
            diversification_run(1.0, seed, replay=orders, blind=True))


def deepmind_run(growth: float, seed: int, value: float | None = None) -> dict[str, float]:
    """Means over months 24-35 of Google Cloud's TPU7x offer and DeepMind's state."""
    overrides = {"labs.deepmind.demand_growth": growth, "labs.deepmind.affiliation": None}
    if value is not None:
        overrides["labs.deepmind.value_usd_per_pflop_hour"] = value
    sc = market.load_scenario("openai_google_tpu", overrides, steps=MONTHS)
    rows: list[dict[str, float]] = []

    def after(model: MarketModel, month: int) -> None:
        offer = next((o for o in model.compute_market.offers if o.cloud.cloud_id == "gcp" and o.product == "tpu7x"), None)
        if month >= FROM and offer is not None:
            lab = model.labs["deepmind"]
            rows.append({"ask": offer.ask, "market power": offer.power, "competitive price": offer.reservation,
                         "held (M PFLOP/s)": lab.useful_contracted() / 1e6,
                         "spend / budget": lab.committed_spend() / lab.budget})

    run_model(MarketModel(sc, seed=seed, record=False), sc, seed, after=after)
    return {key: statistics.mean(row[key] for row in rows) for key in rows[0]}


def _deepmind_seed(args: tuple[int, float | None]) -> tuple[dict[str, float], dict[str, float]]:
    seed, value = args
    return deepmind_run(0.04, seed, value), deepmind_run(0.06, seed, value)


def _show(frame: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True, float_precision=3, tbl_width_chars=140,
                   fmt_str_lengths=50):
        print(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("question", nargs="?", choices=["diversification", "deepmind"])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    seeds = range(args.seeds)
    with ProcessPoolExecutor(2) as pool:
        if args.question in (None, "diversification"):
            runs = list(pool.map(_diversification_seed, seeds))
            for label, pairs in (("as the scenario is", [(a, b) for a, b, _, _ in runs]),
                                 ("the clouds' orders replayed from diversification 0",
                                  [(a, c) for a, _, c, _ in runs]),
                                 (f"replayed, and the clouds' pricing blind to it from month {BLIND_FROM}",
                                  [(a, d) for a, _, _, d in runs])):
                print(f"\nOpenAI's diversification 0 -> 1, openai_google_tpu, seeds 0-{args.seeds - 1}, {label}")
                _show(paired_differences(pairs, ("at 0", "at 1")))
        if args.question in (None, "deepmind"):
            for value in (None, 4.0):
                pairs = list(pool.map(_deepmind_seed, [(s, value) for s in seeds]))
                print(f"\nDeepMind unaffiliated, growth 0.04 -> 0.06, Google Cloud's TPU7x (USD per chip-hour), "
                      f"means of months 24-35, seeds 0-{args.seeds - 1}"
                      + ("" if value is None else f", DeepMind's value ${value:g} per useful PFLOP-hour"))
                _show(paired_differences(pairs, ("at 0.04", "at 0.06")))


if __name__ == "__main__":
    main()
