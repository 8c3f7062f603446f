"""experiments/outside_options_check.py: what docs/VALIDATION.md §4 says of bargaining in the
baseline: the labs' bargains end at an outside option, so the protocol hardly moves prices; and the
count leaves the model as it was."""

from __future__ import annotations

import polars as pl

import market
import market.markets as markets
from helpers import experiment_script

MONTHS = 8


def test_bargains_in_the_baseline_end_at_an_outside_option() -> None:
    module = experiment_script("outside_options_check")
    results = {p: module.bargains("baseline", 1, MONTHS, p) for p in ("nash", "rubinstein")}
    for counts in results.values():
        ended = counts["buyer's option"] + counts["seller's reservation"] + counts["inside (the split)"]
        assert ended > 100
        assert counts["inside (the split)"] <= 0.01 * ended  # the split almost never stands
    nash = results["nash"]["mean contract price (USD per chip-hour)"]
    rubinstein = results["rubinstein"]["mean contract price (USD per chip-hour)"]
    assert abs(rubinstein / nash - 1.0) < 0.01


def test_counting_leaves_the_model_unchanged() -> None:
    """The wrapper is taken off again, and a run with it on signs the same contracts."""
    module = experiment_script("outside_options_check")
    bound = markets.with_outside_options
    counted = module.bargains("baseline", 2, 3, "nash")
    assert markets.with_outside_options is bound
    plain = market.run(market.load_scenario("baseline", {"negotiation.protocol": "nash"}, steps=3), seed=2).contracts
    signed = plain.filter(pl.col("step") >= 1, pl.col("kind") != "anchor")
    price = (signed["price_usd_per_chip_hour"] * signed["chips"]).sum() / signed["chips"].sum()
    assert counted["mean contract price (USD per chip-hour)"] == round(float(price), 4)
