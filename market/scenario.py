"""Scenarios: typed configuration, TOML loading, inheritance and dotted-path overrides.

A scenario is a TOML file validated into a :class:`Scenario` before any run starts::

    >>> import market
    >>> sc = market.load_scenario("openai_google_tpu", **{"clouds.gcp.withholding.share": 0.5})
    >>> sc.clouds["gcp"].withholding.share
    0.5

Files may start from another scenario with ``extends = "baseline"`` (a built-in name or a
path relative to the file); tables are merged key by key, the extending file winning.
Every problem is reported as a :class:`ScenarioError` whose message names the dotted path of
the offending field and what is allowed.

Units: compute in dense bf16 PFLOP/s, money in US dollars, time in monthly steps.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler,
                      WrapValidator, field_validator, model_validator)
from pydantic_core import PydanticCustomError

from market.economics import BARGAINING, PRICE_RULES, RATIONING

__all__ = [
    "BUILTIN_DIR",
    "Cloud",
    "Deal",
    "Demand",
    "Investment",
    "Lab",
    "LongTail",
    "Partnership",
    "PerformanceClasses",
    "Product",
    "RentalPricing",
    "Scenario",
    "ScenarioError",
    "Vendor",
    "WithholdingRule",
    "builtin_scenarios",
    "load_scenario",
    "parse_override",
    "resolve_scenario",
    "validate_scenario",
]

BUILTIN_DIR = resources.files("market") / "scenarios"

def _number(x: float) -> str:
    """1e9, not 1000000000.0 or 1e+09: a bound as a user would write it."""
    return f"{x:g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def between(low: float, high: float, kind: type = float, *, low_open: bool = False, high_open: bool = False,
            unit: str = "") -> Any:
    """The type of a numeric field: a number of ``kind`` from ``low`` to ``high`` (excluding an end
    marked open), never inf or NaN. The bounds are pydantic constraints (the explorer reads them
    as slider ranges); a value outside them, or not a number at all, is reported as
    ``allowed: a number from LOW to HIGH`` under the field's dotted path."""
    what = "a whole number" if kind is int else "a number"
    lo = f"more than {_number(low)}" if low_open else f"from {_number(low)}"
    hi = f"{'and less than' if low_open else 'to less than'} {_number(high)}" if high_open else \
        f"{'and at most' if low_open else 'to'} {_number(high)}"
    allowed = f"{what} {lo} {hi}{' ' + unit if unit else ''}"

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("out_of_range", "allowed: {allowed}", {"allowed": allowed}) from None

    bounds = {"gt" if low_open else "ge": low, "lt" if high_open else "le": high}
    return Annotated[kind, Field(**bounds, **({"allow_inf_nan": False} if kind is float else {})), WrapValidator(check)]


# Plausible ranges of the quantities scenario fields share (docs/ODD.md 6.0): generous for any market
# a user could mean, small enough that the model's arithmetic (sums over chips, prices times hours
# times months) stays finite in float64.
MAX_STEP = 1200  # the longest run, months
Share = between(0.0, 1.0)
Rate = between(-0.5, 0.5)  # per-month growth
RunStep = between(0, MAX_STEP, int)  # a month of the run
Chips = between(0.0, 1e9, unit="chips")  # of one product at one cloud
UsdPerMonth = between(0.0, 1e13, unit="USD a month")  # budgets and capex limits
UsdPerChip = between(1e-3, 1e9, unit="USD")  # a chip's cost or price
UsdPerChipHour = between(1e-6, 1e7, unit="USD per chip-hour")
UsdPerPflopHour = between(1e-6, 1e6, unit="USD per PFLOP-hour")
Penalty = between(0.0, 10.0)  # a price penalty, per unit of price
MIN_TAIL_PFLOPS = 1e-3  # least mean demand of a long-tail lab, PFLOP/s


def _registered(registry: Mapping[str, Any], what: str) -> AfterValidator:
    """A validator for a rule chosen by name from one of the economics registries."""

    def check(v: str) -> str:
        if v not in registry:
            raise ValueError(f"unknown {what} {v!r}; allowed: {', '.join(sorted(registry))}")
        return v

    return AfterValidator(check)


RationingName = Annotated[str, _registered(RATIONING, "rationing rule")]
PriceRuleName = Annotated[str, _registered(PRICE_RULES, "price rule")]
ProtocolName = Annotated[str, _registered(BARGAINING, "bargaining protocol")]


