"""Textbook limits of the compute market through the public model (``market.run`` on the scenario
files in tests/scenarios/), each against its analytic value.

The tiny market: one product with avoidable cost c = 0.2 USD per chip-hour (1 PFLOP/s a chip), one
lab whose demand curve is D(m) = 100 m^e PFLOP/s (m in USD per PFLOP-hour, e its elasticity, the
same in the short and long run so the curve stays put), contracts of one month, no new chips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import market
from market.economics import lerner_price

SCENARIOS = Path(__file__).parent / "scenarios"
COST = 0.2  # opex_usd_per_chip_hour of the tiny market's product


def run(name: str, **overrides) -> market.RunResult:
    return market.run(market.load_scenario(SCENARIOS / f"{name}.toml", overrides), seed=0)


def contract_prices(result: market.RunResult) -> pl.DataFrame:
    """Per step: the least and greatest contract price, and the chips rented."""
    return (result.tables["contracts"].group_by("step")
            .agg(low=pl.col("price_usd_per_chip_hour").min(), high=pl.col("price_usd_per_chip_hour").max(),
                 chips=pl.col("chips").sum())
            .sort("step"))


def asks(result: market.RunResult, cloud: str) -> np.ndarray:
    return result.fleet.filter(pl.col("cloud") == cloud).sort("step")["rental_price_usd_per_chip_hour"].to_numpy()


def test_two_identical_sellers_with_spare_capacity_price_at_marginal_cost() -> None:
    """Bertrand: each cloud could serve all the lab wants at cost, so the lab's outside option
    (the other cloud, which would rent at its avoidable cost) holds every contract at c from the
    first month; the posted asks undercut each other, a tick (5%) at a time, to within two ticks
    of c (below that, matching the rival beats a cut that leaves almost no margin)."""
    result = run("bertrand", steps=30)
    prices = contract_prices(result)
    assert prices["low"].min() == pytest.approx(COST, rel=1e-12)
    assert prices["high"].max() == pytest.approx(COST, rel=1e-12)
    assert prices["chips"][-1] == pytest.approx(100 * COST ** -2.0, rel=1e-9)  # the demand at c: 2,500
    for cloud in ("a", "b"):
        path = asks(result, cloud)
        assert path[0] > 1.5 * COST
        assert np.all(np.diff(path) <= 1e-12), "asks only fall while capacity is spare"
        assert COST <= path[-1] <= COST / (1 - 0.05) ** 2


def test_one_seller_with_the_same_capacity_keeps_the_monopoly_markup() -> None:
    """The same capacity in one cloud's hands: its ask moves to the Lerner price c e/(1 + e)
    (0.4 at e = -2, twice the competitive price) and the lab, with no outside option, pays it."""
    result = run("tiny_market", steps=36, **{"clouds.a.fleet.gpu": 10000.0})
    lerner = lerner_price(COST, -2.0)
    assert lerner == pytest.approx(0.4)
    last = contract_prices(result).row(-1, named=True)
    assert last["low"] == pytest.approx(lerner, rel=1e-4) and last["high"] == pytest.approx(lerner, rel=1e-4)
    assert last["chips"] == pytest.approx(100 * lerner ** -2.0, rel=1e-3)  # sells what is demanded there
    assert asks(result, "a")[-1] == pytest.approx(lerner, rel=1e-4)
    # the markup follows the stated elasticity: more elastic demand, a smaller markup
    more_elastic = {f"demand.{k}_elasticity": -4.0 for k in ("training", "inference", "long_run")}
    elastic = run("tiny_market", steps=36, **{"clouds.a.fleet.gpu": 50000.0}, **more_elastic)
    assert contract_prices(elastic)["high"][-1] == pytest.approx(lerner_price(COST, -4.0), rel=1e-4)


def test_capacities_below_the_cournot_quantities_price_at_inverse_demand_of_total_capacity() -> None:
    """Kreps-Scheinkman: two clouds with 138.9 chips each, less than their Cournot quantities (703
    at c = 0.2, e = -2), end at P(K1 + K2) = (277.8 / 100)^(-1/2) = 0.6, both sold out, and
    neither gains by raising its price. Undercutting moves in ticks of 1%, so the price settles
    within a tick of P."""
    capacity = 100 / 0.6 ** 2 / 2
    cournot_price = COST / (1 - 1 / (2 * 2.0))  # p (1 + s/e) = c with s = 1/2, e = -2
    cournot_quantity = 100 * cournot_price ** -2.0 / 2
    assert capacity < cournot_quantity
    result = run("kreps_scheinkman", steps=48)
    last = contract_prices(result).row(-1, named=True)
    assert last["low"] == pytest.approx(0.6, rel=0.01) and last["high"] == pytest.approx(0.6, rel=0.01)
    fleet = result.fleet.filter(pl.col("step") == 47)
    assert (fleet["contracted_chips"] >= 0.98 * capacity).all()


@pytest.mark.parametrize("rule", [None, "netted"])
def test_substitute_products_clear_together_at_inverse_demand_of_their_total_capacity(rule: str | None) -> None:
    """The Kreps-Scheinkman market with each seller's chips a different product that the lab finds
    a perfect substitute (tests/scenarios/substitutes.toml): competitive equilibrium clears the
    products together, at P(K1 + K2) = 0.6, both sold out, as when they were one product, from the
    first month on. The default ``negotiation.substitutes = "joint"`` (docs/ODD.md 7.7 (a)) clears
    them together; ``"netted"`` nets the lab's need of its share of the other product's free
    chips."""
    result = run("substitutes", steps=48, **({} if rule is None else {"negotiation.substitutes": rule}))
    _clear_together(result)
    first = contract_prices(result).row(0, named=True)
    rel = 1e-9 if rule == "netted" else 1e-6  # "joint": to its Newton solve's tolerance (clearing.TOLERANCE)
    assert first["low"] == pytest.approx(0.6, rel=rel) and first["high"] == pytest.approx(0.6, rel=rel)
    assert first["chips"] == pytest.approx(100 / 0.6 ** 2, rel=rel)


def test_clearing_products_one_at_a_time_leaves_substitutes_idle() -> None:
    """The rule the model had before, kept as ``negotiation.substitutes = "ignored"`` for
    comparison (docs/VALIDATION.md): each product's competitive price clears that product's
    capacity against the lab's whole need, so each prices at P(K_j) = (138.9 / 100)^(-1/2) = 0.849,
    the lab buys its 138.9 chips at one of them and the other's stand idle every month."""
    result = run("substitutes", steps=48, **{"negotiation.substitutes": "ignored"})
    last = contract_prices(result).row(-1, named=True)
    assert last["low"] == pytest.approx((100 / 0.6 ** 2 / 2 / 100) ** -0.5, rel=0.01)
    fleet = result.fleet.filter(pl.col("step") == 47)
    assert fleet["contracted_chips"].sum() == pytest.approx(100 / 0.6 ** 2 / 2, rel=0.02)


