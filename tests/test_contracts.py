"""Contract kinds (docs/ODD.md 7.19): on demand, term reservations and take-or-pay anchor deals.

Small markets where the accounting can be followed by hand (tests/scenarios/tiny_market.toml: one
product, one cloud, one lab, no new chips unless a deal orders them), plus the built-in scenarios.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import market
from market.model import MarketModel
from market.scenario import ScenarioError

SCENARIOS = Path(__file__).parent / "scenarios"
HOURS = 730.0
# demand that does not answer to price, so that a lab buys on demand what it does not reserve
INELASTIC = {"demand.training_elasticity": 0.0, "demand.inference_elasticity": 0.0, "demand.long_run_elasticity": 0.0}


def tiny(overrides: dict | None = None, **kw) -> market.Scenario:
    return market.load_scenario(SCENARIOS / "tiny_market.toml", overrides or {}, **kw)


def anchor(**terms) -> dict:
    return {"lab": "lab", "cloud": "a", "vendor": "v", "usd": 3.0 * HOURS * 12 * 50, "months": 12,
            "sign_step": -1, "price_usd_per_chip_hour": 3.0, **terms}


def test_take_or_pay_is_paid_when_the_capacity_is_unused() -> None:
    """An anchor deal for 50 chips a year at $3: in month 2 the lab's demand collapses to 1% (a
    demand jump), it uses almost none of the deal's chips, and it still pays for all 50 every month
    of the term; the cloud books the same payments as revenue. Once the term ends it pays nothing
    for them."""
    sc = tiny({"deals.d": anchor(), "demand.jumps": [{"step": 2, "factor": 0.01}]}, steps=16)
    result = market.run(sc, seed=0)
    deal = result.contracts.filter(pl.col("kind") == "anchor")
    assert deal["chips"].sum() == pytest.approx(50.0)
    assert set(deal["step"]) == {0} and set(deal["months"]) == {12}
    monthly = 50.0 * 3.0 * HOURS
    labs = result.tables["labs"].sort("step")
    clouds = result.tables["clouds"].sort("step")
    for t in range(2, 12):
        lab = labs.row(t, named=True)
        assert lab["anchor_pflops"] == pytest.approx(50.0)
        assert lab["demand_pflops"] < 5.0 and lab["utilisation"] < 0.1  # unused ...
        assert lab["spend_usd"] >= monthly * (1 - 1e-12)  # ... and paid for
        assert clouds.row(t, named=True)["revenue_usd"] >= monthly * (1 - 1e-12)
    assert labs.row(12, named=True)["anchor_pflops"] == 0.0
    assert labs.row(12, named=True)["spend_usd"] < monthly / 10


def test_an_expired_contract_frees_its_capacity_the_month_it_ends() -> None:
    """Every month and every kind: the chips a cloud holds under contract are exactly the chips of
    the contracts signed at step s for m months with s <= t < s + m; in the month a contract ends
    its chips are free again (and a falling demand leaves them free)."""
    sc = tiny({**INELASTIC, "deals.d": anchor(months=14), "labs.lab.contract_months": 3, "labs.lab.demand_volatility": 0.2,
               "labs.lab.supply_security": 0.0, "demand.jumps": [{"step": 6, "factor": 0.3}]}, steps=24)
    result = market.run(sc, seed=1)
    contracts = result.contracts
    assert set(contracts["kind"]) == {"anchor", "reserved", "on_demand"}
    fleet = result.fleet.sort("step")
    for t, held in zip(fleet["step"], fleet["contracted_chips"], strict=True):
        live = contracts.filter(pl.col("step") <= t, pl.col("step") + pl.col("months") > t)["chips"].sum()
        assert held == pytest.approx(live, rel=1e-9, abs=1e-9), t
    ends = contracts.filter(pl.col("step") + pl.col("months") == 14, pl.col("kind") == "anchor")["chips"].sum()
    assert ends > 0
    before, after = (fleet.filter(pl.col("step") == s)["contracted_chips"].item() for s in (13, 14))
    assert after <= before - ends + 1e-9  # the deal's chips are free in month 14


def test_on_demand_months_cost_the_premium_and_reservations_the_term_discount() -> None:
    """Prices of the kinds at one cloud: an on-demand month costs the posted ask times (1 +
    on_demand_premium) while capacity is spare; a three-year reservation costs the bargained price
    times 1 - 2 x term_discount_per_year (never below the floor)."""
    over = {**INELASTIC, "labs.lab.demand_volatility": 0.3, "labs.lab.supply_security": 0.0, "labs.lab.contract_months": 36,
            "clouds.a.pricing.on_demand_premium": 0.5, "clouds.a.pricing.term_discount_per_year": 0.1}
    c = market.run(tiny(over, steps=3), seed=0).contracts
    od = c.filter(pl.col("kind") == "on_demand")
    assert od.height > 0
    assert (od["price_usd_per_chip_hour"] == od["list_price_usd_per_chip_hour"] * 1.5).all()
    sc = tiny(over)
    reserved = c.filter(pl.col("kind") == "reserved")
    assert sc.clouds["a"].pricing.term_factor(36) == pytest.approx(0.8)
    assert (reserved["price_usd_per_chip_hour"] < reserved["list_price_usd_per_chip_hour"]).all()


def test_a_deal_signed_during_the_run_makes_the_cloud_invest() -> None:
    """A deal signed at month 2 with no new chips in sight (no capex, no free capacity): the cloud
    orders the chips the commitment pays for, the vendor makes them, and they reach the lab as
    anchor contracts; the cloud's spending on chips is the deal's, on top of its own (none)."""
    over = {"packaging.capacity_wafers_per_month": [[0, 1000]], "clouds.a.fleet.gpu": 100.0,
            "clouds.a.buys": ["v"], "clouds.a.capex_usd_per_month": 0.0,
            "deals.d": anchor(sign_step=2, usd=2.0 * HOURS * 24 * 500, months=24, price_usd_per_chip_hour=2.0)}
    sc = tiny(over, steps=12)
    with_deal = market.run(sc, seed=0)
    without = market.run(tiny({k: v for k, v in over.items() if k != "deals.d"}, steps=12), seed=0)
    deal = with_deal.contracts.filter(pl.col("kind") == "anchor")
    assert deal["chips"].sum() == pytest.approx(500.0)
    assert deal["step"].min() >= 2
    spent = with_deal.tables["clouds"]["capex_spent_usd"].sum()
    assert spent > 0 and spent == pytest.approx(with_deal.tables["vendors"]["revenue_usd"].sum(), rel=1e-12)
    assert without.tables["clouds"]["capex_spent_usd"].sum() == 0.0
    assert with_deal.fleet["installed_chips"].max() == pytest.approx(600.0)


def test_the_baseline_signs_the_deals_public_by_its_start() -> None:
    """``baseline`` (June 2025) holds OpenAI's CoreWeave contracts of March and May 2025: $15.9B over
    five years, served from CoreWeave's B200 fleet and orders; the chips are what the commitment
    pays for at CoreWeave's B200 ask and its three-year discount."""
    sc = market.load_scenario("baseline", steps=12)
    model = MarketModel(sc, seed=0)
    model.run()
    deals = {d.deal_id: d for d in model.deals}
    assert set(deals) == {"openai_coreweave", "openai_coreweave_may"}
    price = sc.clouds["coreweave"].rental_price_usd_per_chip_hour["b200"] * sc.clouds["coreweave"].pricing.term_factor(36)
    chips = (11.9e9 + 4.0e9) / (60 * sc.hours_per_month * price)
    got = model.recorder.tables("x")["contracts"].filter(pl.col("kind") == "anchor")
    assert set(got["lab"]) == {"openai"} and set(got["cloud"]) == {"coreweave"} and set(got["product"]) == {"b200"}
    assert got["chips"].sum() == pytest.approx(chips, rel=1e-9)
    assert all(d.pending == 0.0 for d in deals.values())


