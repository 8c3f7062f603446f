"""Joint market clearing across products that are substitutes (docs/ODD.md 7.7 (a)).

Each product's competitive price clears its free capacity against what the labs want of it. A
lab that can rent several products wants of each only what it does not get from the others, at
the prices all of them clear at, so the products are cleared together: a Walrasian equilibrium of
the month's spot market. :func:`joint_clearing` solves it.

Demand (per lab ``i`` and purpose ``u``; ``k`` an offer, ``g(k)`` its group, whose price is
``p_g``). A chip of offer ``k`` gives the lab ``a_k`` useful PFLOP/s at penalty ``pen_k``; its
effective price is ``e_k = p_g(k) pen_k / a_k`` (USD per useful PFLOP-hour). The lab splits its
purchases over the offers it may rent by a logit in the log effective price, beside an outside
option at its value per useful PFLOP-hour ``v`` (not buying):

    s_k = e_k^(-1/tau) / (v^(-1/tau) + sum_j e_j^(-1/tau))

``tau`` is the dispersion: as it goes to 0 the products become perfect substitutes (everything
at the cheapest, nothing above the value). The lab's demand for useful compute answers to the
mean price it pays per useful PFLOP-hour, ``d = sum_k s_k p_k / a_k / sum_k s_k``, with its
constant elasticity ``eps`` around its price level ``L``: ``x = max(N (d / L)^eps - held, 0)``;
chips of offer ``k``: ``q_k = x s_k / a_k``, all of a lab's chips scaled down together if their
cost exceeds its budget left. Groups are the products (all public sellers of one product ask
one competitive price) and each other offer alone (a lab's own data centre: its shadow price).

Equilibrium: every group's price at or above its floor, demand at most its free capacity, and
equal to it where the price is above the floor. The complementarity is written as
``min(y_g - log floor_g, 1 - D_g / K_g) = 0`` in log prices ``y`` and solved by semismooth Newton
(Qi and Sun 1993; the min-function form of Facchinei and Pang 2003, ch. 9) with a backtracking
line search, warm-started from last month's prices. Demand is smooth and the products gross
substitutes, so the equilibrium is unique (Arrow, Block and Hurwicz 1959).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["DISPERSION", "JointClearing", "joint_clearing"]

DISPERSION = 0.05  # logit dispersion in log effective price: a 5% dearer offer gets e^-1 the share
TOLERANCE = 1e-6  # on the complementarity residual (log price, or excess demand relative to capacity)
MAX_ITERATIONS = 60
STEP = 1e-6  # forward difference in log price for the Jacobian


class JointClearing(NamedTuple):
    """The month's joint clearing: per group the competitive price (USD per chip-hour); per offer,
    lab and purpose the chips rented there at those prices; whether Newton converged, in how many
    iterations, and the final residual."""

    prices: np.ndarray
    chips: np.ndarray
    converged: bool
    iterations: int
    residual: float


def _demand(y: np.ndarray, group: np.ndarray, per_price: np.ndarray, useful: np.ndarray,
            outside: np.ndarray, notional: np.ndarray, held: np.ndarray, level: np.ndarray,
            eps: np.ndarray, money: np.ndarray, tau: float) -> np.ndarray:
    """Chips wanted (batch, offer, lab, purpose) at log group prices ``y`` (batch, group)."""
    p = np.exp(y)[:, group]  # batch, offer
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_e = np.log(p)[:, :, None, None] + per_price[None]  # log effective price; inf where not able
        low = np.minimum(log_e.min(axis=1), outside[None])  # batch, lab, purpose: for stability
        w = np.exp(-(log_e - low[:, None]) / tau)
        w0 = np.exp(-(outside[None] - low) / tau)
        total = w0 + w.sum(axis=1)
        s = w / total[:, None]
        inside = s.sum(axis=1)
        per_useful = p[:, :, None, None] / useful[None]  # USD per useful PFLOP-hour, no penalty
        paid = np.where(inside > 0, np.where(s > 0, s * per_useful, 0.0).sum(axis=1) / inside, np.inf)
        x = np.maximum(notional[None] * (paid / level[None, :, None]) ** eps[None, None, :] - held[None], 0.0)
        x = np.where(np.isfinite(paid), x, 0.0)
        q = np.where(s > 0, x[:, None] * s / useful[None], 0.0)
        spend = (q * p[:, :, None, None]).sum(axis=(1, 3))  # batch, lab: USD per hour
        scale = np.where(spend > money[None], money[None] / spend, 1.0)
    return q * scale[:, None, :, None]


def joint_clearing(price: np.ndarray, group: np.ndarray, floor: np.ndarray, capacity: np.ndarray,
                   useful: np.ndarray, penalty: np.ndarray, able: np.ndarray, value: np.ndarray,
                   notional: np.ndarray, held: np.ndarray, level: np.ndarray, elasticity: np.ndarray,
                   money: np.ndarray, tau: float = DISPERSION, tol: float = TOLERANCE,
                   max_iterations: int = MAX_ITERATIONS) -> JointClearing:
    """The competitive prices of all groups at once, and the chips each lab rents of each offer.

    ``price``: a first guess per group (last month's), USD per chip-hour; ``group``: each offer's
    group; ``floor`` and ``capacity`` per group (USD per chip-hour, free chips). Per offer, lab
    and purpose: ``useful`` PFLOP/s a chip gives, ``penalty`` (>= 1); ``able`` per offer and lab.
    Per lab: ``value`` (USD per useful PFLOP-hour, its choke), ``level`` (the price at which it
    wants ``notional``), ``money`` (USD per hour it may still commit); per lab and purpose:
    ``notional`` and ``held`` useful PFLOP/s; ``elasticity`` per purpose (negative).
    """
    n_groups = len(floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        usable = able[:, :, None] & (useful > 0) & (capacity[group] > 0)[:, None, None]
        per_price = np.where(usable, np.log(penalty) - np.log(useful), np.inf)
        outside = np.broadcast_to(np.log(value)[:, None], held.shape)
    args = (group, per_price, np.where(usable, useful, 1.0), outside, notional, held, level, elasticity, money, tau)
    lower = np.log(floor)
    cap = np.maximum(capacity, 1e-300)
    y = np.maximum(np.log(np.maximum(price, 1e-300)), lower)

    def residual(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        excess = 1.0 - np.add.reduceat(q.sum(axis=(2, 3))[:, order], starts, axis=1) / cap[None]  # batch, group
        return excess, q

    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(n_groups))
    q = _demand(y[None], *args)
    excess = residual(q)[0][0]
    r = np.minimum(y - lower, excess)
    merit = float(r @ r)
    it = 0
    for it in range(1, max_iterations + 1):
        if np.sqrt(merit / max(n_groups, 1)) < tol:
            break
        # Jacobian of the excess (relative) in log prices, by forward differences (one batch)
        trial = np.repeat(y[None], n_groups, axis=0) + STEP * np.eye(n_groups)
        ex = residual(_demand(trial, *args))[0]
        jac = (ex - excess[None]).T / STEP  # group (excess), group (price)
        at_floor = (y - lower) <= excess  # the min picks the floor: equation y = floor
        a = np.where(at_floor[:, None], np.eye(n_groups), jac)
        try:
            step = np.linalg.solve(a, -r)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(a, -r, rcond=None)[0]
        t = 1.0
        while True:
            y_new = np.maximum(y + t * step, lower)
            q_new = _demand(y_new[None], *args)
            ex_new = residual(q_new)[0][0]
            r_new = np.minimum(y_new - lower, ex_new)
            merit_new = float(r_new @ r_new)
            if merit_new <= (1.0 - 1e-4 * t) * merit or t < 1e-6:
                break
            t *= 0.5
        y, q, excess, r, merit = y_new, q_new, ex_new, r_new, merit_new
    rms = float(np.sqrt(merit / max(n_groups, 1)))
    return JointClearing(np.exp(y), q[0], rms < tol, it, rms)
