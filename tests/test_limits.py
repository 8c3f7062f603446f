"""Textbook limits of the chip market (vendors' list prices) through the public model, and of the
vendors' price-adjustment rule. The compute market's limits (Bertrand, Lerner, Kreps-Scheinkman,
scarcity, Nash split and outside options, time to build) are in tests/test_textbook.py."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

import market
from market.economics import PriceRuleParams, PriceSignal, excess_demand

MONOPOLY = """
name = "monopoly"
steps = 36
[packaging]
capacity_wafers_per_month = [[0, 100000]]
[products.gpu]
vendor = "v"
pflops = 1.0
unit_cost_usd = 5000
list_price_usd = 20000
release_step = -1
chips_per_wafer = 10
opex_usd_per_chip_hour = 0.2
[vendors.v]
ecosystem = "cuda"
packaging_share = 1.0
lead_time_months = 0
[vendors.v.pricing]
rule = "{rule}"
speed = 0.15
max_step = 0.05
min_margin = 0.5
max_margin = 6.0
[clouds.c]
kind = "neocloud"
fleet = {{ gpu = 1000 }}
buys = ["v"]
capex_usd_per_month = 2e8
capex_growth = 0.0
[labs.lab]
demand_pflops = 1000
demand_growth = 0.3
demand_volatility = 0.0
budget_growth = 0.3
training_share = 0.0
budget_usd_per_month = 1e12
value_usd_per_pflop_hour = 1000.0
readiness = {{ cuda = 1.0 }}
contract_months = 1
supply_security = 10.0       # reserves all it needs: these markets test the bargained price ...
anchor_threshold = 1.0       # ... and signs no anchor deals
"""


def test_a_monopoly_vendor_with_spare_capacity_withholds_output(tmp_path) -> None:
    """One vendor with capacity far above what buyers take. Priced to clear its capacity
    (tâtonnement) it cuts its price to the floor; maximising profit (Lerner rule) it raises the
    price and sells fewer chips than it could make: it withholds the excess capacity."""
    outcomes = {}
    for rule in ("excess_demand", "monopoly"):
        path = tmp_path / f"{rule}.toml"
        path.write_text(MONOPOLY.format(rule=rule))
        r = market.run(market.load_scenario(path), seed=0)
        v = r.vendors.filter(pl.col("step") >= 24)  # the last year, after the price has adjusted
        outcomes[rule] = {"price": r.prices.filter(pl.col("step") >= 24)["chip_price_usd"].mean(),
                          "shipped": v["shipped_chips"].sum(), "capacity": v["capacity_chips"].sum(),
                          "profit": v["profit_usd"].sum()}
    comp, mono = outcomes["excess_demand"], outcomes["monopoly"]
    assert comp["price"] == pytest.approx(5000 * 1.5, rel=1e-6)  # competitive rule: at the floor
    # buyers here spend a fixed capex budget (unit-elastic demand), so profit rises with the price
    # all the way to the ceiling, c (1 + max_margin)
    assert mono["price"] == pytest.approx(5000 * 7, rel=1e-6)
    assert mono["shipped"] < 0.5 * comp["shipped"]  # sells less ...
    assert mono["shipped"] < 0.1 * mono["capacity"]  # ... far below what it could make: withholding
    assert mono["profit"] > comp["profit"]  # and it pays


# -- the price-adjustment rule: cobweb stability and its step bound -------------------------------


def _tatonnement(speed: float, max_step: float, steps: int = 400) -> np.ndarray:
    """Price path of the vendors' rule against linear demand D = a - b p and fixed supply S."""
    a, b, supply, p = 200.0, 1.0, 100.0, 60.0  # equilibrium p* = (a - S) / b = 100
    params = PriceRuleParams(speed=speed, max_step=max_step, min_margin=0.0, max_margin=math.inf)
    path = [p]
    for _ in range(steps):
        z = max(-1.0, (a - b * p - supply) / supply)
        p = excess_demand(PriceSignal(price=p, unit_cost=1.0, excess_demand=z), params)
        path.append(p)
    return np.array(path)


def test_price_rule_converges_inside_the_cobweb_stability_bound() -> None:
    # Linearised at p* the map is p' = p (1 + k (a - b p - S)/S); its slope is 1 - k b p*/S = 1 - k,
    # stable for 0 < k < 2 (monotone for k < 1, damped oscillation for 1 < k < 2).
    for speed in (0.2, 0.9, 1.5, 1.9):
        path = _tatonnement(speed, max_step=1.0)
        assert path[-1] == pytest.approx(100.0, rel=1e-6), speed
    oscillating = _tatonnement(1.5, max_step=1.0)
    assert np.any(np.diff(np.sign(oscillating[:30] - 100.0)) != 0), "overshoots when 1 < k < 2"


def test_price_rule_does_not_converge_outside_the_bound() -> None:
    path = _tatonnement(2.5, max_step=1.0)
    assert np.abs(path[-50:] - 100.0).max() > 10.0  # a persistent cycle, not the equilibrium


@pytest.mark.parametrize("max_step", [0.01, 0.05, 0.1])
def test_step_bound_holds_on_both_sides(max_step: float) -> None:
    """However large the signal, the price moves by at most max_step a month, up and down."""
    params = PriceRuleParams(speed=10.0, max_step=max_step, min_margin=0.0, max_margin=math.inf)
    up = excess_demand(PriceSignal(price=100.0, unit_cost=1.0, excess_demand=50.0), params)
    down = excess_demand(PriceSignal(price=100.0, unit_cost=1.0, excess_demand=-1.0), params)
    assert up == pytest.approx(100.0 * (1 + max_step)) and down == pytest.approx(100.0 * (1 - max_step))
    # an over-fast rule (k = 2.5, unstable) held by the bound cycles within about max_step of the
    # equilibrium instead of swinging widely: the bound trades speed for stability
    tail = _tatonnement(2.5, max_step=max_step, steps=3000)[-200:]
    assert np.abs(tail / 100.0 - 1).max() <= 2 * max_step + 1e-9
