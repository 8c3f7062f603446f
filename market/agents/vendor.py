"""Chip vendors: packaging wafers into chips, rationing orders, list prices."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np

from market.contracts import Refusal
from market.economics import PRICE_RULES, RATIONING, PriceRuleParams, PriceSignal
from market.economics.withholding import access, withheld
from market.scenario import Vendor

if TYPE_CHECKING:
    from market.model import MarketModel

__all__ = ["ChipVendor"]


class ChipVendor(mesa.Agent):
    """A chip vendor (Nvidia, Google TPU, AMD, Amazon Trainium, ...).

    Attributes:
        vendor_id: id in the scenario.
        cfg: its validated configuration (policy: channel, rationing, pricing, withholding).
        list_price: current list price per product, USD per chip.
        backlog: chips ordered and not yet shipped, per product and buyer (the order book).
        orders: chips ordered this step, per product and buyer; production, shipped: chips this step.
        wafers_requested, wafers: packaging wafers wanted and allocated this step.
        revenue, cost, profit: USD this step.
    """

    model: MarketModel

    def __init__(self, model: MarketModel, vendor_id: str, cfg: Vendor) -> None:
        super().__init__(model)
        self.vendor_id = vendor_id
        self.cfg = cfg
        self.ecosystem = cfg.ecosystem
        self.product_ids = [p for p, pc in model.config.products.items() if pc.vendor == vendor_id]
        self.list_price = {p: model.config.products[p].list_price_usd for p in self.product_ids}
        self._price_rule = PRICE_RULES[cfg.pricing.rule]
        self._price_params = PriceRuleParams(**cfg.pricing.model_dump(exclude={"rule"}))
        self._ration = RATIONING[cfg.rationing]
        self.orders: dict[str, dict[str, float]] = {}
        self.backlog: dict[str, dict[str, float]] = {p: {} for p in self.product_ids}
        self._last: dict[str, tuple[float, float]] = {}  # (list price, orders) last month, per product
        self._elastic: dict[str, float] = {}  # estimated price elasticity of orders, per product
        self.reset_step()

    def reset_step(self) -> None:
        self.orders = {p: {} for p in self.product_ids}
        self.production = dict.fromkeys(self.product_ids, 0.0)
        self.shipped = dict.fromkeys(self.product_ids, 0.0)
        self.potential = dict.fromkeys(self.product_ids, 0.0)  # notional output from reserved wafers
        self.wafers_requested = 0.0
        self.wafers = 0.0
        self.book: dict[str, float] = {}  # chips in the order book when production starts, per product
        self.revenue = 0.0
        self.cost = 0.0

    @property
    def profit(self) -> float:
        return self.revenue - self.cost

    # -- policy ----------------------------------------------------------------------------
    def sells_to(self, cloud_id: str, integrated_vendor: str | None) -> bool:
        """Sales channel: may this cloud order at all? (:meth:`market.scenario.Vendor.sells_to`)"""
        return self.cfg.sells_to(self.vendor_id, cloud_id, integrated_vendor)

    def on_sale(self) -> list[str]:
        return [p for p in self.product_ids if self.model.products[p].on_sale]

    def newest_on_sale(self) -> str | None:
        live = self.on_sale()
        return max(live, key=lambda p: self.model.config.products[p].release_step) if live else None

    # -- chip market -----------------------------------------------------------------------
    def order(self, buyer: str, product: str, chips: float) -> None:
        """A firm order: it joins the order book until shipped (or refused, or the product's sale ends)."""
        if chips > 0:
            self.orders[product][buyer] = self.orders[product].get(buyer, 0.0) + chips
            self.backlog[product][buyer] = self.backlog[product].get(buyer, 0.0) + chips

    def backlog_chips(self, product: str | None = None) -> float:
        """Chips in the order book, of one product or of all."""
        books = self.backlog.values() if product is None else (self.backlog[product],)
        return sum(sum(book.values()) for book in books)

    def request_wafers(self, reserved_wafers: float) -> float:
        """Wafers wanted for the order book; also sets each product's potential output. Orders of a
        product no longer on sale are cancelled."""
        products = self.model.config.products
        live = self.on_sale()
        for p in self.product_ids:
            if p not in live:
                self.backlog[p].clear()
        top = self.newest_on_sale()
        for p in live:
            mix = 1.0 if len(live) == 1 else (
                self.cfg.top_tier_mix if p == top else (1.0 - self.cfg.top_tier_mix) / (len(live) - 1))
            self.potential[p] = reserved_wafers * mix * products[p].chips_per_wafer
        self.book = {p: sum(self.backlog[p].values()) for p in live}
        self.wafers_requested = sum(self.book[p] / products[p].chips_per_wafer for p in live)
        return self.wafers_requested

    def produce_and_ship(self, wafers: float) -> list[Refusal]:
        """Turn allocated wafers into chips, ration them among the order book, deliver; what is not
        made stays in the book, what is withheld is refused and cancelled. Returns refusals."""
        model = self.model
        products = model.config.products
        self.wafers = wafers
        share_of_request = 0.0 if self.wafers_requested <= 0 else min(1.0, wafers / self.wafers_requested)
        refusals: list[Refusal] = []
        for p in self.on_sale():
            book = self.backlog[p]
            if not book:
                continue
            wanted = sum(book.values())
            made = wanted * share_of_request
            self.production[p] = made
            buyers = sorted(book)  # fixed order: results must not depend on dict history
            requests = [book[b] for b in buyers]
            caps = np.empty(len(buyers))
            refused_chips = np.zeros(len(buyers))
            for i, b in enumerate(buyers):
                cloud = model.clouds[b]
                # a lab's own data centres: the rule may name the cloud or its owner lab
                buyer_ids = [(b, cloud.cfg.vendor == self.vendor_id)]
                if cloud.owner_lab:
                    buyer_ids.append((cloud.owner_lab, model.labs[cloud.owner_lab].cfg.affiliation == self.vendor_id))
                share, reason = withheld(self.cfg.withholding, product=p, vendor=self.vendor_id,
                                         tier=model.products[p].tier, buyers=buyer_ids)
                allowed, refused = access(made, requests[i], share)
                caps[i] = min(requests[i], allowed)
                refused_chips[i] = refused
                if refused > 0:
                    refusals.append(Refusal(self.vendor_id, "vendor", b, cloud.owner_lab or "", p, self.vendor_id,
                                            model.products[p].tier, refused, reason))
            priority = np.array([0 if model.clouds[b].cfg.vendor == self.vendor_id else 1 for b in buyers])
            alloc = self._ration(caps, min(made, caps.sum()), priority)
            price = self.list_price[p]
            # as Python floats: numpy scalars would flow into every fleet, contract and table, and
            # arithmetic on them is several times slower (the values are the same IEEE doubles)
            for b, chips, refused in zip(buyers, alloc.tolist(), refused_chips.tolist(), strict=True):
                if chips > 0:
                    model.clouds[b].receive(p, chips, price, self.cfg.lead_time_months)
                left = book[b] - chips - refused  # what was refused is cancelled, what was not made waits
                if left > 1e-9:
                    book[b] = left
                else:
                    del book[b]
            shipped = float(alloc.sum())
            self.production[p] = shipped if shipped < made else made
            self.shipped[p] = shipped
            self.revenue += shipped * price
            self.cost += shipped * products[p].unit_cost_usd
        return refusals

    def update_prices(self) -> None:
        """List prices respond to the order book against potential output (the chips its reserved
        packaging would make): ``z = (book - potential) / potential``, within margin bounds. A
        backlog of more than a month's output raises the price, a short book lowers it.

        Not in the first month, whose orders follow no market history (no month of prices yet).
        """
        if self.model.t == 0:
            return
        products = self.model.config.products
        for p in self.on_sale():
            supply = self.potential[p]
            wanted = self.book[p]
            z = (wanted - supply) / supply if supply > 0 else (1.0 if wanted > 0 else 0.0)
            signal = PriceSignal(price=self.list_price[p], unit_cost=products[p].unit_cost_usd,
                                 excess_demand=max(-1.0, z),
                                 elasticity=self._elasticity(p, wanted))
            self.list_price[p] = self._price_rule(signal, self._price_params)

    def _elasticity(self, product: str, ordered: float) -> float | None:
        """Price elasticity of this product's orders, from the last two months (arc elasticity of
        logs, averaged with the previous estimate); None until prices and orders have moved."""
        price = self.list_price[product]
        last = self._last.get(product)
        self._last[product] = (price, ordered)
        if last is None or last[1] <= 0 or ordered <= 0 or abs(math.log(price / last[0])) < 1e-6:
            return self._elastic.get(product)
        e = max(-20.0, min(0.0, math.log(ordered / last[1]) / math.log(price / last[0])))
        old = self._elastic.get(product)
        self._elastic[product] = e if old is None else 0.5 * (old + e)
        return self._elastic[product]