@pytest.mark.parametrize(("terms", "field"), [
    ({"lab": "nobody"}, "deals.d.lab"),
    ({"cloud": "nowhere"}, "deals.d.cloud"),
    ({"vendor": None}, "deals.d"),
    ({"product": "gpu"}, "deals.d"),
    ({"usd": -1.0}, "deals.d.usd"),
    ({"months": 6}, "deals.d.months"),
    ({"sign_step": 3}, "deals.d.cloud"),  # the cloud does not buy from the vendor
])
def test_a_deal_that_cannot_be_served_is_refused_naming_the_field(terms: dict, field: str) -> None:
    with pytest.raises(ScenarioError) as err:
        tiny({"deals.d": anchor(**terms)})
    assert field in str(err.value)


def test_a_deal_before_the_run_needs_the_chips_in_the_fleet() -> None:
    with pytest.raises(ScenarioError, match="deals.d.sign_step"):
        tiny({"deals.d": anchor(), "clouds.a.fleet": {}})


def test_commitment_is_a_newsvendor_quantile() -> None:
    """A lab reserves up to the 1 - r/o quantile of its need at mid-term: none when reserving is no
    cheaper than on demand; all it needs when its demand is certain; less the more volatile."""
    sure = MarketModel(tiny({"labs.lab.supply_security": 0.0}), seed=0).labs["lab"]
    assert sure.commitment(100.0, 3.0, 3.0) == 0.0  # no discount, falling prices: keep flexible
    assert sure.commitment(100.0, 2.0, 3.0) == 100.0  # demand_volatility 0: its need is certain
    calm, wild = (MarketModel(tiny({"labs.lab.supply_security": 0.0, "labs.lab.demand_volatility": v}),
                              seed=0).labs["lab"] for v in (0.05, 0.3))
    assert wild.commitment(100.0, 2.5, 3.0) < calm.commitment(100.0, 2.5, 3.0) < 100.0


