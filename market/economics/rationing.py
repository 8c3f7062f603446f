"""Rationing rules: share a scarce capacity among requests.

Every rule has the signature ``f(requests, capacity, priority=None) -> alloc``
with ``requests`` (r_i >= 0) and ``capacity`` (K >= 0) in the same quantity
units (e.g. chips or chip-hours) and ``alloc`` a float64 array of the shape of
``requests``. With total demand ``R = sum r_i`` every rule satisfies
``0 <= alloc_i <= r_i`` and ``sum alloc_i = min(K, R)``; if ``K >= R`` everyone
gets its request.

* ``pro_rata``: ``alloc_i = r_i * min(1, K / R)``.
* ``priority``: levels served in ascending ``priority`` (0 = first); within a
  level, what is left is shared pro rata:
  ``alloc_i = r_i * min(1, max(0, K - R_before(l)) / R_l)`` for ``i`` in level ``l``.
* ``uniform``: Benassy uniform rationing (water-filling):
  ``alloc_i = min(r_i, lam)`` with ``lam`` such that ``sum alloc_i = K``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from market.registry import Registry

__all__ = [
    "RATIONING",
    "RationingRule",
    "priority",
    "pro_rata",
    "uniform",
]

RationingRule = Callable[[np.ndarray, float, np.ndarray | None], np.ndarray]


def _check(requests: np.ndarray, capacity: float) -> tuple[np.ndarray, float]:
    """Requests as a flat float64 array and capacity as a float, validated."""
    flat = np.asarray(requests, dtype=np.float64).ravel()
    if not np.all(np.isfinite(flat)):
        raise ValueError("requests must be finite")
    if np.any(flat < 0.0):
        raise ValueError("requests must be >= 0")
    capacity = float(capacity)
    # An infinite capacity is allowed (no scarcity); NaN is not.
    if np.isnan(capacity) or capacity < 0.0:
        raise ValueError(f"capacity must be >= 0, got {capacity}")
    return flat, capacity


def pro_rata(
    requests: np.ndarray, capacity: float, priority: np.ndarray | None = None
) -> np.ndarray:
    """Proportional rationing: every request cut by the same share; ``priority`` is ignored. Allocations in
    request units."""
    flat, capacity = _check(requests, capacity)
    total = flat.sum()
    share = 1.0 if capacity >= total else capacity / total
    return (flat * share).reshape(np.shape(requests))


def priority(
    requests: np.ndarray, capacity: float, priority: np.ndarray | None = None
) -> np.ndarray:
    """Priority rationing: ascending ``priority`` levels served in turn, pro rata within a level (request units)."""
    flat, capacity = _check(requests, capacity)
    if priority is None:
        return pro_rata(requests, capacity)
    ranks = np.asarray(priority, dtype=np.float64)
    if ranks.shape != np.shape(requests):
        raise ValueError(f"priority shape {ranks.shape} != requests shape {np.shape(requests)}")
    ranks = ranks.ravel()
    if np.any(np.isnan(ranks)):
        raise ValueError("priority must not contain NaN")
    if flat.size == 0 or capacity >= flat.sum():  # no scarcity: everyone is served in full
        return flat.reshape(np.shape(requests))

    # np.unique sorts the levels, so the cumulative sum is demand of earlier levels.
    _, level_of = np.unique(ranks, return_inverse=True)
    level_total = np.bincount(level_of, weights=flat)
    served_before = np.cumsum(level_total) - level_total
    left = np.maximum(capacity - served_before, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # only the chosen branch is finite
        share = np.where(level_total > left, left / level_total, 1.0)
    return (flat * share[level_of]).reshape(np.shape(requests))


def uniform(
    requests: np.ndarray, capacity: float, priority: np.ndarray | None = None
) -> np.ndarray:
    """Uniform (water-filling) rationing: every request served up to one common level; ``priority`` is
    ignored. Allocations in request units."""
    flat, capacity = _check(requests, capacity)
    if capacity >= flat.sum():
        return flat.reshape(np.shape(requests))
    ordered = np.sort(flat)
    n = ordered.size
    # If the k smallest requests are served in full, the others share the rest equally:
    # lam_k = (K - sum of k smallest) / (n - k). The water level is the first lam_k that
    # does not exceed the (k+1)-th smallest request.
    served_before = np.concatenate(([0.0], np.cumsum(ordered)[:-1]))
    levels = (capacity - served_before) / np.arange(n, 0, -1)
    fits = levels <= ordered
    # In exact arithmetic the last level always fits (K < R); guard against rounding.
    k = int(np.argmax(fits)) if fits.any() else n - 1
    level = max(levels[k], 0.0)
    return np.minimum(flat, level).reshape(np.shape(requests))


RATIONING: Registry[RationingRule] = Registry("rationing rule", {
    "pro_rata": pro_rata,
    "priority": priority,
    "uniform": uniform,
})