def _clear_together(result: market.RunResult) -> None:
    capacity = 100 / 0.6 ** 2 / 2
    fleet = result.fleet.filter(pl.col("step") == 47)
    assert (fleet["contracted_chips"] >= 0.98 * capacity).all()
    last = contract_prices(result).row(-1, named=True)
    assert last["low"] == pytest.approx(0.6, rel=0.01) and last["high"] == pytest.approx(0.6, rel=0.01)


def test_capacity_short_of_demand_prices_at_the_value_of_the_marginal_buyer_served() -> None:
    """Peak-load pricing: five labs want 100 PFLOP/s each up to values 5, 4, 3, 2, 1; four clouds
    hold 300 chips. The price rises to 3, the value of the marginal lab served; the labs that value
    compute at 2 and 1 are priced out and their demand recorded as unmet."""
    result = run("scarcity", steps=12)
    prices = contract_prices(result)
    assert prices["low"].min() == pytest.approx(3.0, rel=1e-6) and prices["high"].max() == pytest.approx(3.0, rel=1e-6)
    assert prices["chips"].to_list() == pytest.approx([300.0] * 12)
    served = result.tables["contracts"].group_by("lab").agg(pl.col("chips").sum()).sort("lab")
    assert served["lab"].to_list() == ["lab", "lab3", "lab4"]
    last = result.steps.row(-1, named=True)
    assert last["unmet_pflops"] == pytest.approx(200.0)
    unmet = result.tables["labs"].filter(pl.col("step") == 11).sort("lab")
    assert dict(zip(unmet["lab"], unmet["unmet_pflops"], strict=True)) == pytest.approx(
        {"lab": 0.0, "lab1": 100.0, "lab2": 100.0, "lab3": 0.0, "lab4": 0.0})


