"""Property-based tests: random valid scenarios keep the model's accounting.

Hypothesis builds random but valid markets (vendors, products, clouds, labs, long tails, capacities,
prices, channels, withholding rules, packaging shocks, bargaining protocols, rationing and price
rules) and runs each for 24 monthly steps, phase by phase, checking after every step that

* vendor shares (compute, shipments, revenue) sum to 1 (or are all 0 when there is nothing to share);
* no price, stock, budget or demand is negative or non-finite;
* chips are conserved: the starting fleets plus every chip shipped equal the chips installed, in
  transit and retired, product by product; no vendor makes more than its wafers allow, and the
  vendors together get no more wafers than the packaging capacity;
* contracted chips never exceed installed chips, and equal the chips under the labs' active contracts;
* a withholding rule is obeyed: a buyer a rule excludes gets at most ``1 - share`` of what was free
  (so nothing at all when ``share = 1``), at the vendor level (shipments) and the cloud level
  (contracts).

Markets with extreme values (:func:`extreme_variants`: numeric fields at the ends of their ranges,
subnormal or 1e±300 where the range allows) keep the invariants too, or stop with
:class:`market.ModelError` naming the step and the quantity, never with another exception.

CI runs a bounded, derandomized number of examples; ``pytest -m slow tests/test_properties.py``
runs the larger campaign whose figures docs/RELIABILITY.md records.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import numeric_leaves, with_value
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from market.contracts import KINDS
from market.economics import BARGAINING, PRICE_RULES, RATIONING
from market.economics.withholding import withheld
from market.model import MarketModel, ModelError
from market.scenario import Scenario, load_scenario

STEPS = 24
CI_EXAMPLES = 100  # random markets from scratch, in CI
CI_OVERRIDE_EXAMPLES = 20  # random overrides of the built-in scenarios, in CI
CI_EXTREME_EXAMPLES = 15  # markets with extreme values, in CI
SLOW_EXAMPLES = 2000  # the larger campaign behind -m slow
TOL = 1e-6  # relative tolerance of the accounting checks (the model counts chips as floats)

ECOSYSTEMS = ["cuda", "tpu", "rocm", "neuron"]
SMALL_MARKETS = [str(Path(__file__).parent / "scenarios" / f"{name}.toml") for name in ("tiny_market", "competition")]
finite = {"allow_nan": False, "allow_infinity": False}


# -- random valid scenarios ------------------------------------------------------------------------


def rules(draw: st.DrawFn, vendors: list[str], products: list[str], buyers: list[str]) -> dict[str, Any] | None:
    """A random withholding rule (or none) naming only ids that exist."""
    if not draw(st.booleans()):
        return None
    rule: dict[str, Any] = {
        "tier": draw(st.sampled_from(["top", "previous", "any"])),
        "share": draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0.0, 1.0, **finite)),
    }
    if draw(st.booleans()):
        rule["vendor"] = draw(st.sampled_from(vendors))
    if products and draw(st.integers(0, 3)) == 0:
        rule["products"] = draw(st.lists(st.sampled_from(products), max_size=2, unique=True))
    if buyers and draw(st.booleans()):
        rule["buyers"] = draw(st.lists(st.sampled_from(buyers), min_size=1, max_size=2, unique=True))
    if buyers and draw(st.integers(0, 3)) == 0:
        rule["except_buyers"] = draw(st.lists(st.sampled_from(buyers), max_size=1, unique=True))
    return rule


def pricing(draw: st.DrawFn) -> dict[str, Any]:
    """A vendor's list-price rule."""
    low = draw(st.floats(0.0, 2.0, **finite))
    return {"rule": draw(st.sampled_from(sorted(PRICE_RULES))), "speed": draw(st.floats(0.0, 1.0, **finite)),
            "max_step": draw(st.floats(0.01, 1.0, **finite)), "min_margin": low,
            "max_margin": low + draw(st.floats(0.0, 5.0, **finite))}


def rental_pricing(draw: st.DrawFn) -> dict[str, Any]:
    """A cloud's rental pricing."""
    return {"rule": draw(st.sampled_from(["best_response", "best_response", "cost_plus"])),
            "min_margin": draw(st.floats(0.0, 2.0, **finite)), "speed": draw(st.floats(0.01, 1.0, **finite)),
            "undercut": draw(st.floats(0.0, 0.5, **finite)), "review_months": draw(st.integers(1, 6)),
            "threshold": draw(st.floats(0.0, 0.3, **finite))}


