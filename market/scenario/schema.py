"""The scenario schema: every table and field of a scenario file, its type, unit and allowed range.

Each table is a :class:`StrictModel` (an unknown key is an error, the values are frozen). Every
numeric field's type is made by :func:`between`, which carries its range both as pydantic
constraints (the explorer's sliders read them) and in the error message; the ranges are listed in
docs/ODD.md 6.0. A field that takes one of a few names is a :func:`choice`, which carries what each
name means (the explorer shows it under the drop-down); a rule of :mod:`market.economics` is a
choice of its registry's names. Cross-field checks (ids that must
exist) are in :mod:`market.scenario.references`.

Units: compute in dense bf16 PFLOP/s, money in US dollars, time in monthly steps.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from market.economics import BARGAINING, PRICE_RULES, RATIONING
from market.scenario.references import check_references

__all__ = [
    "MAX_STEP",
    "Cloud",
    "Deal",
    "Demand",
    "DemandJump",
    "Faults",
    "Investment",
    "Lab",
    "LongTail",
    "Negotiation",
    "OwnDatacenter",
    "Packaging",
    "Partnership",
    "PerformanceClasses",
    "PricingConfig",
    "Product",
    "RentalPricing",
    "Scenario",
    "Shock",
    "StrictModel",
    "Vendor",
    "WithholdingRule",
    "between",
    "choice",
]


class StrictModel(BaseModel):
    """A table of a user's file (scenario, experiment, game): an unknown key is an error, values are
    frozen, and defaults are validated like given values."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


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


def names_in_words(names: tuple[str, ...]) -> str:
    """A choice's names as an error or a label gives them: "'a', 'b' or 'c'"."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def choice(described: dict[str, str]) -> Any:
    """The type of a field that takes one of the names of ``described`` (name -> what it means, in
    one line). The names are the field's ``Literal`` values and the meanings its
    ``json_schema_extra["choices"]`` (the explorer shows them); any other value is reported as
    ``allowed: 'a', 'b' or 'c'`` under the field's dotted path."""
    names = tuple(described)
    allowed = names_in_words(names)

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("not_a_choice", "allowed: {allowed}", {"allowed": allowed}) from None

    return Annotated[Literal[names], Field(json_schema_extra={"choices": dict(described)}), WrapValidator(check)]


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

# Rules picked by name from a registry of market.economics: a choice of its names, each meaning the
# first line of its function's docstring (Registry.meanings), so the names are written only there.
RationingName = choice(RATIONING.meanings())
PriceRuleName = choice(PRICE_RULES.meanings())
ProtocolName = choice(BARGAINING.meanings())


class WithholdingRule(StrictModel):
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


class PricingConfig(StrictModel):
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


class RentalPricing(StrictModel):
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


class Investment(StrictModel):
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


class DemandJump(StrictModel):
    """Every lab's demand multiplied by ``factor`` from ``step`` on (a permanent shift)."""

    step: RunStep
    factor: between(0.0, 100.0, low_open=True)


class Demand(StrictModel):
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


class PerformanceClasses(StrictModel):
    """What "frontier" means market-wide (docs/ODD.md 2.2, :mod:`market.economics.classes`): a
    released chip is in the frontier class when it has at least ``pflops_share`` of the best
    released chip's PFLOP/s and ``memory_share`` of the most memory, and was released at most
    ``max_age_months`` before the newest released chip; the rest are mainstream. Labs' training
    prefers the frontier class."""

    pflops_share: Share = 0.4
    memory_share: Share = 0.4
    max_age_months: between(0, 600, int) = 36


class Product(StrictModel):
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
    opex_usd_per_chip_hour: UsdPerChipHour = 0.3  # power, cooling, network, staff: avoidable cost of a rented chip-hour


class Vendor(StrictModel):
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


class Cloud(StrictModel):
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


# Per purpose, the ecosystems a lab already runs it on when the simulation starts (the book the
# first month's contracts stand for): the switching penalty does not apply to them in month 0.
InUse = dict[Literal["training", "inference"], list[str]]


class OwnDatacenter(StrictModel):
    """A lab's own data centres; the model runs them as a captive cloud named ``<lab>_dc``."""

    fleet: dict[str, Chips] = {}
    on_order: dict[str, Chips] = {}
    buys: list[str]  # vendors it orders from (subject to their channels); no default, so no vendor is named here
    capex_usd_per_month: UsdPerMonth = 0.0
    capex_growth: Rate = 0.02
    lifetime_months: between(6, 240, int) = 60
    investment: Investment = Investment()


