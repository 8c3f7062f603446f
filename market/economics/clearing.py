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

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = ["DISPERSION", "JointClearing", "joint_clearing"]

DISPERSION = 0.05  # logit dispersion in log effective price: a 5% dearer offer gets e^-1 the share (the scenario's negotiation.substitutes_dispersion)
TOLERANCE = 1e-6  # on the complementarity residual (log price, or excess demand relative to capacity)
MAX_ITERATIONS = 60
MIN_CAPACITY = 1e-6  # chips: a group with less free (rounding left by contracts) has none to clear
CONTINUATION_START = 0.2  # the dispersion a continuation starts from when Newton fails at a smaller one


class JointClearing(NamedTuple):
    """The month's joint clearing: per group the competitive price (USD per chip-hour); per offer,
    lab and purpose the chips rented there at those prices; whether Newton converged, in how many
    iterations, and the final residual."""

    prices: np.ndarray
    chips: np.ndarray
    converged: bool
    iterations: int
    residual: float


class _Market(NamedTuple):
    """The month's fixed terms (:func:`joint_clearing`), arrays over offer, lab, purpose."""

    group: np.ndarray  # offer -> group
    onehot: np.ndarray  # offer, group
    per_price: np.ndarray  # log(penalty / useful): log effective price = log price + this; inf: not able
    useful: np.ndarray  # 1 where not able
    outside: np.ndarray  # lab, purpose: log value
    notional: np.ndarray
    held: np.ndarray
    level: np.ndarray
    eps: np.ndarray
    money: np.ndarray
    tau: float


class _State(NamedTuple):
    """Demand at one vector of log group prices, and what its Jacobian needs."""

    chips: np.ndarray  # offer, lab, purpose
    by_group: np.ndarray  # group: chips wanted
    jacobian: Callable[[], np.ndarray]  # group, group: d chips wanted / d log price


def _market(group: np.ndarray, n_groups: int, usable: np.ndarray, useful: np.ndarray, penalty: np.ndarray,
            value: np.ndarray, notional: np.ndarray, held: np.ndarray, level: np.ndarray, elasticity: np.ndarray,
            money: np.ndarray, tau: float) -> _Market:
    """The month's fixed terms for the offers, labs and purposes ``usable`` marks."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per_price = np.where(usable, np.log(penalty) - np.log(useful), np.inf)
    outside = np.broadcast_to(np.log(value)[:, None], held.shape)
    return _Market(group, np.eye(n_groups)[group], per_price, np.where(usable, useful, 1.0), outside, notional, held,
                   level, elasticity, money, tau)


def _state(y: np.ndarray, m: _Market) -> _State:
    """Chips wanted at log group prices ``y``, and (lazily) their derivatives in ``y``."""
    tau = m.tau
    p = np.exp(y)[m.group]  # offer
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_e = np.log(p)[:, None, None] + m.per_price  # offer, lab, purpose
        low = np.minimum(log_e.min(axis=0), m.outside)  # lab, purpose: for stability
        w = np.exp(-(log_e - low) / tau)
        total = np.exp(-(m.outside - low) / tau) + w.sum(axis=0)
        s = w / total
        inside = s.sum(axis=0)
        spi = s * (p[:, None, None] / m.useful)  # share times USD per useful PFLOP-hour
        sum_spi = spi.sum(axis=0)
        ok = inside > 0
        paid = np.where(ok, sum_spi / np.where(ok, inside, 1.0), 1.0)
        want = np.where(ok, m.notional * (paid / m.level[:, None]) ** m.eps[None, :], 0.0)
        x = np.maximum(want - m.held, 0.0)
        spend = (x * sum_spi).sum(axis=1)  # lab: USD per hour
        binding = spend > m.money
        f = np.where(binding, m.money / np.where(binding, spend, 1.0), 1.0)
        q = (f[:, None] * x)[None] * s / m.useful
    by_group = q.sum(axis=(1, 2)) @ m.onehot

    def jacobian() -> np.ndarray:
        share = np.einsum("kiu,kg->iug", s, m.onehot)  # inside share of each group
        pay = np.einsum("kiu,kg->iug", spi, m.onehot)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(ok, 1.0 / np.where(ok, inside, 1.0), 0.0)[:, :, None]
            d_paid = pay * inv * (1.0 - 1.0 / tau) + paid[:, :, None] * share * inv / tau  # d paid / d y
            d_logx = np.where((x > 0)[:, :, None], m.eps[None, :, None] * want[:, :, None] / np.where(x > 0, x, 1.0)[:, :, None]
                              * d_paid / paid[:, :, None], 0.0)
            d_sum_spi = (-pay + share * sum_spi[:, :, None]) / tau + pay
            d_spend = (x[:, :, None] * d_logx * sum_spi[:, :, None] + x[:, :, None] * d_sum_spi).sum(axis=1)  # lab, g
            d_logf = np.where(binding[:, None], -d_spend / np.where(binding, spend, 1.0)[:, None], 0.0)
        per = d_logf[:, None, :] + d_logx + share / tau  # lab, purpose, group
        q_group = np.einsum("kiu,kg->giu", q, m.onehot)
        return np.einsum("giu,ium->gm", q_group, per) - np.diag(q_group.sum(axis=(1, 2))) / tau

    return _State(q, by_group, jacobian)


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

    A group whose free capacity is a rounding residue (at most ``MIN_CAPACITY`` chips) makes the
    excess relative to capacity ill-conditioned; should Newton not converge with it, the clearing
    is solved again with such groups holding nothing to clear. Should it still not converge, it is
    solved again with a group nobody wants stepping to its floor, then by continuation in the
    dispersion from ``CONTINUATION_START``; if every try fails, the one of least residual is
    returned (``converged`` False; the model records it), with the iterations of all of them.
    """
    terms = (group, floor, capacity, useful, penalty, able, value, notional, held, level, elasticity, money)
    least = 0.0
    out = _solve(price, *terms, tau, tol, max_iterations, least=least)
    if not out.converged and ((capacity > 0) & (capacity <= MIN_CAPACITY)).any():
        least = MIN_CAPACITY
        out = _solve(price, *terms, tau, tol, max_iterations, least=least)
    if out.converged:
        return out
    tries = [out, _solve(price, *terms, tau, tol, max_iterations, least=least, safeguarded=True)]
    if not tries[-1].converged and tau < CONTINUATION_START:
        # Continuation (homotopy) in the dispersion: nearer perfect substitutes the shares are
        # nearly step functions of price and Newton from last month's prices can stall; from a
        # dispersion where demand is smooth, halve it stage by stage, each stage starting from the
        # last one's prices, down to ``tau``.
        guess = price
        for j in range(int(np.ceil(np.log2(CONTINUATION_START / tau))), -1, -1):
            tries.append(_solve(guess, *terms, tau * 2.0**j, tol, max_iterations, least=least, safeguarded=True))
            guess = tries[-1].prices
    best = tries[-1] if tries[-1].converged else min(tries, key=lambda x: x.residual)
    return best._replace(iterations=sum(x.iterations for x in tries))