def investment(draw: st.DrawFn) -> dict[str, Any]:
    return {"cost_of_capital": draw(st.floats(0.0, 1.0, **finite)), "response": draw(st.floats(0.0, 1.0, **finite)),
            "build_months": draw(st.integers(0, 12)), "build_cost_share": draw(st.floats(0.0, 5.0, **finite)),
            "expected_price_decline": draw(st.floats(0.0, 0.9, **finite))}


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A random small market, valid by construction (and validated by :class:`Scenario`)."""
    n_vendors = draw(st.integers(1, 3))
    vendors = [f"v{i}" for i in range(n_vendors)]
    shares = [draw(st.floats(0.0, 1.0, **finite)) for _ in vendors]
    total = sum(shares)
    scale = draw(st.just(1.0) | st.floats(0.0, 1.0, **finite)) / total if total > 1e-6 else 0.0
    products: dict[str, dict[str, Any]] = {}
    for v in vendors:
        for j in range(draw(st.integers(1, 3))):
            cost = draw(st.floats(500.0, 20_000.0, **finite))
            release = draw(st.integers(-24, 0) | st.integers(-24, 20))
            products[f"{v}p{j}"] = {
                "vendor": v, "pflops": draw(st.floats(0.3, 5.0, **finite)), "unit_cost_usd": cost,
                "list_price_usd": cost * draw(st.floats(1.0, 4.0, **finite)), "release_step": release,
                "end_of_sale_step": draw(st.none() | st.none() | st.integers(release + 1, release + 40)),
                "chips_per_wafer": draw(st.floats(2.0, 40.0, **finite)),
                "opex_usd_per_chip_hour": draw(st.floats(0.01, 1.0, **finite)),
            }
    pids = sorted(products)
    ecosystems = {v: draw(st.sampled_from(ECOSYSTEMS)) for v in vendors}
    n_labs = draw(st.integers(1, 4))
    labs_ids = [f"lab{i}" for i in range(n_labs)]
    own_dc = {lab: draw(st.integers(0, 3)) == 0 for lab in labs_ids}
    n_clouds = draw(st.integers(1, 4))
    cloud_ids = [f"c{i}" for i in range(n_clouds)]
    all_clouds = cloud_ids + [f"{lab}_dc" for lab in labs_ids if own_dc[lab]]

    def fleet() -> dict[str, float]:
        chosen = draw(st.lists(st.sampled_from(pids), min_size=1, max_size=3, unique=True))
        return {p: draw(st.sampled_from([0.0, 1.0]) | st.floats(1_000.0, 200_000.0, **finite)) for p in chosen}

    vendor_cfg = {}
    for v, share in zip(vendors, shares, strict=True):
        channel = draw(st.sampled_from(["anyone", "anyone", "own_cloud", "named"]))
        vendor_cfg[v] = {
            "ecosystem": ecosystems[v], "software_maturity": draw(st.floats(0.1, 1.0, **finite)),
            "packaging_share": share * scale * (1 - 1e-9), "channel": channel,
            "buyers": draw(st.lists(st.sampled_from(all_clouds), max_size=2, unique=True)) if channel == "named" else [],
            "lead_time_months": draw(st.integers(0, 6)), "top_tier_mix": draw(st.floats(0.0, 1.0, **finite)),
            "rationing": draw(st.sampled_from(sorted(RATIONING))), "pricing": pricing(draw),
        }
        if (rule := rules(draw, vendors, pids, all_clouds + labs_ids)) is not None:
            vendor_cfg[v]["withholding"] = rule
    clouds = {}
    for c in cloud_ids:
        clouds[c] = {
            "kind": draw(st.sampled_from(["hyperscaler", "neocloud"])), "fleet": fleet(),
            "buys": draw(st.lists(st.sampled_from(vendors), min_size=1, max_size=3, unique=True)),
            "capex_usd_per_month": draw(st.floats(1e8, 5e9, **finite) | st.just(0.0)),
            "capex_growth": draw(st.floats(-0.5, 0.5, **finite)),
            "initial_markup": draw(st.floats(0.0, 3.0, **finite)), "pricing": rental_pricing(draw),
            "lifetime_months": draw(st.integers(6, 72)), "investment": investment(draw),
        }
        if draw(st.integers(0, 2)) == 0:
            clouds[c]["on_order"] = {draw(st.sampled_from(pids)): draw(st.floats(0.0, 100_000.0, **finite))}
        if draw(st.booleans()):
            clouds[c]["vendor"] = draw(st.sampled_from(vendors))
        if draw(st.integers(0, 3)) == 0:
            clouds[c]["serves"] = draw(st.lists(st.sampled_from(labs_ids), min_size=1, max_size=3, unique=True))
        if draw(st.integers(0, 2)) == 0:
            v = draw(st.sampled_from(vendors))
            clouds[c]["vendor_access"] = {v: draw(st.lists(st.sampled_from(labs_ids + ["*"]), max_size=2, unique=True))}
        if (rule := rules(draw, vendors, pids, labs_ids)) is not None:
            clouds[c]["withholding"] = rule
        if draw(st.booleans()) and clouds[c]["fleet"]:
            p = draw(st.sampled_from(sorted(clouds[c]["fleet"])))
            clouds[c]["rental_price_usd_per_chip_hour"] = {p: draw(st.floats(0.01, 20.0, **finite))}
    labs = {}
    for lab in labs_ids:
        labs[lab] = {
            "demand_pflops": draw(st.floats(1.0, 2e6, **finite) | st.floats(1e5, 2e6, **finite)), "demand_growth": draw(st.floats(-0.5, 0.5, **finite)),
            "demand_volatility": draw(st.floats(0.0, 1.0, **finite)), "training_share": draw(st.floats(0.0, 1.0, **finite)),
            "budget_usd_per_month": draw(st.floats(1e3, 3e9, **finite)),
            "budget_growth": draw(st.floats(-0.5, 0.5, **finite)),
            "value_usd_per_pflop_hour": draw(st.floats(0.01, 20.0, **finite)),
            "readiness": {e: draw(st.floats(0.0, 1.0, **finite))
                          for e in draw(st.lists(st.sampled_from(sorted(set(ecosystems.values()))), unique=True))},
            "learning_rate": draw(st.floats(0.0, 1.0, **finite)), "switching_cost": draw(st.floats(0.0, 5.0, **finite)),
            "diversification": draw(st.floats(0.0, 2.0, **finite)),
            "below_frontier_penalty": draw(st.floats(0.0, 2.0, **finite)),
            "bargaining_power": draw(st.floats(0.0, 1.0, **finite)), "contract_months": draw(st.integers(1, 24)),
        }
        if draw(st.booleans()):
            labs[lab]["affiliation"] = draw(st.sampled_from(vendors))
        if own_dc[lab]:
            labs[lab]["own_datacenter"] = {"fleet": fleet(),
                                           "buys": draw(st.lists(st.sampled_from(vendors), max_size=2, unique=True)),
                                           "capex_usd_per_month": draw(st.floats(0.0, 1e9, **finite)),
                                           "investment": investment(draw)}
    steps = sorted(draw(st.lists(st.integers(-12, 40), min_size=1, max_size=3, unique=True)))
    shocks = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, STEPS))
        shocks.append({"start_step": start, "end_step": start + draw(st.integers(1, 12)),
                       "factor": draw(st.sampled_from([0.5, 2.0, 0.0]) | st.floats(0.0, 10.0, **finite))})
    data = {
        "name": "random", "steps": STEPS,
        "negotiation": {"protocol": draw(st.sampled_from(sorted(BARGAINING))),
                        "substitutes": draw(st.sampled_from(["ignored", "netted", "joint"])),
                        "seller_discount": draw(st.floats(0.05, 0.99, **finite)),
                        "buyer_discount": draw(st.floats(0.05, 0.99, **finite)),
                        "first_mover": draw(st.sampled_from(["buyer", "seller"])),
                        "concession_rate": draw(st.floats(0.01, 1.0, **finite)),
                        "max_rounds": draw(st.integers(1, 60)), "max_offers_per_lab": draw(st.integers(1, 20))},
        "demand": {"reference_price_usd_per_pflop_hour": draw(st.floats(0.1, 10.0, **finite)),
                   "training_elasticity": draw(st.floats(-3.0, 0.0, **finite)),
                   "inference_elasticity": draw(st.floats(-3.0, 0.0, **finite)),
                   "long_run_elasticity": draw(st.floats(-3.0, 0.0, **finite)),
                   "adjustment_months": draw(st.floats(1.0, 36.0, **finite)),
                   "jumps": draw(st.lists(st.builds(lambda s, f: {"step": s, "factor": f}, st.integers(0, STEPS),
                                                    st.floats(0.1, 5.0, **finite)), max_size=2))},
        "packaging": {"capacity_wafers_per_month": [[s, draw(st.floats(1_000.0, 200_000.0, **finite) | st.just(0.0))] for s in steps],
                      "rationing": draw(st.sampled_from(sorted(RATIONING))), "shocks": shocks,
                      "expansion_response": draw(st.floats(0.0, 1.0, **finite)),
                      "expansion_lead_months": draw(st.integers(0, 24)),
                      "max_expansion_per_year": draw(st.floats(0.0, 5.0, **finite))},
        "products": products, "vendors": vendor_cfg, "clouds": clouds, "labs": labs,
        "long_tail": {"count": draw(st.integers(0, 6)), "total_demand_pflops": draw(st.just(0.0) | st.floats(1.0, 1e6, **finite)),
                      "readiness": {ecosystems[vendors[0]]: draw(st.floats(0.0, 1.0, **finite))}},
    }
    return Scenario.model_validate(data)


PUBLIC = ["azure", "aws", "gcp", "oracle", "coreweave", "neoclouds"]


@st.composite
def builtin_variants(draw: st.DrawFn) -> Scenario:
    """A built-in scenario with random dotted overrides: withholding, shocks, protocol, capacities."""
    name = draw(st.sampled_from(["baseline", "openai_google_tpu", "open_tpu_access", "tpu_merchant", "supply_shock"]))
    labs = ["openai", "anthropic", "deepmind", "meta", "xai", "ssi", "apple"]
    overrides: dict[str, Any] = {
        "steps": STEPS, "long_tail.count": draw(st.integers(0, 8)),
        "negotiation.protocol": draw(st.sampled_from(sorted(BARGAINING))),
        "negotiation.substitutes": draw(st.sampled_from(["ignored", "netted", "joint"])),
        "packaging.rationing": draw(st.sampled_from(sorted(RATIONING))),
        "clouds.gcp.withholding": {"vendor": "google", "tier": draw(st.sampled_from(["top", "previous", "any"])),
                                   "buyers": draw(st.lists(st.sampled_from(labs), min_size=1, max_size=3, unique=True)),
                                   "share": draw(st.floats(0.0, 1.0, **finite))},
        "vendors.nvidia.withholding": draw(st.none() | st.fixed_dictionaries({
            "tier": st.sampled_from(["top", "any"]),
            "buyers": st.lists(st.sampled_from(["azure", "aws", "gcp", "oracle", "coreweave", "neoclouds", "*"]),
                               min_size=1, max_size=2, unique=True),
            "share": st.floats(0.0, 1.0, **finite)})),
        "packaging.shocks": draw(st.lists(st.builds(lambda s, d, f: {"start_step": s, "end_step": s + d, "factor": f},
                                                    st.integers(0, STEPS), st.integers(1, 12),
                                                    st.floats(0.0, 3.0, **finite)), max_size=2)),
        "partnerships": {f"p{k}": {
            "lab": draw(st.sampled_from(labs)),
            "clouds": draw(st.lists(st.sampled_from(["azure", "aws", "gcp", "oracle", "coreweave", "neoclouds"]),
                                    min_size=1, max_size=3, unique=True)),
            "discount": draw(st.floats(0.0, 0.9, **finite)), "start_step": draw(st.integers(-1, STEPS))}
            for k in range(draw(st.integers(0, 2)))},
        "deals": {f"d{k}": {  # anchor deals for labs and leases between clouds, all for Nvidia chips
            **({"lab": draw(st.sampled_from(labs))} if draw(st.booleans()) else {"lessee": lessee}),
            "cloud": draw(st.sampled_from([c for c in PUBLIC if c != lessee])), "vendor": "nvidia",
            "usd": draw(st.floats(1e8, 5e10, **finite)), "months": draw(st.integers(12, 84)),
            "sign_step": draw(st.integers(-1, STEPS))}
            for k, lessee in enumerate(draw(st.lists(st.sampled_from(PUBLIC), max_size=2)))},
        "labs.openai.supply_security": draw(st.just(0.0) | st.floats(0.0, 2.0, **finite)),  # 0 or anchor deals of its own
        "labs.meta.supply_security": draw(st.just(0.0) | st.floats(0.0, 2.0, **finite)),
        "labs.openai.demand_growth": draw(st.floats(-0.5, 0.5, **finite)),
        "labs.openai.switching_cost": draw(st.floats(0.0, 5.0, **finite)),
        "clouds.gcp.capex_usd_per_month": draw(st.floats(0.0, 1e10, **finite)),
        "clouds.coreweave.investment.response": draw(st.floats(0.0, 1.0, **finite)),
        "clouds.azure.investment.build_months": draw(st.integers(0, 24)),
        "demand.long_run_elasticity": draw(st.floats(-3.0, 0.0, **finite)),
        "demand.training_elasticity": draw(st.floats(-3.0, 0.0, **finite)),
        "vendors.nvidia.lead_time_months": draw(st.integers(0, 12)),
    }
    if overrides["vendors.nvidia.withholding"] is None:
        del overrides["vendors.nvidia.withholding"]
    note(f"scenario {name} with {overrides}")
    return load_scenario(name, overrides)


# -- the invariants ---------------------------------------------------------------------------------


def close(a: float, b: float, scale: float = 1.0) -> bool:
    return abs(a - b) <= TOL * max(abs(a), abs(b), scale) + 1e-6


def check_run(sc: Scenario, seed: int) -> dict[str, pl.DataFrame]:
    """Run ``sc`` phase by phase for its steps, checking the invariants after every phase that
    moves chips, then the recorded tables."""
    model = MarketModel(sc, seed=seed)
    products = sc.products
    received: list[tuple[str, str, float]] = []
    for cloud in model.cloud_list:  # log every delivery (vendor -> cloud) without changing it
        def receive(product: str, chips: float, price: float, lead_time: int, _orig=cloud.receive,
                    _cid=cloud.cloud_id) -> None:
            received.append((_cid, product, chips))
            _orig(product, chips, price, lead_time)
        cloud.receive = receive
    start = defaultdict(float)
    for cloud in model.cloud_list:
        for p, chips in cloud.installed.items():
            start[p] += chips
        for _, p, chips, _ in cloud.pipeline:  # ordered before the first month
            start[p] += chips
    shipped_total = defaultdict(float)

    for _ in range(sc.steps):
        model.exogenous_changes()
        model.check_finite("at the start of the month")  # as MarketModel.step() does
        received.clear()
        model.chip_market()
        check_chip_market(model, received)
        for v in model.vendor_list:
            for p, chips in v.shipped.items():
                shipped_total[p] += chips
        free = {(c.cloud_id, p): c.free(p) for c in model.cloud_list
                for p in c.installed.keys() | c.leased_in.keys()}  # a lessee rents out chips it leased in
        model.compute_market_round()
        check_contracts(model, free)
        check_deals(model)
        model.settlement()
        model.check_finite("after settlement")
        model.record()
        check_stocks(model, start, shipped_total, products)
    tables = model.recorder.tables(model.run_id)
    check_tables(tables, sc)
    return tables


# magnitudes tried, in a drawn order, for a numeric field; the first its range allows is kept
EXTREME_VALUES = [1e300, 1e13, 1e12, 1e9, 1e7, 1e6, 2**62, 1200, 600, 120, -600, 5e-324, 1e-300, 1e-6, 0.0,
                  -1e-300, -0.5, 1.0]


@st.composite
def extreme_variants(draw: st.DrawFn) -> Scenario:
    """A built-in scenario (or a small test market) with one to four numeric fields, anywhere in it,
    at an extreme magnitude their range allows: the ends of the range, subnormals, 1e±300."""
    source = draw(st.sampled_from(["baseline", "openai_google_tpu", "supply_shock", *SMALL_MARKETS]))
    data = load_scenario(source, steps=STEPS // 2).model_dump(mode="json")
    leaves = [path for path, _ in numeric_leaves(data) if path != ("steps",)]
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(leaves))
        for value in draw(st.permutations(EXTREME_VALUES)):
            try:
                Scenario.model_validate(changed := with_value(data, path, value))
            except ValidationError:
                continue
            data = changed
            note(f"{'.'.join(map(str, path))} = {value!r}")
            break
    return Scenario.model_validate(data)


def check_extreme_run(sc: Scenario, seed: int) -> None:
    """The invariants hold, or the run stops with a ModelError naming the step (never another exception)."""
    try:
        exercised(check_run(sc, seed))
    except ModelError as exc:
        event("stopped with a ModelError")
        assert str(exc).startswith("step "), exc


def exercised(tables: dict[str, pl.DataFrame]) -> None:
    """Note what an example exercised (shown by pytest --hypothesis-show-statistics)."""
    event(f"contracts signed: {'yes' if tables['contracts'].height else 'no'}")
    event(f"chips shipped: {'yes' if tables['vendors']['shipped_chips'].sum() > 0 else 'no'}")
    for level in ("vendor", "cloud"):
        withheld = tables["withholding"].filter(pl.col("level") == level).height
        event(f"chips withheld at {level} level: {'yes' if withheld else 'no'}")


def check_chip_market(model: MarketModel, received: list[tuple[str, str, float]]) -> None:
    products = model.config.products
    wafers = sum(v.wafers for v in model.vendor_list)
    assert wafers <= model.packaging_capacity * (1 + TOL) + 1e-6, (wafers, model.packaging_capacity)
    by_product: dict[str, float] = defaultdict(float)
    for cloud, p, chips in received:
        assert chips > 0 and math.isfinite(chips), (cloud, p, chips)
        by_product[p] += chips
    for v in model.vendor_list:
        assert v.wafers <= v.wafers_requested * (1 + TOL) + 1e-6, (v.vendor_id, v.wafers, v.wafers_requested)
        used = sum(v.shipped[p] / products[p].chips_per_wafer for p in v.product_ids)
        assert used <= v.wafers * (1 + TOL) + 1e-6, (v.vendor_id, used, v.wafers)
        for p in v.product_ids:
            assert close(v.shipped[p], by_product.get(p, 0.0)), (p, v.shipped[p], by_product.get(p))
            assert v.list_price[p] > 0 and math.isfinite(v.list_price[p]), (p, v.list_price[p])
        # chips made of each product (``production`` holds what was shipped once rationing is done)
        ratio = 0.0 if v.wafers_requested <= 0 else min(1.0, v.wafers / v.wafers_requested)
        made = {p: v.book.get(p, 0.0) * ratio for p in v.product_ids}  # the order book, as far as wafers go
        for cloud, p, chips in received:  # vendor-level withholding: an excluded cloud gets <= (1 - share)
            if products[p].vendor != v.vendor_id:
                continue
            c = model.clouds[cloud]
            ids = [(cloud, c.cfg.vendor == v.vendor_id)]
            if c.owner_lab:
                ids.append((c.owner_lab, model.labs[c.owner_lab].cfg.affiliation == v.vendor_id))
            share, _ = withheld(v.cfg.withholding, product=p, vendor=v.vendor_id, tier=model.products[p].tier,
                                buyers=ids)
            limit = (1.0 - share) * made[p]
            assert chips <= limit * (1 + TOL) + 1e-6, f"{cloud} got {chips} of {p}, withheld share {share}, made {made[p]}"


def check_contracts(model: MarketModel, free: dict[tuple[str, str], float]) -> None:
    """Contracts signed this step: positive, priced, and within what withholding allows."""
    signed: dict[tuple[str, str, str], float] = defaultdict(float)
    for c in model.signed:
        assert c.chips > 0 and math.isfinite(c.chips), c
        assert c.price_usd_per_chip_hour > 0 and math.isfinite(c.price_usd_per_chip_hour), c
        assert c.months >= 1 and c.end_step > model.t, c
        assert c.kind in KINDS, c
        assert c.kind != "on_demand" or c.months == 1, c
        assert (c.lab is None) == (c.lessee is not None), c
        if c.kind == "anchor":  # served before the market opens, from what was free then (check_deals)
            continue
        signed[(c.lab, c.cloud, c.product)] += c.chips
    for (lab, cloud_id, p), chips in signed.items():
        cloud = model.clouds[cloud_id]
        assert cloud.serves(lab, model.products[p].vendor), (lab, cloud_id, p)
        share, _ = cloud.withheld(lab, p)
        limit = (1.0 - share) * free[(cloud_id, p)]
        assert chips <= limit * (1 + TOL) + 1e-6, (
            f"{lab} signed {chips} chips of {p} at {cloud_id}: withheld share {share} of {free[(cloud_id, p)]} free")


def check_deals(model: MarketModel) -> None:
    """An anchor deal delivers no more than its commitment pays for: chips x price x hours x
    months of all its tranches at most the deal's US dollars."""
    for deal in model.deals:
        if deal.product is None:
            continue
        cfg = deal.cfg
        held = model.labs[cfg.lab].contracts if cfg.lab else model.clouds[cfg.lessee].leases
        paid = sum(c.chips * c.price_usd_per_chip_hour * model.hours * c.months for c in held
                   if c.kind == "anchor" and c.cloud == cfg.cloud and c.months > 1)  # renewals of leases: a month each
        total = sum(d.cfg.usd for d in model.deals
                    if (d.cfg.lab, d.cfg.lessee) == (cfg.lab, cfg.lessee) and d.cfg.cloud == cfg.cloud)
        assert paid <= total * (1 + TOL) + 1e-3, (deal.deal_id, paid, total)
        assert deal.pending >= -1e-9, (deal.deal_id, deal.pending)
    for cloud in model.cloud_list:  # a leased chip is counted once: leased out by one cloud, in by another
        for p, chips in cloud.leased_out.items():
            assert -1e-6 <= chips <= cloud.installed.get(p, 0.0) * (1 + TOL) + 1e-6, (cloud.cloud_id, p, chips)
    for p in model.products:
        lent = sum(c.leased_out.get(p, 0.0) for c in model.cloud_list)
        borrowed = sum(c.leased_in.get(p, 0.0) for c in model.cloud_list)
        assert close(lent, borrowed, lent), (p, lent, borrowed)


