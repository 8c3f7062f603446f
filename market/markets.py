"""The two market institutions: the shared packaging capacity and the bilateral compute market.

Agents make the decisions (what to order, which offers to rank first, reservation values); these
classes only match them, following the rules named in the scenario.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from market.contracts import Contract, Refusal
from market.economics import BargainingParams, BargainOutcome, get_protocol, get_rationing
from market.economics.withholding import access

if TYPE_CHECKING:
    from market.agents.cloud import CloudProvider
    from market.agents.lab import AILab
    from market.model import MarketModel

__all__ = ["ComputeMarket", "Offer", "allocate_packaging"]

EPS = 1e-9


def allocate_packaging(requests: np.ndarray, reserved: np.ndarray, capacity: float, rule: str) -> np.ndarray:
    """Wafers for each vendor: its reservation first, then the unused rest shared by ``rule``.

    ``requests`` and ``reserved`` are wafers per vendor; the result never exceeds either the
    request or, in total, ``capacity``.
    """
    first = np.minimum(requests, reserved)
    total = first.sum()
    if total <= 0:
        first *= 0.0
    elif total > capacity:  # scale down to the capacity (a tiny total would overflow capacity / total)
        first *= capacity / total
    spare = max(0.0, capacity - first.sum())
    return first + get_rationing(rule)(requests - first, spare, None)


@dataclass(slots=True)
class Offer:
    """A cloud's standing offer of one product this month (mutable: ``free`` falls as it sells)."""

    order: int  # position in a fixed ordering, to break ties deterministically
    cloud: CloudProvider
    product: str
    vendor: str
    ecosystem: str
    tier: str
    pflops: float
    free: float  # chips not under contract
    ask: float  # posted rental price, USD per chip-hour
    reservation: float  # the cloud's reservation price, USD per chip-hour


def _rank_key(r: tuple) -> tuple[float, int]:
    return r[0], r[1]  # cost per useful PFLOP-hour, then the offer's fixed order