class ScenarioError(ValueError):
    """A scenario (or override) a user wrote is invalid; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class WithholdingRule(_Strict):
    """Chips kept from some buyers by a vendor (chip sales) or a cloud (rentals).

    A product matches when its vendor is ``vendor`` (any vendor if empty) and its current
    tier is ``tier`` ("top" is each vendor's newest released product), or when it is named
    in ``products``. Matching buyers — labs for a cloud, clouds or labs for a vendor — may
    get at most ``1 - share`` of the holder's free capacity of a matching product.
    ``buyers = ["*"]`` means every buyer not affiliated with the holder, i.e. the share is
    reserved for internal use; ``except_buyers`` removes names from the rule.
    """

    vendor: str | None = None
    tier: Literal["top", "previous", "any"] = "top"
    products: list[str] = []
    buyers: list[str] = ["*"]
    except_buyers: list[str] = []
    share: Share = 1.0


class PricingConfig(_Strict):
    """A vendor's list-price rule from :data:`market.economics.PRICE_RULES` and its parameters."""

    rule: PriceRuleName = "excess_demand"
    speed: between(0.0, 10.0) = 0.2
    max_step: between(0.0, 1.0, low_open=True) = 0.1
    min_margin: between(0.0, 50.0) = 0.0
    max_margin: between(0.0, 1000.0) = 1000.0

    @model_validator(mode="after")
    def _band(self) -> PricingConfig:
        if self.max_margin < self.min_margin:
            raise ValueError("max_margin must be at least min_margin")
        return self


class RentalPricing(_Strict):
    """How a cloud prices rentals (docs/ODD.md 7.7): ``best_response`` sets its on-demand ask as the
    profit-maximising reply to rivals' asks on the residual demand of its product's market
    (Bertrand-Edgeworth); ``cost_plus`` (a lab's own data centres) transfers at avoidable cost
    plus ``min_margin``. Transaction prices are bargained (7.12), the ask caps them."""

    rule: Literal["best_response", "cost_plus"] = "best_response"
    min_margin: between(0.0, 10.0) = 0.0  # over avoidable (operating) cost
    speed: between(0.0, 1.0, low_open=True) = 0.5  # share of the log gap to the best reply closed a month
    undercut: between(0.0, 0.5) = 0.02  # a rival's ask is undercut by this share
    review_months: between(1, 120, int) = 1  # the posted ask changes at most this often
    threshold: Share = 0.0  # ... and only by at least this share (sticky list prices)
    # Contract kinds (docs/ODD.md 7.19): the posted ask is the one-year reserved price; on demand a
    # month costs this much more, and a reservation is this much cheaper per year of term beyond
    # the first (up to three years).
    on_demand_premium: between(0.0, 5.0) = 0.4
    term_discount_per_year: between(0.0, 0.45) = 0.175

    def term_factor(self, months: int) -> float:
        """Price of a reservation of ``months`` relative to a one-year one: a term discount per year
        beyond the first, counted between one and three years (shorter terms pay the one-year
        price, longer ones the three-year price)."""
        return 1.0 - self.term_discount_per_year * (min(max(months, 12), 36) - 12) / 12.0


class Investment(_Strict):
    """How a cloud (or a lab's own data centres) decides to buy chips (docs/ODD.md 7.4).

    Each month it values one chip of each vendor's newest product: the rental margin over
    operating cost it expects over the chip's life (``lifetime_months``), starting once the chip
    is built in, at the market's recent price per PFLOP-hour of that vendor's chips falling by
    ``expected_price_decline`` a year, discounted at ``cost_of_capital``. Against the price of the
    chip plus the data-centre build-out that goes with it (``build_cost_share`` of the chip price)
    this is Tobin's q; it orders ``response × (q - 1)`` of its installed PFLOP/s a month while
    q > 1, within its financing limit (``capex_usd_per_month``)."""

    cost_of_capital: between(0.0, 1.0) = 0.10  # a year
    response: between(0.0, 1.0) = 0.10  # share of capacity ordered a month per unit of q - 1
    build_months: between(0, 36, int) = 6  # data-centre time to build, after the vendor's lead time
    build_cost_share: between(0.0, 5.0) = 0.4  # facility and network, per unit of chip price
    expected_price_decline: between(0.0, 0.9) = 0.2  # a year, per PFLOP-hour


class DemandJump(_Strict):
    """Every lab's demand multiplied by ``factor`` from ``step`` on (a permanent shift)."""

    step: RunStep
    factor: between(0.0, 100.0, low_open=True)


class Demand(_Strict):
    """Labs' demand response to price (docs/CALIBRATION.md, "Demand elasticity").

    A lab's demand for useful compute of a purpose at price ``e`` (USD per useful PFLOP-hour; the
    penalties of switching, tier and concentration enter only its ranking and its choke price) is
    ``D = N (e / E)^eps_short``, with ``E`` its recent price
    level (moving average over ``adjustment_months``) and ``N = D0 (E / reference)^eps_long`` its
    demand at that level; ``D0`` is ``demand_pflops`` and its growth path. Nothing above the lab's
    value per PFLOP-hour (the choke price)."""

    reference_price_usd_per_pflop_hour: UsdPerPflopHour = 2.5
    training_elasticity: between(-5.0, 0.0) = -0.3  # short run
    inference_elasticity: between(-5.0, 0.0) = -0.7  # short run
    long_run_elasticity: between(-5.0, 0.0) = -1.0
    adjustment_months: between(1.0, 240.0) = 12.0
    jumps: list[DemandJump] = []
    # labs' expectation of how fast on-demand prices per PFLOP-hour fall, a year (what a reservation
    # locks in against; docs/ODD.md 7.19)
    expected_price_decline: between(0.0, 0.9) = 0.2


class PerformanceClasses(_Strict):
    """What "frontier" means market-wide (docs/ODD.md 2.2, :mod:`market.economics.classes`): a
    released chip is in the frontier class when it has at least ``pflops_share`` of the best
    released chip's PFLOP/s and ``memory_share`` of the most memory, and was released at most
    ``max_age_months`` before the newest released chip; the rest are mainstream. Labs' training
    prefers the frontier class."""

    pflops_share: Share = 0.4
    memory_share: Share = 0.4
    max_age_months: between(0, 600, int) = 36


class Product(_Strict):
    """A chip generation. Two things are derived each step: its vendor tier (the vendor's newest
    released product is "top", older ones "previous"; withholding rules use it) and its market-wide
    performance class (:class:`PerformanceClasses`; labs' preferences use it)."""

    name: str = ""
    vendor: str
    pflops: between(1e-6, 1e6, unit="PFLOP/s")  # dense bf16 PFLOP/s per chip
    memory_gb: between(0.0, 1e7, unit="GB") = 0.0
    unit_cost_usd: UsdPerChip  # vendor's cost to make one chip
    list_price_usd: UsdPerChip  # initial list price
    release_step: between(-600, 600, int) = 0
    end_of_sale_step: between(-600, 600, int) | None = None
    chips_per_wafer: between(1e-3, 1e6) = 16.0  # packages per CoWoS-class wafer
    opex_usd_per_chip_hour: UsdPerChipHour = 0.3  # power, cooling, network, staff: the avoidable cost of a rented chip-hour


class Vendor(_Strict):
    """A chip vendor: packaging allocation, sales channel, pricing and withholding."""

    name: str = ""
    ecosystem: str  # software stack its chips need, e.g. "cuda", "tpu"
    software_maturity: Share = 1.0  # the highest readiness a lab can reach on this ecosystem
    packaging_share: Share  # share of the shared packaging capacity reserved for it
    channel: Literal["anyone", "own_cloud", "named"] = "anyone"
    buyers: list[str] = []  # for channel = "named": clouds allowed to buy (own cloud always may)
    lead_time_months: between(0, 36, int) = 3  # from shipment to delivery (then the buyer's build_months)
    top_tier_mix: Share = 0.7  # share of its notional capacity (price signal) credited to the top tier
    rationing: RationingName = "priority"
    pricing: PricingConfig = PricingConfig(rule="excess_demand", min_margin=0.5, max_margin=6.0)
    withholding: WithholdingRule | None = None

    def sells_to(self, vendor_id: str, cloud_id: str, cloud_vendor: str | None) -> bool:
        """Sales channel: may cloud ``cloud_id`` (integrated with ``cloud_vendor``) order from this
        vendor (id ``vendor_id``) at all?"""
        if self.channel == "anyone" or cloud_vendor == vendor_id:
            return True
        return self.channel == "named" and cloud_id in self.buyers


class Cloud(_Strict):
    """A cloud provider (hyperscaler or neocloud) or a lab's own data centres ("captive")."""

    name: str = ""
    kind: Literal["hyperscaler", "neocloud", "captive"] = "hyperscaler"
    vendor: str | None = None  # vertically integrated with this vendor
    owner_lab: str | None = None  # for captive clouds: the lab that owns them
    fleet: dict[str, Chips] = {}  # installed chips by product at step 0
    on_order: dict[str, Chips] = {}  # chips ordered before step 0, installed evenly over the first lead+build months
    buys: list[str] = []  # vendors it orders from (subject to their channels)
    capex_usd_per_month: UsdPerMonth = 0.0
    capex_growth: Rate = 0.02
    serves: list[str] = ["*"]  # labs it rents to ("*" = all)
    vendor_access: dict[str, list[str]] = {}  # vendor -> the only labs that may rent its chips ("*" = all)
    withholding: WithholdingRule | None = None
    rental_price_usd_per_chip_hour: dict[str, UsdPerChipHour] = {}  # initial prices; default cost-plus
    initial_markup: between(0.0, 1000.0) = 1.0
    pricing: RentalPricing = RentalPricing()
    lifetime_months: between(6, 240, int) = 60  # depreciation life; chips run on while they earn their opex
    investment: Investment = Investment()

    def rents_to(self, lab_id: str, vendor: str, lab_affiliation: str | None) -> bool:
        """Channel policy: may lab ``lab_id`` (belonging to vendor ``lab_affiliation``, if any) rent
        ``vendor``'s chips here at all? Its owner only, for a lab's own data centres; else a lab it
        serves, if ``vendor_access`` lets it or the lab belongs to this cloud's vendor."""
        if self.owner_lab is not None:
            return self.owner_lab == lab_id
        if "*" not in self.serves and lab_id not in self.serves:
            return False
        allowed = self.vendor_access.get(vendor)
        return (allowed is None or "*" in allowed or lab_id in allowed
                or (self.vendor is not None and lab_affiliation == self.vendor))


class OwnDatacenter(_Strict):
    """A lab's own data centres; the model runs them as a captive cloud named ``<lab>_dc``."""

    fleet: dict[str, Chips] = {}
    on_order: dict[str, Chips] = {}
    buys: list[str]  # vendors it orders from (subject to their channels); no default, so no vendor is named here
    capex_usd_per_month: UsdPerMonth = 0.0
    capex_growth: Rate = 0.02
    lifetime_months: between(6, 240, int) = 60
    investment: Investment = Investment()


class Lab(_Strict):
    """An AI lab: demand for compute, budget, software readiness and preferences."""

    name: str = ""
    affiliation: str | None = None  # vendor it belongs to (DeepMind -> google)
    demand_pflops: between(0.0, 1e12, low_open=True, unit="PFLOP/s")  # compute wanted at step 0, PFLOP/s
    demand_growth: Rate = 0.05  # mean monthly log growth
    demand_volatility: between(0.0, 1.0) = 0.03
    demand_burst: between(0.0, 1.0) = 0.0  # sd of a month's passing swing in log demand
    training_share: Share = 0.5  # share of demand for training (which prefers the frontier class)
    budget_usd_per_month: between(0.0, 1e13, low_open=True, unit="USD a month")
    budget_growth: Rate = 0.04
    value_usd_per_pflop_hour: UsdPerPflopHour = 6.0  # willingness to pay per useful PFLOP-hour
    readiness: dict[str, Share] = {}  # ecosystem -> share of peak it can use at step 0, either purpose (missing: 0.2)
    learning_rate: Share = 0.03  # training's readiness: share of the gap to maturity closed a month at full use
    inference_learning_rate: Share = 0.06  # inference's: faster, inference code ports sooner
    switching_cost: Penalty = 1.0  # training: price penalty for an unused ecosystem, times (1 - readiness)
    inference_switching_share: Share = 0.6  # inference's switching cost, as a share of training's (serving ports sooner)
    diversification: Penalty = 0.2  # penalty per unit of a vendor's share of its compute
    below_frontier_penalty: Penalty = 0.5  # price penalty for training on a chip below the frontier class
    bargaining_power: Share = 0.5
    contract_months: between(1, 120, int) = 12  # term of its reservations
    supply_security: between(0.0, 10.0) = 0.0  # premium on secured capacity over on-demand's
    anchor_months: between(12, 120, int) = 60  # term of the anchor deals it signs when short (needs supply_security)
    anchor_threshold: between(0.0, 1.0, low_open=True) = 0.05  # shortfall, as a share of its demand, that makes it sign one
    uses_vendors: list[str] = ["*"]  # vendors whose chips it rents ("*" = any): its choice of suppliers (a game strategy)
    own_datacenter: OwnDatacenter | None = None

    def uses(self, vendor: str) -> bool:
        """Does this lab rent ``vendor``'s chips at all (its own choice; clouds have theirs)?"""
        return "*" in self.uses_vendors or vendor in self.uses_vendors


class LongTail(_Strict):
    """A generated tail of smaller labs that rent from any cloud."""

    count: between(0, 1_000_000, int) = 0
    total_demand_pflops: between(0.0, 1e12, unit="PFLOP/s") = 0.0
    pareto_shape: between(0.5, 10.0, low_open=True) = 1.5
    demand_growth: Rate = 0.03
    demand_volatility: between(0.0, 1.0) = 0.05
    demand_burst: between(0.0, 1.0) = 0.0
    training_share: Share = 0.3
    budget_usd_per_pflop_month: between(1e-3, 1e9, unit="USD per PFLOP/s-month") = 1800.0
    value_usd_per_pflop_hour: UsdPerPflopHour = 4.0
    readiness: dict[str, Share] = {"cuda": 0.95}
    switching_cost: Penalty = 1.0
    inference_switching_share: Share = 0.6
    diversification: Penalty = 0.0
    below_frontier_penalty: Penalty = 0.5
    bargaining_power: Share = 0.2
    supply_security: between(0.0, 10.0) = 0.0
    contract_months: Annotated[list[between(1, 120, int)], Field(min_length=1)] = [12, 24, 36]  # drawn uniformly per lab

    @model_validator(mode="after")
    def _shareable(self) -> LongTail:
        # Each generated lab needs a positive demand and budget: a total so small that a lab's
        # Pareto share of it rounds to zero would fail only when the model is built.
        if self.count and self.total_demand_pflops and self.total_demand_pflops < MIN_TAIL_PFLOPS * self.count:
            raise ValueError(f"total_demand_pflops = {self.total_demand_pflops!r} is too small to share among "
                             f"{self.count} labs; allowed: 0 (no long tail) or at least {MIN_TAIL_PFLOPS} per lab")
        return self


class Shock(_Strict):
    """Packaging capacity multiplied by ``factor`` from ``start_step`` up to ``end_step``."""

    start_step: RunStep
    end_step: RunStep
    factor: between(0.0, 10.0)

    @model_validator(mode="after")
    def _order(self) -> Shock:
        if self.end_step <= self.start_step:
            raise ValueError("end_step must be after start_step")
        return self


class Packaging(_Strict):
    """The shared packaging (CoWoS-class) capacity, wafers per month: the committed expansions
    (linear between points, flat after the last), plus expansions it orders itself while vendors'
    orders exceed it: ``expansion_response`` of the monthly excess (wafers a month), at most
    ``max_expansion_per_year`` of its capacity a year, coming online ``expansion_lead_months``
    later."""

    capacity_wafers_per_month: list[tuple[between(-600, MAX_STEP, int), between(0.0, 1e9, unit="wafers a month")]]
    rationing: RationingName = "pro_rata"
    shocks: list[Shock] = []
    expansion_response: between(0.0, 1.0) = 0.1
    expansion_lead_months: between(0, 60, int) = 12
    max_expansion_per_year: between(0.0, 5.0) = 1.0

    @field_validator("capacity_wafers_per_month")
    @classmethod
    def _points(cls, v: list[tuple[int, float]]) -> list[tuple[int, float]]:
        if not v:
            raise ValueError("needs at least one [step, wafers] point")
        steps = [s for s, _ in v]
        if steps != sorted(set(steps)):
            raise ValueError("steps must be strictly increasing")
        return v


class Partnership(_Strict):
    """A strategic partnership of a lab with clouds (docs/ODD.md 7.18): equity for compute, or
    priority access. While it runs (``start_step`` up to ``end_step``), the lab is served at
    ``clouds`` before labs at arm's length (a round of its own, ahead of theirs) and pays
    ``discount`` less than the price it bargains there, never below the cloud's floor. ``source``
    says where the relationship is reported."""

    lab: str
    clouds: Annotated[list[str], Field(min_length=1)]
    kind: Literal["equity_for_compute", "priority_access"] = "equity_for_compute"
    discount: between(0.0, 1.0, high_open=True) = 0.0
    start_step: between(-600, 1200, int) = -600
    end_step: between(-600, 1200, int) | None = None
    source: str = ""

    @model_validator(mode="after")
    def _order(self) -> Partnership:
        if self.end_step is not None and self.end_step <= self.start_step:
            raise ValueError("end_step must be after start_step")
        return self


class Deal(_Strict):
    """A multi-year anchor deal (docs/ODD.md 7.19): ``lab`` commits ``usd`` over ``months`` at
    ``cloud``, take-or-pay, for chips of ``vendor`` (its newest product on sale when signed) or of
    ``product``. When signed during the run (``sign_step`` >= 0) the cloud orders the chips it
    needs on top of its own investment, financed by the deal; a deal signed before the run
    (``sign_step`` < 0) is served from the fleet and orders the scenario gives the cloud. Chips
    go to the lab ahead of the month's market, each tranche for ``months``: as they become free
    at the cloud for a deal signed before the run, as new chips are installed for one signed
    during it. The price is ``price_usd_per_chip_hour`` or the cloud's posted ask when signed
    at its three-year term discount. ``source`` says where the deal is reported.

    A lease between clouds names a ``lessee`` (a cloud) instead of a lab: the chips become the
    lessee's to rent to its own customers (docs/ODD.md 7.20), still counted once, at the cloud
    that owns them."""

    lab: str | None = None
    lessee: str | None = None
    cloud: str
    vendor: str | None = None
    product: str | None = None
    usd: between(0.0, 1e13, low_open=True, unit="USD")  # total commitment, US dollars
    months: between(12, 120, int) = 60
    sign_step: between(-600, 1200, int) = 0
    purpose: Literal["training", "inference"] = "training"
    price_usd_per_chip_hour: UsdPerChipHour | None = None
    source: str = ""

    @model_validator(mode="after")
    def _what(self) -> Deal:
        if (self.lab is None) == (self.lessee is None):
            raise ValueError("give exactly one buyer: lab (an anchor deal) or lessee (a cloud leasing capacity)")
        if (self.vendor is None) == (self.product is None):
            raise ValueError("give exactly one of vendor (its newest product on sale when signed) or product")
        return self


class Negotiation(_Strict):
    """The compute-market bargaining protocol and its parameters."""

    protocol: ProtocolName = "nash"
    seller_discount: between(0.0, 1.0, low_open=True, high_open=True) = 0.95
    buyer_discount: between(0.0, 1.0, low_open=True, high_open=True) = 0.95
    first_mover: Literal["buyer", "seller"] = "buyer"
    concession_rate: between(0.0, 1.0, low_open=True) = 0.3
    max_rounds: between(1, 1000, int) = 50
    max_offers_per_lab: between(1, 1000, int) = 40


class Faults(_Strict):
    """Deliberate faults, for testing what runs the model (the sweep runner's error handling)."""

    raise_at_step: RunStep | None = None  # raise RuntimeError in this step


class Scenario(_Strict):
    """A complete, validated scenario. Dictionaries are keyed by agent or product id."""

    name: str
    description: str = ""
    start_date: str = "2025-06"  # YYYY-MM of step 0
    steps: between(1, MAX_STEP, int) = 60
    hours_per_month: between(1.0, 744.0, unit="hours") = 730.0
    negotiation: Negotiation = Negotiation()
    demand: Demand = Demand()
    performance_classes: PerformanceClasses = PerformanceClasses()
    packaging: Packaging
    products: dict[str, Product]
    vendors: dict[str, Vendor]
    clouds: dict[str, Cloud]
    labs: dict[str, Lab]
    long_tail: LongTail = LongTail()
    partnerships: dict[str, Partnership] = {}
    deals: dict[str, Deal] = {}
    faults: Faults = Faults()
    sources: dict[str, str] = {}  # free-form notes: parameter -> source or "assumption"

    @field_validator("start_date")
    @classmethod
    def _month(cls, v: str) -> str:
        try:
            date.fromisoformat(v + "-01")
        except ValueError:
            raise ValueError("must be a month written YYYY-MM, e.g. 2025-06") from None
        return v

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        _check_references(self)
        return self

    # -- derived ---------------------------------------------------------------------------
    def to_json(self) -> str:
        """The fully resolved configuration as canonical JSON text (sorted keys)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of :meth:`to_json`: equal configs, equal hashes."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def date_of(self, step: int) -> date:
        """Calendar month (first day) of a step."""
        start = date.fromisoformat(self.start_date + "-01")
        months = start.year * 12 + start.month - 1 + step
        return date(months // 12, months % 12 + 1, 1)


def _check_references(sc: Scenario) -> None:
    """Cross-field checks: every id a field names must exist. Raises ValueError with a path."""

    def need(path: str, value: str | None, known: Mapping[str, Any] | set[str], what: str) -> None:
        if value is not None and value not in known:
            raise ValueError(f"{path}: unknown {what} {value!r}; allowed: {', '.join(sorted(known)) or 'none'}")

    labs = set(sc.labs)
    clouds = set(sc.clouds) | {f"{lab}_dc" for lab, cfg in sc.labs.items() if cfg.own_datacenter}

    def rule(path: str, r: WithholdingRule | None, buyers: set[str]) -> None:
        if r is None:
            return
        need(f"{path}.vendor", r.vendor, sc.vendors, "vendor")
        for i, p in enumerate(r.products):
            need(f"{path}.products[{i}]", p, sc.products, "product")
        for i, b in enumerate(r.buyers):
            if b != "*":
                need(f"{path}.buyers[{i}]", b, buyers, "buyer")
        for i, b in enumerate(r.except_buyers):
            need(f"{path}.except_buyers[{i}]", b, buyers, "buyer")

    for pid, p in sc.products.items():
        need(f"products.{pid}.vendor", p.vendor, sc.vendors, "vendor")
        if p.end_of_sale_step is not None and p.end_of_sale_step <= p.release_step:
            raise ValueError(f"products.{pid}.end_of_sale_step: must be after release_step ({p.release_step})")
    for vid, v in sc.vendors.items():
        for i, b in enumerate(v.buyers):
            need(f"vendors.{vid}.buyers[{i}]", b, clouds, "cloud")
        rule(f"vendors.{vid}.withholding", v.withholding, clouds | labs)
        if not any(p.vendor == vid for p in sc.products.values()):
            raise ValueError(f"vendors.{vid}: has no products; add one under [products.<id>] with vendor = {vid!r}")
    total = sum(v.packaging_share for v in sc.vendors.values())
    if total > 1.0 + 1e-9:
        raise ValueError(f"vendors.*.packaging_share: shares add up to {total:.3f}; allowed: at most 1")
    for cid, c in sc.clouds.items():
        need(f"clouds.{cid}.vendor", c.vendor, sc.vendors, "vendor")
        need(f"clouds.{cid}.owner_lab", c.owner_lab, sc.labs, "lab")
        for p in c.fleet:
            need(f"clouds.{cid}.fleet.{p}", p, sc.products, "product")
        for p in c.on_order:
            need(f"clouds.{cid}.on_order.{p}", p, sc.products, "product")
        for p in c.rental_price_usd_per_chip_hour:
            need(f"clouds.{cid}.rental_price_usd_per_chip_hour.{p}", p, sc.products, "product")
        for i, v in enumerate(c.buys):
            need(f"clouds.{cid}.buys[{i}]", v, sc.vendors, "vendor")
        for i, lab in enumerate(c.serves):
            if lab != "*":
                need(f"clouds.{cid}.serves[{i}]", lab, labs, "lab")
        for v, allowed in c.vendor_access.items():
            need(f"clouds.{cid}.vendor_access.{v}", v, sc.vendors, "vendor")
            for i, lab in enumerate(allowed):
                if lab != "*":
                    need(f"clouds.{cid}.vendor_access.{v}[{i}]", lab, labs, "lab")
        rule(f"clouds.{cid}.withholding", c.withholding, labs)
    for pid, deal in sc.partnerships.items():
        need(f"partnerships.{pid}.lab", deal.lab, sc.labs, "lab")
        for i, c in enumerate(deal.clouds):
            need(f"partnerships.{pid}.clouds[{i}]", c, clouds, "cloud")
    for did, deal in sc.deals.items():
        _check_deal(sc, f"deals.{did}", deal, clouds, need)
    for lid, lab in sc.labs.items():
        need(f"labs.{lid}.affiliation", lab.affiliation, sc.vendors, "vendor")
        for i, v in enumerate(lab.uses_vendors):
            if v != "*":
                need(f"labs.{lid}.uses_vendors[{i}]", v, sc.vendors, "vendor")
        if lab.own_datacenter:
            for p in lab.own_datacenter.fleet:
                need(f"labs.{lid}.own_datacenter.fleet.{p}", p, sc.products, "product")
            for p in lab.own_datacenter.on_order:
                need(f"labs.{lid}.own_datacenter.on_order.{p}", p, sc.products, "product")
            for i, v in enumerate(lab.own_datacenter.buys):
                need(f"labs.{lid}.own_datacenter.buys[{i}]", v, sc.vendors, "vendor")
    ecosystems = {v.ecosystem for v in sc.vendors.values()}
    for lid, lab in sc.labs.items():
        for e in lab.readiness:
            need(f"labs.{lid}.readiness.{e}", e, ecosystems, "ecosystem")
    for e in sc.long_tail.readiness:
        need(f"long_tail.readiness.{e}", e, ecosystems, "ecosystem")


def _check_deal(sc: Scenario, path: str, deal: Deal, clouds: set[str], need: Callable[..., None]) -> None:
    """An anchor deal names a lab, a public cloud, and a vendor or product the cloud can get and
    may rent to that lab."""
    need(f"{path}.lab", deal.lab, sc.labs, "lab")
    need(f"{path}.cloud", deal.cloud, sc.clouds, "public cloud (a lab's own data centres sign no deals)")
    need(f"{path}.lessee", deal.lessee, set(sc.clouds) - {deal.cloud}, "public cloud other than the lessor")
    need(f"{path}.vendor", deal.vendor, sc.vendors, "vendor")
    need(f"{path}.product", deal.product, sc.products, "product")
    cloud = sc.clouds[deal.cloud]
    vendor_id = deal.vendor or sc.products[deal.product].vendor
    vendor = sc.vendors[vendor_id]
    has = {p for p in (*cloud.fleet, *cloud.on_order) if sc.products[p].vendor == vendor_id}
    if deal.sign_step < 0 and not has:
        raise ValueError(f"{path}.sign_step: a deal signed before the run ({deal.sign_step}) is served from the "
                         f"cloud's fleet and orders, and {deal.cloud!r} has no {vendor_id!r} chips in either; "
                         f"allowed: add them to clouds.{deal.cloud}.fleet or on_order, or sign at step 0 or later")
    if deal.sign_step >= 0:
        if vendor_id not in cloud.buys or not vendor.sells_to(vendor_id, deal.cloud, cloud.vendor):
            raise ValueError(f"{path}.cloud: {deal.cloud!r} cannot order {vendor_id!r} chips for the deal (its "
                             f"buys list or the vendor's channel); allowed: a cloud that buys from {vendor_id!r}")
    if deal.lab is None:
        return  # a lease: the lessee's own rules decide whom it rents the chips to
    if not sc.labs[deal.lab].uses(vendor_id):
        raise ValueError(f"{path}.lab: {deal.lab!r} does not rent {vendor_id!r} chips (labs.{deal.lab}.uses_vendors: "
                         f"{', '.join(sc.labs[deal.lab].uses_vendors)}); allowed: a deal for a vendor the lab uses")
    if not cloud.rents_to(deal.lab, vendor_id, sc.labs[deal.lab].affiliation):
        raise ValueError(f"{path}.lab: {deal.cloud!r} does not rent {vendor_id!r} chips to {deal.lab!r} "
                         f"(clouds.{deal.cloud}.serves: {', '.join(cloud.serves)}; clouds.{deal.cloud}.vendor_access."
                         f"{vendor_id}: {', '.join(cloud.vendor_access.get(vendor_id, ['*']))}); allowed: a lab "
                         f"both lists admit")


# -- loading -------------------------------------------------------------------------------


def builtin_scenarios() -> dict[str, str]:
    """Built-in scenario names mapped to their one-line description."""
    out = {}
    for f in sorted(BUILTIN_DIR.iterdir(), key=lambda p: p.name):
        if f.name.endswith(".toml") and not f.name.startswith("_"):
            data = tomllib.loads(f.read_text())
            out[f.name[:-5]] = str(data.get("description", "")).strip().splitlines()[0] if data.get("description") else ""
    return out


def _read_toml(where: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where} is not valid TOML: {exc}. Fix the syntax at that line and column.") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ScenarioError(f"{where} nests arrays or tables too deeply to read; no scenario needs more "
                            "than a few levels.") from None


def _resolve(name_or_path: str | Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Raw dict of a scenario with its ``extends`` chain merged in."""
    key = str(name_or_path)
    if key in seen:
        raise ScenarioError(f"extends: scenarios extend each other in a loop: {' -> '.join(seen + (key,))}")
    path = Path(name_or_path)
    builtin = BUILTIN_DIR / f"{key}.toml"
    if path.suffix == ".toml" or _exists(path):
        if not _is_file(path):
            raise ScenarioError(f"scenario file {_short(str(path), 200)} does not exist (or is not a file). "
                                f"Give a path to a .toml file or one of the built-ins: {', '.join(builtin_scenarios())}.")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"scenario file {str(path)!r} cannot be read as UTF-8 text: {exc}.") from None
        base_dir = path.parent
        data = _read_toml(repr(str(path)), text)
        data.setdefault("name", path.stem)
    elif re.fullmatch(r"\w[\w-]*", key) and _is_file(builtin):  # a plain name only: nothing outside BUILTIN_DIR
        data = _read_toml(f"built-in scenario {key!r}", builtin.read_text())
        data.setdefault("name", key)
        base_dir = None
    else:
        raise ScenarioError(f"unknown scenario {_short(key, 200)}; allowed: a path to a .toml file or one of the "
                            f"built-ins: {', '.join(builtin_scenarios())}.")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(f"extends: must be a scenario name or path (text), got {parent!r}")
    candidate = (base_dir / parent) if base_dir is not None and parent.endswith(".toml") else parent
    base = _resolve(candidate, seen + (key,))
    base.pop("description", None)
    return _merge(base, data)


