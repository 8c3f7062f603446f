"""The two market institutions: the shared packaging capacity and the bilateral compute market.

Agents make the decisions (what to order, which offers to rank first, reservation values); these
classes only match them, following the rules named in the scenario.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from market.contracts import PURPOSES, Contract, Refusal
from market.economics import (
    BARGAINING,
    RATIONING,
    BargainingParams,
    BargainOutcome,
    BestResponse,
    Replies,
    ReplyBlock,
    SellOut,
    candidate_prices,
    clearing_bracket,
    reply_block,
    sell_out_prices,
    sorted_unique,
    split_prices,
    with_outside_options,
)
from market.economics.classes import FRONTIER
from market.economics.clearing import joint_clearing, kinds_of
from market.economics.withholding import NOT_WITHHELD, Withholding, access

if TYPE_CHECKING:
    from market.agents.cloud import CloudProvider
    from market.agents.lab import AILab
    from market.model import MarketModel

__all__ = ["ComputeMarket", "Offer", "allocate_packaging"]

EPS = 1e-9
PURPOSE_INDEX = {purpose: u for u, purpose in enumerate(PURPOSES)}


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
    return first + RATIONING[rule](requests - first, spare, None)


@dataclass(slots=True)
class Offer:
    """A cloud's offer of one product this month (mutable: ``free`` falls as it sells)."""

    cloud: CloudProvider
    product: str
    vendor: str
    ecosystem: str
    tier: str  # its vendor's tier: "top" = the vendor's newest product
    performance_class: str  # market-wide: "frontier" or "mainstream"
    pflops: float
    free: float  # chips not under contract
    opened: float  # chips not under contract when the market opened this month
    ask: float  # posted (on-demand) price, USD per chip-hour
    floor: float  # avoidable cost plus minimum margin, USD per chip-hour: the cloud's impasse point
    reservation: float  # the least it accepts: the floor, or the competitive price when capacity binds
    scarce: bool  # its product's capacity binds at the competitive price: no on-demand capacity spare
    power: float  # the most its market power gets: its best reply were its rivals to ask the competitive price
    access: np.ndarray  # per lab (model.lab_list order): may ask for it (channel and a usable ecosystem)
    buyers: np.ndarray  # per lab: buys it at arm's length (not affiliated, not all withheld): its pricing's demand
    key: int  # index of its (vendor, performance class) in this month's penalty table
    withheld: list[Withholding] | None  # per lab: what the cloud keeps from it (None: the cloud withholds nothing)


SHARED_GRID_POINTS = 48  # log-spaced prices each product's sellers search (plus asks, undercuts, chokes)
SHARED_CHOKES = 64  # at most this many buyers' choke prices join the grid (quantiles beyond)
STATIC_UNDERCUT = 1e-12  # market power is checked against rivals at fixed prices: undercuts by a hair