@pytest.mark.parametrize("seed", range(4))
def test_a_partner_is_served_first_at_its_partner_cloud_and_on_better_terms(seed: int) -> None:
    """The scarcity market with the marginal lab (value 3) in a partnership with cloud a, 20% off:
    it is served at a before any lab at arm's length, every month and whatever the order the labs
    draw, so it takes all of a's 75 chips, at 20% below the price of 3 the others pay; it rents its
    other 25 PFLOP/s elsewhere at 3, and the market still serves the three labs valuing compute most."""
    deal = {"lab": "lab3", "clouds": ["a"], "discount": 0.2, "source": "test"}
    sc = market.load_scenario(SCENARIOS / "scarcity.toml", {"partnerships.p": deal}, steps=12)
    result = market.run(sc, seed=seed)
    contracts = result.tables["contracts"]
    at_a = contracts.filter(pl.col("lab") == "lab3", pl.col("cloud") == "a").group_by("step").agg(
        pl.col("chips").sum(), pl.col("price_usd_per_chip_hour").min().alias("low"),
        pl.col("price_usd_per_chip_hour").max().alias("high")).sort("step")
    assert at_a["chips"].to_list() == pytest.approx([75.0] * 12)
    assert at_a["low"].to_list() == pytest.approx([0.8 * 3.0] * 12, rel=1e-6)
    assert at_a["high"].to_list() == pytest.approx([0.8 * 3.0] * 12, rel=1e-6)
    others = contracts.filter((pl.col("lab") != "lab3") | (pl.col("cloud") != "a"))["price_usd_per_chip_hour"]
    assert others.to_list() == pytest.approx([3.0] * others.len(), rel=1e-6)
    served = contracts.group_by("lab").agg(pl.col("chips").sum()).sort("lab")
    assert served["lab"].to_list() == ["lab", "lab3", "lab4"]


def test_a_partnership_must_name_a_lab_and_clouds_of_the_scenario() -> None:
    with pytest.raises(market.ScenarioError, match=r"partnerships\.p\.clouds\[0\]: unknown cloud 'nowhere'"):
        market.load_scenario(SCENARIOS / "scarcity.toml", {"partnerships.p": {"lab": "lab3", "clouds": ["nowhere"]}})
    with pytest.raises(market.ScenarioError, match=r"partnerships\.p\.lab: unknown lab 'nobody'"):
        market.load_scenario(SCENARIOS / "scarcity.toml", {"partnerships.p": {"lab": "nobody", "clouds": ["a"]}})