class Lab(StrictModel):
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
    in_use: InUse = {}  # purpose -> ecosystems it runs that purpose on before step 0: no switching penalty in month 0
    diversification: Penalty = 0.2  # penalty per unit of a vendor's share of its compute
    below_frontier_penalty: Penalty = 0.5  # price penalty for training on a chip below the frontier class
    bargaining_power: Share = 0.5
    contract_months: between(1, 120, int) = 12  # term of its reservations
    supply_security: between(0.0, 10.0) = 0.0  # premium on secured capacity over on-demand's
    anchor_months: between(12, 120, int) = 60  # term of the anchor deals it signs when short (needs supply_security)
    anchor_threshold: between(0.0, 1.0, low_open=True) = 0.05  # shortfall (share of its demand) that makes it sign one
    uses_vendors: list[str] = ["*"]  # vendors whose chips it rents ("*" = any): its choice of suppliers (a game strategy)
    own_datacenter: OwnDatacenter | None = None

    def uses(self, vendor: str) -> bool:
        """Does this lab rent ``vendor``'s chips at all (its own choice; clouds have theirs)?"""
        return "*" in self.uses_vendors or vendor in self.uses_vendors


class LongTail(StrictModel):
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
    in_use: InUse = {}
    diversification: Penalty = 0.0
    below_frontier_penalty: Penalty = 0.5
    bargaining_power: Share = 0.2
    supply_security: between(0.0, 10.0) = 0.0
    contract_months: Annotated[list[between(1, 120, int)], Field(min_length=1)] = [12, 24, 36]  # drawn per lab

    @model_validator(mode="after")
    def _shareable(self) -> LongTail:
        # Each generated lab needs a positive demand and budget: a total so small that a lab's
        # Pareto share of it rounds to zero would fail only when the model is built.
        if self.count and self.total_demand_pflops and self.total_demand_pflops < MIN_TAIL_PFLOPS * self.count:
            raise ValueError(f"total_demand_pflops = {self.total_demand_pflops!r} is too small to share among "
                             f"{self.count} labs; allowed: 0 (no long tail) or at least {MIN_TAIL_PFLOPS} per lab")
        return self


class Shock(StrictModel):
    """Packaging capacity multiplied by ``factor`` from ``start_step`` up to ``end_step``."""

    start_step: RunStep
    end_step: RunStep
    factor: between(0.0, 10.0)

    @model_validator(mode="after")
    def _order(self) -> Shock:
        if self.end_step <= self.start_step:
            raise ValueError("end_step must be after start_step")
        return self


class Packaging(StrictModel):
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


class Partnership(StrictModel):
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


class Deal(StrictModel):
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


# The compute market's clearing rules: how a product's competitive price counts substitute products
# (docs/ODD.md 7.7 (a)). "joint" is the default; the other two are kept for comparison (docs/VALIDATION.md).
CLEARING_RULES = {
    "joint": "all products cleared together, each lab's demand net of what it rents of the others "
             "(competitive equilibrium across products)",
    "netted": "each product on its own, each lab's demand net of its share of the free chips of products "
              "at most as dear for it at last month's prices, and of what they cost",
    "ignored": "each product on its own, against every lab's whole residual need (the rule before): prices "
               "sit above market clearing and capacity is left idle",
}


class Negotiation(StrictModel):
    """The compute market: the bargaining protocol and its parameters, and how a product's
    competitive price counts substitute products (``substitutes``, one of :data:`CLEARING_RULES`;
    ``"joint"`` is ``market.economics.clearing``)."""

    protocol: ProtocolName = "nash"
    substitutes: choice(CLEARING_RULES) = "joint"
    # the joint clearing's logit dispersion in log effective price (docs/ODD.md 7.7 (a)): a lab gives an
    # offer this much dearer e^-1 the share of an equal one; toward 0 the products are perfect substitutes,
    # and the solve needs more iterations (continuation from 0.2 where Newton alone stalls; docs/VALIDATION.md)
    substitutes_dispersion: between(0.005, 1.0) = 0.05
    seller_discount: between(0.0, 1.0, low_open=True, high_open=True) = 0.95
    buyer_discount: between(0.0, 1.0, low_open=True, high_open=True) = 0.95
    first_mover: Literal["buyer", "seller"] = "buyer"
    concession_rate: between(0.0, 1.0, low_open=True) = 0.3
    max_rounds: between(1, 1000, int) = 50
    max_offers_per_lab: between(1, 1000, int) = 40


class Faults(StrictModel):
    """Deliberate faults, for testing what runs the model (the sweep runner's error handling)."""

    raise_at_step: RunStep | None = None  # raise RuntimeError in this step


class Scenario(StrictModel):
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
        check_references(self)
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