def check_stocks(model: MarketModel, start: dict[str, float], shipped: dict[str, float],
                 products: dict[str, Any]) -> None:
    """Non-negative stocks and prices; contracted <= installed; chips conserved per product."""
    held: dict[str, float] = defaultdict(float)
    under_contract: dict[tuple[str, str], float] = defaultdict(float)
    for lab in model.lab_list:
        assert lab.budget > 0 and math.isfinite(lab.budget), (lab.lab_id, lab.budget)
        assert lab.demand > 0 and math.isfinite(lab.demand), (lab.lab_id, lab.demand)
        for c in lab.contracts:
            under_contract[(c.cloud, c.product)] += c.chips
        for e, r in lab.readiness.items():
            assert 0.0 <= r <= 1.0, (lab.lab_id, e, r)
    for cloud in model.cloud_list:
        assert cloud.capex_budget >= 0 and math.isfinite(cloud.capex_budget), (cloud.cloud_id, cloud.capex_budget)
        for p in cloud.installed.keys() | cloud.leased_in.keys():
            chips = cloud.installed.get(p, 0.0)
            usable = chips + cloud.leased_in.get(p, 0.0) - cloud.leased_out.get(p, 0.0)  # what it may rent out
            contracted = cloud.contracted[p]
            assert chips >= 0 and contracted >= 0, (cloud.cloud_id, p, chips, contracted)
            assert contracted <= usable * (1 + TOL) + 1e-6, f"{cloud.cloud_id} {p}: {contracted} contracted > {usable} usable"
            assert close(contracted, under_contract.get((cloud.cloud_id, p), 0.0), usable), (
                cloud.cloud_id, p, contracted, under_contract.get((cloud.cloud_id, p)))
            held[p] += chips + cloud.retired.get(p, 0.0)
        for p in cloud.rental_price:
            assert cloud.rental_price[p] > 0 and math.isfinite(cloud.rental_price[p]), (cloud.cloud_id, p)
        for _, p, chips, price in cloud.pipeline:
            assert chips > 0 and price > 0, (cloud.cloud_id, p, chips, price)
            held[p] += chips
        assert cloud.book_value.keys() <= cloud.installed.keys()
        assert all(b >= 0 for b in cloud.book_value.values()), cloud.book_value
    for p in products:
        assert close(held.get(p, 0.0), start.get(p, 0.0) + shipped.get(p, 0.0), 1.0), (
            f"{p}: {held.get(p, 0.0)} chips installed + in transit + retired, but "
            f"{start.get(p, 0.0)} at start + {shipped.get(p, 0.0)} shipped")


