"""Cloud providers: fleets of installed chips, orders, rental prices, withholding from labs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

import math

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
        scarcity_value: per product, the price at which it expects to sell out this month, USD per
            chip-hour, or None when it has capacity to spare (its reservation is then avoidable cost).
        capex_budget: US dollars it may spend on chips this month.
        lost_sales: PFLOP/s (peak) labs wanted here but could not get, per product, this month
            (read by this month's repricing and next month's orders, then cleared).
        revenue, cost: USD this step.
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
        self._affiliated: dict[str, bool] = {}
        self._serves: dict[tuple[str, str], bool] = {}
        self.scarcity_value: dict[str, float | None] = {}
        for p, chips in sorted(cfg.fleet.items()):
            prod = sc.products[p]
            self._install(p, chips, prod.list_price_usd)
            # The initial fleet was bought over the past years: retire it over the 12 months
            # after its product's release plus the fleet lifetime.
            first = max(1, prod.release_step + cfg.lifetime_months)
            self.cohorts.extend([first + k, p, chips / 12] for k in range(12))
        self.cohorts.sort(key=lambda c: (c[0], c[1]))
        for p in self.installed:
            self.rental_price[p] = cfg.rental_price_usd_per_chip_hour.get(p) or self.unit_cost(p) * (1 + cfg.initial_markup)
        self.lost_sales: dict[str, float] = {}
        self.vendor_load: dict[str, tuple[float, float]] = {}  # vendor -> (contracted, installed) PFLOP/s
        self.reset_step()

    def reset_step(self) -> None:
        self.revenue = 0.0
        self.cost = 0.0
        self.capex_spent = 0.0

    # -- fleet -----------------------------------------------------------------------------
    def _install(self, product: str, chips: float, price: float) -> None:
        self.installed[product] = self.installed.get(product, 0.0) + chips
        self.contracted.setdefault(product, 0.0)
        self.book_value[product] = self.book_value.get(product, 0.0) + chips * price
        self.months_since_change.setdefault(product, 0)

    def receive(self, product: str, chips: float, price: float, lead_time: int) -> None:
        """Chips shipped by a vendor at ``price`` USD each; paid now, installed ``lead_time``
        months later (0 = this month)."""
        self.capex_spent += chips * price
        self.pipeline.append((self.model.t + lead_time, product, chips, price))
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
                self.rental_price[product] = self._launch_price(product, price)
            self._install(product, chips, price)
            self.cohorts.append([t + self.cfg.lifetime_months, product, chips])
        self.cohorts.sort(key=lambda c: (c[0], c[1]))

    def in_transit_pflops(self, vendor: str) -> float:
        products = self.model.config.products
        return sum(chips * products[p].pflops for _, p, chips, _ in self.pipeline if products[p].vendor == vendor)

    def _launch_price(self, product: str, price: float) -> float:
        products = self.model.config.products
        per_pflop = [self.rental_price[p] / products[p].pflops for p in self.rental_price
                     if products[p].vendor == products[product].vendor]
        cost_based = (price / (self.cfg.lifetime_months * self.model.hours)
                      + products[product].opex_usd_per_chip_hour) * (1 + self.cfg.initial_markup)
        if not per_pflop:
            return cost_based
        return max(cost_based, min(per_pflop) * products[product].pflops)

    def retire(self) -> None:
        """Retire chips at the end of their life; chips under contract wait until it ends."""
        t = self.model.t
        for cohort in self.cohorts:
            if cohort[0] > t:
                break
            p = cohort[1]
            free = self.installed[p] - self.contracted[p]
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
        return max(0.0, self.installed.get(product, 0.0) - self.contracted.get(product, 0.0))

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

    def reservation_price(self, product: str) -> float:
        """The least it accepts per chip-hour: avoidable cost plus its minimum margin, or the
        price its next-best buyer pays when it expects to sell out (its scarcity value)."""
        floor = self.avoidable_cost(product) * (1.0 + self.cfg.pricing.min_margin)
        scarce = self.scarcity_value.get(product)
        return floor if scarce is None else max(floor, scarce)

    def reprice(self, product: str, reply: BestResponse) -> None:
        """Move the posted ask toward the best reply (``pricing.speed`` of the log gap), at most
        every ``review_months`` and by at least ``threshold`` (sticky list prices); the scarcity
        value follows the reply at once."""
        self.scarcity_value[product] = reply.price if reply.scarce else None
        pricing = self.cfg.pricing
        old = self.rental_price[product]
        new = math.exp((1.0 - pricing.speed) * math.log(old) + pricing.speed * math.log(reply.price))
        due = self.months_since_change[product] + 1 >= pricing.review_months
        if due and abs(new / old - 1.0) >= max(pricing.threshold, 1e-12):
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
        if key not in self._serves:
            if self.owner_lab is not None:
                ok = self.owner_lab == lab_id
            elif "*" not in self.cfg.serves and lab_id not in self.cfg.serves:
                ok = False
            else:
                allowed = self.cfg.vendor_access.get(vendor)
                ok = allowed is None or "*" in allowed or lab_id in allowed or self.affiliated(lab_id)
            self._serves[key] = ok
        return self._serves[key]

    def withheld(self, lab_id: str, product: str) -> Withholding:
        """Share of its free chips of ``product`` kept from ``lab_id``, and why."""
        state = self.model.products[product]
        return withheld(self.cfg.withholding, product=product, vendor=state.vendor, tier=state.tier,
                        buyers=[(lab_id, self.affiliated(lab_id))])

    # -- chip market -----------------------------------------------------------------------
    def place_orders(self) -> None:
        """Order chips for the demand it lost last month and to restore headroom, within capex.

        Lost sales of a vendor's chips are bought as that vendor's newest product on sale; a
        share ``follow_market`` of them is spread over the vendors it may buy from in proportion
        to the whole market's lost sales of each. When utilisation is above target the cloud also
        buys to bring it back down. Chips already ordered but not yet delivered count against both.
        """
        model = self.model
        products = model.config.products
        buyable = [v for v in self.cfg.buys
                   if model.vendors[v].sells_to(self.cloud_id, self.cfg.vendor) and model.vendors[v].newest_on_sale()]
        own: dict[str, float] = {}
        for p, pflops in self.lost_sales.items():
            own[products[p].vendor] = own.get(products[p].vendor, 0.0) + pflops
        # Part of the demand it lost is read as demand for the vendors the whole market is short
        # of (so a cloud can enter an ecosystem it does not yet carry).
        market_lost = {v: model.lost_by_vendor.get(v, 0.0) for v in buyable}
        market_total = sum(market_lost.values())
        follow = self.cfg.follow_market if market_total > 0 else 0.0
        own_total = sum(own.values())
        wanted_pflops = {v: (1.0 - follow) * own.get(v, 0.0) + follow * own_total * market_lost.get(v, 0.0)
                         / (market_total or 1.0) for v in buyable}
        target = self.cfg.target_utilisation
        for v, (used, cap) in self.vendor_load.items():
            if v in wanted_pflops and cap > 0 and used / cap > target:
                # enough new capacity to bring last month's utilisation back to target
                wanted_pflops[v] = wanted_pflops.get(v, 0.0) + used / target - cap
        plan: list[tuple[str, str, float, float]] = []
        for v in buyable:
            vendor = model.vendors[v]
            wanted = wanted_pflops[v] - self.in_transit_pflops(v)  # what is on its way counts
            if wanted <= 0:
                continue
            p = vendor.newest_on_sale()
            chips = wanted / products[p].pflops
            plan.append((v, p, chips, chips * vendor.list_price[p]))
        total = sum(cost for *_, cost in plan)
        scale = min(1.0, self.capex_budget / total) if total > 0 else 0.0
        for v, p, chips, _ in plan:
            model.vendors[v].order(self.cloud_id, p, chips * scale)

    # -- settlement ------------------------------------------------------------------------
    def settle(self) -> None:
        """Operating cost and depreciation of the fleet (revenue is booked by the model), and the
        load on each vendor's chips, for next month's orders."""
        hours = self.model.hours
        products = self.model.config.products
        load: dict[str, list[float]] = {}
        for p, chips in self.installed.items():
            pair = load.setdefault(products[p].vendor, [0.0, 0.0])
            pair[0] += self.contracted[p] * products[p].pflops
            pair[1] += chips * products[p].pflops
        self.vendor_load = {v: (used, cap) for v, (used, cap) in load.items()}
        for p, chips in self.installed.items():
            self.cost += chips * products[p].opex_usd_per_chip_hour * hours
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
