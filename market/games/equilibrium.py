"""Equilibria of a normal-form game given as a payoff tensor, and how sure we are of them.

``U`` has shape ``(n_players, k_1, ..., k_n)``: ``U[i, s_1, ..., s_n]`` is player i's payoff at the
profile (s_1, ..., s_n). A mixed profile ``sigma`` is a list of n probability vectors. Profiles not
yet run hold NaN (a double-oracle search explores only some); every function here skips them.

* Pure equilibria: every profile whose best unilateral deviation gains nothing (enumeration).
* Mixed equilibria: strictly dominated strategies are removed first (iterated elimination; they
  carry no weight in any equilibrium); then, when two players are left with a choice, every
  equilibrium support enumeration finds (nashpy: Knight and
  Campbell 2018; exact for non-degenerate games, and each result is checked by its regret); three
  or more, the time averages of projected replicator dynamics (OpenSpiel's, the meta-solver of
  PSRO) from the centre and from seeded random interior starts, kept when their regret is within
  ``APPROXIMATE_TOLERANCE`` of the payoff scale: epsilon-equilibria, with epsilon reported, and
  not necessarily all of them (docs/GAMES.md). Pure equilibria are always found exactly.
* Regret of a profile: the most any player gains by deviating alone to one of its pure strategies.
* Confidence: :func:`bootstrap_deviations` resamples the replications (the same ones for every
  profile: the runs use common random numbers, so the comparison is paired) with
  ``scipy.stats.bootstrap`` and gives each deviation's gain a percentile interval at the
  Bonferroni level 1 - alpha / K (K: the most deviations any profile of the call has), so that a
  profile's intervals hold together with probability at least 1 - alpha. The regret's interval is then [max lower bound, max upper bound] (clipped at 0),
  and the profile *holds as an equilibrium at 95 %* when that interval includes 0: no deviation
  gains significantly.
"""

from __future__ import annotations

import itertools
import string
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["APPROXIMATE_TOLERANCE", "MIXED_TOLERANCE", "Deviations", "best_response_graph", "bootstrap_deviations",
           "deviation_gains", "embed", "mixed_equilibria", "one_hot", "profile_regrets", "pure_equilibria", "regret",
           "strategy_values", "undominated"]

MIXED_TOLERANCE = 1e-6  # an equilibrium's regret, as a share of the payoffs' scale, that counts as 0
APPROXIMATE_TOLERANCE = 1e-3  # the same for replicator dynamics' time averages (3+ players): epsilon-equilibria
_LETTERS = string.ascii_lowercase


def strategy_values(U: np.ndarray, sigma: Sequence[np.ndarray], player: int) -> np.ndarray:
    """Player ``player``'s payoff from each of its pure strategies against the others' ``sigma``
    (``U`` may carry leading batch axes: shape ``(..., n, k_1, ..., k_n)``)."""
    n = len(sigma)
    axes = _LETTERS[:n]
    others = [axes[j] for j in range(n) if j != player]
    spec = ",".join([f"...{axes}", *others]) + f"->...{axes[player]}"
    payoffs = U[..., player, *([slice(None)] * n)]
    weights = [sigma[j] for j in range(n) if j != player]
    missing = np.isnan(payoffs)
    if not missing.any():
        return np.einsum(spec, payoffs, *weights)
    # profiles not run count only where the others play them with positive probability
    values = np.einsum(spec, np.where(missing, 0.0, payoffs), *weights)
    return np.where(np.einsum(spec, missing.astype(float), *weights) > 0, np.nan, values)