def check_tables(tables: dict[str, pl.DataFrame], sc: Scenario) -> None:
    shares = tables["shares"].group_by("step").agg(
        pl.col("compute_share").sum(), pl.col("shipment_share").sum(), pl.col("revenue_share").sum(),
        pl.col("compute_pflops").sum(), pl.col("shipped_chips").sum(), pl.col("revenue_usd").sum())
    for row in shares.iter_rows(named=True):
        for col, total in (("compute_share", "compute_pflops"), ("shipment_share", "shipped_chips"),
                           ("revenue_share", "revenue_usd")):
            expected = 1.0 if row[total] > 0 else 0.0
            assert abs(row[col] - expected) < 1e-9, (row["step"], col, row[col])
    assert tables["steps"].height == sc.steps
    non_negative = {
        "prices": ["chip_price_usd", "rental_price_usd_per_chip_hour", "rental_price_usd_per_pflop_hour",
                   "contract_price_usd_per_chip_hour", "installed_chips"],
        "fleet": ["installed_chips", "contracted_chips", "in_transit_chips", "rental_price_usd_per_chip_hour"],
        "labs": ["budget_usd", "spend_usd", "demand_pflops", "contracted_pflops", "served_pflops", "unmet_pflops"],
        "clouds": ["capex_budget_usd", "capex_spent_usd", "installed_chips", "capacity_pflops", "contracted_pflops",
                   "revenue_usd", "cost_usd"],
        "vendors": ["wafers_requested", "wafers", "capacity_chips", "orders_chips", "shipped_chips", "revenue_usd"],
        "steps": ["packaging_wafers", "demand_pflops", "served_pflops", "unmet_pflops", "installed_pflops",
                  "withheld_chips", "hhi"],
        "contracts": ["chips", "pflops", "price_usd_per_chip_hour"],
        "withholding": ["chips_withheld"],
    }
    for table, cols in non_negative.items():
        df = tables[table]
        for col in cols:
            bad = df.filter(pl.col(col).is_not_null() & ~(pl.col(col).is_finite() & (pl.col(col) >= 0)))
            assert bad.is_empty(), (table, col, bad.head(3))
    usable = pl.col("installed_chips") + pl.col("leased_in_chips") - pl.col("leased_out_chips")
    fleet = tables["fleet"].filter(pl.col("contracted_chips") > usable * (1 + TOL) + 1e-6)
    assert fleet.is_empty(), fleet.head(3)
    labs = tables["labs"].filter(pl.col("served_pflops") > pl.col("demand_pflops") * (1 + TOL))
    assert labs.is_empty(), labs.head(3)
    steps = tables["steps"]
    assert steps.filter((pl.col("utilisation") < 0) | (pl.col("utilisation") > 1 + TOL)).is_empty()
    assert steps.filter(pl.col("hhi") > 10_000 * (1 + TOL)).is_empty()
    # a rule withholding everything (share 1) from a lab: no contract with it for a matching product
    contracts = tables["contracts"]
    for cid, cloud in sc.clouds.items():
        rule = cloud.withholding
        if rule is None or rule.share < 1.0:
            continue
        for row in contracts.filter(pl.col("cloud") == cid).iter_rows(named=True):
            affiliated = cloud.vendor is not None and sc.labs[row["lab"]].affiliation == cloud.vendor \
                if row["lab"] in sc.labs else False
            share, _ = withheld(rule, product=row["product"], vendor=row["vendor"], tier=row["tier"],
                                buyers=[(row["lab"], affiliated)])
            assert share < 1.0, f"withheld chips in a contract: {row}"


