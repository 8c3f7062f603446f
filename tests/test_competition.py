"""Price competition with capacity limits and bargaining with outside options, as pure functions
(no Mesa): market/economics/competition.py and bargaining.with_outside_options."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.economics import (
    BargainingParams,
    BargainOutcome,
    best_response,
    best_responses,
    clearing_price,
    lerner_price,
    nash,
    residual_demand,
    with_outside_options,
)


def isoelastic(scale: float, elasticity: float, choke: float = np.inf):
    def demand(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        return np.where(p <= choke, scale * p ** elasticity, 0.0)
    return demand


def test_a_lone_seller_with_room_to_spare_sets_the_lerner_price() -> None:
    for e in (-1.5, -2.0, -4.0):
        reply = best_response(0.2, 1e9, isoelastic(100.0, e), np.empty(0), np.empty(0), ceiling=100.0)
        assert reply.price == pytest.approx(lerner_price(0.2, e), rel=1e-6)
        assert not reply.scarce


def test_a_lone_seller_short_of_capacity_sells_out_at_the_price_that_clears_it() -> None:
    # Lerner would be 0.4 with demand 625; 100 chips clear at (100/100)^(-1/2) = 1.
    reply = best_response(0.2, 100.0, isoelastic(100.0, -2.0), np.empty(0), np.empty(0), ceiling=100.0)
    assert reply.price == pytest.approx(1.0, rel=1e-9) and reply.scarce and reply.quantity == 100.0


def test_against_a_rival_with_room_a_seller_undercuts_by_its_tick_down_to_cost() -> None:
    demand = isoelastic(100.0, -2.0)
    reply = best_response(0.2, 1e4, demand, np.array([0.35]), np.array([1e4]), 100.0, undercut=0.05)
    assert reply.price == pytest.approx(0.35 * 0.95)
    # below cost nothing is earned: it prices at cost
    assert best_response(0.2, 1e4, demand, np.array([0.2]), np.array([1e4]), 100.0).price == 0.2


def test_residual_demand_serves_the_cheaper_first_and_splits_ties_by_capacity() -> None:
    prices = np.array([1.0, 2.0, 3.0])
    got = residual_demand(prices, np.array([300.0, 300.0, 300.0]), np.array([2.0]), np.array([100.0]), 300.0)
    assert got.tolist() == pytest.approx([300.0, 225.0, 200.0])  # at 2: 300 x 300 / (300 + 100)


def test_simultaneous_replies_match_one_by_one_replies() -> None:
    demand = isoelastic(500.0, -1.5, choke=20.0)
    asks, free = np.array([1.2, 1.5, 2.0]), np.array([80.0, 120.0, 60.0])
    together = best_responses([0.3, 0.3, 0.4], free, [0, 1, 2], asks, free, [0.02] * 3, demand, 20.0)
    for j, reply in enumerate(together):
        alone = best_response([0.3, 0.3, 0.4][j], free[j], demand, np.delete(asks, j), np.delete(free, j), 20.0, 0.02)
        assert reply.price == pytest.approx(alone.price, rel=1e-9)
        assert reply.scarce == alone.scarce


def test_the_clearing_price_is_the_cost_when_capacity_is_spare_and_inverse_demand_when_not() -> None:
    demand = isoelastic(100.0, -2.0)
    assert clearing_price(0.2, 1e6, demand, 100.0) == 0.2
    assert clearing_price(0.2, 277.77777777777777, demand, 100.0) == pytest.approx(0.6, rel=1e-9)
    steps = lambda p: np.where(np.asarray(p) <= 3.0, 300.0, 100.0)  # noqa: E731
    assert clearing_price(0.2, 300.0, steps, 10.0) == pytest.approx(3.0, rel=1e-9)


@settings(deadline=None, max_examples=60)
@given(cost=st.floats(0.01, 5.0), capacity=st.floats(0.0, 1e4), scale=st.floats(1.0, 1e4),
       e=st.floats(-4.0, -0.1), rival=st.floats(0.01, 50.0), rival_free=st.floats(0.0, 1e4))
def test_a_best_reply_never_prices_below_cost_nor_sells_more_than_it_has(
        cost: float, capacity: float, scale: float, e: float, rival: float, rival_free: float) -> None:
    reply = best_response(cost, capacity, isoelastic(scale, e, choke=60.0), np.array([rival]),
                          np.array([rival_free]), ceiling=60.0)
    assert reply.price >= cost * (1 - 1e-12)
    assert 0.0 <= reply.quantity <= capacity * (1 + 1e-12)


def test_outside_options_bound_the_nash_split() -> None:
    inside = nash(0.2, 2.0, BargainingParams(seller_power=0.5))
    assert inside == BargainOutcome(1.1, 1)
    assert with_outside_options(inside, 0.2, 5.0) == inside  # no option binds
    assert with_outside_options(inside, 0.2, 0.6).price == 0.6  # the buyer's alternative binds
    assert with_outside_options(inside, 1.5, 5.0).price == 1.5  # the seller's next buyer binds
    assert with_outside_options(inside, 1.5, 1.2) is None  # each is better off elsewhere
    assert with_outside_options(None, 0.0, 9.0) is None
