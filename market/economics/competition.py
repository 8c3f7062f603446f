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

:func:`best_response` searches a log-spaced grid of prices plus every rival's ask and undercut,
then refines around the best point; prices are in any currency per unit of capacity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = ["BestResponse", "best_response", "candidate_prices", "lerner_price", "residual_demand"]

GRID_POINTS = 48  # log-spaced prices between the floor and the ceiling
REFINE_ROUNDS = 6  # zooms around the best grid point (an interior optimum, e.g. Lerner's)
REFINE_POINTS = 9
KINK_ROUNDS = 4  # fine grids to find the price at which the seller just sells out
KINK_POINTS = 65

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
    rest = np.asarray(demand, dtype=np.float64)
    if rival_asks.size == 0:
        return np.maximum(rest, 0.0)
    below = (rival_asks[None, :] < prices[:, None]) @ rival_capacity
    tied = (rival_asks[None, :] == prices[:, None]) @ rival_capacity
    rest = np.maximum(rest - below, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tied > 0.0, capacity / (capacity + tied), 1.0)
    return np.maximum(rest * share, rest - tied)


def candidate_prices(floor: float, ceiling: float, rival_asks: np.ndarray, undercut: float) -> np.ndarray:
    """Prices a best reply is searched over: a log-spaced grid from ``floor`` to ``ceiling``, every
    rival's ask and its undercut, sorted and unique."""
    low = max(floor, 1e-9)
    grid = np.geomspace(low, ceiling, GRID_POINTS) if ceiling > low else np.array([low])
    near = np.concatenate((rival_asks, rival_asks * (1.0 - undercut)))
    return np.unique(np.concatenate((grid, near[(near >= floor) & (near <= ceiling)], [floor])))


def _allowed(prices: np.ndarray, rival_asks: np.ndarray, undercut: float) -> np.ndarray:
    """Prices outside every rival's undercut zone ``(ask (1 - undercut), ask)``: a seller cuts below
    a rival by at least the tick ``undercut``, or not at all (a price war moves in steps)."""
    if rival_asks.size == 0 or undercut <= 0.0:
        return prices
    inside = (prices[:, None] > rival_asks[None, :] * (1.0 - undercut)) & (prices[:, None] < rival_asks[None, :])
    return prices[~inside.any(axis=1)]


def _sell_out_price(lo: float, hi: float, capacity: float, demand: Demand, rival_asks: np.ndarray,
                    rival_capacity: np.ndarray) -> float:
    """The highest price in ``[lo, hi)`` at which residual demand still takes all the capacity,
    given that it does at ``lo`` and not at ``hi`` (a few rounds of a fine grid; R is monotone)."""
    for _ in range(KINK_ROUNDS):
        fine = np.linspace(lo, hi, KINK_POINTS)
        enough = residual_demand(fine, demand(fine), rival_asks, rival_capacity, capacity) >= capacity
        k = int(np.flatnonzero(enough)[-1])  # enough[0] holds: lo sells out
        if k + 1 >= fine.size:
            return float(fine[k])
        lo, hi = float(fine[k]), float(fine[k + 1])
    return lo


def best_response(cost: float, capacity: float, demand: Demand, rival_asks: np.ndarray,
                  rival_capacity: np.ndarray, ceiling: float, undercut: float = 0.02,
                  prices: np.ndarray | None = None, demand_at_prices: np.ndarray | None = None) -> BestResponse:
    """The profit-maximising ask against rivals' asks, in the units of ``cost``.

    ``demand`` gives the quantity demanded at an array of prices (0 above every buyer's choke
    price); ``ceiling`` bounds the search (the highest choke price). ``prices`` and
    ``demand_at_prices`` may give the search grid and the demand on it, computed once for several
    sellers of the same market (default :func:`candidate_prices`). Undercutting a rival moves the
    price by at least ``undercut`` (a share of the rival's ask). The price at which the seller
    just sells out (the kink of its profit) is found to a relative precision of about 1e-7.

    A seller with no free capacity replies with its scarcity value: the lowest price at which its
    residual demand is gone, i.e. what the marginal buyer left unserved would pay.
    """
    if not (math.isfinite(cost) and cost >= 0.0):
        raise ValueError(f"cost must be finite and >= 0, got {cost}")
    ceiling = max(ceiling, cost)
    rival_asks = np.asarray(rival_asks, dtype=np.float64)
    rival_capacity = np.asarray(rival_capacity, dtype=np.float64)
    if prices is None:
        prices = candidate_prices(cost, ceiling, rival_asks, undercut)
        demand_at_prices = demand(prices)
    residual = residual_demand(prices, demand_at_prices, rival_asks, rival_capacity, capacity)
    if capacity <= 0.0:
        gone = prices[residual <= 0.0]
        return BestResponse(float(gone[0]) if gone.size else float(ceiling), 0.0, True)
    # where residual demand stops taking all the capacity: the seller's kink
    enough = np.flatnonzero(residual >= capacity)
    extra = []
    if enough.size and enough[-1] + 1 < prices.size:
        extra.append(_sell_out_price(prices[enough[-1]], prices[enough[-1] + 1], capacity, demand,
                                     rival_asks, rival_capacity))
    prices = _allowed(np.unique(np.concatenate((prices, extra, [cost]))), rival_asks, undercut)
    if prices.size == 0:  # every price above cost undercuts a rival by less than a tick
        prices = np.array([cost])
    residual = residual_demand(prices, demand(prices), rival_asks, rival_capacity, capacity)
    profit = (prices - cost) * np.minimum(capacity, residual)
    best = int(np.argmax(profit))
    if profit[best] <= 0.0:  # nothing to earn above cost: compete at cost
        at_cost = residual_demand(np.array([cost]), demand(np.array([cost])), rival_asks, rival_capacity, capacity)[0]
        return BestResponse(float(cost), float(min(capacity, at_cost)), bool(at_cost >= capacity))
    for _ in range(REFINE_ROUNDS):  # zoom between the neighbours of the best price (an interior optimum)
        lo = prices[best - 1] if best > 0 else prices[best]
        hi = prices[best + 1] if best + 1 < prices.size else prices[best]
        fine = _allowed(np.unique(np.concatenate((np.linspace(lo, hi, REFINE_POINTS), [prices[best]]))),
                        rival_asks, undercut)
        fine_residual = residual_demand(fine, demand(fine), rival_asks, rival_capacity, capacity)
        fine_profit = (fine - cost) * np.minimum(capacity, fine_residual)
        k = int(np.argmax(fine_profit))
        if fine_profit[k] <= profit[best]:
            break
        prices, residual, profit, best = fine, fine_residual, fine_profit, k
    sold = float(min(capacity, residual[best]))
    return BestResponse(float(prices[best]), sold, bool(residual[best] >= capacity))
