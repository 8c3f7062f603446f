"""Vendors' list-price rules and textbook oligopoly benchmarks (clouds' rental prices come from
best replies on residual demand, :mod:`market.economics.competition`).

Adjustment rules map the current price ``p`` (e.g. USD per chip for a vendor's
list price, USD per chip-hour for a cloud's rental price) and a market signal
to next period's price ``p'`` in the same units:

    step = clip(speed * z, -max_step, max_step)
    p'   = clip(p * (1 + step), floor, ceiling)
    floor   = unit_cost * (1 + min_margin)
    ceiling = unit_cost * (1 + max_margin)

* ``excess_demand`` (tatonnement, vendors): ``z = (demand - supply) / supply`` (the order book
  against the chips its packaging would make).
* ``cost_plus``: ``p' = unit_cost * (1 + min_margin)``.
* ``monopoly`` (a vendor with market power): toward the Lerner price ``c e / (1 + e)`` for demand
  elasticity ``e < -1``; up by ``max_step`` on inelastic demand.

Benchmarks, for linear inverse demand ``P = a - b*Q`` and unit cost ``c``:

* Symmetric Cournot with n sellers of capacity K each:
  ``q_i = min(K, (a - c) / (b (n + 1)))``, ``P = a - b n q_i`` (``P -> c`` as
  ``n -> inf``).
* Monopoly with capacity K: ``q* = min(K, max(0, (a - c) / (2b)))``; it
  withholds ``K - q*``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from market.registry import Registry

__all__ = [
    "PRICE_RULES",
    "PriceRule",
    "PriceRuleParams",
    "PriceSignal",
    "cost_plus",
    "monopoly",
    "cournot_price",
    "excess_demand",
    "monopoly_quantity",
    "price_band",
    "withheld_by_monopolist",
]


@dataclass(frozen=True)
class PriceSignal:
    """What a seller observes when it reviews its price."""

    price: float  # current price (currency per unit, e.g. USD per chip-hour)
    unit_cost: float  # marginal (unit) cost, same units as price
    excess_demand: float  # (demand - supply) / supply, >= -1
    elasticity: float | None = None  # estimated price elasticity of demand (monopoly rule), < 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.price) and self.price >= 0.0):
            raise ValueError(f"price must be finite and >= 0, got {self.price}")
        if not (math.isfinite(self.unit_cost) and self.unit_cost >= 0.0):
            raise ValueError(f"unit_cost must be finite and >= 0, got {self.unit_cost}")
        # The negated comparisons also reject NaN.
        if not self.excess_demand >= -1.0:
            raise ValueError(f"excess_demand must be >= -1, got {self.excess_demand}")


@dataclass(frozen=True)
class PriceRuleParams:
    """Parameters of the price-adjustment rules (dimensionless unless stated)."""

    speed: float = 0.2  # response of the relative price change to the signal
    max_step: float = 0.1  # bound on |p'/p - 1| per step
    min_margin: float = 0.0  # floor = unit_cost * (1 + min_margin)
    max_margin: float = math.inf  # ceiling = unit_cost * (1 + max_margin)

    def __post_init__(self) -> None:
        if not self.speed >= 0.0:
            raise ValueError(f"speed must be >= 0, got {self.speed}")
        if not 0.0 <= self.max_step <= 1.0:
            raise ValueError(f"max_step must be in [0, 1], got {self.max_step}")
        # min_margin > -1 keeps the floor positive; max_margin may be +inf (no ceiling).
        if not self.min_margin > -1.0:
            raise ValueError(f"min_margin must be > -1, got {self.min_margin}")
        if not self.max_margin >= self.min_margin:
            raise ValueError(
                f"max_margin ({self.max_margin}) must be >= min_margin ({self.min_margin})"
            )


PriceRule = Callable[[PriceSignal, PriceRuleParams], float]


def price_band(unit_cost: float, params: PriceRuleParams) -> tuple[float, float]:
    """(floor, ceiling) of the price, in the units of ``unit_cost``."""
    floor = unit_cost * (1.0 + params.min_margin)
    # Spelled out because 0 * inf is NaN for a zero-cost seller with no ceiling.
    ceiling = math.inf if math.isinf(params.max_margin) else unit_cost * (1.0 + params.max_margin)
    return floor, ceiling


def _step(z: float, params: PriceRuleParams) -> float:
    """Bounded relative price change ``clip(speed * z, -max_step, max_step)``."""
    return float(np.clip(params.speed * z, -params.max_step, params.max_step))


def _apply(price: float, step: float, unit_cost: float, params: PriceRuleParams) -> float:
    """``p * (1 + step)`` moved into the [floor, ceiling] band (currency per unit)."""
    floor, ceiling = price_band(unit_cost, params)
    return float(np.clip(price * (1.0 + step), floor, ceiling))


def excess_demand(signal: PriceSignal, params: PriceRuleParams) -> float:
    """Tatonnement: the price moves with relative excess demand, by bounded steps; new price."""
    return _apply(signal.price, _step(signal.excess_demand, params), signal.unit_cost, params)


def cost_plus(signal: PriceSignal, params: PriceRuleParams) -> float:
    """Cost-plus pricing: ``unit_cost * (1 + min_margin)``."""
    return signal.unit_cost * (1.0 + params.min_margin)


def monopoly(signal: PriceSignal, params: PriceRuleParams) -> float:
    """Profit-maximising price of a seller with market power (the Lerner rule); new price.

    With demand elasticity ``e < -1`` the optimum is ``p* = c e / (1 + e)``; the price moves toward
    it by at most ``max_step`` a month. On inelastic demand (``e >= -1``) profit rises with the
    price, so the price rises by ``max_step`` up to the ceiling. Without an estimate yet it also
    tries a higher price, which the next month's orders answer. Output is then what buyers order
    at that price: a monopolist with more capacity than that leaves the rest idle — it withholds
    supply.
    """
    e = signal.elasticity
    if e is None or e >= -1.0:
        return _apply(signal.price, params.max_step, signal.unit_cost, params)
    target = signal.unit_cost * e / (1.0 + e)
    step = float(np.clip(target / signal.price - 1.0, -params.max_step, params.max_step))
    return _apply(signal.price, step, signal.unit_cost, params)


PRICE_RULES: Registry[PriceRule] = Registry("price rule", {
    "excess_demand": excess_demand,
    "cost_plus": cost_plus,
    "monopoly": monopoly,
})


def _check_demand(intercept: float, slope: float, marginal_cost: float, capacity: float) -> None:
    """Validate the linear-demand benchmark arguments."""
    if not (math.isfinite(intercept) and math.isfinite(marginal_cost)):
        raise ValueError("intercept and marginal_cost must be finite")
    if not (math.isfinite(slope) and slope > 0.0):
        raise ValueError(f"slope must be finite and > 0, got {slope}")
    if not capacity >= 0.0:
        raise ValueError(f"capacity must be >= 0, got {capacity}")


def cournot_price(
    n_sellers: int,
    intercept: float,
    slope: float,
    marginal_cost: float,
    capacity_per_seller: float = math.inf,
) -> float:
    """Symmetric Cournot equilibrium price for ``P = a - b*Q`` (currency per unit).

    ``intercept`` a in currency per unit, ``slope`` b in currency per unit per
    unit of quantity, ``capacity_per_seller`` in quantity units.
    """
    if n_sellers < 1:
        raise ValueError(f"n_sellers must be >= 1, got {n_sellers}")
    _check_demand(intercept, slope, marginal_cost, capacity_per_seller)
    if intercept <= marginal_cost:
        return float(intercept)
    quantity = min(capacity_per_seller, (intercept - marginal_cost) / (slope * (n_sellers + 1)))
    return float(intercept - slope * n_sellers * quantity)


def monopoly_quantity(
    intercept: float, slope: float, marginal_cost: float, capacity: float
) -> float:
    """Profit-maximising output of a capacity-constrained monopolist (quantity units)."""
    _check_demand(intercept, slope, marginal_cost, capacity)
    return float(min(capacity, max(0.0, (intercept - marginal_cost) / (2.0 * slope))))


def withheld_by_monopolist(
    intercept: float, slope: float, marginal_cost: float, capacity: float
) -> float:
    """Capacity a monopolist leaves unsold, ``capacity - q*`` (quantity units)."""
    return capacity - monopoly_quantity(intercept, slope, marginal_cost, capacity)
