"""Price competition among sellers of one product with capacity limits (no Mesa, no model state).

A seller of a homogeneous product, with avoidable (marginal) cost ``c`` and free capacity ``K``,
faces buyers whose demand at price ``p`` is ``D(p)`` and rivals who offer free capacity ``K_k`` at
asks ``p_k``. Buyers take the cheapest offers first (efficient rationing), so the seller's
residual demand is

    R(p) = max(0, D(p) - sum_k K_k [p_k < p])

(rivals asking the same price share what is left in proportion to capacity)
and its best reply maximises ``(p - c) min(K, R(p))``. Best replies reproduce the textbook cases:

* rivals with spare capacity: undercut them, so prices fall to marginal cost (Bertrand);
* no rival: the monopoly price on ``D``, ``p = c e / (1 + e)`` for constant elasticity ``e < -1``
  (Lerner), or the price at which ``D(p) = K`` when capacity binds first;
* capacities below the Cournot quantities: ``p = P(K_total)``, every seller sold out (Kreps and
  Scheinkman 1983); between the cases best replies cycle (Edgeworth).

:func:`best_responses` gives the replies of several sellers of one market at once (each to all
the others' current asks: simultaneous moves); :func:`best_response` is one seller's reply to
given rivals. Both search a grid of prices holding every ask and undercut, find the price at which
a seller just sells out on a finer grid, and zoom in on an interior optimum. Prices are in any
currency per unit of capacity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = [
    "BestResponse",
    "Replies",
    "ReplyBlock",
    "SellOut",
    "best_response",
    "best_responses",
    "candidate_prices",
    "clearing_bracket",
    "clearing_price",
    "lerner_price",
    "reply_block",
    "residual_demand",
    "sell_out_prices",
    "sorted_unique",
]

GRID_POINTS = 48  # log-spaced prices between the floor and the ceiling
REFINE_ROUNDS = 8  # zooms around the best grid point (an interior optimum, e.g. Lerner's)
REFINE_POINTS = 9
KINK_ROUNDS = 120  # at most this many steps to the price at which a seller just sells out
KINK_TOLERANCE = 1e-9  # ... until it is known to this relative precision

Demand = Callable[[np.ndarray], np.ndarray]  # prices (n,) -> quantity demanded at each (n,)


class BestResponse(NamedTuple):
    """A seller's best reply: its price, what it sells there, and whether it sells out."""

    price: float
    quantity: float
    scarce: bool  # demand at that price takes all its free capacity


def lerner_price(cost: float, elasticity: float) -> float:
    """Monopoly price for constant demand elasticity ``e < -1``: ``c e / (1 + e)``."""
    if not elasticity < -1.0:
        raise ValueError(f"the Lerner price needs elastic demand (elasticity < -1), got {elasticity}")
    return cost * elasticity / (1.0 + elasticity)


def residual_demand(prices: np.ndarray, demand: np.ndarray, rival_asks: np.ndarray,
                    rival_capacity: np.ndarray, capacity: float) -> np.ndarray:
    """``R(p)`` at each of ``prices`` given the market demand there: what rivals asking less leave
    (efficient rationing); rivals asking the same share it in proportion to capacity, and each
    takes what the others cannot."""
    prices = np.asarray(prices, dtype=np.float64)
    rival_asks = np.asarray(rival_asks, dtype=np.float64)
    rival_capacity = np.asarray(rival_capacity, dtype=np.float64)
    below = (rival_asks[None, :] < prices[:, None]) @ rival_capacity
    tied = (rival_asks[None, :] == prices[:, None]) @ rival_capacity
    return _residual(np.asarray(demand, dtype=np.float64), below, tied, capacity)


def _residual(demand: np.ndarray, below: np.ndarray, tied: np.ndarray, capacity) -> np.ndarray:
    rest = np.maximum(demand - below, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tied > 0.0, capacity / (capacity + tied), 1.0)
    return np.maximum(rest * share, rest - tied)