class ComputeMarket:
    """Labs request capacity; clouds offer; each pair bargains over price; deals become contracts."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        neg = model.config.negotiation
        self.protocol = get_protocol(neg.protocol)
        self._base = dict(seller_discount=neg.seller_discount, buyer_discount=neg.buyer_discount,
                          first_mover=neg.first_mover, concession_rate=neg.concession_rate,
                          max_rounds=neg.max_rounds)
        self.max_offers = neg.max_offers_per_lab
        self.lost_sales_logit = neg.lost_sales_logit
        self._params: dict[float, BargainingParams] = {}
        self._outcomes: dict[tuple[float, float, float], BargainOutcome | None] = {}
        self.offers: list[Offer] = []

    def open(self) -> None:
        """Collect this month's offers: every product with installed chips at every cloud."""
        model = self.model
        self.offers = []
        self._outcomes = {}
        for cloud in model.cloud_list:
            for p in sorted(cloud.installed):
                if cloud.installed[p] <= EPS:
                    continue
                prod = model.products[p]
                self.offers.append(Offer(len(self.offers), cloud, p, prod.vendor,
                                         model.vendors[prod.vendor].ecosystem, prod.tier,
                                         model.config.products[p].pflops, cloud.free(p),
                                         cloud.rental_price[p], cloud.reservation_price(p)))

    def _bargaining(self, lab: AILab) -> BargainingParams:
        power = 1.0 - lab.cfg.bargaining_power
        if power not in self._params:
            self._params[power] = BargainingParams(seller_power=power, **self._base)
        return self._params[power]

    def negotiate(self, lab: AILab, initial: bool = False) -> None:
        """One lab's round: rank the offers it may take, bargain down the list until its needs are met.

        ``initial`` marks the first month, whose contracts stand for those signed before the
        simulation (see :meth:`_sign`).
        """
        model = self.model
        lab_id = lab.lab_id
        hours = model.hours
        in_use = lab.ecosystems_in_use()
        shares = lab.vendor_shares()
        budget_left = lab.budget - lab.committed_spend()
        refused_here: dict[tuple[str, str], Refusal] = {}  # one refusal per offer and lab-month
        taken_here: dict[tuple[str, str], float] = {}  # chips of each offer it rented this month
        menu: list[tuple[Offer, float, bool, float]] | None = None  # offers it may take, the same for both purposes
        penalties: dict[tuple[str, str, str], float] = {}  # a penalty depends on vendor, tier and purpose only
        for purpose, need in lab.needs():
            if need <= EPS:
                continue
            if menu is None:
                menu = []
                for o in self.offers:
                    if not o.cloud.serves(lab_id, o.vendor):
                        continue
                    readiness = lab.readiness[o.ecosystem]
                    if readiness <= 0:
                        continue
                    affiliated = o.cloud.affiliated(lab_id)
                    menu.append((o, readiness, affiliated, o.reservation if affiliated else o.ask))
            ranked = []
            for o, readiness, affiliated, price in menu:
                key = (o.vendor, o.tier, purpose)
                penalty = penalties.get(key)
                if penalty is None:
                    penalty = penalties[key] = lab.penalty(o.vendor, o.tier, purpose, in_use, shares)
                ranked.append((price / (o.pflops * readiness) * penalty, o.order, o, penalty, affiliated))
            ranked.sort(key=_rank_key)
            shortfall: list[tuple[float, Offer]] = []  # offers it could have used, had there been more chips
            for score, _, o, penalty, affiliated in ranked[: self.max_offers]:
                if need <= EPS or budget_left <= EPS:
                    break
                useful_per_chip = o.pflops * lab.readiness[o.ecosystem]
                need_chips = need / useful_per_chip
                share, reason = o.cloud.withheld(lab_id, o.product)
                key = (o.cloud.cloud_id, o.product)
                taken = taken_here.get(key, 0.0)
                # the withheld share bounds the lab's month, not each purpose: what it took counts
                accessible, refused = access(o.free, need_chips, share, taken)
                if refused > EPS and (key not in refused_here or refused > refused_here[key].chips_withheld):
                    refused_here[key] = Refusal(o.cloud.cloud_id, "cloud", lab_id, lab_id, o.product, o.vendor,
                                                o.tier, refused, reason)
                outcome = self._bargain(lab, o, penalty, affiliated)
                if outcome is None:
                    continue  # no zone of agreement: neither a deal nor a sale lost for want of chips
                if share < 1.0 and accessible < need_chips:
                    shortfall.append((score, o))
                if accessible <= EPS:
                    continue
                chips = min(need_chips, accessible, budget_left / (outcome.price * hours))
                if chips <= EPS:
                    continue
                self._sign(lab, o, purpose, chips, outcome, initial)
                taken_here[key] = taken_here.get(key, 0.0) + chips
                need -= chips * useful_per_chip
                budget_left -= chips * outcome.price * hours
            if need > EPS and shortfall and budget_left > EPS:  # short of chips, not of money
                self._lose_sale(lab, need, shortfall)
        model.refusals.extend(refused_here.values())

    def _lose_sale(self, lab: AILab, need: float, shortfall: list[tuple[float, Offer]]) -> None:
        """Tell the clouds the lab would have rented from about the demand it could not place.

        Each short offer's cloud expects to win a logit share of the lab's remaining need:
        ``w ∝ exp(-β (score / best score - 1))`` (multinomial logit over the lab's own ranking, β
        = ``negotiation.lost_sales_logit``); the signal is in peak PFLOP/s.
        """
        best = min(score for score, _ in shortfall)
        weights = [math.exp(-self.lost_sales_logit * (score / best - 1.0)) for score, _ in shortfall]
        total = sum(weights)
        for (_, o), w in zip(shortfall, weights, strict=True):
            peak = need / lab.readiness[o.ecosystem] * w / total
            o.cloud.lost_sales[o.product] = o.cloud.lost_sales.get(o.product, 0.0) + peak

    def _sign(self, lab: AILab, o: Offer, purpose: str, chips: float, outcome: BargainOutcome, initial: bool) -> None:
        """Turn an agreement into contracts that reserve capacity at the cloud.

        In the first month (``initial``) the lab's existing book of contracts is stood in for by
        equal tranches with 1, 2, ... ``contract_months`` months left, so they do not all expire
        together.
        """
        model = self.model
        months = lab.cfg.contract_months
        terms = range(1, months + 1) if initial else (months,)
        for m in terms:
            part = chips / len(terms)
            contract = Contract(model.t, model.next_contract_id(), lab.lab_id, o.cloud.cloud_id, o.vendor, o.product,
                                o.tier, purpose, part, part * o.pflops, outcome.price, o.ask, m, outcome.rounds)
            lab.add_contract(contract)
            model.signed.append(contract)
        o.free -= chips
        o.cloud.contracted[o.product] += chips

    def _bargain(self, lab: AILab, o: Offer, penalty: float, affiliated: bool) -> BargainOutcome | None:
        """Price of one bilateral deal, between the cloud's and the lab's reservation values.

        Cloud: unit cost plus minimum margin. Lab: the least of the posted price (renting on
        demand is always possible) and its willingness to pay. Affiliated pairs transfer at the
        cloud's reservation price without bargaining.
        """
        wtp = lab.willingness_to_pay(o.pflops, o.ecosystem, penalty)
        if affiliated:
            return BargainOutcome(o.reservation, 1) if wtp >= o.reservation else None
        # A protocol is a pure function of the two reservation values and the parameters, and many
        # labs of the long tail bring the same ones: remember this month's outcomes.
        key = (o.reservation, min(o.ask, wtp), lab.cfg.bargaining_power)
        if key not in self._outcomes:
            self._outcomes[key] = self.protocol(o.reservation, min(o.ask, wtp), self._bargaining(lab))
        return self._outcomes[key]