# -- leases between clouds -----------------------------------------------------------------------


def leased(**terms) -> market.Scenario:
    """Cloud ``a`` holds 50 chips and leases them all to cloud ``b`` (which has none), for the lab
    to rent at ``b``."""
    lease = {"lessee": "b", "cloud": "a", "vendor": "v", "usd": 1.0 * HOURS * 12 * 50, "months": 12,
             "sign_step": -1, "price_usd_per_chip_hour": 1.0, **terms}
    return tiny({"clouds.a.fleet.gpu": 50.0, "clouds.b": {"kind": "neocloud"}, "deals.l": lease,
                 "labs.lab.demand_pflops": 40.0}, steps=16)


def test_a_leased_chip_is_counted_once_and_rented_by_the_lessee() -> None:
    """The lease is a contract whose buyer is a cloud (lab empty, lessee ``b``); the lab rents the
    chips at ``b``; ``a`` holds them as installed and leased out, ``b`` as leased in. In every
    month of the lease the chips are counted once: installed only at ``a``, the vendor's compute
    equal to the labs' contracts, the market's contracted compute the labs' contracts over the
    chips installed. ``b`` pays ``a`` the lease every month."""
    result = market.run(leased(), seed=0)
    c = result.contracts
    lease = c.filter(pl.col("lessee").is_not_null())
    assert lease.height == 1 and lease["lab"].is_null().all() and lease.row(0, named=True)["cloud"] == "a"
    assert lease["chips"].sum() == pytest.approx(50.0) and lease["kind"].to_list() == ["anchor"]
    labs = c.filter(pl.col("lab").is_not_null())
    assert set(labs.filter(pl.col("step") < 12)["cloud"]) == {"b"}  # while leased, all the capacity is at the lessee
    fleet, clouds = result.fleet, result.tables["clouds"]
    for t in range(12):
        month = fleet.filter(pl.col("step") == t)
        a, b = (month.filter(pl.col("cloud") == x).row(0, named=True) for x in ("a", "b"))
        assert a["installed_chips"] == 50.0 and b["installed_chips"] == 0.0  # owned once
        assert a["leased_out_chips"] == 50.0 and b["leased_in_chips"] == 50.0
        assert a["contracted_chips"] == 0.0  # a's chips are all leased: none free, none rented by a
        live = labs.filter(pl.col("step") <= t, pl.col("step") + pl.col("months") > t)["chips"].sum()
        assert b["contracted_chips"] == pytest.approx(live)
        share = result.shares.filter(pl.col("step") == t)["compute_pflops"].sum()
        assert share == pytest.approx(live)  # the vendor's compute: the lab's contracts, once
        step = result.steps.filter(pl.col("step") == t).row(0, named=True)
        assert step["installed_pflops"] == 50.0 and step["contracted_pflops"] == pytest.approx(live)
        paid = 50.0 * 1.0 * HOURS
        rows = clouds.filter(pl.col("step") == t)
        assert rows.filter(pl.col("cloud") == "a")["revenue_usd"].item() == pytest.approx(paid)
        assert rows.filter(pl.col("cloud") == "b")["cost_usd"].item() >= paid