def deviation_gains(U: np.ndarray, sigma: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per player, the gain of each pure strategy over the player's payoff at ``sigma``."""
    gains = []
    for i in range(len(sigma)):
        values = strategy_values(U, sigma, i)
        on_support = np.where(sigma[i] > 0, values, 0.0)  # a profile not run off its support is no matter
        own = (on_support * sigma[i]).sum(axis=-1, keepdims=True)  # NaN if one on it was not run
        gains.append(values - own)
    return gains


def regret(U: np.ndarray, sigma: Sequence[np.ndarray]) -> float:
    """The most any player gains by deviating alone from ``sigma`` to one of its pure strategies."""
    return max(_most(g) for g in deviation_gains(U, sigma))  # deviations to profiles not run are skipped


def one_hot(profile: Sequence[int], shape: Sequence[int]) -> list[np.ndarray]:
    """A pure profile as a mixed one: one probability vector per player."""
    return [np.eye(k)[s] for s, k in zip(profile, shape, strict=True)]


def profile_regrets(U: np.ndarray) -> np.ndarray:
    """Regret of every pure profile (shape ``(k_1, ..., k_n)``): NaN where the profile was not run;
    deviations to profiles not run are skipped (the regret is then a lower bound)."""
    n = U.shape[0]
    best = np.full(U.shape[1:], -np.inf)
    for i in range(n):
        best_reply = np.nanmax(U[i], axis=i, keepdims=True) if np.isfinite(U[i]).any() else U[i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            best = np.fmax(best, best_reply - U[i])
    best[np.isnan(U[0])] = np.nan
    return np.where(np.isnan(best), np.nan, np.maximum(best, 0.0))


def _scale(U: np.ndarray) -> float:
    finite = U[np.isfinite(U)]
    return float(max(np.ptp(finite), np.abs(finite).max(), 1e-300)) if finite.size else 1.0


def pure_equilibria(U: np.ndarray, tolerance: float = 0.0) -> list[tuple[int, ...]]:
    """Pure profiles whose regret is at most ``tolerance`` (in payoff units)."""
    regrets = profile_regrets(U)
    return [tuple(int(x) for x in p) for p in zip(*np.nonzero(regrets <= tolerance), strict=True)]


@dataclass(frozen=True)
class Edge:
    """In the best-response graph: ``player`` gains ``gain`` by moving from ``source`` to ``target``."""

    source: tuple[int, ...]
    target: tuple[int, ...]
    player: int
    gain: float


def best_response_graph(U: np.ndarray, tolerance: float = 0.0) -> list[Edge]:
    """From every profile run, an edge per player whose best reply to the others gains more than
    ``tolerance``: to the profile where it plays that reply. Sinks are the pure equilibria."""
    edges = []
    shape = U.shape[1:]
    for profile in itertools.product(*(range(k) for k in shape)):
        if np.isnan(U[(0, *profile)]):
            continue
        for i in range(len(shape)):
            line = U[(i, *profile[:i], slice(None), *profile[i + 1:])]
            if np.isnan(line).all():
                continue
            best = int(np.nanargmax(line))
            gain = float(line[best] - line[profile[i]])
            if gain > tolerance:
                edges.append(Edge(profile, (*profile[:i], best, *profile[i + 1:]), i, gain))
    return edges


def mixed_equilibria(U: np.ndarray, *, seed: int = 0, starts: int = 4) -> list[list[np.ndarray]]:
    """Equilibria of the (complete) game, pure ones included, each a list of probability vectors;
    see the module docstring for the method per number of players. Each is checked: its regret is
    at most ``MIXED_TOLERANCE`` times the payoffs' scale (``APPROXIMATE_TOLERANCE`` for the
    replicator dynamics' time averages, which approach an equilibrium without reaching it)."""
    if np.isnan(U).any():
        raise ValueError("mixed equilibria need every profile's payoffs; the game has profiles not run")
    n, shape = U.shape[0], U.shape[1:]
    tol = MIXED_TOLERANCE * _scale(U)
    found = [(one_hot(p, shape), tol) for p in pure_equilibria(U, tol)]
    # strictly dominated strategies are never played in equilibrium: remove them first, and solve
    # exactly when at most two players are left with a choice
    kept = undominated(U)
    sub = U[np.ix_(range(n), *kept)]
    active = [i for i in range(n) if len(kept[i]) > 1]
    if len(active) == 2:
        i, j = active
        for a, b in _two_player(sub[[i, j]].reshape(2, len(kept[i]), len(kept[j]))):  # i < j
            sigma = [np.ones(1) for _ in range(n)]
            sigma[i], sigma[j] = a, b
            found.append((embed(sigma, kept, shape), tol))
    elif len(active) >= 3:
        found += [(embed(sigma, kept, shape), APPROXIMATE_TOLERANCE * _scale(U))
                  for sigma in _replicator(sub, seed=seed, starts=starts)]
    out: list[list[np.ndarray]] = []
    for sigma, limit in found:
        sigma = [np.where(np.abs(s) < 1e-12, 0.0, s) for s in sigma]  # solvers' round-off off the support
        sigma = [s / s.sum() for s in sigma]
        if regret(U, sigma) <= limit and not any(_same(sigma, other, atol=1e-3) for other in out):
            out.append(sigma)
    return sorted(out, key=lambda s: (-sum(int(np.count_nonzero(x) == 1) for x in s), [tuple(-x) for x in s]))


def undominated(U: np.ndarray) -> list[list[int]]:
    """Each player's strategies left after iterated elimination of strategies strictly dominated by
    another pure strategy (on the given payoffs; a profile not run blocks an elimination)."""
    n, shape = U.shape[0], U.shape[1:]
    kept = [list(range(k)) for k in shape]
    changed = True
    while changed:
        changed = False
        for i in range(n):
            sub = np.moveaxis(U[i][np.ix_(*kept)], i, 0)  # (own strategies kept, others' kept profiles)
            for a in list(range(len(kept[i]))):
                if any(np.all(sub[b] > sub[a]) for b in range(len(kept[i])) if b != a):
                    kept[i] = [s for k, s in enumerate(kept[i]) if k != a]
                    changed = True
                    break
            if changed:
                break
    return kept


def embed(sigma: Sequence[np.ndarray], kept: list[list[int]], shape: Sequence[int]) -> list[np.ndarray]:
    """A mixed profile of a sub-game (player i's strategies ``kept[i]``) as one of the whole game."""
    out = []
    for k, idx, s in zip(shape, kept, sigma, strict=True):
        full = np.zeros(k)
        full[idx] = s
        out.append(full)
    return out


def _same(a: list[np.ndarray], b: list[np.ndarray], atol: float = 1e-6) -> bool:
    return all(np.allclose(x, y, atol=atol) for x, y in zip(a, b, strict=True))


def _two_player(U: np.ndarray) -> list[list[np.ndarray]]:
    import nashpy  # noqa: PLC0415 - imported when a two-player game is solved

    scale = _scale(U)
    game = nashpy.Game(U[0] / scale, U[1] / scale)
    with warnings.catch_warnings():  # nashpy warns on degenerate games; every result is checked by its regret
        warnings.simplefilter("ignore")
        return [[np.asarray(a, dtype=float), np.asarray(b, dtype=float)] for a, b in game.support_enumeration()]


def _replicator(U: np.ndarray, *, seed: int, starts: int, iterations: int = 10_000) -> list[list[np.ndarray]]:
    """Projected replicator dynamics (OpenSpiel; the meta-solver of PSRO, Lanctot et al. 2017) from
    the centre of the simplex and ``starts`` seeded random interior points, each result the average
    of the second half of its path (time averages approach equilibria even where paths cycle)."""
    from open_spiel.python.algorithms.projected_replicator_dynamics import (  # noqa: PLC0415 - 3+ players only
        projected_replicator_dynamics,
    )

    n, shape = U.shape[0], U.shape[1:]
    tensors = [U[i] / _scale(U) for i in range(n)]
    rng = np.random.default_rng(seed)
    initial = [[np.full(k, 1.0 / k) for k in shape]]
    initial += [[rng.dirichlet(np.ones(k)) for k in shape] for _ in range(starts)]
    found = []
    for start in initial:
        sigma = projected_replicator_dynamics(tensors, prd_initial_strategies=start, prd_iterations=iterations,
                                              prd_dt=1e-2, average_over_last_n_strategies=iterations // 2)
        # the projection keeps every probability above a floor (1e-6): strategies left near it are dropped
        found.append([np.where(np.asarray(x) < 1e-4, 0.0, np.asarray(x)) for x in sigma])
    return found


@dataclass(frozen=True)
class Deviations:
    """A profile's unilateral deviations with their gains: point estimates and simultaneous
    (Bonferroni) percentile-bootstrap intervals, and the regret's interval built from them."""

    player: np.ndarray  # (K,) player index of each deviation
    strategy: np.ndarray  # (K,) the pure strategy deviated to
    gain: np.ndarray  # (K,) point estimate
    low: np.ndarray  # (K,)
    high: np.ndarray  # (K,)
    regret: float
    regret_low: float
    regret_high: float

    @property
    def holds(self) -> bool:
        """No deviation gains significantly: the regret's interval includes 0."""
        return bool(self.regret_low <= 0.0)


def bootstrap_deviations(per_rep: np.ndarray, profiles: Sequence[Sequence[np.ndarray]], *, confidence: float = 0.95,
                         resamples: int = 2000, seed: int = 0) -> list[Deviations]:
    """Deviation gains and regret intervals of each profile in ``profiles`` (mixed or pure: pure
    ones as one-hot vectors; a pure profile's deviations exclude its own strategy).

    ``per_rep``: payoffs per replication, shape ``(R, n, k_1, ..., k_n)`` (replication r of every
    profile ran with the same seed). Replications are resampled together for all profiles."""
    R = per_rep.shape[0]
    n = per_rep.shape[1]
    entries: list[list[tuple[int, int]]] = []  # per profile: (player, strategy) of its deviations
    for sigma in profiles:
        entries.append([(i, s) for i in range(n) for s in range(len(sigma[i]))
                        if not (np.count_nonzero(sigma[i]) == 1 and sigma[i][s] == 1.0)])

    def gains(idx: np.ndarray, axis: int = -1) -> np.ndarray:  # idx: (..., R) -> (n_outputs, ...)
        U = per_rep[idx].mean(axis=idx.ndim - 1)  # (..., n, k_1, ..., k_n)
        outputs = []
        for sigma, devs in zip(profiles, entries, strict=True):
            g = deviation_gains(U, sigma)
            outputs += [g[i][..., s] for i, s in devs]
        return np.stack(outputs)

    point = gains(np.arange(R))
    out: list[Deviations] = []
    with warnings.catch_warnings():  # a deviation whose gain never varies has a degenerate interval
        warnings.simplefilter("ignore")
        k = max(len(d) for d in entries)
        result = stats.bootstrap((np.arange(R),), gains, vectorized=True, n_resamples=resamples, batch=200,
                                 method="percentile", confidence_level=1.0 - (1.0 - confidence) / max(k, 1),
                                 rng=np.random.default_rng(seed))
    low = np.asarray(result.confidence_interval.low)
    high = np.asarray(result.confidence_interval.high)
    start = 0
    for devs in entries:
        sl = slice(start, start + len(devs))
        start += len(devs)
        g, lo, hi = point[sl], low[sl], high[sl]
        # an interval NaN (no variation at all) is the point itself
        lo, hi = np.where(np.isnan(lo), g, lo), np.where(np.isnan(hi), g, hi)
        out.append(Deviations(np.array([d[0] for d in devs]), np.array([d[1] for d in devs]), g, lo, hi,
                              _most(g), _most(lo), _most(hi)))
    return out


def _most(x: np.ndarray) -> float:
    """The largest gain, clipped at 0, over the deviations run (0 when there are none run)."""
    x = x[~np.isnan(x)]
    return max(0.0, float(x.max())) if x.size else 0.0
