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
substitutes, so the equilibrium is unique (Arrow, Block and Hurwicz 1959). Where Newton stalls
(nearer perfect substitutes the shares are nearly step functions of price) the month is solved by
continuation in the dispersion (:func:`joint_clearing`). Labs' (lab, purpose) pairs alike in
every term of the logit are computed once, by kind (:func:`kinds_of`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = ["DISPERSION", "JointClearing", "joint_clearing", "kinds_of"]

DISPERSION = 0.05  # logit dispersion in log effective price: a 5% dearer offer gets e^-1 the share (the scenario's negotiation.substitutes_dispersion)
TOLERANCE = 1e-6  # on the complementarity residual (log price, or excess demand relative to capacity)
MAX_ITERATIONS = 60
MIN_STEP = 2.0**-20  # the line search's shortest step: a try with no descent by then has stalled
MIN_CAPACITY = 1e-6  # chips: a group with less free (rounding left by contracts) has none to clear
CONTINUATION_START = 0.2  # the dispersion a continuation starts from when Newton fails at a smaller one
MAX_STAGES = 16  # the continuation's solves at most


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
    """The month's fixed terms (:func:`joint_clearing`). Labs' (lab, purpose) pairs, flattened lab
    by lab (``c = i * purposes + u``), that see the same offers at the same penalties and the same
    value (the long tail's labs, mostly) split their demand alike: the logit is computed once per
    *kind* of pair, each pair pointing to its kind."""

    group: np.ndarray  # offer -> group
    onehot: np.ndarray  # offer, group
    per_price: np.ndarray  # offer, kind: log(penalty / useful): log effective price = log price + this; inf: not able
    inv_useful: np.ndarray  # offer, kind: 1 / useful PFLOP/s (0 where not able)
    outside: np.ndarray  # kind: log value
    kind: np.ndarray  # pair -> kind
    notional: np.ndarray  # pair
    held: np.ndarray  # pair
    level: np.ndarray  # pair: the lab's price level
    eps: np.ndarray  # pair: the purpose's elasticity
    money: np.ndarray  # lab
    shape: tuple[int, int, int]  # offers, labs, purposes
    tau: float


class _State(NamedTuple):
    """Demand at one vector of log group prices, and what its Jacobian needs."""

    chips: Callable[[], np.ndarray]  # offer, lab, purpose
    by_group: np.ndarray  # group: chips wanted
    jacobian: Callable[[], np.ndarray]  # group, group: d chips wanted / d log price


def kinds_of(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which rows of ``rows`` (n, features) are equal: each row's kind (0, 1, ... in the order the
    kinds first appear) and the first row of each kind. Rows are hashed by a fixed random
    projection (infinities, if any, as a large sentinel) and the grouping checked exactly; should
    two different rows share a hash, they are told apart one by one."""
    n = rows.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    weights = np.random.default_rng(20250601).uniform(0.5, 1.5, rows.shape[1])
    with np.errstate(invalid="ignore"):
        h = rows @ weights
    if not np.isfinite(h).all():
        h = np.nan_to_num(rows, posinf=1e6, neginf=-1e6) @ weights
    _, first, kind = np.unique(h, return_index=True, return_inverse=True)
    if not (rows[first[kind]] == rows).all():  # a collision: group by the rows' bytes
        seen: dict[bytes, int] = {}
        kind = np.fromiter((seen.setdefault(row, len(seen)) for row in map(bytes, np.ascontiguousarray(rows))),
                           dtype=np.intp, count=n)
        first = np.zeros(len(seen), dtype=np.intp)
        first[kind[::-1]] = np.arange(n)[::-1]
        return kind, first
    order = np.argsort(first, kind="stable")  # kinds numbered in the order they first appear
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[kind.reshape(n)], first[order]


def _market(group: np.ndarray, n_groups: int, usable: np.ndarray, useful: np.ndarray, penalty: np.ndarray,
            value: np.ndarray, notional: np.ndarray, held: np.ndarray, level: np.ndarray, elasticity: np.ndarray,
            money: np.ndarray, tau: float) -> _Market:
    """The month's fixed terms for the offers, labs and purposes ``usable`` marks."""
    n_offers, n_labs, n_purposes = useful.shape
    pairs = n_labs * n_purposes
    usable, useful, penalty = (x.reshape(n_offers, pairs) for x in (usable, useful, penalty))
    values = np.repeat(value, n_purposes)
    # what makes a pair's kind, all finite: where it may rent, the penalties and chips' use there, its value
    kind, first = kinds_of(np.vstack((np.where(usable, penalty, 0.0), np.where(usable, useful, 0.0), values[None])).T)
    usable, useful, penalty = usable[:, first], useful[:, first], penalty[:, first]  # offer, kind
    with np.errstate(divide="ignore", invalid="ignore"):
        per_price = np.where(usable, np.log(penalty) - np.log(useful), np.inf)
        inv_useful = np.where(usable, 1.0 / np.where(usable, useful, 1.0), 0.0)
        outside = np.log(values[first])
    return _Market(group, np.eye(n_groups)[group], per_price, inv_useful, outside, kind, notional.reshape(pairs),
                   held.reshape(pairs), np.repeat(level, n_purposes), np.tile(elasticity, n_labs), money,
                   (n_offers, n_labs, n_purposes), tau)


def _state(y: np.ndarray, m: _Market) -> _State:
    """Chips wanted at log group prices ``y``, and (lazily) the chips by offer and their
    derivatives in ``y``. With ``w_k = exp(-(log e_k - low) / tau)`` per offer and kind of pair and
    ``T = exp(-(log v - low) / tau) + sum_k w_k`` (``low`` for stability), the shares are
    ``s_k = w_k / T``; the sums over offers are matrix products."""
    tau = m.tau
    kind = m.kind
    p = np.exp(y)[m.group]  # offer
    n_labs, n_purposes = m.shape[1:]
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_e = y[m.group][:, None] + m.per_price  # offer, kind
        low = np.minimum(log_e.min(axis=0), m.outside)  # kind
        w = np.exp((low - log_e) / tau)
        total = np.exp((low - m.outside) / tau) + w.sum(axis=0)
        wu = w * m.inv_useful  # share times chips per useful PFLOP/s, times T
        wsum = w.sum(axis=0)
        ok = wsum > 0
        sum_spi = (p @ wu) / total  # USD per useful PFLOP-hour: sum_k s_k p_k / u_k
        inside = wsum / total
        paid = np.where(ok, sum_spi / np.where(ok, inside, 1.0), 1.0)
        # per pair
        ok_c, paid_c, sum_spi_c = ok[kind], paid[kind], sum_spi[kind]
        want = np.where(ok_c, m.notional * (paid_c / m.level) ** m.eps, 0.0)
        x = np.maximum(want - m.held, 0.0)
        spend = (x * sum_spi_c).reshape(n_labs, n_purposes).sum(axis=1)  # lab: USD per hour
        binding = spend > m.money
        f = np.where(binding, m.money / np.where(binding, spend, 1.0), 1.0)
        per = np.repeat(f, n_purposes) * x / total[kind]  # pair: chips of offer k are wu_k * per
    by_offer = wu @ np.bincount(kind, weights=per, minlength=wu.shape[1])
    by_group = by_offer @ m.onehot

    def chips() -> np.ndarray:
        return (wu[:, kind] * per).reshape(m.shape)

    def jacobian() -> np.ndarray:
        # d log chips of a pair c (of kind k, lab i) / d y_m = d log f_i + d log x_c + share_m / tau,
        # less 1 / tau for the offers of group m; d log x_c = alpha_c beta_mk (the demand's response to
        # the mean price paid), d log f_i = -d spend_i / spend_i where the budget binds. Summed over the
        # pairs of a kind with their chips, the kinds' terms are matrix products.
        inv_t = 1.0 / total
        share = (m.onehot.T @ w) * inv_t  # group, kind: inside share of each group
        pay = ((m.onehot * p[:, None]).T @ wu) * inv_t
        q_kind = m.onehot.T @ wu  # group, kind: chips of the group per unit of a pair's per
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(ok, 1.0 / np.where(ok, inside, 1.0), 0.0)
            beta = np.where(ok, (pay * inv * (1.0 - 1.0 / tau) + paid * share * inv / tau) / paid, 0.0)  # d log paid / d y
            alpha = np.where(x > 0, m.eps * want / np.where(x > 0, x, 1.0), 0.0)  # pair
        gamma = (-pay + share * sum_spi) / tau + pay  # d sum_spi / d y
        per_kind = np.bincount(kind, weights=per, minlength=q_kind.shape[1])
        per_alpha = np.bincount(kind, weights=per * alpha, minlength=q_kind.shape[1])
        jac = (q_kind * per_kind) @ (share.T / tau) + (q_kind * per_alpha) @ beta.T
        jac -= np.diag(q_kind @ per_kind) / tau
        if binding.any():
            labs = np.flatnonzero(binding)
            c = (labs[:, None] * n_purposes + np.arange(n_purposes)).ravel()  # their pairs
            k = kind[c]
            d_spend = ((x[c] * alpha[c] * sum_spi[k]) * beta[:, k] + x[c] * gamma[:, k])  # m, pair
            d_logf = -d_spend.reshape(-1, labs.size, n_purposes).sum(axis=2) / spend[labs]  # m, binding lab
            r = (q_kind[:, k] * per[c]).reshape(-1, labs.size, n_purposes).sum(axis=2)  # g, binding lab
            jac += r @ d_logf.T
        return jac

    return _State(chips, by_group, jacobian)


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
    is solved again with such groups holding nothing to clear. Should it still not converge (Newton
    stalls: no descent along its direction), it is solved by continuation in the dispersion from
    ``CONTINUATION_START``; if every try fails, the one of least residual is returned
    (``converged`` False; the model records it), with the iterations of all of them.
    """
    terms = (group, floor, capacity, useful, penalty, able, value, notional, held, level, elasticity, money)
    least = 0.0
    built: dict[float, _Market] = {}
    out = _solve(price, *terms, tau, tol, max_iterations, least=least, built=built)
    if not out.converged and ((capacity > 0) & (capacity <= MIN_CAPACITY)).any():
        least = MIN_CAPACITY
        out = _solve(price, *terms, tau, tol, max_iterations, least=least, built=built)
    if out.converged or tau >= CONTINUATION_START:
        return out
    # Continuation (homotopy) in the dispersion: nearer perfect substitutes the shares are nearly
    # step functions of price and Newton from last month's prices can stall. From a dispersion
    # where demand is smoother (twice ``tau``, doubled while Newton stalls there too, up to
    # CONTINUATION_START), halve it stage by stage down to ``tau``, each stage starting from the
    # last converged one's prices; a stage that stalls is retried halfway (in logs) from it.
    tries = [out]
    stage, guess, done = min(2.0 * tau, CONTINUATION_START), price, None  # done: the last converged stage's dispersion
    while len(tries) <= MAX_STAGES:
        tries.append(_solve(guess, *terms, stage, tol, max_iterations, least=least, built=built))
        if tries[-1].converged:
            if stage == tau:
                break
            done, guess = stage, tries[-1].prices
            stage = max(tau, stage / 2.0)
        elif done is not None:
            stage = np.sqrt(done * stage)
        elif stage < CONTINUATION_START:
            stage = min(2.0 * stage, CONTINUATION_START)  # a smoother start, from the first guess
        else:
            break  # not even the smoothest start converges
    best = tries[-1] if tries[-1].converged else min(tries, key=lambda x: x.residual)
    return best._replace(iterations=sum(x.iterations for x in tries))


def _solve(price: np.ndarray, group: np.ndarray, floor: np.ndarray, capacity: np.ndarray, useful: np.ndarray,
           penalty: np.ndarray, able: np.ndarray, value: np.ndarray, notional: np.ndarray, held: np.ndarray,
           level: np.ndarray, elasticity: np.ndarray, money: np.ndarray, tau: float, tol: float, max_iterations: int,
           *, least: float, built: dict[float, _Market] | None = None) -> JointClearing:
    """:func:`joint_clearing` with the groups of at most ``least`` free chips left out; ``built``:
    the month's fixed terms already built, by ``least`` (the tries of one month share them)."""
    n_groups = len(floor)
    m = None if built is None else built.get(least)
    if m is None:
        usable = able[:, :, None] & (useful > 0) & (capacity[group] > least)[:, None, None]
        m = _market(group, n_groups, usable, useful, penalty, value, notional, held, level, elasticity, money, tau)
        if built is not None:
            built[least] = m
    elif m.tau != tau:
        m = m._replace(tau=tau)
    with np.errstate(invalid="ignore"):
        # no lab pays more than its value: beyond e^(20 tau) times the dearest choke a group sells nothing
        choke = np.where(m.inv_useful > 0, m.outside[None] - m.per_price, -np.inf).max(axis=1)
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
        # the min picks the floor (y = floor); so does a group nobody wants at this price: its demand
        # row is flat (a singular step), and no buyers above its floor is no equilibrium
        at_floor = ((y - lower) <= 1.0 - state.by_group / cap) | (state.by_group <= 0.0)
        a = np.where(at_floor[:, None], np.eye(n_groups), jac)
        try:
            step = np.linalg.solve(a, -r)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(a, -r, rcond=None)[0]
        t = 1.0
        while True:
            y_trial = np.clip(y + t * step, lower, upper)
            trial = solve_at(y_trial)
            if trial[2] <= (1.0 - 1e-4 * t) * merit or t <= MIN_STEP:
                break
            t *= 0.5
        if trial[2] > merit:
            break  # no descent along Newton's direction: this try has stalled
        y = y_trial
        state, r, merit = trial
    rms = float(np.sqrt(merit / max(n_groups, 1)))
    return JointClearing(np.exp(y), state.chips(), rms < tol, it, rms)