def test_no_two_clouds_offer_a_leased_chip() -> None:
    """Free capacity, cloud by cloud, adds up to the installed chips less those under the labs'
    contracts: a leased chip is free at most at the lessee."""
    model = MarketModel(leased(), seed=0)
    for _ in range(14):
        model.step()
        a, b = model.clouds["a"], model.clouds["b"]
        if model.t < 12:
            assert a.free("gpu") == 0.0
        assert a.free("gpu") + b.free("gpu") == pytest.approx(50.0 - b.contracted["gpu"] - a.contracted["gpu"])


def test_a_lease_ends_when_its_term_does_unless_the_lessees_customers_still_hold_the_chips() -> None:
    """A 12-month lease: once it ends, the chips the lab no longer rents go back to ``a``; those it
    still holds under a reservation stay leased, a month at a time, until that ends."""
    model = MarketModel(leased(), seed=0)
    for _ in range(16):
        model.step()
        a, b = model.clouds["a"], model.clouds["b"]
        if model.t < 12:
            assert b.leased_in["gpu"] == 50.0
        else:
            assert b.leased_in["gpu"] == pytest.approx(b.contracted["gpu"])  # only what its customers hold
            assert a.leased_out["gpu"] == pytest.approx(b.leased_in["gpu"])
            assert a.free("gpu") == pytest.approx(50.0 - b.leased_in["gpu"] - a.contracted["gpu"])


def test_a_lease_names_a_lessee_other_than_the_lessor() -> None:
    with pytest.raises(ScenarioError, match="deals.l.lessee"):
        leased(lessee="a")
    with pytest.raises(ScenarioError, match="exactly one buyer"):
        leased(lab="lab")


# -- anchor deals the labs sign ------------------------------------------------------------------


def short_market(**over) -> market.Scenario:
    """The tiny market with half the chips the lab wants (inelastic demand) and a cloud that may
    order more but has no budget of its own: only an anchor deal can bring new chips."""
    return tiny({**INELASTIC, "clouds.a.fleet.gpu": 50.0, "clouds.a.buys": ["v"], "clouds.a.capex_usd_per_month": 0.0,
                 "packaging.capacity_wafers_per_month": [[0, 1000]], "labs.lab.anchor_threshold": 0.05,
                 "labs.lab.supply_security": 0.5, **over}, steps=24)