def _exists(path: Path | Any) -> bool:
    """``path.exists()``, false for a name the OS cannot even look up (too long, a NUL byte)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _is_file(path: Path | Any) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: tables merge key by key, anything else in ``top`` replaces ``base``."""
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` from the command line; VALUE is read as TOML, else kept as text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError(f"--set {text!r}: expected KEY=VALUE with a dotted KEY, e.g. clouds.gcp.withholding.share=0.5")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except RecursionError:
        raise ScenarioError(f"--set {key}=...: the value nests lists or tables too deeply to read.") from None
    except tomllib.TOMLDecodeError:
        if raw.startswith(("[", "{")):
            raise ScenarioError(f"--set {text!r}: {raw} is not a valid TOML list or table; text inside it needs "
                                f'quotes, e.g. {key}=["openai"]') from None
        value = raw
    return key, value


_COLLECTIONS = {"products": "product", "vendors": "vendor", "clouds": "cloud", "labs": "lab"}


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c = value`` in the raw scenario; missing sub-tables are created, but an agent or
    product id that does not exist is an error (a typo must not add a new agent)."""
    parts = dotted.split(".")
    if not all(parts):
        raise ScenarioError(f"override {dotted!r}: empty part in the dotted path")
    if len(parts) >= 3 and parts[0] in _COLLECTIONS and parts[1] not in data.get(parts[0], {}):
        known = ", ".join(sorted(data.get(parts[0], {}))) or "none"
        raise ScenarioError(f"override {dotted!r}: no {_COLLECTIONS[parts[0]]} {parts[1]!r}; allowed: {known}")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part) if isinstance(node, dict) else None
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, dict):
            raise ScenarioError(f"override {dotted!r}: {'.'.join(parts[: i + 1])} is a value, not a table, "
                                f"so it has no field {parts[i + 1]!r}")
        node = nxt
    node[parts[-1]] = value


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: a message echoes a value, not a whole file."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: ValidationError, where: str) -> str:
    problems = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/ODD.md for the fields)"
        got = err.get("input")
        shown = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {_short(got)})"
        problems.append(f"{loc}: {msg}{shown}" if loc else f"{msg}{shown}")
    more = f"; and {len(exc.errors()) - 5} more" if len(exc.errors()) > 5 else ""
    return f"{where} is invalid: " + "; ".join(problems) + more + "."


def resolve_scenario(name_or_path: str | Path) -> dict[str, Any]:
    """The raw (unvalidated) dict of a scenario with its ``extends`` chain merged in."""
    data = _resolve(name_or_path)
    if not data.keys() - {"name"}:
        raise ScenarioError(f"scenario {str(name_or_path)!r} is empty; start it with extends = \"baseline\" "
                            "and set only what differs, or see the built-in files for every field.")
    return data


def validate_scenario(data: Mapping[str, Any], overrides: Mapping[str, Any], where: str) -> Scenario:
    """Apply dotted ``overrides`` to a copy of a raw scenario dict and validate it."""
    data = copy.deepcopy(dict(data))
    for key, value in overrides.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ScenarioError(f"override {key!r}: {value!r} is not a finite number")
        _set_path(data, key, value)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_describe(exc, where)) from None


def load_scenario(name_or_path: str | Path, overrides: Mapping[str, Any] | None = None, /,
                  **kw_overrides: Any) -> Scenario:
    """Load a built-in scenario by name, or a TOML file by path, apply dotted overrides, validate.

    ``load_scenario("baseline", steps=24)``;
    ``load_scenario("baseline", {"clouds.gcp.withholding.share": 0.5})``.
    Raises :class:`ScenarioError` naming the field and what is allowed.
    """
    return validate_scenario(resolve_scenario(name_or_path), {**(overrides or {}), **kw_overrides},
                             f"scenario {str(name_or_path)!r}")