# -- the tests -------------------------------------------------------------------------------------


def _one_product_market(name: str, steps: int, cloud: dict, lab: dict) -> Scenario:
    """A market of one product made by nobody (no packaging), one cloud ``c`` and one lab ``lab``
    with a large budget and value: the regression tests' setting."""
    return Scenario.model_validate({
        "name": name, "steps": steps,
        "packaging": {"capacity_wafers_per_month": [[0, 0.0]]},
        "products": {"p": {"vendor": "v", "pflops": 1.0, "unit_cost_usd": 500.0, "list_price_usd": 500.0,
                           "opex_usd_per_chip_hour": 0.01}},
        "vendors": {"v": {"ecosystem": "cuda", "packaging_share": 0.0}},
        "clouds": {"c": cloud},
        "labs": {"lab": {"budget_usd_per_month": 1e9, "value_usd_per_pflop_hour": 10.0, "readiness": {"cuda": 1.0},
                         **lab}},
    })


def test_a_withheld_share_bounds_the_lab_month_not_each_purpose() -> None:
    """Regression (found by the property test): with ``share = 0.25`` a lab renting for training
    and then for inference took 0.75 of the free chips and then 0.75 of the rest (0.94 in all)."""
    sc = _one_product_market("withheld_quarter", 2,
                             {"fleet": {"p": 1000.0}, "withholding": {"tier": "any", "buyers": ["*"], "share": 0.25}},
                             {"demand_pflops": 5000.0, "training_share": 0.5})
    model = MarketModel(sc, seed=0)
    model.step()
    assert "training" in {c.purpose for c in model.signed}
    assert sum(c.chips for c in model.signed) == pytest.approx(750.0)  # not 750 + 0.75 * 250
    check_run(sc, seed=0)


