"""Cloud providers: fleets of installed chips, orders, rental prices, withholding from labs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np

from market.contracts import Contract
from market.economics import BestResponse
from market.economics.withholding import Withholding, withheld
from market.scenario import Cloud

if TYPE_CHECKING:
    from market.model import MarketModel

__all__ = ["CloudProvider"]


class CloudProvider(mesa.Agent):
    """A hyperscaler, a neocloud, or a lab's own data centres ("captive").

    Attributes:
        cloud_id, cfg: id and validated configuration (policy).
        installed: chips installed per product.
        pipeline: chips shipped but not yet installed, ``(arrival step, product, chips, price)``.
        retired: chips retired so far per product.
        contracted: chips reserved by active rental contracts per product (<= installed).
        cohorts: ``[retire_step, product, chips]`` for every delivery, oldest first.
        book_value: US dollars paid for the installed chips of each product (for depreciation).
        rental_price: posted (on-demand) ask per product, USD per chip-hour.
        scarcity_value: per product, the competitive price of its product's market this month while
            capacity binds there (its reservation), USD per chip-hour, or None when capacity is spare
            (its reservation is then avoidable cost).
        capex_budget: US dollars it may spend on chips and their build-out this month (financing limit).
        revenue, cost: USD this step; affiliate_revenue: the part of revenue its affiliated labs
            paid (internal transfers at its reservation price).
    """

    model: MarketModel

    def __init__(self, model: MarketModel, cloud_id: str, cfg: Cloud) -> None:
        super().__init__(model)
        sc = model.config
        self.cloud_id = cloud_id
        self.cfg = cfg
        self.owner_lab = cfg.owner_lab
        self.capex_budget = cfg.capex_usd_per_month
        self.installed: dict[str, float] = {}
        self.contracted: dict[str, float] = {}
        self.book_value: dict[str, float] = {}
        self.rental_price: dict[str, float] = {}
        self.months_since_change: dict[str, int] = {}
        self.cohorts: list[list] = []
        self.pipeline: list[tuple[int, str, float, float]] = []  # (arrival step, product, chips, price)
        self.retired: dict[str, float] = {}  # chips retired so far, per product
        self.leased_in: dict[str, float] = {}  # chips it rents from other clouds (to rent out), per product
        self.leased_out: dict[str, float] = {}  # of its installed chips, those leased to other clouds
        self.leases: list[Contract] = []  # its active leases as lessee
        self.arrivals: dict[str, float] = {}  # chips installed since the anchor deals were last served, per product
        self._term_factors: dict[int, float] = {}  # months -> price of a reservation that long, relative to a year
        self._affiliated: dict[str, bool] = {}
        self._serves: dict[tuple[str, str], bool] = {}
        self.scarcity_value: dict[str, float | None] = {}
        self.market_price: dict[str, float] = {}  # per product: the most a lab paid it last month, USD per chip-hour
        for p, chips in sorted(cfg.fleet.items()):
            prod = sc.products[p]
            self._install(p, chips, prod.list_price_usd)
            # The initial fleet was bought over the past years: retire it over the 12 months
            # after its product's release plus the fleet lifetime.
            first = max(1, prod.release_step + cfg.lifetime_months)
            self.cohorts.extend([first + k, p, chips / 12] for k in range(12))
        self.cohorts.sort(key=lambda c: (c[0], c[1]))
        for p, chips in sorted(cfg.on_order.items()):
            # ordered before the simulation: installed in equal parts over the months its lead
            # time and build time would take (1, 2, ..., L)
            months = max(1, sc.vendors[sc.products[p].vendor].lead_time_months + cfg.investment.build_months)
            if chips / months <= 0.0:  # none, or so few that a month's part underflows to zero
                continue
            self.pipeline.extend((m, p, chips / months, sc.products[p].list_price_usd) for m in range(1, months + 1))
        for p in self.installed:
            self.rental_price[p] = cfg.rental_price_usd_per_chip_hour.get(p) or self.unit_cost(p) * (1 + cfg.initial_markup)
        self.reset_step()

    def reset_step(self) -> None:
        self.revenue = 0.0
        self.affiliate_revenue = 0.0  # of it, paid by its own or its vendor's lab (internal transfers)
        self.cost = 0.0
        self.capex_spent = 0.0

    # -- fleet -----------------------------------------------------------------------------
    def _install(self, product: str, chips: float, price: float) -> None:
        self.installed[product] = self.installed.get(product, 0.0) + chips
        self.contracted.setdefault(product, 0.0)
        self.book_value[product] = self.book_value.get(product, 0.0) + chips * price
        self.months_since_change.setdefault(product, 0)

    def receive(self, product: str, chips: float, price: float, lead_time: int) -> None:
        """Chips shipped by a vendor at ``price`` USD each; paid now, installed ``lead_time`` plus
        ``investment.build_months`` months later (0 = this month)."""
        self.capex_spent += chips * price
        self.pipeline.append((self.model.t + lead_time + self.cfg.investment.build_months, product, chips, price))
        self.install_arrivals()

    def install_arrivals(self) -> None:
        """Install the chips whose delivery month has come."""
        t = self.model.t
        due = [d for d in self.pipeline if d[0] <= t]
        if not due:
            return
        self.pipeline = [d for d in self.pipeline if d[0] > t]
        for _, product, chips, price in due:
            if product not in self.rental_price:
                # A product new to this cloud is priced like its peers, scaled by performance.
                self.rental_price[product] = self.launch_price(product, price)
            self._install(product, chips, price)
            self.arrivals[product] = self.arrivals.get(product, 0.0) + chips
            self.cohorts.append([t + self.cfg.lifetime_months, product, chips])
        self.cohorts.sort(key=lambda c: (c[0], c[1]))

    def launch_price(self, product: str, price: float) -> float:
        """Posted ask of a product new to it, bought at ``price``: its peers' price per PFLOP-hour, at
        least cost plus ``initial_markup``."""
        products = self.model.config.products
        per_pflop = [self.rental_price[p] / products[p].pflops for p in self.rental_price
                     if products[p].vendor == products[product].vendor]
        cost_based = (price / (self.cfg.lifetime_months * self.model.hours)
                      + products[product].opex_usd_per_chip_hour) * (1 + self.cfg.initial_markup)
        if not per_pflop:
            return cost_based
        return max(cost_based, min(per_pflop) * products[product].pflops)

    def retire(self) -> None:
        """Retire chips past their depreciation life that no longer earn their operating cost:
        those still free when it has capacity of that product to spare (no scarcity value). While
        it would sell out, old chips keep renting, up to twice their life. Chips under contract
        wait until it ends."""
        t = self.model.t
        life = self.cfg.lifetime_months
        for cohort in self.cohorts:
            if cohort[0] > t:
                break
            p = cohort[1]
            if self.scarcity_value.get(p) is not None and t < cohort[0] + life:
                continue  # still earning more than its operating cost
            free = self.installed[p] - self.contracted[p] - self.leased_out.get(p, 0.0)
            gone = min(cohort[2], max(0.0, free))
            if gone > 0:
                avg = self.book_value[p] / self.installed[p]
                self.installed[p] -= gone
                self.book_value[p] = max(0.0, self.book_value[p] - gone * avg)
                cohort[2] -= gone
                self.retired[p] = self.retired.get(p, 0.0) + gone
        self.cohorts = [c for c in self.cohorts if c[2] > 1e-6]
        for p, chips in self.installed.items():
            if 0.0 < chips < 1e-6 and self.contracted[p] <= 0.0:  # float dust from retirements
                self.installed[p] = 0.0
                self.book_value[p] = 0.0

    def free(self, product: str) -> float:
        """Chips of ``product`` it may rent out: installed and leased in, less those under contract
        and those leased out."""
        return max(0.0, self.installed.get(product, 0.0) + self.leased_in.get(product, 0.0)
                   - self.contracted.get(product, 0.0) - self.leased_out.get(product, 0.0))

    def term_factor(self, months: int) -> float:
        """Price of a reservation of ``months`` relative to a one-year one (its pricing's
        :meth:`~market.scenario.RentalPricing.term_factor`, static, so cached)."""
        factor = self._term_factors.get(months)
        if factor is None:
            factor = self._term_factors[months] = self.cfg.pricing.term_factor(months)
        return factor

    def anchor_price(self, product: str) -> float:
        """USD per chip-hour of an anchor deal for ``product`` signed now: its posted ask (for a
        product new to it, the launch price at the vendor's list price) at the three-year term."""
        ask = self.rental_price.get(product)
        if not ask:
            vendor = self.model.vendors[self.model.config.products[product].vendor]
            ask = self.launch_price(product, vendor.list_price[product])
        return ask * self.term_factor(36)

    def offered(self) -> list[str]:
        """Products it has chips of to rent out (installed or leased in), in name order."""
        return sorted(p for p in self.installed.keys() | self.leased_in.keys()
                      if self.installed.get(p, 0.0) + self.leased_in.get(p, 0.0) > 1e-9)

    def lease(self, contract: Contract, lessor: CloudProvider) -> None:
        """Take a lease of ``contract.chips`` from ``lessor``: they become its to rent out."""
        p = contract.product
        if p not in self.rental_price:
            self.rental_price[p] = lessor.rental_price.get(p) or self.launch_price(
                p, self.model.config.products[p].list_price_usd)
        self.contracted.setdefault(p, 0.0)
        self.months_since_change.setdefault(p, 0)
        self.leased_in[p] = self.leased_in.get(p, 0.0) + contract.chips
        lessor.leased_out[p] = lessor.leased_out.get(p, 0.0) + contract.chips
        self.leases.append(contract)

    def expire_leases(self) -> list[tuple[Contract, float]]:
        """End the leases whose term is over, as far as its customers' contracts leave the chips
        free; returns the leases it must keep another month and the chips still needed for each
        (the model renews them)."""
        t = self.model.t
        keep, renew = [], []
        for c in self.leases:
            if c.end_step > t:
                keep.append(c)
                continue
            p = c.product
            spare = self.installed.get(p, 0.0) + self.leased_in[p] - self.contracted.get(p, 0.0)
            kept = c.chips - min(c.chips, max(0.0, spare))  # its customers still hold these
            self.leased_in[p] -= c.chips
            self.model.clouds[c.cloud].leased_out[p] -= c.chips
            if kept > 1e-9:
                renew.append((c, kept))  # leased again, for a month
        self.leases = keep
        return renew

    def leased_pflops(self, out: bool = False) -> float:
        """PFLOP/s it leases in (or, ``out``, leases out to other clouds)."""
        products = self.model.config.products
        return sum(c * products[p].pflops for p, c in (self.leased_out if out else self.leased_in).items())

    def unit_cost(self, product: str) -> float:
        """Full cost of one chip-hour: depreciation of what was paid plus operating cost, USD.
        What matters for buying chips, not for renting out those it has (their price is sunk)."""
        chips = self.installed.get(product, 0.0)
        prod = self.model.config.products[product]
        price = self.book_value[product] / chips if chips > 0 else prod.list_price_usd
        return price / (self.cfg.lifetime_months * self.model.hours) + prod.opex_usd_per_chip_hour

    def avoidable_cost(self, product: str) -> float:
        """Cost of renting out one more chip-hour it already owns: operating cost (power, cooling,
        network, staff), USD. Depreciation is sunk."""
        return self.model.config.products[product].opex_usd_per_chip_hour

    def floor_price(self, product: str) -> float:
        """Its impasse point in bargaining, USD per chip-hour: avoidable cost plus its minimum
        margin. The least it accepts is this floor, or, while capacity binds, the product's
        competitive price (its ``scarcity_value``), which :class:`ComputeMarket` sets each month."""
        return self.avoidable_cost(product) * (1.0 + self.cfg.pricing.min_margin)

    def review_due(self, product: str) -> bool:
        """May its posted ask of ``product`` change this month (``review_months`` since the last change)?"""
        return self.months_since_change[product] + 1 >= self.cfg.pricing.review_months

    def reprice(self, product: str, reply: BestResponse | None, scarcity_value: float | None) -> None:
        """Move the posted ask toward the best reply (``pricing.speed`` of the log gap), at most
        every ``review_months`` and by at least ``threshold`` (sticky list prices); ``reply`` is
        None when no review is due. Note the scarcity value (the competitive price while capacity
        binds, else None)."""
        self.scarcity_value[product] = scarcity_value
        pricing = self.cfg.pricing
        if reply is None:  # between reviews the ask stands
            self.months_since_change[product] += 1
            return
        old = self.rental_price[product]
        if old > 0.0 and reply.price > 0.0:  # a geometric step: the same share of the way up or down
            new = math.exp((1.0 - pricing.speed) * math.log(old) + pricing.speed * math.log(reply.price))
        else:  # a zero-cost seller's best reply can be 0
            new = reply.price
        if self.review_due(product) and abs(new / old - 1.0) >= max(pricing.threshold, 1e-12):
            self.rental_price[product] = new
            self.months_since_change[product] = 0
        else:
            self.months_since_change[product] += 1

    # -- whom it serves --------------------------------------------------------------------
    def affiliated(self, lab_id: str) -> bool:
        """Same company: the lab owns these data centres, or belongs to this cloud's vendor."""
        if lab_id not in self._affiliated:
            lab = self.model.labs[lab_id]
            self._affiliated[lab_id] = self.owner_lab == lab_id or (
                self.cfg.vendor is not None and lab.cfg.affiliation == self.cfg.vendor)
        return self._affiliated[lab_id]

    def serves(self, lab_id: str, vendor: str) -> bool:
        """Channel policy: may this lab rent this vendor's chips here at all? (Static, so cached.)"""
        key = (lab_id, vendor)
        if key not in self._serves:  # the rule: market.scenario.Cloud.rents_to
            lab = self.model.labs[lab_id].cfg
            self._serves[key] = self.cfg.rents_to(lab_id, vendor, lab.affiliation) and lab.uses(vendor)
        return self._serves[key]

    def withheld(self, lab_id: str, product: str) -> Withholding:
        """Share of its free chips of ``product`` kept from ``lab_id``, and why."""
        state = self.model.products[product]
        return withheld(self.cfg.withholding, product=product, vendor=state.vendor, tier=state.tier,
                        buyers=[(lab_id, self.affiliated(lab_id))])

    # -- chip market -----------------------------------------------------------------------
    def chip_value(self, product: str, price_per_pflop_hour: float) -> float:
        """Present value of one chip of ``product`` bought now, USD: its rental margin over
        operating cost, month by month over its life once built in (after the vendor's lead time
        and ``investment.build_months``), at ``price_per_pflop_hour`` falling by
        ``investment.expected_price_decline`` a year, discounted at ``investment.cost_of_capital``;
        months whose margin would be negative count zero (the chip would stand idle)."""
        inv = self.cfg.investment
        prod = self.model.config.products[product]
        start = self.model.vendors[prod.vendor].cfg.lead_time_months + inv.build_months
        months = np.arange(start, start + self.cfg.lifetime_months)
        price = price_per_pflop_hour * prod.pflops * (1.0 - inv.expected_price_decline) ** (months / 12.0)
        margin = np.maximum(price - prod.opex_usd_per_chip_hour, 0.0) * self.model.hours
        return float((margin * (1.0 + inv.cost_of_capital) ** (-months / 12.0)).sum())

    def place_orders(self) -> None:
        """Order chips where they pay: for each vendor it may buy from, Tobin's q of that vendor's
        newest product, ``q = chip_value / (list price × (1 + build_cost_share))``, at the market's
        recent price per PFLOP-hour of that vendor's chips (``model.price_index``). It orders
        ``response × max(q - 1)`` of its installed capacity (PFLOP/s) a month, spread
        over the vendors in proportion to ``q - 1``, within its financing limit: chips and their
        build-out cost at most the capex budget."""
        model = self.model
        products = model.config.products
        inv = self.cfg.investment
        gains: dict[str, tuple[str, float]] = {}
        for v in self.cfg.buys:
            vendor = model.vendors[v]
            p = vendor.newest_on_sale()
            if p is None or not vendor.sells_to(self.cloud_id, self.cfg.vendor) or v not in model.price_index:
                continue
            cost = vendor.list_price[p] * (1.0 + inv.build_cost_share)
            q = self.chip_value(p, model.price_index[v]) / cost
            if q > 1.0:
                gains[v] = (p, q - 1.0)
        if not gains:
            return
        base = self.capacity_pflops()
        total_gain = sum(g for _, g in gains.values())
        wanted = inv.response * max(g for _, g in gains.values()) * base  # PFLOP/s this month
        plan = [(v, p, wanted * g / total_gain / products[p].pflops) for v, (p, g) in gains.items()]
        spend = sum(chips * model.vendors[v].list_price[p] for v, p, chips in plan) * (1.0 + inv.build_cost_share)
        scale = min(1.0, self.capex_budget / spend) if spend > 0 else 0.0
        for v, p, chips in plan:
            model.vendors[v].order(self.cloud_id, p, chips * scale)

    # -- settlement ------------------------------------------------------------------------
    def settle(self) -> None:
        """Operating cost of the chips in use (rented out or leased out: the avoidable cost the
        prices are bargained over; idle chips are powered down) and depreciation of the whole fleet
        (revenue is booked by the model)."""
        hours = self.model.hours
        products = self.model.config.products
        for p, chips in self.installed.items():
            in_use = min(chips, self.contracted.get(p, 0.0) + self.leased_out.get(p, 0.0))
            self.cost += in_use * products[p].opex_usd_per_chip_hour * hours
            self.cost += self.book_value[p] / self.cfg.lifetime_months

    @property
    def profit(self) -> float:
        return self.revenue - self.cost

    def capacity_pflops(self) -> float:
        products = self.model.config.products
        return sum(c * products[p].pflops for p, c in self.installed.items())

    def contracted_pflops(self) -> float:
        products = self.model.config.products
        return sum(c * products[p].pflops for p, c in self.contracted.items())