def _chips(prices: np.ndarray, scale: np.ndarray, held: np.ndarray, choke: np.ndarray, money: np.ndarray,
           eps: np.ndarray, purpose_axis: int) -> np.ndarray:
    """The chips each lab wants beyond what it holds (:meth:`ComputeMarket._demand`'s terms),
    ``prices`` broadcast against the terms and with a length-1 purpose axis: ``min(sum over
    purposes of max(scale price^e - held, 0) up to the choke price, budget / price)``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # the arithmetic of np.where(prices <= choke, np.maximum(scale * prices ** eps - held, 0),
        # 0), in place: a month evaluates arrays of millions of numbers, and fresh temporaries of
        # that size cost more than the arithmetic
        wanted = np.multiply(scale, prices ** eps)
        np.subtract(wanted, held, out=wanted)
        np.maximum(wanted, 0.0, out=wanted)
        above = np.less_equal(prices, choke)
        np.logical_not(above, out=above)
        np.copyto(wanted, 0.0, where=above)
        total = wanted.sum(axis=purpose_axis)
        return np.minimum(total, money / np.squeeze(prices, axis=purpose_axis), out=total)


class _Terms(NamedTuple):
    """Every lab's demand for one product (:meth:`ComputeMarket._demand`): in chips of it, the
    scale and the chips held (lab, purpose), the choke prices (lab, purpose), the budget left
    (lab)."""

    scale: np.ndarray
    held: np.ndarray
    choke: np.ndarray
    money: np.ndarray


@dataclass(slots=True)
class _ProductMarket:
    """One product's market this month: its public sellers, buyers' choke prices, search grid
    and demand on it, and (once solved) its competitive price."""

    members: list[Offer]
    terms: _Terms  # every lab's demand for the product
    asks: np.ndarray
    free: np.ndarray
    floors: np.ndarray
    affiliates: list[np.ndarray]
    everyone: np.ndarray
    floor: float
    ceiling: float
    grid: np.ndarray
    by_lab: Callable[[np.ndarray], np.ndarray]
    on_grid: np.ndarray
    competitive: float  # USD per chip-hour: final once ``bracket`` (if any) is solved
    bracket: SellOut | None  # where the competitive price lies; None if the grid settles it


class _Group:
    """Sellers of one product with the same arm's-length buyers: their market power and (those
    due for review) posted asks, as blocks of best replies (:class:`Replies`)."""

    def __init__(self, members: list[Offer], due: list[int], power: ReplyBlock, posted: ReplyBlock | None,
                 spec: tuple[np.ndarray, _Terms], competitive: float) -> None:
        self.members, self.due, self.competitive, self.spec = members, due, competitive, spec
        self.blocks = [power] if posted is None else [power, posted]

    def apply(self, answers: list[BestResponse]) -> None:
        """Given the blocks' replies in order: set each seller's reservation, market power,
        market price and (if due) posted ask."""
        competitive = self.competitive
        power_replies = answers[:len(self.members)]
        replies: list[BestResponse | None] = [None] * len(self.members)
        for n, reply in zip(self.due, answers[len(self.members):], strict=True):
            replies[n] = reply
        for o, reply, strong in zip(self.members, replies, power_replies, strict=True):
            tight = competitive > o.floor
            o.scarce = tight
            o.reservation = competitive if tight else o.floor
            o.power = max(o.reservation, strong.price)
            o.cloud.reprice(o.product, reply, competitive if tight else None)
            o.cloud.market_price[o.product] = o.power if tight else min(o.power, o.cloud.rental_price[o.product])


class ComputeMarket:
    """Labs request capacity; clouds post asks and offer; each pair bargains; deals become contracts.

    Each month :meth:`open` collects the offers, computes every lab's penalties and demand schedule
    (as arrays, one row per lab), and has each public cloud reply to its rivals' asks on the
    residual demand of its product's market (:func:`market.economics.best_response`). Then labs
    negotiate one by one (:meth:`negotiate`): each bargains down its ranked list, the price of a
    deal being the Nash split between the cloud's avoidable cost and the lab's value, bounded by
    their outside options (the lab's best alternative seller, or the posted ask; the cloud's
    scarcity value), and takes the quantity its demand curve wants at that price.
    """

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        neg = model.config.negotiation
        self.protocol = BARGAINING[neg.protocol]
        self._base = {"seller_discount": neg.seller_discount, "buyer_discount": neg.buyer_discount,
                      "first_mover": neg.first_mover, "concession_rate": neg.concession_rate,
                      "max_rounds": neg.max_rounds}
        self.max_offers = neg.max_offers_per_lab
        self.substitutes = neg.substitutes
        self.dispersion = neg.substitutes_dispersion
        self._cleared: dict = {}  # last month's joint clearing prices per group (a product's name, or a (cloud, product) alone)
        self.solve: tuple[int | None, float | None] = (None, None)  # this month's joint clearing: Newton iterations, final residual
        self._params: dict[float, BargainingParams] = {}
        self._outcomes: dict[tuple[float, float, float], BargainOutcome | None] = {}
        self._deals: dict[tuple[int, float, float, float], BargainOutcome | None] = {}
        self.offers: list[Offer] = []
        labs = model.lab_list
        self.lab_index = {lab.lab_id: i for i, lab in enumerate(labs)}
        self.eco_index = {e: i for i, e in enumerate(model.ecosystems)}
        self.vendor_index = {v: i for i, v in enumerate(model.vendors)}
        self._value = np.array([lab.cfg.value_usd_per_pflop_hour for lab in labs])
        self._values = self._value.tolist()  # the same, as floats for the negotiation
        self._switching = np.array([[lab.cfg.switching_cost, lab.cfg.switching_cost * lab.cfg.inference_switching_share]
                                    for lab in labs])
        self._class_penalty = np.array([lab.cfg.below_frontier_penalty for lab in labs])
        self._diversification = np.array([lab.cfg.diversification for lab in labs])
        self._lab_power = np.array([lab.cfg.bargaining_power for lab in labs])
        demand = model.config.demand
        self._elasticity = np.array([demand.training_elasticity, demand.inference_elasticity])
        self._serves: dict[tuple[str, str], np.ndarray] = {}  # static channel policy, per (cloud, vendor)
        self._affiliates: dict[str, np.ndarray] = {}  # static, per cloud
        self.penalty = np.ones((0, len(labs), 2))  # (vendor, class) key, lab, purpose -> multiplier >= 1

    # -- the month's offers and asks ------------------------------------------------------------
    def open(self) -> None:
        """Collect this month's offers, the labs' state, and let public clouds reprice."""
        model = self.model
        labs = model.lab_list
        n = len(labs)
        self._outcomes = {}
        self._deals = {}
        # per lab, this month (a lab in a partnership negotiates twice): chips of each offer taken,
        # and one refusal per offer (the largest)
        self._taken: dict[str, dict[tuple[str, str], float]] = {}
        self._refused: dict[tuple[str, str, str], Refusal] = {}
        rho = np.zeros((n, len(self.eco_index), len(PURPOSES)))  # lab, ecosystem, purpose
        in_use = np.zeros((n, len(self.eco_index), len(PURPOSES)), dtype=bool)
        shares = np.zeros((n, len(self.vendor_index)))
        held = np.zeros((n, 2))
        notional = np.zeros((n, 2))
        level = np.empty(n)
        money = np.empty(n)
        eco_index, vendor_index, purpose_index = self.eco_index, self.vendor_index, PURPOSE_INDEX
        for i, lab in enumerate(labs):
            for (purpose, e), r in lab.readiness.items():
                rho[i, eco_index[e], purpose_index[purpose]] = r
            for purpose, e in lab.holdings():
                in_use[i, eco_index[e], purpose_index[purpose]] = True
            if model.t == 0:  # the book before the simulation, which the first month's contracts stand for
                for purpose, used in lab.cfg.in_use.items():
                    for e in used:
                        in_use[i, eco_index[e], purpose_index[purpose]] = True
            for v, x in lab.vendor_shares().items():
                shares[i, vendor_index[v]] = x
            held[i] = lab.useful_by_purpose()
            total = lab.notional()
            notional[i, 0] = total * lab.cfg.training_share
            notional[i, 1] = total - notional[i, 0]
            level[i] = lab.price_level
            money[i] = max(0.0, lab.budget - lab.committed_spend())
        self.rho, self.held, self.notional, self.level = rho, held, notional, level
        self._held_at_open = held.tolist()  # per lab and purpose, until it first negotiates this month
        self._notional_at_open = notional.tolist()  # per lab and purpose: it holds all month
        self.budget_left = money / model.hours  # USD per hour each lab may still commit
        keys: dict[tuple[str, str], int] = {}
        penalties: list[np.ndarray] = []
        self.offers = []
        for cloud in model.cloud_list:
            for p in cloud.offered():
                prod = model.products[p]
                eco = model.vendors[prod.vendor].ecosystem
                key = keys.get((prod.vendor, prod.performance_class))
                if key is None:
                    key = keys[prod.vendor, prod.performance_class] = len(penalties)
                    penalties.append(self._penalties(prod.vendor, eco, prod.performance_class, rho, in_use, shares))
                floor = cloud.floor_price(p)
                menu, buyers, kept = self._access(cloud, p, prod.vendor, eco)
                free = cloud.free(p)
                self.offers.append(Offer(cloud, p, prod.vendor, eco, prod.tier, prod.performance_class,
                                         model.config.products[p].pflops, free, free, cloud.rental_price[p],
                                         floor, floor, False, math.inf, menu, buyers, key, kept))
        self.penalty = np.stack(penalties) if penalties else np.ones((0, n, 2))
        self._keys = np.array([o.key for o in self.offers], dtype=int)
        self._offer_penalty = self.penalty[self._keys]  # offer, lab, purpose
        # useful PFLOP/s a chip of each offer gives each lab for each purpose
        self._useful = (np.stack([o.pflops * rho[:, self.eco_index[o.ecosystem], :] for o in self.offers])
                        if self.offers else np.zeros((0, n, len(PURPOSES))))
        self._reprice()
        self._rank_tables()

    def _rank_tables(self) -> None:
        """Per offer and lab (and purpose): may it ask, and the effective reservation and ask per
        useful PFLOP-hour (penalties included) the labs rank offers by; ties go to the offer
        listed first."""
        offers = self.offers
        n = len(self.model.lab_list)
        if not offers:
            self._may_ask = np.zeros((0, n), dtype=bool)
            self._lowest_floor = np.full((n, len(PURPOSES)), np.inf)
            return
        self._may_ask = np.stack([o.access for o in offers])
        self._floors = np.array([o.floor for o in offers])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            per_useful = np.where(self._may_ask[:, :, None] & (self._useful > 0),
                                  self._floors[:, None, None] / self._useful, np.inf)
        self._lowest_floor = per_useful.min(axis=0)  # per lab and purpose: the least USD per useful PFLOP-hour any offer could go to
        penalty = self._offer_penalty
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self._reservations = np.array([o.reservation for o in offers])
            self._buyer_option = np.array([o.power if o.scarce else min(o.ask, o.power) for o in offers])
            self._affiliated = np.stack([self._affiliated_to(o.cloud) for o in offers])
            self._reservation_score = self._reservations[:, None, None] * penalty / self._useful
            self._ask_score = np.array([o.ask for o in offers])[:, None, None] * penalty / self._useful
        self._discount = self._partner_discounts() if self.model.partner_terms else None
        self._rankings = [self._ranking(u) for u in range(len(PURPOSES))]

    def _partner_discounts(self) -> np.ndarray:
        """Per offer and lab: the discount a running partnership gives the lab at the offer's cloud
        (0 where none; see :meth:`_bargain`)."""
        out = np.zeros((len(self.offers), len(self.model.lab_list)))
        for lab_id, terms in self.model.partner_terms.items():
            out[:, self.lab_index[lab_id]] = [terms.get(o.cloud.cloud_id, 0.0) for o in self.offers]
        return out

    def _ranking(self, u: int) -> tuple[np.ndarray, list, list]:
        """Every lab's ranking of the offers it may ask for purpose ``u`` (negotiate walks down
        it): by effective reservation per useful PFLOP-hour, then effective ask, then offer order,
        at most ``max_offers``. Per lab and rank: the offer, the useful PFLOP/s a chip gives, the
        penalty and the least price a deal could be at (:meth:`_deal_floor`), as one array (lab,
        those four, rank) whose rows a lab turns into lists when it negotiates, only as far down
        as it may go; per lab, as lists: the cheapest floor per useful PFLOP-hour on its list, and
        how far down the list the offers' reservations stay within its value (the scores ascend)."""
        n_offers = len(self.offers)
        labs = np.arange(len(self.model.lab_list))
        may = self._may_ask.T  # lab, offer
        score = self._reservation_score[:, :, u].T
        keys = (np.broadcast_to(np.arange(n_offers), may.shape), self._ask_score[:, :, u].T, score, ~may)
        order = np.lexsort(keys, axis=-1)  # the offers it may not ask sort last
        size = np.minimum(may.sum(axis=1), self.max_offers)
        listed = np.arange(n_offers)[None, :] < size[:, None]
        useful = np.take_along_axis(self._useful[:, :, u].T, order, axis=1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            cheapest = np.where(listed, self._floors[order] / useful, np.inf).min(axis=1, initial=np.inf)
            over = listed & (np.take_along_axis(score, order, axis=1) > self._value[:, None])
        within = np.where(over.any(axis=1), np.argmax(over, axis=1), size)
        penalty = np.take_along_axis(self._offer_penalty[:, :, u].T, order, axis=1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            least = self._deal_floor(order, labs, self._value[:, None] * useful / penalty)
        width = int(within.max()) if within.size else 0  # no lab goes further down its list
        table = np.stack([x[:, :width] for x in (order, useful, penalty, least)], axis=1, dtype=np.float64)
        return table, cheapest.tolist(), within.tolist()

    def _penalties(self, vendor: str, eco: str, performance_class: str, rho: np.ndarray, in_use: np.ndarray,
                   shares: np.ndarray) -> np.ndarray:
        """Every lab's penalty multiplier on offers of this vendor and performance class, for each
        purpose (switching, below-frontier and diversification penalties, for all labs at once)."""
        e, v = self.eco_index[eco], self.vendor_index[vendor]
        # each purpose has its own switching cost and readiness, and its own holdings in the ecosystem
        switching = np.where(in_use[:, e, :], 1.0, 1.0 + self._switching * (1.0 - rho[:, e, :]))
        diversify = 1.0 + self._diversification * shares[:, v]
        training = switching[:, 0] * (1.0 + self._class_penalty if performance_class != FRONTIER else 1.0) * diversify
        return np.stack((training, switching[:, 1] * diversify), axis=1)

    def _access(self, cloud: CloudProvider, product: str, vendor: str, eco: str
                ) -> tuple[np.ndarray, np.ndarray, list[Withholding] | None]:
        """Which labs may ask for this offer (the channel and a usable ecosystem), which of them
        buy it at arm's length (not affiliated with the cloud, not all of it withheld from them):
        the demand its price answers to; and what the cloud keeps from each lab (None if it
        withholds nothing), which holds all month (:meth:`CloudProvider.withheld`)."""
        key = (cloud.cloud_id, vendor)
        serves = self._serves.get(key)
        if serves is None:
            serves = self._serves[key] = np.array([cloud.serves(lab.lab_id, vendor) for lab in self.model.lab_list])
        menu = serves & (self.rho[:, self.eco_index[eco], :] > 0).any(axis=1)
        labs = self.model.lab_list
        # affiliated labs take capacity at the cloud's reservation, outside its pricing
        buyers = menu & ~self._affiliated_to(cloud)
        if cloud.cfg.withholding is None:
            return menu, buyers, None
        kept = [cloud.withheld(lab.lab_id, product) for lab in labs]
        return menu, buyers & np.array([w.share < 1.0 for w in kept]), kept

    def _affiliates_of(self, o: Offer) -> np.ndarray:
        """Per lab: one of the offer's cloud's affiliated labs that may ask for it (they take capacity
        at the cloud's reservation, outside its pricing, but count in the competitive price)."""
        return o.access & ~o.buyers & self._affiliated_to(o.cloud)

    def _affiliated_to(self, cloud: CloudProvider) -> np.ndarray:
        """Per lab: is it affiliated with this cloud (static, so cached)?"""
        mask = self._affiliates.get(cloud.cloud_id)
        if mask is None:
            mask = self._affiliates[cloud.cloud_id] = np.array([cloud.affiliated(lab.lab_id)
                                                               for lab in self.model.lab_list])
        return mask

    def _reprice(self) -> None:
        """Each public cloud's best reply, product by product, on the residual demand of that
        product's market; sets its asks and whether it expects to sell out (docs/ODD.md 7.7)."""
        self.solve = (None, None)
        offers = self.offers
        if not offers:
            return
        useful = self._useful  # offer, lab, purpose
        with np.errstate(divide="ignore", over="ignore"):  # a chip of almost no use: an infinite price
            per_useful = np.where(useful > 0, 1.0 / useful, np.inf)
        penalty = self._offer_penalty  # offer, lab, purpose
        need = np.maximum(self.notional - self.held, 0.0)  # lab, purpose
        # The labs' outside options: what each offer cost last month (its market price), in
        # effective USD per useful PFLOP-hour, and the useful PFLOP/s it has free.
        free = np.array([o.free for o in offers])
        price = np.array([o.cloud.market_price.get(o.product, o.ask) for o in offers])
        able = np.stack([o.buyers for o in offers])[:, :, None] & (useful > 0)
        with np.errstate(over="ignore"):
            effective = np.where(able, price[:, None, None] * penalty * per_useful, np.inf)
        room = np.where(able, free[:, None, None] * useful, 0.0)
        by_product: dict[str, list[int]] = {}
        for k, o in enumerate(offers):
            by_product.setdefault(o.product, []).append(k)
        priced = {product: [k for k in ks if offers[k].cloud.owner_lab is None
                            and offers[k].cloud.cfg.pricing.rule == "best_response"]
                  for product, ks in by_product.items()}
        priced = {product: sellers for product, sellers in priced.items() if sellers}
        products = np.array([o.product for o in offers])
        if self.substitutes == "joint":
            price, substitutes = self._joint(priced, price, useful, penalty)
            with np.errstate(over="ignore"):
                effective = np.where(able, price[:, None, None] * penalty * per_useful, np.inf)
        elif self.substitutes == "netted":
            substitutes = self._substitutes(effective, room, need, useful, free * price, products, list(priced))
        else:
            substitutes = dict.fromkeys(priced)
        alternatives = self._alternatives(effective, room, need, products, list(priced), able, useful, penalty)
        # Two passes over the product markets, so that each pass's sell-out prices (the
        # competitive prices, then the sellers' replies) are solved for all markets at once.
        markets = [self._market_grid([offers[k] for k in sellers], useful[by_product[product][0]],
                                     penalty[by_product[product][0]], alternatives[product], substitutes[product])
                   for product, sellers in priced.items()]
        self._clear(markets)
        groups = [group for m in markets for group in self._market_replies(m)]
        if not groups:
            return
        replies = Replies([block for group in groups for block in group.blocks])
        specs = [group.spec for group in groups for _ in group.blocks]
        kinks, residuals = sell_out_prices(replies.sell_out, *self._stacked_demand(specs, replies.bracket_block))
        answers = iter(replies.finish(kinks, residuals))
        for group in groups:
            group.apply([next(answers) for block in group.blocks for _ in block.costs])
        for m in markets:
            for o in m.members:  # the posted asks labs see this month
                o.ask = o.cloud.rental_price[o.product]

    def _market_grid(self, members: list[Offer], u: np.ndarray, pen: np.ndarray,
                     alt: np.ndarray, substitutes: tuple[np.ndarray, np.ndarray] | None) -> _ProductMarket:
        """A product market's buyers, choke prices, search grid and demand on it, and its
        competitive price (or the bracket it is in)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            choke = np.where(u > 0, np.minimum(self._value[:, None], alt) * u / pen, 0.0)  # USD per chip-hour
        # The competitive price clears the product's free capacity against everyone's demand,
        # affiliated labs' too (an integrated firm's own lab pays the opportunity cost): it is
        # the sellers' reservation while capacity binds. Then, for sellers whose arm's-length
        # buyers are the same (one search grid): each one's market power (its best reply were
        # its rivals to ask the competitive price, or their cost if higher) and its posted ask
        # (its best reply to the rivals' current asks), on what its affiliates leave it.
        asks = np.array([o.ask for o in members])
        free = np.array([o.free for o in members])
        floors = np.array([o.floor for o in members])
        affiliates = [self._affiliates_of(o) for o in members]
        everyone = np.logical_or.reduce([o.buyers | a for o, a in zip(members, affiliates, strict=True)])
        floor = float(floors.min())
        chokes = choke[everyone]
        ceiling = max(float(chokes.max()) if chokes.size else 0.0, floor)
        kinks = sorted_unique(chokes[(chokes > floor) & (chokes <= ceiling)])
        if kinks.size > SHARED_CHOKES:  # a long tail: its quantiles
            kinks = np.quantile(kinks, np.linspace(0.0, 1.0, SHARED_CHOKES))
        # one evaluation of every lab's demand on the prices all sellers search (every ask and
        # undercut), summed over the buyers of each group
        undercuts = np.array([o.cloud.cfg.pricing.undercut for o in members])
        grid = candidate_prices(floor, ceiling, asks, undercuts, SHARED_GRID_POINTS, extra=kinks)
        terms = self._terms(u, choke, substitutes)
        by_lab = self._demand_by_lab(everyone, terms)
        on_grid = by_lab(grid)  # lab (of everyone), price
        at_grid = on_grid.sum(axis=0)
        at_floor = float(at_grid[0]) if grid[0] == floor else float(by_lab(np.array([floor])).sum())
        price, bracket = clearing_bracket(floor, float(free.sum()), at_floor, ceiling, grid, at_grid)
        return _ProductMarket(members, terms, asks, free, floors, affiliates, everyone, floor, ceiling, grid, by_lab,
                              on_grid, price, bracket)

    def _market_replies(self, m: _ProductMarket) -> list[_Group]:
        """Each seller's market power and (if due for review) posted ask, as best replies whose
        sell-out prices are still to be solved, in groups of sellers with the same buyers."""
        competitive, members = m.competitive, m.members
        capacity = [o.free if not any_ else
                    max(0.0, o.free - float(self._demand(a, m.terms)(np.array([max(competitive, o.floor)]))[0]))
                    for o, a, any_ in zip(members, m.affiliates, np.any(m.affiliates, axis=1).tolist(), strict=True)]
        groups: dict[bytes, list[int]] = {}
        for row, o in enumerate(members):
            groups.setdefault(o.buyers.tobytes(), []).append(row)
        fixed = np.maximum(m.floors, competitive)  # rivals at the competitive price, or their cost
        extra = sorted(set(np.concatenate((fixed, fixed * (1.0 - STATIC_UNDERCUT))).tolist()).difference(m.grid.tolist()))
        extra = np.array([x for x in extra if m.floor <= x <= m.ceiling])
        on_extra = m.by_lab(extra)
        static = np.concatenate((m.grid, extra))
        order = np.argsort(static, kind="stable")
        static = static[order]
        out = []
        for rows in groups.values():
            group = [members[row] for row in rows]
            buyers = group[0].buyers
            demand = self._lazy_demand(buyers, m.terms)  # wanted only to refine a reply (rare)
            mine = buyers[m.everyone]  # the group's buyers among everyone
            at_grid = m.on_grid[mine].sum(axis=0)
            at_static = np.concatenate((at_grid, on_extra[mine].sum(axis=0)))[order]
            floors = np.array([o.floor for o in group])
            caps = np.array([capacity[row] for row in rows])
            power = reply_block(floors, caps, rows, fixed, m.free, np.full(len(rows), STATIC_UNDERCUT), demand,
                                m.ceiling, prices=static, demand_at_prices=at_static)
            # posted asks: only those due for review reply (a reply depends on the rivals alone)
            due = [n for n, o in enumerate(group) if o.cloud.review_due(o.product)]
            posted = reply_block(floors[due], caps[due], np.array(rows)[due], m.asks, m.free,
                                 np.array([o.cloud.cfg.pricing.undercut for o in group])[due], demand, m.ceiling,
                                 prices=m.grid, demand_at_prices=at_grid) if due else None
            out.append(_Group(group, due, power, posted, (buyers, m.terms), competitive))
        return out

    def _clear(self, markets: list[_ProductMarket]) -> None:
        """The competitive prices still in a bracket, solved for all markets at once (one stacked
        demand: each market's buyers and demand terms)."""
        todo = [m for m in markets if m.bracket is not None]
        if not todo:
            return
        demand = self._stacked_demand([(m.everyone, m.terms) for m in todo], np.arange(len(todo)))
        kinks, _ = sell_out_prices(SellOut.concat([m.bracket for m in todo]), *demand)
        for m, price in zip(todo, kinks.tolist(), strict=True):
            m.competitive = price

    def _stacked_demand(self, specs: list[tuple[np.ndarray, _Terms]], which: np.ndarray
                        ) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]:
        """Demand of several markets (``specs``: buyers, and the product's demand terms), one
        price each: entry ``r`` of the prices is a price of market ``which[r]`` (:meth:`_demand`);
        and the same for some entries ``rows`` only (``sell_out_prices``' ``demand_of``)."""
        index: dict[int, int] = {}  # blocks of one group of sellers share its spec: masked once
        of_spec = np.array([index.setdefault(id(spec), len(index)) for spec in specs], dtype=np.intp)
        parts = [self._masked(*spec) for spec in {id(spec): spec for spec in specs}.values()]
        scale, held, top, money = (np.stack([part[n] for part in parts])[of_spec[which]] for n in range(4))
        eps = self._elasticity[None, None, :]

        def chips(prices: np.ndarray) -> np.ndarray:
            return _chips(prices[:, None, None], scale, held, top, money, eps, purpose_axis=2).sum(axis=1)

        def chips_of(prices: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return _chips(prices[:, None, None], scale[rows], held[rows], top[rows], money[rows], eps,
                          purpose_axis=2).sum(axis=1)

        return chips, chips_of

    @staticmethod
    def _masked(rows: np.ndarray, terms: _Terms) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A product's demand terms for every lab, those outside ``rows`` wanting nothing."""
        inside = rows[:, None]
        return (np.where(inside, terms.scale, 0.0), np.where(inside, terms.held, 0.0),
                np.where(inside, terms.choke, -np.inf), np.where(rows, terms.money, 0.0))

    @staticmethod
    def _alternatives(effective: np.ndarray, room: np.ndarray, need: np.ndarray, product: np.ndarray,
                      markets: list[str], able: np.ndarray, useful: np.ndarray, penalty: np.ndarray
                      ) -> dict[str, np.ndarray]:
        """Per product market, per lab and purpose: the effective price (USD per useful PFLOP-hour)
        at which the offers of other products could serve all it still needs, cheapest first: the
        price of the marginal alternative; infinite where all of them together could not.

        Labs' (lab, purpose) pairs that may rent the same offers (``able``), a chip of each as
        ``useful`` to them and at the same ``penalty`` (so at the same effective price and room),
        rank them alike, so the offers are sorted and their room
        summed once per kind of pair; each pair then finds where what it needs is covered."""
        n_offers = effective.shape[0]
        if n_offers == 0:
            return {p: np.full(need.shape, np.inf) for p in markets}
        flat_effective, flat_room = effective.reshape(n_offers, -1), room.reshape(n_offers, -1)
        # finite, and they make the effective price and the room: where it may rent, the chips' use and penalty there
        kind, first = kinds_of(np.vstack((able.reshape(n_offers, -1), np.where(able, useful, 0.0).reshape(n_offers, -1),
                                          np.where(able, penalty, 0.0).reshape(n_offers, -1))).T)
        order = np.argsort(flat_effective[:, first], axis=0, kind="stable")  # offer, kind: cheapest first
        sorted_price = np.take_along_axis(flat_effective[:, first], order, axis=0)
        sorted_room = np.take_along_axis(flat_room[:, first], order, axis=0)
        other = product[order][:, :, None] != np.asarray(markets)[None, None, :]  # offer, kind, market
        covered = np.cumsum(np.where(other, sorted_room[:, :, None], 0.0), axis=0)
        wanted = need.reshape(-1)
        out = {}
        for j, p in enumerate(markets):
            # the first offer (of another product) where what the offers so far could serve covers
            # the need: covered only grows at other products' offers with room, so with a need
            # above 0 the first place it covers it is one of them, at a finite price
            enough = covered[:, kind, j] >= wanted[None, :]  # offer, pair
            at = np.argmax(enough, axis=0)
            marginal = sorted_price[at, kind]
            out[p] = np.where(enough[-1] & (wanted > 0), marginal, np.inf).reshape(need.shape)
        return out

    def _joint(self, priced: dict[str, list[int]], price: np.ndarray, useful: np.ndarray, penalty: np.ndarray
               ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """The month's joint clearing of every offer (:func:`market.economics.clearing.joint_clearing`):
        each priced product's public sellers one group, every other offer (a lab's own data
        centre, a cloud pricing at cost) a group alone; each lab renting where its affiliation or
        the channel lets it. Returns each offer's competitive price, and per priced product what
        each lab rents of the other products at those prices: the useful PFLOP/s (lab, purpose)
        and their cost (lab, USD per hour) its demand for the product is netted of."""
        offers = self.offers
        group = np.full(len(offers), -1)
        for g, sellers in enumerate(priced.values()):
            group[sellers] = g
        alone = np.flatnonzero(group < 0)
        group[alone] = len(priced) + np.arange(alone.size)
        n_groups = len(priced) + alone.size
        free = np.array([o.free for o in offers])
        floors = np.array([o.floor for o in offers])
        floor = np.full(n_groups, np.inf)
        np.minimum.at(floor, group, floors)
        capacity = np.bincount(group, weights=free, minlength=n_groups)
        names = list(priced) + [(offers[k].cloud.cloud_id, offers[k].product) for k in alone.tolist()]
        last = np.zeros(n_groups)
        np.maximum.at(last, group, price)
        guess = np.array([self._cleared.get(name, x) for name, x in zip(names, last.tolist(), strict=True)])
        able = np.stack([o.buyers | self._affiliates_of(o) for o in offers])
        solved = joint_clearing(guess, group, floor, capacity, useful, penalty, able, self._value, self.notional,
                                self.held, self.level, self._elasticity, self.budget_left, tau=self.dispersion)
        self._cleared = dict(zip(names, solved.prices.tolist(), strict=True))  # next month's first guess
        self.solve = (solved.iterations, solved.residual)
        prices = solved.prices[group]
        chips = solved.chips  # offer, lab, purpose
        rented = chips * useful
        cost = (chips * prices[:, None, None]).sum(axis=2)  # offer, lab
        out = {}
        for g, product in enumerate(priced):
            other = group != g
            out[product] = (rented[other].sum(axis=0), cost[other].sum(axis=0))
        return np.where(group < len(priced), prices, price), out

    @staticmethod
    def _substitutes(effective: np.ndarray, room: np.ndarray, need: np.ndarray, useful: np.ndarray,
                     cost: np.ndarray, product: np.ndarray, markets: list[str]
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per product market: per lab and purpose, the useful PFLOP/s it can count on from other
        products' offers at most as dear for it (effective USD per useful PFLOP-hour, at last month's
        prices) as this product's cheapest offer, its share of their free chips (each offer's shared
        among the labs able to rent it by what they need, in its chips); and per lab, what those
        cost it an hour (``cost``: each offer's free chips at last month's price, USD per hour)."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            wants = np.where(room > 0, need[None] / useful, 0.0)  # offer, lab, purpose: chips of it
            wants[~np.isfinite(wants)] = 0.0  # a chip of almost no use to it: it counts on none
            total = wants.sum(axis=(1, 2), keepdims=True)
            share = np.where(total > 0, wants / total, 0.0)  # of each offer's free chips
        out = {}
        for p in markets:
            own = product == p
            best = effective[own].min(axis=0)  # lab, purpose: this product's cheapest offer for it
            other = ~own
            counted = np.where(effective[other] <= best[None], share[other], 0.0)
            out[p] = ((counted * room[other]).sum(axis=0),
                      (counted.sum(axis=2) * cost[other][:, None]).sum(axis=0))
        return out

    def _terms(self, useful: np.ndarray, choke: np.ndarray,
               substitutes: tuple[np.ndarray, np.ndarray] | None = None) -> _Terms:
        """Every lab's demand for a product whose chip gives it ``useful`` PFLOP/s (lab, purpose),
        up to ``choke`` (lab, purpose): the terms of :meth:`_demand`, in chips."""
        u = useful
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # no use: above every choke price
            scale = self.notional * (u * self.level[:, None]) ** -self._elasticity[None, :]
            held = (self.held if substitutes is None else self.held + substitutes[0]) / u
            scale = scale / u
        money = self.budget_left if substitutes is None else np.maximum(self.budget_left - substitutes[1], 0.0)
        return _Terms(scale, held, choke, money)

    def _lazy_demand(self, rows: np.ndarray, terms: _Terms):
        """:meth:`_demand`, built at its first call."""
        built: list = []

        def demand(prices: np.ndarray) -> np.ndarray:
            if not built:
                built.append(self._demand(rows, terms))
            return built[0](prices)

        return demand

    def _demand(self, rows: np.ndarray, terms: _Terms):
        """A function giving the chips the labs ``rows`` want beyond what they hold, at an array
        of prices (USD per chip-hour of a product giving them ``useful`` PFLOP/s a chip), nothing
        above ``choke``: ``sum over labs of min(sum over purposes of (notional (price / useful /
        level)^e - held) / useful, budget left / price)``."""
        per_lab = self._demand_by_lab(rows, terms)
        return lambda prices: per_lab(prices).sum(axis=0)

    def _demand_by_lab(self, rows: np.ndarray, terms: _Terms):
        """As :meth:`_demand`, lab by lab: a function of prices (n,) giving (labs in ``rows``, n)."""
        scale = terms.scale[rows][:, :, None]  # lab, purpose, 1
        held = terms.held[rows][:, :, None]
        top = terms.choke[rows][:, :, None]
        money = terms.money[rows][:, None]
        eps = self._elasticity[None, :, None]

        def chips(prices: np.ndarray) -> np.ndarray:
            return _chips(prices[None, None, :], scale, held, top, money, eps, purpose_axis=1)

        return chips

    def _bargaining(self, lab: AILab) -> BargainingParams:
        return self._bargaining_params(lab.cfg.bargaining_power)

    def _bargaining_params(self, lab_power: float) -> BargainingParams:
        power = 1.0 - lab_power
        if power not in self._params:
            self._params[power] = BargainingParams(seller_power=power, **self._base)
        return self._params[power]

    # -- one lab's round ------------------------------------------------------------------------
    def negotiate(self, lab: AILab, initial: bool = False, only: frozenset[str] | None = None) -> None:
        """One lab's round: rank the offers it may take, bargain down the list until its demand at
        the prices it gets is met.

        ``initial`` marks the first month, whose contracts stand for those signed before the
        simulation (see :meth:`_sign`). ``only``: the clouds it may deal with in this round (its
        partners', in the partnership round).
        """
        model = self.model
        lab_id = lab.lab_id
        i = self.lab_index[lab_id]
        hours = model.hours
        value = self._values[i]
        budget_left = lab.budget - lab.committed_spend()
        refusals = self._refused  # one refusal per offer and lab-month
        first = lab_id not in self._taken  # its first round this month: it holds what it held at open
        taken_here = self._taken.setdefault(lab_id, {})  # chips of each offer it rented this month
        offers = self.offers
        discounts = model.partner_terms.get(lab_id)  # a partnership's better terms, by cloud
        bargaining = self._bargaining(lab)
        months = lab.cfg.contract_months
        notional = self._notional_at_open[i]
        for u, purpose in enumerate(PURPOSES):
            if notional[u] <= EPS or not offers:
                continue
            wanted = lab.demand_curve(purpose, notional[u])  # useful PFLOP/s it wants at a price per useful PFLOP-hour
            held = self._held_at_open[i][u] if first else lab.useful_contracted(purpose)
            if budget_left <= EPS or wanted(self._lowest_floor[i, u]) <= held + EPS:
                continue  # it holds all it would want even at the lowest price any seller could go to
            table, cheapest_of, within = self._rankings[u]
            cheapest = cheapest_of[i]
            if wanted(cheapest) <= held + EPS:
                continue  # it wants no more even at the lowest price any seller on its list could go to
            # Down the list it stops at the first seller whose least price exceeds its value; at
            # the least price it could agree at with each (_deal_floor) it skips those at which
            # it would want no more than it holds.
            committed = None  # its term contracts' useful PFLOP/s, read again after it signs
            ks, usefuls, penalties, leasts = table[i, :, :within[i]].tolist()
            for k, useful, penalty, least in zip(map(int, ks), usefuls, penalties, leasts, strict=True):
                o = offers[k]
                if o.free <= EPS and o.withheld is None:
                    continue  # sold out: nothing to rent, nothing to refuse
                if wanted(least / useful) - held <= EPS:
                    continue
                if only is not None and o.cloud.cloud_id not in only:
                    continue
                key = (o.cloud.cloud_id, o.product)
                taken = taken_here.get(key, 0.0)
                affiliated = self._affiliated[k, i]
                outcome = self._bargain(k, useful, penalty, value, affiliated, bargaining,
                                        discounts.get(o.cloud.cloud_id, 0.0) if discounts else 0.0)
                if outcome is None:
                    continue  # no zone of agreement
                # the kinds of contract on offer (docs/ODD.md 7.19): a reservation of its term at
                # the bargained (one-year) price and the cloud's term discount; on demand at the
                # posted ask (or, while capacity binds, what its market power gets) plus the
                # on-demand premium. An affiliate reserves at the transfer price.
                pricing = o.cloud.cfg.pricing
                reserved = outcome.price if affiliated else max(
                    o.floor, outcome.price * o.cloud.term_factor(months))
                need = wanted(reserved / useful) - held
                if need <= EPS:
                    continue
                if affiliated:
                    to_reserve, on_demand, od_need = need, reserved, 0.0
                else:
                    on_demand = (max(o.ask, o.power) if o.scarce else o.ask) * (1.0 + pricing.on_demand_premium)
                    if committed is None:  # its term contracts, this round's included
                        committed = lab.useful_committed(purpose)
                    target = lab.commitment(need + held, reserved, on_demand)
                    to_reserve = min(need, max(0.0, target - committed))
                    od_need = (max(0.0, wanted(on_demand / useful) - held - to_reserve)
                               if on_demand * penalty <= value * useful else 0.0)
                need_chips = (to_reserve + od_need) / useful
                if need_chips <= EPS:
                    continue
                share, reason = NOT_WITHHELD if o.withheld is None else o.withheld[i]
                accessible, refused = access(o.free, need_chips, share, taken)
                if refused > EPS and ((lab_id, *key) not in refusals
                                      or refused > refusals[lab_id, *key].chips_withheld):
                    refusals[lab_id, *key] = Refusal(o.cloud.cloud_id, "cloud", lab_id, lab_id, o.product, o.vendor,
                                                     o.tier, refused, reason)
                if accessible <= EPS:
                    continue
                signed = 0.0
                for kind, price, chips in (("reserved", reserved, to_reserve / useful),
                                           ("on_demand", on_demand, od_need / useful)):
                    chips = min(chips, accessible - signed, budget_left / (price * hours))
                    if chips <= EPS:
                        continue
                    self._sign(lab, o, purpose, kind, chips, price, outcome.rounds, initial)
                    committed = None
                    lab.paid(chips * price, chips * useful)
                    signed += chips
                    budget_left -= chips * price * hours
                    held += chips * useful
                if signed <= 0.0:
                    continue
                taken_here[key] = taken + signed
                if budget_left <= EPS or wanted(cheapest) <= held + EPS:
                    break  # out of money, or it wants no more even at the lowest price here

    def close(self) -> None:
        """End the month's negotiation: record the refusals (one per lab and offer, the largest)."""
        self.model.refusals.extend(self._refused.values())
        self._refused = {}

    def _deal_floor(self, order: np.ndarray, labs: np.ndarray, wtp: np.ndarray) -> np.ndarray:
        """The least price each offer ``order[i, r]`` could agree with lab ``labs[i]`` at, whose
        willingness to pay for it is ``wtp[i, r]`` (USD per chip-hour): what :meth:`_bargain`
        agrees at (the same arithmetic), for a protocol with a closed form; else the seller's
        reservation (no deal is below it). Where there is no deal the value does not matter:
        the offer is skipped either way."""
        reservation = self._reservations[order]
        split = np.full(order.shape, np.nan)
        for power in np.unique(self._lab_power):
            mine = self._lab_power == power
            part = split_prices(self.protocol, self._floors[order[mine]], wtp[mine],
                                self._bargaining_params(float(power)))
            if part is None:
                return reservation
            split[mine] = part
        buyer_option = np.minimum(wtp, self._buyer_option[order])
        least = np.where(self._affiliated[order, labs[:, None]], reservation,
                         np.maximum(reservation, np.minimum(split, buyer_option)))
        if self._discount is None:
            return least
        discount = self._discount[order, labs[:, None]]  # partners' better terms (see _bargain)
        return np.where(discount > 0.0, np.maximum(self._floors[order], least * (1.0 - discount)), least)

    def _sign(self, lab: AILab, o: Offer, purpose: str, kind: str, chips: float, price: float, rounds: int,
              initial: bool) -> None:
        """Turn an agreement into contracts that reserve capacity at the cloud: on demand for a
        month, a reservation for the lab's ``contract_months``.

        In the first month (``initial``) the lab's existing book of reservations is stood in for by
        equal tranches with 1, 2, ... ``contract_months`` months left, so they do not all expire
        together.
        """
        model = self.model
        months = lab.cfg.contract_months if kind == "reserved" else 1
        terms = range(1, months + 1) if initial else (months,)
        for m in terms:
            part = chips / len(terms)
            contract = Contract(model.t, model.next_contract_id(), lab.lab_id, None, o.cloud.cloud_id, o.vendor, o.product,
                                o.tier, o.performance_class, purpose, kind, part, part * o.pflops, price, o.ask, m,
                                rounds)
            lab.add_contract(contract)
            model.signed.append(contract)
        o.free -= chips
        o.cloud.contracted[o.product] += chips

    def _bargain(self, k: int, useful: float, penalty: float, value: float, affiliated: bool,
                 params: BargainingParams, discount: float) -> BargainOutcome | None:
        """Price of one bilateral deal (USD per chip-hour) for offer ``k``.

        Inside the bargain the cloud's impasse point is its avoidable cost (plus minimum margin) and
        the lab's is its value of the chip-hour, net of penalties; the protocol splits that surplus.
        Outside options bound the split (Binmore-Shaked-Sutton): the cloud need not go below its
        reservation (the competitive price when capacity binds: another buyer pays that); the lab
        need not pay more than the cloud's market power allows (what other sellers' capacity
        leaves it) nor, when capacity is spare, more than the posted ask (it can rent on demand).
        Affiliated pairs transfer at the cloud's reservation, without bargaining. The lab brings
        its value of a chip-hour (``value`` per useful PFLOP-hour, the chip's ``useful`` PFLOP/s
        and its ``penalty``), its bargaining ``params`` and a partnership's ``discount`` at this
        cloud (0 if none).
        """
        o = self.offers[k]
        wtp = value * useful / penalty
        if affiliated:
            return BargainOutcome(o.reservation, 1) if wtp >= o.reservation else None
        # A deal is a pure function of the offer's terms (fixed for the month once the clouds have
        # repriced), the lab's willingness to pay, its bargaining power and its discount, and many
        # labs of the long tail bring the same ones: remember this month's deals, and the
        # protocol's outcomes (a function of the two impasse points and the parameters).
        deal = (k, wtp, params.seller_power, discount)
        if deal in self._deals:
            return self._deals[deal]
        key = (o.floor, wtp, params.seller_power)
        if key not in self._outcomes:
            self._outcomes[key] = self.protocol(o.floor, wtp, params)
        buyer_option = min(wtp, o.power if o.scarce else min(o.ask, o.power))
        outcome = with_outside_options(self._outcomes[key], o.reservation, buyer_option)
        if outcome is not None and discount > 0.0:
            # a partner's better terms: the discount off the bargained price, never below the floor
            outcome = BargainOutcome(max(o.floor, outcome.price * (1.0 - discount)), outcome.rounds)
        self._deals[deal] = outcome
        return outcome