def test_chips_on_order_too_few_to_split_add_no_empty_deliveries() -> None:
    """Regression (found by the slow campaign): ``on_order = 5e-324`` chips, split over the months of
    lead and build time, underflowed to pipeline entries of zero chips."""
    sc = _one_product_market("subnormal_order", 3,
                             {"fleet": {"p": 100.0}, "on_order": {"p": 5e-324}, "investment": {"build_months": 2}},
                             {"demand_pflops": 50.0})
    assert MarketModel(sc, seed=0).clouds["c"].pipeline == []
    check_run(sc, seed=0)


def test_a_lessee_renting_out_leased_chips_of_a_product_it_never_installed() -> None:
    """Regression (found by the slow campaign): a cloud leasing Rubin chips from another rented them to
    labs, and the check of what was free knew only the products the lessee had installed."""
    sc = load_scenario("baseline", {
        "steps": 24, "long_tail.count": 0, "negotiation.protocol": "concession", "packaging.rationing": "priority",
        "deals": {"d0": {"lessee": "azure", "cloud": "aws", "vendor": "nvidia", "usd": 1e8, "months": 12,
                         "sign_step": 16}},
        "labs.openai.demand_growth": 0.0, "labs.openai.switching_cost": 0.0, "clouds.gcp.capex_usd_per_month": 0.0,
        "clouds.coreweave.investment.response": 0.0, "clouds.azure.investment.build_months": 0,
        "demand.long_run_elasticity": 0.0, "demand.training_elasticity": 0.0, "vendors.nvidia.lead_time_months": 0})
    tables = check_run(sc, seed=0)
    assert tables["contracts"].filter((pl.col("cloud") == "azure") & (pl.col("product") == "rubin")).height > 0


