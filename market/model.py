"""MarketModel: construction from a scenario, and ``step()`` as the list of phases.

    >>> from market import MarketModel, load_scenario
    >>> model = MarketModel(load_scenario("baseline", steps=3), seed=1)
    >>> for _ in range(3):
    ...     model.step()
    >>> model.t
    2

All randomness comes from ``model.rng`` (a numpy Generator seeded with ``seed``): the long tail of
labs (sizes, contract lengths), monthly demand shocks, and the order in which labs negotiate.
Activation order is drawn from that Generator, not from Mesa's ``shuffle_do`` (which uses the
stdlib ``random`` module in Mesa 3.3), so a seed gives the same run on every supported Mesa.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mesa
import numpy as np

from market.agents.cloud import CloudProvider
from market.agents.lab import AILab
from market.agents.vendor import ChipVendor
from market.contracts import Contract, Refusal
from market.economics.classes import MAINSTREAM, Chip, performance_classes
from market.markets import ComputeMarket, allocate_packaging
from market.scenario import Cloud, Deal, Lab, RentalPricing, Scenario

__all__ = ["DealState", "MarketModel", "ModelError", "ProductState"]

PRICE_INDEX_MONTHS = 3.0  # time constant of the vendors' rental price index (assumption)


class ModelError(ArithmeticError):
    """A run cannot go on: a key quantity of the model is no longer a finite number (extreme but
    valid inputs overflowed the arithmetic). The message names the step, the quantity and whose
    it is; a sweep records the run as failed with it."""


@dataclass(slots=True)
class DealState:
    """Where an anchor deal (:class:`market.scenario.Deal`) stands: once signed, the product and
    price agreed and the chips still to come (``pending``)."""

    deal_id: str
    cfg: Deal
    product: str | None = None
    price: float = 0.0  # USD per chip-hour
    pending: float = 0.0  # chips not yet delivered to the lab
    ordered: bool = False  # the cloud orders the chips (signed during the run)


@dataclass(slots=True)
class ProductState:
    """A product's place in its life cycle at the current step."""

    product_id: str
    vendor: str
    on_sale: bool = False
    tier: str = "previous"  # "top" = its vendor's newest released product (withholding rules use it)
    performance_class: str = MAINSTREAM  # market-wide: "frontier" or "mainstream" (labs' preferences use it)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one month of the model, and let it run as
    usual afterwards (if it was on). A month allocates tens of thousands of containers (a
    10,000-lab month signs some 26,000 contracts) and frees them by reference counting: it leaves
    no cyclic garbage (none found in any collection over nine 10,000-lab months), so the
    collector's passes during a month, triggered by the count of allocations, only re-traverse
    what is alive: 15-20% of a 10,000-lab month (docs/PERFORMANCE.md). Paused, the month's new
    objects are traversed once, at the first collection after it. Whatever a month does leave
    for the collector is collected then."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class MarketModel(mesa.Model):
    """The AI-compute market.

    Attributes:
        config: the validated scenario (named ``config`` because Mesa >= 3.5 reserves ``Model.scenario``).
        t: the current step, 0 at ``scenario.start_date`` (-1 before the first step).
        vendors, clouds, labs: agents by id; ``cloud_list`` and ``lab_list`` in id order.
        products: life-cycle state of every product.
        packaging_capacity: wafers per month available this step (after shocks).
        expansions: packaging capacity ordered by the model's foundry, ``(step online, wafers)``.
        price_index: vendor -> USD per PFLOP-hour of arm's-length rental contracts of its chips
            (a moving average over ``PRICE_INDEX_MONTHS``): what clouds expect to earn on new chips.
        signed, refusals: contracts signed and chips refused this step.
    """

    def __init__(self, scenario: Scenario, seed: int = 0, record: bool = True, run_id: str | None = None) -> None:
        super().__init__(rng=seed)
        # Our own stream from the seed, untouched by whatever Mesa draws while it sets itself up,
        # so that Mesa 3.3 and 3.5 give the same run.
        self.rng = np.random.default_rng(seed)
        self.config = scenario
        self.seed = seed
        self.hours = scenario.hours_per_month
        self.ecosystems = sorted({v.ecosystem for v in scenario.vendors.values()})
        self.maturity = {v.ecosystem: v.software_maturity for v in scenario.vendors.values()}
        self.ecosystem_of = {vid: v.ecosystem for vid, v in scenario.vendors.items()}
        self.products = {p: ProductState(p, cfg.vendor) for p, cfg in scenario.products.items()}
        self._chips = [Chip(p, cfg.pflops, cfg.memory_gb, cfg.release_step) for p, cfg in scenario.products.items()]
        self.vendors = {v: ChipVendor(self, v, cfg) for v, cfg in sorted(scenario.vendors.items())}
        labs = dict(sorted(scenario.labs.items())) | self._long_tail()
        self.labs = {lab_id: AILab(self, lab_id, cfg) for lab_id, cfg in labs.items()}
        clouds = dict(sorted(scenario.clouds.items()))
        for lab_id, cfg in labs.items():
            if cfg.own_datacenter is not None:
                dc = cfg.own_datacenter
                clouds[f"{lab_id}_dc"] = Cloud(
                    name=f"{cfg.name or lab_id} data centres", kind="captive", owner_lab=lab_id, fleet=dc.fleet,
                    on_order=dc.on_order,
                    buys=dc.buys, capex_usd_per_month=dc.capex_usd_per_month, capex_growth=dc.capex_growth,
                    lifetime_months=dc.lifetime_months, investment=dc.investment,
                    pricing=RentalPricing(rule="cost_plus"))
        self.clouds = {c: CloudProvider(self, c, cfg) for c, cfg in clouds.items()}
        self.cloud_list = list(self.clouds.values())
        self.lab_list = list(self.labs.values())
        self.vendor_list = list(self.vendors.values())
        self.compute_market = ComputeMarket(self)
        self._bursts = any(lab.cfg.demand_burst > 0.0 for lab in self.lab_list)
        self._anchoring = any(lab.cfg.supply_security > 0.0 and lab.cfg.affiliation is None for lab in self.lab_list)
        self.t = -1
        self.packaging_capacity = 0.0
        self.expansions: list[tuple[int, float]] = []  # packaging expansions ordered: (online step, wafers)
        self.price_index = self._initial_price_index()
        self.signed: list[Contract] = []
        self.refusals: list[Refusal] = []
        self.partner_terms: dict[str, dict[str, float]] = {}  # lab -> {cloud: discount} of the partnerships running now
        self.deals = [DealState(d, cfg) for d, cfg in sorted(scenario.deals.items(), key=lambda x: (x[1].sign_step, x[0]))]
        self._contract_seq = 0
        self.run_id = run_id or f"{scenario.name}-{scenario.config_hash[:8]}-s{seed}"
        from market.recording import Recorder  # recording reads the model; imported late to keep one-way flow

        self.recorder = Recorder(self) if record else None

    def _initial_price_index(self) -> dict[str, float]:
        """Each vendor's installed-weighted posted price per PFLOP-hour at the public clouds."""
        products = self.config.products
        sums: dict[str, list[float]] = {}
        for cloud in self.cloud_list:
            if cloud.owner_lab is not None:
                continue
            for p, chips in cloud.installed.items():
                acc = sums.setdefault(products[p].vendor, [0.0, 0.0])
                acc[0] += chips * cloud.rental_price[p] / products[p].pflops
                acc[1] += chips
        return {v: usd / chips for v, (usd, chips) in sums.items() if chips > 0}

    def _long_tail(self) -> dict[str, Lab]:
        """Generate the long tail of smaller labs: Pareto-distributed sizes, shared preferences."""
        tail = self.config.long_tail
        if tail.count == 0 or tail.total_demand_pflops <= 0:
            return {}
        sizes = self.rng.pareto(tail.pareto_shape, tail.count) + 1.0
        sizes *= tail.total_demand_pflops / sizes.sum()
        months = self.rng.choice(tail.contract_months, size=tail.count)
        width = len(str(tail.count))
        return {
            f"tail_{i:0{width}d}": Lab(
                name=f"long-tail lab {i}", demand_pflops=float(d), demand_growth=tail.demand_growth,
                demand_volatility=tail.demand_volatility, demand_burst=tail.demand_burst,
                training_share=tail.training_share,
                budget_usd_per_month=float(d) * tail.budget_usd_per_pflop_month, budget_growth=tail.demand_growth,
                value_usd_per_pflop_hour=tail.value_usd_per_pflop_hour, readiness=tail.readiness,
                switching_cost=tail.switching_cost, inference_switching_share=tail.inference_switching_share,
                in_use=tail.in_use, diversification=tail.diversification,
                below_frontier_penalty=tail.below_frontier_penalty,
                bargaining_power=tail.bargaining_power, contract_months=int(m),
                supply_security=tail.supply_security)
            for i, (d, m) in enumerate(zip(sizes, months, strict=True))
        }

    # -- the schedule ----------------------------------------------------------------------
    def step(self) -> None:
        """One month: the phases of the model description, in this order (with Python's cyclic
        garbage collector paused, :func:`_collector_paused`)."""
        with _collector_paused():
            self.exogenous_changes()
            self.check_finite("at the start of the month")
            self.chip_market()
            self.compute_market_round()
            self.settlement()
            self.check_finite("after settlement")
            self.record()

    def run(self, steps: int | None = None) -> None:
        for _ in range(self.config.steps if steps is None else steps):
            self.step()

    # -- phases ----------------------------------------------------------------------------
    def exogenous_changes(self) -> None:
        """Phase 1: product releases and end of sale, demand and budget growth, contract expiry,
        fleet retirement, capex budgets, packaging capacity and scheduled shocks."""
        self.t += 1
        t = self.t
        if t == self.config.faults.raise_at_step:
            raise RuntimeError(f"fault injected by the scenario (faults.raise_at_step = {t})")
        self.signed = []
        self.refusals = []
        newest: dict[str, tuple[int, str]] = {}
        for p, cfg in self.config.products.items():
            state = self.products[p]
            released = cfg.release_step <= t
            state.on_sale = released and (cfg.end_of_sale_step is None or t < cfg.end_of_sale_step)
            if released and (cfg.vendor not in newest or cfg.release_step > newest[cfg.vendor][0]):
                newest[cfg.vendor] = (cfg.release_step, p)
        classes = performance_classes(self._chips, t, **self.config.performance_classes.model_dump())
        for p, state in self.products.items():
            state.tier = "top" if newest.get(state.vendor, (0, None))[1] == p else "previous"
            state.performance_class = classes.get(p, MAINSTREAM)
        if t > 0:
            shocks = self.rng.standard_normal(len(self.lab_list))
            for lab, z in zip(self.lab_list, shocks, strict=True):
                lab.grow(float(z))
            for cloud in self.cloud_list:
                cloud.capex_budget *= 1.0 + cloud.cfg.capex_growth
        if self._bursts:  # passing swings (drawn only when a lab has them: other scenarios keep their draws)
            for lab, z in zip(self.lab_list, self.rng.standard_normal(len(self.lab_list)).tolist(), strict=True):
                lab.burst = math.exp(lab.cfg.demand_burst * z - lab.cfg.demand_burst ** 2 / 2.0)
        for jump in self.config.demand.jumps:
            if jump.step == t:
                for lab in self.lab_list:
                    lab.demand *= jump.factor
        for lab in self.lab_list:
            lab.expire_contracts()
        renewals = []
        for cloud in self.cloud_list:
            cloud.reset_step()
            cloud.install_arrivals()
            renewals += cloud.expire_leases()
            cloud.retire()
        for lease, chips in renewals:  # a lessee keeps, month by month, chips its customers still hold
            self._renew_lease(lease, chips)
        for vendor in self.vendor_list:
            vendor.reset_step()
        self._anchor_deals()
        self.packaging_capacity = self._packaging_capacity(t)
        self.partner_terms = {}
        for deal in self.config.partnerships.values():  # several may join a lab to a cloud: the best terms hold
            if deal.start_step <= t and (deal.end_step is None or t < deal.end_step):
                terms = self.partner_terms.setdefault(deal.lab, {})
                for c in deal.clouds:
                    terms[c] = max(terms.get(c, 0.0), deal.discount)

    def _anchor_deals(self) -> None:
        """Sign the anchor deals due this month and deliver those pending (docs/ODD.md 7.19).

        A deal is signed at ``max(sign_step, 0)``: for the vendor's newest product on sale (or the
        one it names), at its price or the cloud's posted ask at the three-year term discount, for
        as many chips as the commitment pays for over its term. Signed during the run, the cloud
        orders those chips from the vendor at once. Each month a pending deal takes, before the
        market opens, the cloud's free chips of its product — a deal signed during the run only
        those installed since the last month (new chips: what it ordered, or the cloud's own
        orders arriving first), a deal signed before the run any — each tranche a take-or-pay
        contract for the deal's term. If the product's sale ends with chips still to come (and none of it
        left on order), the rest switches to the vendor's newest product, the same PFLOP/s at the
        same price per PFLOP-hour."""
        t = self.t
        products = self.config.products
        for deal in self.deals:
            cfg = deal.cfg
            cloud = self.clouds[cfg.cloud]
            vendor = self.vendors[cfg.vendor or products[cfg.product].vendor]
            if deal.product is None:
                if max(cfg.sign_step, 0) != t:
                    continue
                deal.product = cfg.product or vendor.newest_on_sale()
                if deal.product is None:
                    continue  # nothing on sale to sign for: it lapses (recorded by no contracts)
                deal.price = cfg.price_usd_per_chip_hour or cloud.anchor_price(deal.product)
                deal.pending = cfg.usd / (cfg.months * self.hours * deal.price)
                deal.ordered = cfg.sign_step >= 0
                if deal.ordered:
                    vendor.order(cloud.cloud_id, deal.product, deal.pending)
            if deal.pending <= 1e-9:
                continue
            p = deal.product
            if not self.products[p].on_sale and cloud.free(p) <= 1e-9 and vendor.backlog[p].get(cloud.cloud_id, 0.0) <= 0.0:
                newest = vendor.newest_on_sale()
                if newest is None or newest == p:
                    continue
                ratio = products[newest].pflops / products[p].pflops
                deal.product, deal.pending, deal.price = newest, deal.pending / ratio, deal.price * ratio
                if deal.ordered:
                    vendor.order(cloud.cloud_id, newest, deal.pending)
                p = newest
            new = cloud.arrivals.get(p, 0.0)
            chips = min(deal.pending, cloud.free(p), new if deal.ordered else math.inf)
            if chips <= 1e-9:
                continue
            deal.pending -= chips
            if deal.ordered:
                cloud.arrivals[p] = new - chips
            self._sign_anchor(deal, chips)
        for cloud in self.cloud_list:  # arrivals no deal took are the cloud's to rent
            cloud.arrivals = {}

    def _sign_anchor(self, deal: DealState, chips: float) -> None:
        """A tranche of an anchor deal: a take-or-pay contract for the deal's term, held by its
        lab, or a lease held by its lessee cloud."""
        cfg, p = deal.cfg, deal.product
        cloud, state = self.clouds[cfg.cloud], self.products[p]
        pflops = self.config.products[p].pflops
        contract = Contract(self.t, self.next_contract_id(), cfg.lab, cfg.lessee, cfg.cloud, state.vendor, p,
                            state.tier, state.performance_class, cfg.purpose, "anchor", chips, chips * pflops,
                            deal.price, cloud.rental_price.get(p, deal.price), cfg.months, 0)
        self.signed.append(contract)
        if cfg.lessee is not None:
            self.clouds[cfg.lessee].lease(contract, cloud)
            return
        lab = self.labs[cfg.lab]
        lab.add_contract(contract)
        cloud.contracted[p] += chips
        lab.paid(chips * deal.price, chips * pflops * lab.readiness[cfg.purpose, self.ecosystem_of[state.vendor]])

    def _renew_lease(self, lease: Contract, chips: float) -> None:
        contract = lease._replace(start_step=self.t, contract_id=self.next_contract_id(), chips=chips,
                                  pflops=chips * self.config.products[lease.product].pflops, months=1)
        self.signed.append(contract)
        self.clouds[lease.lessee].lease(contract, self.clouds[lease.cloud])

    def _committed_packaging(self, t: int) -> float:
        """The scenario's committed packaging path at step ``t`` (wafers a month, interpolated)."""
        steps, wafers = zip(*self.config.packaging.capacity_wafers_per_month, strict=True)
        return float(np.interp(t, steps, wafers))

    def _packaging_capacity(self, t: int) -> float:
        """Committed capacity, plus the expansions online by now, times any shock."""
        pack = self.config.packaging
        capacity = self._committed_packaging(t) + sum(w for online, w in self.expansions if online <= t)
        for shock in pack.shocks:
            if shock.start_step <= t < shock.end_step:
                capacity *= shock.factor
        return capacity

    def chip_market(self) -> None:
        """Phase 2: clouds order chips where they pay; packaging capacity is shared among vendors;
        vendors make, ration (channels, withholding, rationing rule) and deliver chips from their
        order books, then reprice; the foundry orders packaging capacity if the books want more."""
        for cloud in self.cloud_list:  # orders are pooled per vendor, so their order does not matter
            cloud.place_orders()
        reserved = np.array([v.cfg.packaging_share * self.packaging_capacity for v in self.vendor_list])
        requests = np.array([v.request_wafers(r) for v, r in zip(self.vendor_list, reserved.tolist(), strict=True)])
        wafers = allocate_packaging(requests, reserved, self.packaging_capacity, self.config.packaging.rationing)
        for vendor, w in zip(self.vendor_list, wafers, strict=True):
            self.refusals.extend(vendor.produce_and_ship(float(w)))
            vendor.update_prices()
        self._expand_packaging(float(requests.sum()))

    def _expand_packaging(self, requested: float) -> None:
        """The foundry orders packaging capacity while vendors' order books want more wafers than it
        has: ``expansion_response`` of the excess, at most ``max_expansion_per_year / 12`` of its
        capacity a month, online ``expansion_lead_months`` later."""
        pack = self.config.packaging
        unshocked = self._committed_packaging(self.t) + sum(w for _, w in self.expansions)  # incl. on order
        excess = requested - unshocked
        if excess > 0 and pack.expansion_response > 0:
            added = min(pack.expansion_response * excess, pack.max_expansion_per_year / 12.0 * unshocked)
            self.expansions.append((self.t + pack.expansion_lead_months, added))

    def compute_market_round(self) -> None:
        """Phase 3: labs with unmet needs bargain with clouds; vertically integrated labs first
        (a vendor serves its own lab before others), then labs in a partnership at their partner
        clouds (priority access), then the rest, partners included, in random order."""
        market = self.compute_market
        market.open()
        initial = self.t == 0
        own = [lab for lab in self.lab_list if lab.cfg.affiliation or lab.cfg.own_datacenter]
        rest = [lab for lab in self.lab_list if not (lab.cfg.affiliation or lab.cfg.own_datacenter)]
        for i in self.rng.permutation(len(own)):
            market.negotiate(own[i], initial=initial)
        partners = [lab for lab in rest if lab.lab_id in self.partner_terms]
        if partners:
            for i in self.rng.permutation(len(partners)):
                lab = partners[i]
                market.negotiate(lab, initial=initial, only=frozenset(self.partner_terms[lab.lab_id]))
        for i in self.rng.permutation(len(rest)):
            market.negotiate(rest[i], initial=initial)
        market.close()
        if self._anchoring:
            self._labs_sign_anchor_deals()

    def _labs_sign_anchor_deals(self) -> None:
        """After the month's market: a lab that wants secured supply (``supply_security`` > 0) and
        is still short of its demand for a purpose by more than ``anchor_threshold`` of it, net of
        the anchor chips still to come, signs an anchor deal for the shortfall (docs/ODD.md 7.19):
        ``anchor_months`` of take-or-pay for new chips, which the cloud orders now. It picks, among
        the public clouds that may rent it a vendor's newest product in an ecosystem it already
        uses for that purpose and do not withhold it, the lowest price per useful PFLOP-hour at the
        cloud's three-year price; the monthly payment must fit in the budget it has not
        committed. Labs in id order; a vendor's own lab does not sign (it is served at cost)."""
        t, hours, products = self.t, self.hours, self.config.products
        pending: dict[str, list[DealState]] = {}
        for deal in self.deals:
            if deal.pending > 1e-9 and deal.cfg.lab is not None:
                pending.setdefault(deal.cfg.lab, []).append(deal)
        for lab in self.lab_list:
            cfg = lab.cfg
            if cfg.supply_security <= 0.0 or cfg.affiliation is not None:
                continue
            owed = sum(d.pending * d.price * hours for d in pending.get(lab.lab_id, ()))
            money = lab.budget - lab.committed_spend() - owed
            for purpose, used in lab.purposes_in_use().items():
                coming = sum(d.pending * products[d.product].pflops
                             * lab.readiness[purpose, self.ecosystem_of[products[d.product].vendor]]
                             for d in pending.get(lab.lab_id, ()) if d.cfg.purpose == purpose)
                demand = lab.notional(purpose)
                short = demand - lab.useful_contracted(purpose) - coming
                if short <= cfg.anchor_threshold * demand or money <= 0.0:
                    continue
                best = None
                for cloud in self.cloud_list:
                    if cloud.owner_lab is not None:
                        continue
                    for v in cloud.cfg.buys:
                        vendor = self.vendors[v]
                        p = vendor.newest_on_sale()
                        eco = self.ecosystem_of[v]
                        if (p is None or eco not in used or not vendor.sells_to(cloud.cloud_id, cloud.cfg.vendor)
                                or not cloud.serves(lab.lab_id, v) or cloud.withheld(lab.lab_id, p).share > 0.0):
                            continue
                        price = cloud.anchor_price(p)
                        useful = products[p].pflops * lab.readiness[purpose, eco]
                        if useful <= 0.0 or price / useful > cfg.value_usd_per_pflop_hour:
                            continue
                        if best is None or price / useful < best[0]:
                            best = (price / useful, cloud, p, price, useful)
                if best is None:
                    continue
                _, cloud, p, price, useful = best
                chips = min(short / useful, money / (price * hours))
                if chips <= 1e-9:
                    continue
                deal = DealState(f"{lab.lab_id}-{t}-{purpose}", Deal(
                    lab=lab.lab_id, cloud=cloud.cloud_id, product=p, usd=chips * price * hours * cfg.anchor_months,
                    months=cfg.anchor_months, sign_step=t, purpose=purpose, price_usd_per_chip_hour=price,
                    source="signed by the lab in the run (short of secured supply)"),
                    product=p, price=price, pending=chips, ordered=True)
                self.vendors[products[p].vendor].order(cloud.cloud_id, p, chips)
                self.deals.append(deal)
                pending.setdefault(lab.lab_id, []).append(deal)
                money -= chips * price * hours

    def settlement(self) -> None:
        """Phase 4: rents are paid, costs and profits booked, rental prices and readiness updated."""
        hours = self.hours
        for lab in self.lab_list:
            for cloud_id, paid in lab.spend_by_cloud():  # its contracts' monthly rents, cloud by cloud
                cloud = self.clouds[cloud_id]
                cloud.revenue += paid
                if cloud.affiliated(lab.lab_id):
                    cloud.affiliate_revenue += paid
            lab.learn()
            lab.update_price_level()
        for cloud in self.cloud_list:
            for lease in cloud.leases:  # leases between clouds, take-or-pay
                paid = lease.monthly_cost(hours)
                cloud.cost += paid
                self.clouds[lease.cloud].revenue += paid
            cloud.settle()
        self._update_price_index()

    def _update_price_index(self) -> None:
        """Each vendor's rental price index moves toward this month's arm's-length reservation price
        per PFLOP-hour of its chips, at the one-year term (the bargained price: a longer term's
        discount taken back out). Contracts with a lab's own or its vendor's cloud, on-demand
        months (their premium buys flexibility, not capacity) and tranches of anchor deals (priced
        when signed, not this month) are left out."""
        signed: dict[str, list[float]] = {}
        factors: dict[tuple[str, str], float | None] = {}  # per (cloud, lab): its term factor, None if affiliated
        for c in self.signed:
            if c.kind != "reserved":
                continue
            pair = (c.cloud, c.lab)
            if pair not in factors:
                cloud = self.clouds[c.cloud]
                factors[pair] = (None if cloud.affiliated(c.lab) else
                                 cloud.term_factor(self.labs[c.lab].cfg.contract_months))
            factor = factors[pair]
            if factor is None:
                continue
            acc = signed.setdefault(c.vendor, [0.0, 0.0])
            acc[0] += c.chips * c.price_usd_per_chip_hour / factor
            acc[1] += c.pflops
        for v, (usd, pflops) in signed.items():
            month = usd / pflops
            old = self.price_index.get(v)
            self.price_index[v] = month if old is None else old + (month - old) / PRICE_INDEX_MONTHS

    def record(self) -> None:
        """Phase 5: the collector reads the state (and changes nothing)."""
        if self.recorder is not None:
            self.recorder.collect()

    # -- helpers ---------------------------------------------------------------------------
    def check_finite(self, when: str) -> None:
        """Raise :class:`ModelError` if a key quantity (demand, budgets, capex limits, installed chips,
        prices, revenues, packaging capacity) is inf or NaN, naming the step, the quantity and whose
        it is: a clear stop instead of a failure deep inside a rule a phase later."""
        quantities = {
            "demand (PFLOP/s)": {lab.lab_id: lab.demand for lab in self.lab_list},
            "budget (USD a month)": {lab.lab_id: lab.budget for lab in self.lab_list},
            "capex limit (USD a month)": {c.cloud_id: c.capex_budget for c in self.cloud_list},
            "revenue (USD)": {c.cloud_id: c.revenue for c in self.cloud_list}
            | {v.vendor_id: v.revenue for v in self.vendor_list},
            "installed chips": {f"{c.cloud_id}.{p}": n for c in self.cloud_list for p, n in c.installed.items()},
            "rental price (USD per chip-hour)": {f"{c.cloud_id}.{p}": x for c in self.cloud_list
                                                 for p, x in c.rental_price.items()},
            "list price (USD)": {f"{v.vendor_id}.{p}": x for v in self.vendor_list for p, x in v.list_price.items()},
            "rental price index (USD per PFLOP-hour)": self.price_index,
            "packaging capacity (wafers a month)": {"packaging": self.packaging_capacity},
        }
        for what, values in quantities.items():
            finite = np.isfinite(np.fromiter(values.values(), dtype=float, count=len(values)))
            if not finite.all():
                who = list(values)[int(np.argmin(finite))]
                raise ModelError(f"step {self.t}, {when}: the {what} of {who} is {values[who]!r}, not a finite "
                                 "number; the scenario's values are too extreme for the model's arithmetic "
                                 "(lower the largest quantities or growth rates)")

    def release(self) -> None:
        """Let the model be garbage-collected: Mesa 3.3 keeps every model alive in a class-level
        id counter (``mesa.Agent._ids``), which makes long sweeps in one process grow."""
        ids = getattr(mesa.Agent, "_ids", None)
        if isinstance(ids, dict):
            ids.pop(self, None)

    def next_contract_id(self) -> int:
        self._contract_seq += 1
        return self._contract_seq