@pytest.mark.parametrize("power", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_without_a_binding_outside_option_the_price_is_the_nash_split(power: float) -> None:
    """One lab, cloud a with capacity to spare, and cloud b too dear to be an alternative: the
    price splits the surplus between a's avoidable cost and the lab's value (2) by bargaining
    power, p = c + (1 - beta_lab)(v - c), every month."""
    result = run("bargaining", steps=6, **{"labs.lab.bargaining_power": power})
    nash = COST + (1 - power) * (2.0 - COST)
    prices = contract_prices(result)
    assert prices["low"].to_list() == pytest.approx([nash] * 6, rel=1e-12)
    assert prices["high"].to_list() == pytest.approx([nash] * 6, rel=1e-12)


@pytest.mark.parametrize(("power", "binds"), [(0.0, True), (0.5, True), (0.8, False)])
def test_a_binding_outside_option_sets_the_price(power: float, binds: bool) -> None:
    """Cloud b would rent the same chips at 0.6 (cost x 3): where the Nash split lies above that
    (2.0 and 1.1 for a lab with power 0 and 0.5) the lab's outside option binds and the price is
    0.6; where it lies below (0.56 for a lab with power 0.8) the split stands."""
    result = run("bargaining", steps=1, **{"labs.lab.bargaining_power": power, "clouds.b.pricing.min_margin": 2.0})
    nash = COST + (1 - power) * (2.0 - COST)
    assert (nash > 0.6) == binds
    (price,) = result.tables["contracts"]["price_usd_per_chip_hour"].to_list()
    assert price == pytest.approx(0.6 if binds else nash, rel=1e-12)


def _breakeven(build_months: int) -> float:
    """The rental price (USD per chip-hour) at which a new chip just pays (Tobin's q = 1)."""
    from scipy.optimize import brentq

    scenario = market.load_scenario(SCENARIOS / "time_to_build.toml",
                                    {f"clouds.{c}.investment.build_months": build_months for c in "abcd"})
    cloud = market.MarketModel(scenario, seed=0, record=False).clouds["a"]
    cost = 20000 * (1 + cloud.cfg.investment.build_cost_share)
    return brentq(lambda p: cloud.chip_value("gpu", p) - cost, COST, 100.0)


def _cycle(build_months: int) -> tuple[np.ndarray, np.ndarray]:
    """Monthly mean contract price and installed chips of the time-to-build market."""
    result = run("time_to_build", **{f"clouds.{c}.investment.build_months": build_months for c in "abcd"})
    prices = (result.tables["contracts"].group_by("step")
              .agg((pl.col("chips") * pl.col("price_usd_per_chip_hour")).sum() / pl.col("chips").sum())
              .sort("step")["chips"].to_numpy())
    installed = result.fleet.group_by("step").agg(pl.col("installed_chips").sum()).sort("step")
    return prices, installed["installed_chips"].to_numpy()


def test_time_to_build_makes_prices_overshoot_then_fall_and_longer_leads_swing_more() -> None:
    """A hog cycle: demand doubles at month 12. Before, the price clears the fixed capacity (0.81)
    and a chip is worth less than it costs, so nobody invests. After, the price jumps to the new
    clearing price (3.24 = 0.81 x 2^2 at elasticity -1/2) and stays there until ordered capacity
    comes online build_months later; orders keep coming meanwhile, so capacity overshoots and the
    price falls below the level at which a new chip pays. The longer the lead time, the more capacity is
    ordered before any arrives: deeper falls and larger overshoots. Without growth in demand the
    price then stays below the level at which a new chip would pay (q = 1)."""
    troughs, peaks = [], []
    for lead in (0, 3, 6, 12):
        prices, installed = _cycle(lead)
        assert prices[:12] == pytest.approx([0.81] * 12, rel=1e-6)
        assert installed[11] == pytest.approx(1000.0)
        assert prices[12] == pytest.approx(0.81 * 4, rel=1e-3)
        assert np.all(prices[12:12 + lead] == pytest.approx(prices[12], rel=1e-9)), "high until capacity arrives"
        if lead:
            assert installed[12 + lead - 1] == pytest.approx(1000.0), "nothing arrives before the lead time"
        assert prices[-1] < _breakeven(lead), "capacity overshoots: the price ends below the level where chips pay"
        troughs.append(prices[12:].min())
        peaks.append(installed.max())
    assert troughs == sorted(troughs, reverse=True) and len(set(troughs)) == 4, troughs
    assert peaks == sorted(peaks) and len(set(peaks)) == 4, peaks


def test_without_investment_there_is_no_hog_cycle() -> None:
    """The mechanism switched off: with the clouds' investment response at 0 nobody orders chips,
    so after demand doubles the price jumps to the new clearing price (3.24) and stays there, and
    capacity stays at 1,000 chips: the overshoot and fall above come from investment with time to
    build, not from anything else in the market."""
    off = {f"clouds.{c}.investment.response": 0.0 for c in "abcd"}
    for lead in (0, 6):
        result = run("time_to_build", **off, **{f"clouds.{c}.investment.build_months": lead for c in "abcd"})
        prices = (result.tables["contracts"].group_by("step")
                  .agg((pl.col("chips") * pl.col("price_usd_per_chip_hour")).sum() / pl.col("chips").sum())
                  .sort("step")["chips"].to_numpy())
        installed = result.fleet.group_by("step").agg(pl.col("installed_chips").sum()).sort("step")["installed_chips"]
        assert installed.to_numpy() == pytest.approx(1000.0)
        assert prices[:12] == pytest.approx([0.81] * 12, rel=1e-6)
        assert prices[12:] == pytest.approx([0.81 * 4] * (prices.size - 12), rel=1e-3)


def test_with_inelastic_demand_a_monopolist_asks_the_buyers_value() -> None:
    """The demand response switched off (every elasticity 0): there is no Lerner price; the lone
    cloud's ask climbs to the lab's value (100 per PFLOP-hour), the lab still rents all it wants
    (100), and the deal is the Nash split between avoidable cost and that value, 0.2 + 0.5 x 99.8
    (equal bargaining power). With elasticity -2 the same market settles at 0.4 (above)."""
    off = {f"demand.{k}_elasticity": 0.0 for k in ("training", "inference", "long_run")}
    result = run("tiny_market", steps=36, **{"clouds.a.fleet.gpu": 10000.0}, **off)
    assert asks(result, "a")[-1] == pytest.approx(100.0, rel=1e-6)
    last = contract_prices(result).row(-1, named=True)
    assert last["chips"] == pytest.approx(100.0)
    assert last["low"] == pytest.approx(COST + 0.5 * (100.0 - COST)) and last["high"] == pytest.approx(last["low"])


@pytest.mark.parametrize("rule", ["netted", "ignored"])
@pytest.mark.parametrize("name", ["bertrand", "tiny_market", "kreps_scheinkman", "scarcity", "bargaining", "time_to_build"])
def test_counting_substitutes_changes_nothing_where_there_is_one_product(name: str, rule: str) -> None:
    """With one product there is no substitute to count: the default joint clearing gives every
    limit above exactly as the per-product rules (``negotiation.substitutes = "ignored"`` or
    ``"netted"``) do (every table but the run's id and config, and the joint solve's own record:
    its iterations and residual, null under the other rules)."""
    a = run(name, steps=24)
    b = run(name, steps=24, **{"negotiation.substitutes": rule})
    assert b.steps["clearing_iterations"].is_null().all() and a.steps["clearing_iterations"].is_not_null().all()
    solve = ["run_id", "clearing_iterations", "clearing_residual"]
    for table in ("contracts", "prices", "fleet", "steps"):
        columns = [c for c in solve if c in a.tables[table].columns]
        assert a.tables[table].drop(columns).equals(b.tables[table].drop(columns)), table