SETTINGS = {"deadline": None, "derandomize": True, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=CI_EXAMPLES, **SETTINGS)
@given(sc=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_random_markets_keep_the_invariants(sc: Scenario, seed: int) -> None:
    exercised(check_run(sc, seed))


@settings(max_examples=CI_OVERRIDE_EXAMPLES, **SETTINGS)
@given(sc=builtin_variants(), seed=st.integers(0, 2**32 - 1))
def test_builtin_scenarios_with_random_overrides_keep_the_invariants(sc: Scenario, seed: int) -> None:
    exercised(check_run(sc, seed))


@settings(max_examples=CI_EXTREME_EXAMPLES, **SETTINGS)
@given(sc=extreme_variants(), seed=st.integers(0, 2**32 - 1))
def test_markets_with_extreme_values_keep_the_invariants_or_stop_with_a_model_error(sc: Scenario, seed: int) -> None:
    check_extreme_run(sc, seed)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES // 4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=extreme_variants(), seed=st.integers(0, 2**32 - 1))
def test_markets_with_extreme_values_campaign(sc: Scenario, seed: int) -> None:
    check_extreme_run(sc, seed)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_random_markets_keep_the_invariants_campaign(sc: Scenario, seed: int) -> None:
    exercised(check_run(sc, seed))


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES // 4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=builtin_variants(), seed=st.integers(0, 2**32 - 1))
def test_builtin_scenarios_with_random_overrides_campaign(sc: Scenario, seed: int) -> None:
    exercised(check_run(sc, seed))