def candidate_prices(floor: float, ceiling: float, asks: np.ndarray, undercut: float | np.ndarray,
                     points: int = GRID_POINTS, extra: np.ndarray | None = None) -> np.ndarray:
    """Prices a best reply is searched over: ``points`` log-spaced from ``floor`` to ``ceiling``,
    every ask and its undercuts (and any ``extra`` prices), sorted and unique."""
    low = max(floor, 1e-9)
    grid = low * (ceiling / low) ** _unit(points) if ceiling > low else np.array([low])
    asks = np.asarray(asks, dtype=np.float64)
    near = np.concatenate((asks, (asks[None, :] * (1.0 - np.atleast_1d(undercut))[:, None]).ravel()))
    parts = (grid, near[(near >= floor) & (near <= ceiling)], [floor])
    return sorted_unique(np.concatenate(parts if extra is None else (*parts, extra)))


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of a 1-d float array, without its overhead on the small arrays used here."""
    out = np.sort(values)
    return out[np.concatenate(([True], out[1:] != out[:-1]))] if out.size else out


_UNIT: dict[int, np.ndarray] = {}


def _unit(points: int) -> np.ndarray:
    """``linspace(0, 1, points)``, made once."""
    if points not in _UNIT:
        _UNIT[points] = np.linspace(0.0, 1.0, points)
    return _UNIT[points]


class _Market:
    """Replying sellers (rows), each among the sellers ``s`` of its market: their rivals' capacity
    below and at any price (each seller's own capacity left out). ``asks`` and ``free`` are per
    row (row, seller), ``own`` is each row's place among them."""

    def __init__(self, own: np.ndarray, asks: np.ndarray, free: np.ndarray, undercut: np.ndarray) -> None:
        self.own, self.asks, self.free, self.undercut = own, asks, free, undercut

    def rivals(self, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(below, tied): per row and price, for (rows, n) ``prices``."""
        less = self.asks[:, :, None] < prices[:, None, :]  # row, seller, price
        same = self.asks[:, :, None] == prices[:, None, :]
        rows = np.arange(self.own.size)
        less[rows, self.own, :] = False
        same[rows, self.own, :] = False
        free = self.free[:, :, None]
        return (less * free).sum(axis=1), (same * free).sum(axis=1)

    def allowed(self, prices: np.ndarray) -> np.ndarray:
        """Per row: prices outside every rival's undercut zone ``(ask (1 - undercut), ask)``: a
        seller cuts below a rival by at least its tick, or not at all (a price war moves in steps)."""
        p = prices[:, None, :]
        asks = self.asks[:, :, None]
        inside = (p > asks * (1.0 - self.undercut)[:, None, None]) & (p < asks)
        inside[np.arange(self.own.size), self.own, :] = False
        return ~inside.any(axis=1)

    def row(self, r: int) -> _Market:
        return _Market(self.own[r:r + 1], self.asks[r:r + 1], self.free[r:r + 1], self.undercut[r:r + 1])


class SellOut(NamedTuple):
    """Brackets of sell-out prices still to be found (arrays, one entry each): the price is in
    ``[lo, hi)``, where demand beyond ``rivals_below`` takes ``capacity`` at ``lo`` (residual
    demand ``residual_at_lo``) and not at ``hi``. See :func:`sell_out_prices`."""

    lo: np.ndarray
    hi: np.ndarray
    rivals_below: np.ndarray
    capacity: np.ndarray
    residual_at_lo: np.ndarray

    @staticmethod
    def concat(parts: list[SellOut]) -> SellOut:
        return SellOut(*(np.concatenate(column) for column in zip(*parts, strict=True)))


class ReplyBlock(NamedTuple):
    """Sellers of one market replying to the same asks on the same price grid (see
    :func:`best_responses` for the fields)."""

    costs: np.ndarray
    capacities: np.ndarray
    sellers: np.ndarray
    asks: np.ndarray
    free: np.ndarray
    undercuts: np.ndarray
    demand: Demand
    ceiling: float
    prices: np.ndarray
    demand_at_prices: np.ndarray


def best_responses(costs: np.ndarray, capacities: np.ndarray, sellers: np.ndarray, asks: np.ndarray,
                   free: np.ndarray, undercuts: np.ndarray, demand: Demand, ceiling: float,
                   prices: np.ndarray | None = None, demand_at_prices: np.ndarray | None = None
                   ) -> list[BestResponse]:
    """Best replies of several sellers of one market, each to all the others' asks at once.

    ``asks`` and ``free`` hold every seller of the market (the capacity its rivals see);
    ``sellers`` indexes the replying ones, whose marginal ``costs``, own ``capacities`` (free
    capacity they may sell, e.g. net of what affiliates take first) and ``undercuts`` (ticks) are
    given in the same order. ``demand`` is the buyers' demand at an array of prices (0 above their
    choke prices), ``ceiling`` the highest choke price. ``prices`` and ``demand_at_prices`` may give
    the search grid and the demand on it (ascending; it should hold every ask and undercut).
    (:class:`Replies` does the same in two steps, for many markets at once.)
    """
    replies = Replies([reply_block(costs, capacities, sellers, asks, free, undercuts, demand, ceiling, prices,
                                   demand_at_prices)])
    return replies.finish(*sell_out_prices(replies.sell_out, replies.demand_of_brackets))


def reply_block(costs: np.ndarray, capacities: np.ndarray, sellers: np.ndarray, asks: np.ndarray,
                free: np.ndarray, undercuts: np.ndarray, demand: Demand, ceiling: float,
                prices: np.ndarray | None = None, demand_at_prices: np.ndarray | None = None) -> ReplyBlock:
    """The arguments of :func:`best_responses`, checked, as a block of :class:`Replies`."""
    costs = np.asarray(costs, dtype=np.float64)
    if not np.all(np.isfinite(costs) & (costs >= 0.0)):
        raise ValueError(f"costs must be finite and >= 0, got {costs}")
    asks = np.asarray(asks, dtype=np.float64)
    undercuts = np.asarray(undercuts, dtype=np.float64)
    floor = float(costs.min()) if costs.size else 0.0
    ceiling = max(ceiling, float(costs.max()) if costs.size else 0.0)
    if prices is None:
        prices = candidate_prices(floor, ceiling, asks, undercuts)
        demand_at_prices = demand(prices)
    if costs.size and prices[0] > floor:
        prices = np.insert(prices, 0, floor)
        demand_at_prices = np.insert(demand_at_prices, 0, demand(np.array([floor]))[0])
    return ReplyBlock(costs, np.asarray(capacities, dtype=np.float64), np.asarray(sellers, dtype=np.intp), asks,
                      np.asarray(free, dtype=np.float64), undercuts, demand, ceiling, prices,
                      np.asarray(demand_at_prices, dtype=np.float64))


class Replies:
    """:func:`best_responses` for many markets at once, in two steps: the grid search, which
    leaves each seller's sell-out price to be found in a bracket (``sell_out``; solve them with
    :func:`sell_out_prices`, on ``demand_of_brackets`` or any demand that gives each bracket its
    market's), then :meth:`finish` with those prices. ``blocks`` (:func:`reply_block`) are padded
    to common shapes: no rival (an infinite ask, no capacity), and past a grid's end no price."""

    def __init__(self, blocks: list[ReplyBlock]) -> None:
        if not blocks:
            raise ValueError("Replies needs at least one block of sellers")
        self.blocks = blocks
        sizes = [b.costs.size for b in blocks]
        n_rows, n_sellers = sum(sizes), max((b.asks.size for b in blocks), default=0)
        n_prices = max((b.prices.size for b in blocks), default=0)
        costs = np.concatenate([b.costs for b in blocks]) if blocks else np.zeros(0)
        capacities = np.concatenate([b.capacities for b in blocks]) if blocks else np.zeros(0)
        undercuts = np.concatenate([b.undercuts for b in blocks]) if blocks else np.zeros(0)
        own = np.concatenate([b.sellers for b in blocks]).astype(np.intp) if blocks else np.zeros(0, dtype=np.intp)
        asks = np.full((n_rows, n_sellers), np.inf)
        free = np.zeros((n_rows, n_sellers))
        prices = np.full((n_rows, n_prices), np.inf)
        wanted = np.zeros((n_rows, n_prices))
        length = np.zeros(n_rows, dtype=np.intp)
        ceiling = np.zeros(n_rows)
        start = 0
        for b, n in zip(blocks, sizes, strict=True):
            rows = slice(start, start + n)
            asks[rows, :b.asks.size] = b.asks
            free[rows, :b.free.size] = b.free
            prices[rows, :b.prices.size] = b.prices
            wanted[rows, :b.prices.size] = b.demand_at_prices
            length[rows] = b.prices.size
            ceiling[rows] = b.ceiling
            start += n
        self.block_of = np.repeat(np.arange(len(blocks)), sizes)
        market = _Market(own, asks, free, undercuts)
        cap = capacities[:, None]
        below, tied = market.rivals(prices)
        residual = _residual(wanted, below, tied, cap)
        usable = (prices >= costs[:, None]) & np.isfinite(prices)
        # the price at which each seller just sells out: the last price where residual demand
        # takes all its capacity, refined up to the next price
        enough = (residual >= cap) & usable
        last = np.where(enough.any(axis=1), n_prices - 1 - np.argmax(enough[:, ::-1], axis=1), -1)
        rows = np.flatnonzero((last >= 0) & (last + 1 < length) & (capacities > 0))
        at = last[rows]
        self.sell_out = SellOut(prices[rows, at], prices[rows, at + 1], (below + tied)[rows, at], capacities[rows],
                                residual[rows, at])
        self.bracket_block = self.block_of[rows]  # the block (market) of each bracket
        self._rows = rows
        self._state = (costs, capacities, ceiling, length, prices, market, residual, usable)

    def demand_of_brackets(self, prices: np.ndarray) -> np.ndarray:
        """Each bracket's market demand at its price (one call per block)."""
        out = np.empty(prices.size)
        for block in np.unique(self.bracket_block):
            mine = self.bracket_block == block
            out[mine] = self.blocks[block].demand(prices[mine])
        return out

    def finish(self, kinks: np.ndarray, kink_residuals: np.ndarray) -> list[BestResponse]:
        """The best replies, row by row (blocks in order), given the sell-out prices of the
        brackets in ``sell_out`` (in order) and the residual demand there."""
        costs, capacities, ceiling, length, prices, market, residual, usable = self._state
        n_rows = costs.size
        cap = capacities[:, None]
        kink = np.full(n_rows, np.nan)
        kink_residual = np.zeros(n_rows)
        kink[self._rows], kink_residual[self._rows] = kinks, kink_residuals
        # profit on the grid and at the kink; prices in a rival's undercut zone are not allowed
        with np.errstate(invalid="ignore"):
            profit = np.where(usable & market.allowed(prices), (prices - costs[:, None]) * np.minimum(cap, residual),
                              -np.inf)
        has_kink = ~np.isnan(kink)
        kink_ok = has_kink & market.allowed(np.nan_to_num(kink)[:, None])[:, 0]
        kink_profit = np.where(kink_ok, (np.nan_to_num(kink) - costs) * np.minimum(capacities, kink_residual), -np.inf)
        best = np.argmax(profit, axis=1)
        best_profit = profit[np.arange(n_rows), best]
        gone = usable & (residual <= 0.0)  # sold out: its scarcity value, the least price at which nobody is left
        first_gone = np.where(gone.any(axis=1), prices[np.arange(n_rows), np.argmax(gone, axis=1)], ceiling)
        rows = np.arange(n_rows)
        price, sold, top = prices[rows, best], residual[rows, best], best_profit
        use_kink = kink_profit > top
        price, sold, top = (np.where(use_kink, kink, price), np.where(use_kink, kink_residual, sold),
                            np.where(use_kink, kink_profit, top))
        # the rows done at once; the others (sold out, an interior optimum to zoom on, or nothing
        # to earn above cost) one by one below
        refine = ~use_kink & (sold < capacities) & (top > 0.0)
        simple = (capacities > 0.0) & ~refine & (top > 0.0)
        out: list[BestResponse | None] = [None] * n_rows
        for row, p, q, cap in zip(rows[simple].tolist(), price[simple].tolist(), sold[simple].tolist(),
                                  capacities[simple].tolist(), strict=True):
            out[row] = BestResponse(p, min(cap, q), q >= cap)
        for row in rows[~simple].tolist():
            c, k_cap = float(costs[row]), float(capacities[row])
            if k_cap <= 0.0:
                out[row] = BestResponse(float(first_gone[row]), 0.0, True)
                continue
            p, q, t = float(price[row]), float(sold[row]), float(top[row])
            demand = self.blocks[self.block_of[row]].demand
            if refine[row]:  # an interior optimum: zoom between the neighbours
                n = int(length[row])
                p, q = _refine(market.row(row), prices[row, :n], residual[row, :n], int(best[row]), c, k_cap, demand)
                t = (p - c) * min(k_cap, q)
            if t <= 0.0:  # nothing to earn above cost: compete at cost
                one = market.row(row)
                b, tied = one.rivals(np.array([[c]]))
                at_cost = float(_residual(demand(np.array([c])), b[0], tied[0], k_cap)[0])
                out[row] = BestResponse(c, min(k_cap, at_cost), at_cost >= k_cap)
                continue
            out[row] = BestResponse(p, min(k_cap, q), q >= k_cap)
        return out


def sell_out_prices(brackets: SellOut, demand: Demand,
                    demand_of: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """For each bracket (seller), the highest price in ``[lo, hi)`` at which residual demand still takes all
    its capacity, given that it does at ``lo`` and not at ``hi``, and the residual demand there.
    ``demand`` gives each bracket's market demand at one price per bracket; ``demand_of(prices,
    rows)``, if given, the same for the brackets ``rows`` only: each step then evaluates the brackets
    still open (about a third of them on a month's solves).

    No rival asks strictly between ``lo`` and ``hi`` (every ask is a grid price), so there the
    residual demand is ``D(p) - rivals_below``: solve ``D(p) = capacity + rivals_below`` in log
    price by regula falsi with the Anderson-Bjorck correction (an end kept twice in a row has its
    value scaled down, so both ends close in: superlinear on a smooth demand), bisecting whenever
    two steps did not halve the bracket (demand steps down where buyers' choke prices lie), keeping
    a left end where it holds.
    """
    lo, hi, rivals_below, capacity, residual_at_lo = brackets
    if lo.size == 0:
        return lo.copy(), lo.copy()
    target = capacity + rivals_below
    a, b = np.log(lo), np.log(hi)
    fa = demand(lo * (1.0 + 1e-12)) - target  # just above lo: buyers whose choke is lo are gone
    fb = demand(hi) - target
    kink, res = lo.copy(), residual_at_lo.copy()
    started = fa >= 0.0  # else it sells out at lo and not a cent above
    live = started.copy()
    at_a = np.maximum(fa, 0.0)  # residual demand beyond capacity at the left end (fa gets scaled)
    last = np.zeros(a.shape, dtype=np.int8)  # which end the last step moved: -1 left, 1 right
    widths = [b - a, b - a]  # the bracket one and two steps ago
    for _ in range(KINK_ROUNDS):
        width = b - a
        live &= width > KINK_TOLERANCE
        if not live.any():
            break
        mid = 0.5 * (a + b)
        secant = mid.copy()
        np.divide(a * fb - b * fa, fb - fa, out=secant, where=fa > fb)
        # at least a quarter of the tolerance inside the bracket: a step onto an end learns nothing
        np.clip(secant, a + 0.25 * KINK_TOLERANCE, b - 0.25 * KINK_TOLERANCE, out=secant)
        x = np.where(width > 0.5 * widths[0], mid, secant)
        widths = [widths[1], width]
        if demand_of is None:
            fx = demand(np.exp(x)) - target
            fx[~live] = -1.0
        else:
            open_ = np.flatnonzero(live)
            fx = np.full(x.shape, -1.0)
            fx[open_] = demand_of(np.exp(x[open_]), open_) - target[open_]
        left = live & (fx >= 0.0)
        right = live & ~left
        # Anderson-Bjorck: the end kept a second time is scaled by 1 - f(x)/f(end moved), or halved
        keep_b = left & (last == -1)
        keep_a = right & (last == 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            if keep_b.any():
                m = 1.0 - fx[keep_b] / fa[keep_b]
                fb[keep_b] = fb[keep_b] * np.where(m > 0.0, m, 0.5)
            if keep_a.any():
                m = 1.0 - fx[keep_a] / fb[keep_a]
                fa[keep_a] = fa[keep_a] * np.where(m > 0.0, m, 0.5)
        a[left], fa[left], at_a[left] = x[left], fx[left], fx[left]
        b[right], fb[right] = x[right], fx[right]
        last[left], last[right] = -1, 1
    price = np.minimum(np.exp(a), np.nextafter(hi, 0.0))  # strictly below hi, where a rival may ask
    ok = started & (price > lo)
    kink[ok] = price[ok]
    res[ok] = capacity[ok] + at_a[ok]
    return kink, res


def _refine(one: _Market, prices: np.ndarray, residual: np.ndarray, best: int, cost: float, capacity: float,
            demand: Demand) -> tuple[float, float]:
    """Zoom on an interior optimum of one seller's profit between the neighbours of ``best``."""
    for _ in range(REFINE_ROUNDS):
        if residual[best] >= capacity:
            break
        lo = prices[best - 1] if best > 0 else prices[best]
        hi = prices[best + 1] if best + 1 < prices.size else prices[best]
        fine = np.unique(np.append(np.linspace(lo, hi, REFINE_POINTS), prices[best]))
        fine = fine[one.allowed(fine[None, :])[0] & (fine >= cost)]
        b, t = one.rivals(fine[None, :])
        residual = _residual(demand(fine), b[0], t[0], capacity)
        profit = (fine - cost) * np.minimum(capacity, residual)
        prices, best = fine, int(np.argmax(profit))
    return float(prices[best]), float(residual[best])


def clearing_price(cost: float, capacity: float, demand: Demand, ceiling: float, prices: np.ndarray | None = None,
                   demand_at_prices: np.ndarray | None = None) -> float:
    """The competitive (Walrasian) price of a market whose sellers together hold ``capacity`` at
    marginal cost ``cost``: the highest price at which buyers still want all of it, or the cost
    when they do not want it all even there (spare capacity). Units as ``cost``.
    (:func:`clearing_bracket` does it in two steps, for many markets solved together.)"""
    if prices is None:
        prices = candidate_prices(cost, max(ceiling, cost), np.empty(0), 0.0)
        demand_at_prices = demand(prices)
    price, bracket = clearing_bracket(cost, capacity, float(demand(np.array([cost]))[0]), ceiling, prices,
                                      demand_at_prices)
    return price if bracket is None else float(sell_out_prices(bracket, demand)[0][0])


def clearing_bracket(cost: float, capacity: float, demand_at_cost: float, ceiling: float, prices: np.ndarray,
                     demand_at_prices: np.ndarray) -> tuple[float, SellOut | None]:
    """:func:`clearing_price` from the demand on a grid (ascending) and at the cost: the price, or
    the bracket it is in (its sell-out price, :func:`sell_out_prices`)."""
    keep = prices >= cost
    prices, wanted = prices[keep], demand_at_prices[keep]
    if capacity <= 0.0 or prices.size == 0:
        return float(max(ceiling, cost)), None
    if demand_at_cost < capacity:
        return float(cost), None
    enough = np.flatnonzero(wanted >= capacity)
    last = int(enough[-1]) if enough.size else 0
    if last + 1 >= prices.size:
        return float(prices[last]), None
    return float(prices[last]), SellOut(prices[last:last + 1], prices[last + 1:last + 2], np.zeros(1),
                                        np.array([float(capacity)]), np.array([wanted[last]]))


def best_response(cost: float, capacity: float, demand: Demand, rival_asks: np.ndarray,
                  rival_capacity: np.ndarray, ceiling: float, undercut: float = 0.02) -> BestResponse:
    """One seller's profit-maximising ask against rivals' asks, in the units of ``cost``
    (:func:`best_responses` for a single seller).

    ``demand`` gives the quantity demanded at an array of prices (0 above every buyer's choke
    price); ``ceiling`` bounds the search (the highest choke price). Undercutting a rival moves the
    price by at least ``undercut`` (a share of the rival's ask). A seller with no free capacity
    replies with its scarcity value: the lowest price at which its residual demand is gone, i.e.
    what the marginal buyer left unserved would pay.
    """
    if not (math.isfinite(cost) and cost >= 0.0):
        raise ValueError(f"cost must be finite and >= 0, got {cost}")
    rival_asks = np.asarray(rival_asks, dtype=np.float64)
    rival_capacity = np.asarray(rival_capacity, dtype=np.float64)
    asks = np.concatenate(([np.inf], rival_asks))  # its own ask does not matter to its reply
    free = np.concatenate(([capacity], rival_capacity))
    return best_responses([cost], [capacity], [0], asks, free, [undercut], demand, ceiling)[0]
