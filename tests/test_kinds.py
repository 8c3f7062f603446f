"""Kinds of (lab, purpose) pairs: labs alike computed once (market.economics.clearing.kinds_of),
and the labs' alternatives computed by kind equal to the same computed pair by pair."""

from __future__ import annotations

import numpy as np
import pytest

from market.economics.clearing import kinds_of
from market.markets import ComputeMarket


def test_equal_rows_share_a_kind_numbered_as_they_first_appear() -> None:
    rows = np.array([[1.0, np.inf], [2.0, 3.0], [1.0, np.inf], [2.0, 3.0], [5.0, -np.inf], [2.0, 3.0 + 1e-15]])
    kind, first = kinds_of(rows)
    assert kind.tolist() == [0, 1, 0, 1, 2, 3]
    assert first.tolist() == [0, 1, 4, 5]
    assert (rows[first[kind]] == rows).all()


def _per_pair(effective, room, need, product, markets):
    """The labs' alternatives pair by pair (the computation before kinds)."""
    order = np.argsort(effective, axis=0, kind="stable")
    sorted_price = np.take_along_axis(effective, order, axis=0)
    sorted_room = np.take_along_axis(room, order, axis=0)
    sorted_product = product[order]
    finite = np.isfinite(sorted_price)
    out = {}
    for p in markets:
        covered = np.cumsum(np.where(sorted_product == p, 0.0, sorted_room), axis=0)
        enough = (covered >= need[None]) & finite & (sorted_product != p)
        first = np.argmax(enough, axis=0)
        marginal = np.take_along_axis(sorted_price, first[None], axis=0)[0]
        out[p] = np.where(enough.any(axis=0) & (need > 0), marginal, np.inf)
    return out


def test_alternatives_by_kind_equal_those_pair_by_pair() -> None:
    """Random offers of three products, labs drawn from four types (so many pairs share a kind),
    some offers sold out, some labs unable to rent some offers, needs from nothing to more than
    everything free."""
    rng = np.random.default_rng(7)
    offers, labs = 9, 40
    types = rng.integers(0, 4, labs)
    useful = rng.choice([0.0, 0.5, 1.0, 2.0], (offers, 4, 2))[:, types]
    penalty = rng.uniform(1.0, 1.5, (offers, 4, 2))[:, types]
    able = (rng.random((offers, 4)) < 0.8)[:, types][:, :, None] & (useful > 0)
    free = rng.choice([0.0, 10.0, 50.0], offers)
    price = rng.uniform(0.5, 3.0, offers)
    product = np.array(["a", "b", "c"])[rng.integers(0, 3, offers)]
    with np.errstate(divide="ignore"):
        effective = np.where(able, price[:, None, None] * penalty / np.where(useful > 0, useful, 0.0), np.inf)
    room = np.where(able, free[:, None, None] * useful, 0.0)
    need = rng.choice([0.0, 5.0, 40.0, 1e4], (labs, 2))
    markets = ["a", "b", "c"]
    got = ComputeMarket._alternatives(effective, room, need, product, markets, able, useful, penalty)
    want = _per_pair(effective, room, need, product, markets)
    for p in markets:
        assert np.array_equal(got[p], want[p]), p
        assert np.isfinite(got[p]).any() and np.isinf(got[p]).any()  # both cases drawn


def test_a_month_pauses_the_garbage_collector_and_restores_it() -> None:
    """MarketModel.step pauses Python's cyclic collector for the month and turns it back on after,
    also when the month raises; a collector the caller turned off stays off."""
    import gc

    import market
    from market.model import MarketModel

    seen = []
    model = MarketModel(market.load_scenario("baseline", steps=3), seed=0)
    original = model.chip_market

    def spy() -> None:
        seen.append(gc.isenabled())
        original()

    model.chip_market = spy
    assert gc.isenabled()
    model.step()
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        model.step()
        assert not gc.isenabled()
    finally:
        gc.enable()
    faulty = MarketModel(market.load_scenario("baseline", {"faults.raise_at_step": 1}, steps=3), seed=0)
    faulty.step()
    with pytest.raises(RuntimeError, match="fault injected"):
        faulty.step()
    assert gc.isenabled()