def test_a_lab_short_of_secured_supply_signs_an_anchor_deal_that_finances_new_chips() -> None:
    """Wanting 100 chips and getting 50, a lab that values secured supply signs an anchor deal for
    the shortfall at the cloud's posted ask times the three-year factor; the cloud orders the
    chips (its spending on chips is the vendor's revenue, with no budget of its own); they reach
    the lab as anchor tranches only once made and built in (vendor lead time 3 + build 6 months),
    as new chips (the existing 50 stay the cloud's to rent). While they are on their way it signs
    no second deal for the same shortfall."""
    model = MarketModel(short_market(), seed=0)
    model.step()
    (deal,) = model.deals
    assert deal.cfg.lab == "lab" and deal.cfg.sign_step == 0 and deal.pending == pytest.approx(50.0)
    ask = model.clouds["a"].rental_price["gpu"]
    assert deal.price == pytest.approx(ask * model.config.clouds["a"].pricing.term_factor(36))
    assert deal.cfg.usd == pytest.approx(50.0 * deal.price * HOURS * 60)
    for _ in range(9):
        model.step()
        assert len(model.deals) == 1
    model.run(3)
    tables = model.recorder.tables("x")
    anchors = tables["contracts"].filter(pl.col("kind") == "anchor", pl.col("step") <= 10)
    # ordered in month 0, made in month 1, installed 3 + 6 months later
    assert anchors["chips"].sum() == pytest.approx(50.0) and anchors["step"].min() == 10
    assert tables["clouds"]["capex_spent_usd"].sum() == pytest.approx(tables["vendors"]["revenue_usd"].sum())
    assert tables["fleet"].filter(pl.col("step") == 10)["installed_chips"].item() == pytest.approx(100.0)


def test_without_a_wish_for_secured_supply_a_lab_signs_no_anchor_deal() -> None:
    model = MarketModel(short_market(**{"labs.lab.supply_security": 0.0}), seed=0)
    model.run()
    assert not model.deals
    assert model.recorder.tables("x")["fleet"]["installed_chips"].max() == 50.0


def test_a_lab_signs_no_anchor_deal_for_chips_withheld_from_it() -> None:
    """The cloud withholds the vendor's newest product from the lab: no deal (a deal may not get
    round a withholding rule)."""
    model = MarketModel(short_market(**{"clouds.a.withholding": {"tier": "any", "buyers": ["lab"], "share": 1.0}}),
                        seed=0)
    model.run(3)
    assert not model.deals


def test_an_anchor_deal_fits_in_the_budget_the_lab_has_not_committed() -> None:
    """With a budget that covers its 50 rented chips and 10 of the deal's, the deal is for 10 chips:
    rent and deal together use the whole budget, no more."""
    first = MarketModel(short_market(), seed=0)
    first.step()
    rent, price = first.labs["lab"].committed_spend(), first.deals[0].price
    budget = rent + 10.0 * price * HOURS
    model = MarketModel(short_market(**{"labs.lab.budget_usd_per_month": budget, "labs.lab.budget_growth": 0.0}), seed=0)
    model.step()
    (deal,) = model.deals
    assert deal.pending == pytest.approx(10.0)
    assert model.labs["lab"].committed_spend() + deal.pending * deal.price * HOURS == pytest.approx(budget)


def test_the_newsvendor_corners_through_the_model() -> None:
    """The two corners of the lab's choice, through a run of the tiny market: with demand it knows
    for certain (no volatility, no swings) and a reservation no dearer than on demand it reserves
    all it rents; with no on-demand premium, no term discount and prices expected to fall, a
    reservation costs more than buying month by month, and it rents everything on demand (it
    has no bargaining power, so a reservation is bargained at the posted ask, no lower)."""
    certain = market.run(tiny({**INELASTIC, "labs.lab.supply_security": 0.0}, steps=6), seed=0).contracts
    assert set(certain["kind"]) == {"reserved"}
    flexible = tiny({**INELASTIC, "labs.lab.supply_security": 0.0, "labs.lab.demand_volatility": 0.1,
                     "labs.lab.contract_months": 36, "labs.lab.bargaining_power": 0.0, "clouds.a.pricing.on_demand_premium": 0.0,
                     "clouds.a.pricing.term_discount_per_year": 0.0}, steps=6)
    c = market.run(flexible, seed=0).contracts
    assert set(c["kind"]) == {"on_demand"} and c["chips"].sum() > 0