def _solve(price: np.ndarray, group: np.ndarray, floor: np.ndarray, capacity: np.ndarray, useful: np.ndarray,
           penalty: np.ndarray, able: np.ndarray, value: np.ndarray, notional: np.ndarray, held: np.ndarray,
           level: np.ndarray, elasticity: np.ndarray, money: np.ndarray, tau: float, tol: float, max_iterations: int,
           *, least: float, safeguarded: bool = False) -> JointClearing:
    """:func:`joint_clearing` with the groups of at most ``least`` free chips left out; ``safeguarded``:
    a group nobody wants at the current prices steps to its floor (the retries' rule)."""
    n_groups = len(floor)
    usable = able[:, :, None] & (useful > 0) & (capacity[group] > least)[:, None, None]
    m = _market(group, n_groups, usable, useful, penalty, value, notional, held, level, elasticity, money, tau)
    with np.errstate(invalid="ignore"):
        # no lab pays more than its value: beyond e^(20 tau) times the dearest choke a group sells nothing
        choke = np.where(usable, m.outside[None] - m.per_price, -np.inf).max(axis=(1, 2))
    top = np.full(n_groups, -np.inf)
    np.maximum.at(top, group, choke)
    lower = np.log(floor)
    upper = np.maximum(top + 20.0 * tau, lower)
    cap = np.maximum(capacity, max(least, 1e-300))
    y = np.clip(np.log(np.maximum(price, 1e-300)), lower, upper)

    def solve_at(y: np.ndarray) -> tuple[_State, np.ndarray, float]:
        state = _state(y, m)
        r = np.minimum(y - lower, 1.0 - state.by_group / cap)
        return state, r, float(r @ r)

    state, r, merit = solve_at(y)
    it = 0
    for it in range(1, max_iterations + 1):
        if np.sqrt(merit / max(n_groups, 1)) < tol:
            break
        jac = -state.jacobian() / cap[:, None]  # d excess (relative) / d log price
        at_floor = (y - lower) <= 1.0 - state.by_group / cap  # the min picks the floor: y = floor
        if safeguarded:  # so does a group nobody wants at this price: its demand row is flat (a
            at_floor |= state.by_group <= 0.0  # singular step), and no buyers above the floor is no equilibrium
        a = np.where(at_floor[:, None], np.eye(n_groups), jac)
        try:
            step = np.linalg.solve(a, -r)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(a, -r, rcond=None)[0]
        t = 1.0
        while True:
            y_trial = np.clip(y + t * step, lower, upper)
            trial = solve_at(y_trial)
            if trial[2] <= (1.0 - 1e-4 * t) * merit or t < 1e-6:
                break
            t *= 0.5
        y = y_trial
        state, r, merit = trial
    rms = float(np.sqrt(merit / max(n_groups, 1)))
    return JointClearing(np.exp(y), state.chips, rms < tol, it, rms)
