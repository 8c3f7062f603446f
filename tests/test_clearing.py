"""market.economics.clearing: the joint clearing of substitute products (docs/ODD.md 7.7 (a))."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from market.economics import clearing
from market.economics.clearing import TOLERANCE, joint_clearing


def _random_market(seed: int, budgets: bool) -> dict:
    rng = np.random.default_rng(seed)
    offers, labs, groups = 9, 5, 5
    group = np.concatenate((np.arange(groups), rng.integers(0, groups, offers - groups)))
    return dict(
        price=rng.uniform(0.5, 3.0, groups), group=group, floor=rng.uniform(0.2, 1.0, groups),
        capacity=rng.uniform(20.0, 200.0, groups), useful=rng.uniform(0.5, 2.0, (offers, labs, 2)),
        penalty=rng.uniform(1.0, 1.5, (offers, labs, 2)), able=rng.random((offers, labs)) < 0.8,
        value=rng.uniform(2.0, 6.0, labs), notional=rng.uniform(20.0, 120.0, (labs, 2)),
        held=rng.uniform(0.0, 20.0, (labs, 2)), level=rng.uniform(0.8, 1.5, labs),
        elasticity=np.array([-0.8, -1.3]),
        money=rng.uniform(20.0, 150.0, labs) if budgets else np.full(labs, 1e12))


@pytest.mark.parametrize("budgets", [False, True])
def test_the_jacobian_is_the_derivative_of_demand(budgets: bool) -> None:
    m = _random_market(1, budgets)
    usable = m["able"][:, :, None] & (m["useful"] > 0)
    market = clearing._market(m["group"], len(m["floor"]), usable, m["useful"], m["penalty"], m["value"],
                              m["notional"], m["held"], m["level"], m["elasticity"], m["money"], 0.1)
    y = np.log(m["price"])
    state = clearing._state(y, market)
    h = 1e-7
    numeric = np.stack([(clearing._state(y + h * e, market).by_group - state.by_group) / h
                        for e in np.eye(len(y))], axis=1)
    assert np.allclose(state.jacobian(), numeric, rtol=1e-4, atol=1e-4 * np.abs(numeric).max())
    spend = (state.chips() * m["price"][m["group"]][:, None, None]).sum(axis=(0, 2))
    assert np.isclose(spend, m["money"]).any() == budgets  # the budget's term is exercised (or not)


def test_labs_alike_share_one_kind_and_demand_as_if_apart() -> None:
    """Pairs (lab, purpose) that see the same offers at the same penalties and value are one kind
    for the logit (the long tail's labs, mostly); demand, chips and the Jacobian are those of the
    labs computed apart: the same market with a lab repeated gives, for the copy, the chips of
    the original scaled by its size, and the kinds do not grow."""
    m = _random_market(2, budgets=True)
    twice = {key: (np.concatenate((v, v[:, :1]), axis=1) if key in ("useful", "penalty", "able") else
                   np.concatenate((v, v[:1] * (3.0 if key in ("notional", "held", "money") else 1.0)))
                   if key in ("value", "notional", "held", "level", "money") else v) for key, v in m.items()}

    def state(mm: dict) -> tuple:
        usable = mm["able"][:, :, None] & (mm["useful"] > 0)
        market = clearing._market(mm["group"], len(mm["floor"]), usable, mm["useful"], mm["penalty"], mm["value"],
                                  mm["notional"], mm["held"], mm["level"], mm["elasticity"], mm["money"], 0.1)
        return market, clearing._state(np.log(mm["price"]), market)

    one, alone = state(m)
    two, with_copy = state(twice)
    assert two.per_price.shape[1] == one.per_price.shape[1]  # the copy adds no kind
    chips = with_copy.chips()
    assert np.allclose(chips[:, -1], 3.0 * chips[:, 0], rtol=1e-12, atol=0.0)
    assert np.allclose(with_copy.by_group, alone.by_group + 3.0 * np.bincount(
        m["group"], weights=alone.chips()[:, 0].sum(axis=1), minlength=len(m["floor"])), rtol=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("budgets", [False, True])
def test_the_solution_is_a_competitive_equilibrium(seed: int, budgets: bool) -> None:
    """Every price at or above its floor; demand at most capacity, and equal to it where the price
    is above the floor; no lab spends more than its budget; nothing rented where it may not."""
    m = _random_market(seed, budgets)
    out = joint_clearing(**m)
    assert out.converged, out
    floor, capacity = m["floor"], m["capacity"]
    demand = np.bincount(m["group"], weights=out.chips.sum(axis=(1, 2)), minlength=len(floor))
    assert (out.prices >= floor * (1 - 1e-12)).all()
    assert (demand <= capacity * (1 + 10 * TOLERANCE)).all()
    above = out.prices > floor * (1 + 10 * TOLERANCE)
    assert np.allclose(demand[above], capacity[above], rtol=10 * TOLERANCE)
    spend = (out.chips * out.prices[m["group"]][:, None, None]).sum(axis=(0, 2))
    assert (spend <= m["money"] * (1 + 1e-9)).all()
    assert (out.chips[~m["able"]] == 0).all()
    if budgets:
        assert (spend >= m["money"] * (1 - 1e-6)).any()  # the budgets drawn are small enough to bind


def test_perfect_substitutes_clear_at_inverse_demand_of_their_total_capacity() -> None:
    """Two products a lab finds equally good, 50 chips each, demand 200/p: both at p = 2, sold out
    (Kreps-Scheinkman's P(K1 + K2), as in tests/scenarios/substitutes.toml)."""
    out = joint_clearing(np.array([1.0, 3.0]), np.array([0, 1]), np.array([0.1, 0.1]), np.array([50.0, 50.0]),
                         np.ones((2, 1, 2)), np.ones((2, 1, 2)), np.ones((2, 1), bool), np.array([10.0]),
                         np.array([[100.0, 100.0]]), np.zeros((1, 2)), np.array([1.0]), np.array([-1.0, -1.0]),
                         np.array([1e12]))
    assert out.prices == pytest.approx([2.0, 2.0], rel=1e-6)
    assert out.chips.sum(axis=(1, 2)) == pytest.approx([50.0, 50.0], rel=1e-6)


def test_spare_capacity_prices_at_its_floor_and_a_substitute_just_above_its_own() -> None:
    """A cheap product with capacity to spare sells at its floor; a dearer one is bought only as
    far as labs' logit spread takes them there, so it prices within a few dispersions of the
    cheap one and sells out no more than its capacity."""
    out = joint_clearing(np.array([1.0, 1.0]), np.array([0, 1]), np.array([0.1, 0.5]), np.array([100.0, 1000.0]),
                         np.ones((2, 1, 2)), np.ones((2, 1, 2)), np.ones((2, 1), bool), np.array([10.0]),
                         np.array([[100.0, 100.0]]), np.zeros((1, 2)), np.array([1.0]), np.array([-1.0, -1.0]),
                         np.array([1e12]))
    assert out.prices[1] == pytest.approx(0.5)
    assert 0.5 < out.prices[0] < 0.5 * np.exp(4 * clearing.DISPERSION)
    assert out.chips.sum(axis=(1, 2))[0] == pytest.approx(100.0, rel=1e-5)
    assert out.chips.sum(axis=(1, 2))[1] < 1000.0


def test_a_product_nobody_values_enough_sells_nothing() -> None:
    """Every lab's value below the floor: the price stays at the floor and nothing is rented."""
    out = joint_clearing(np.array([1.0]), np.array([0]), np.array([5.0]), np.array([10.0]),
                         np.ones((1, 2, 2)), np.ones((1, 2, 2)), np.ones((1, 2), bool), np.array([1.0, 2.0]),
                         np.full((2, 2), 50.0), np.zeros((2, 2)), np.ones(2), np.array([-1.0, -1.0]),
                         np.full(2, 1e12))
    assert out.converged and out.prices[0] == pytest.approx(5.0)
    assert out.chips.sum() < 1e-6 * 10.0


def test_a_group_with_a_rounding_residue_of_capacity_does_not_stop_the_clearing() -> None:
    """Contracts can leave a product 1e-11 chips free: excess demand relative to that capacity is
    ill-conditioned (a lab that may rent only it still wants some 1e-8 chips at the highest price
    searched), so Newton does not converge; the clearing is then solved again with that group
    holding nothing, and the other group clears as if it were alone."""
    able = np.array([[True, False], [False, True]])  # lab 0 rents offer 0 only, lab 1 offer 1 only
    args = (np.ones((2, 2, 2)), np.ones((2, 2, 2)), able, np.array([10.0, 10.0]), np.full((2, 2), 100.0),
            np.zeros((2, 2)), np.ones(2), np.array([-1.0, -1.0]), np.full(2, 1e12))
    market = (np.array([1.0, 1.0]), np.array([0, 1]), np.array([0.1, 0.1]), np.array([50.0, 1e-11]))
    first = clearing._solve(*market, *args, clearing.DISPERSION, TOLERANCE, clearing.MAX_ITERATIONS, least=0.0)
    assert not first.converged  # what the second solve is for
    out = joint_clearing(*market, *args)
    assert out.converged
    assert out.prices[0] == pytest.approx(4.0, rel=1e-6)  # 200 / p = 50
    assert out.chips[1].sum() == 0.0 and out.prices[1] == pytest.approx(0.1)


def test_a_group_nobody_wants_far_above_its_floor_does_not_stop_the_clearing() -> None:
    """Last month's price of a group can sit far above its floor while the only lab able to rent it
    holds all it wants: its demand is flat at 0 (a zero row of the Jacobian) and the min-function
    picks the excess-supply row, so Newton's system would be singular. A group nobody wants is
    taken as at its floor, and the clearing converges with it there, selling nothing."""
    able = np.array([[True, False], [False, True]])  # lab 0 rents offer 0 only, lab 1 offer 1 only
    held = np.array([[0.0, 0.0], [500.0, 500.0]])  # lab 1 holds more than it wants at any price searched
    market = (np.array([1.0, 8.0]), np.array([0, 1]), np.array([0.1, 0.5]), np.array([50.0, 50.0]))
    args = (np.ones((2, 2, 2)), np.ones((2, 2, 2)), able, np.array([10.0, 10.0]), np.full((2, 2), 100.0), held,
            np.ones(2), np.array([-1.0, -1.0]), np.full(2, 1e12))
    terms = clearing._market(market[1], 2, able[:, :, None] & (args[0] > 0), args[0], args[1], *args[3:],
                             clearing.DISPERSION)
    state = clearing._state(np.log(market[0]), terms)
    assert state.by_group[1] == 0.0 and (state.jacobian()[1] == 0.0).all()  # flat: no step from it
    assert np.log(8.0 / 0.5) > 1.0  # and the min picks 1 - D/K = 1, not the floor's row
    out = joint_clearing(*market, *args)
    assert out.converged and out.iterations < 10
    assert out.prices == pytest.approx([4.0, 0.5], rel=1e-6)  # 200 / p = 50; the unwanted one at its floor
    assert out.chips[1].sum() == 0.0


def test_near_perfect_substitutes_clear_by_continuation_in_the_dispersion() -> None:
    """At a dispersion of 0.01 Newton from the posted prices stalls in the first month of
    ``baseline`` (the shares are nearly step functions of price); the clearing then solves it by
    continuation from a dispersion of 0.2, and the result is an equilibrium. Every month of the
    run converges, and the ``steps`` table records each month's iterations and residual."""
    import market
    from market import markets

    captured = []
    solve = markets.joint_clearing

    def spy(*args, **kwargs):
        captured.append((args, kwargs))
        return solve(*args, **kwargs)

    sc = market.load_scenario("baseline", {"negotiation.substitutes_dispersion": 0.01}, steps=12)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(markets, "joint_clearing", spy)
        steps = market.run(sc, seed=1).steps
    assert (steps["clearing_residual"] < TOLERANCE).all()
    args, kwargs = captured[0]
    plain = clearing._solve(*args, kwargs["tau"], TOLERANCE, clearing.MAX_ITERATIONS, least=0.0)
    assert not plain.converged
    out = joint_clearing(*args, **kwargs)
    assert out.converged
    price, group, floor, capacity = args[:4]
    demand = np.bincount(group, weights=out.chips.sum(axis=(1, 2)), minlength=len(floor))
    assert (out.prices >= floor * (1 - 1e-12)).all()
    assert (demand <= capacity * (1 + 10 * TOLERANCE)).all()
    above = out.prices > floor * (1 + 10 * TOLERANCE)
    assert np.allclose(demand[above], capacity[above], rtol=10 * TOLERANCE)


def test_the_scenario_sets_the_dispersion_and_bad_values_are_refused() -> None:
    """``negotiation.substitutes_dispersion`` reaches the clearing (a baseline month's prices move
    with it); the textbook substitutes clear at P(K1 + K2) = 0.6 whatever the dispersion (the two
    products are symmetric); a value outside its range (0.005-1) is a ScenarioError naming the
    field."""
    import polars as pl

    import market
    from market.scenario import ScenarioError

    def prices(dispersion: float) -> pl.DataFrame:
        sc = market.load_scenario("baseline", {"negotiation.substitutes_dispersion": dispersion}, steps=3)
        return market.run(sc, seed=1).prices.drop("run_id")

    assert not prices(0.05).equals(prices(0.1))
    sc = market.load_scenario(Path(__file__).parent / "scenarios" / "substitutes.toml",
                              {"negotiation.substitutes_dispersion": 0.3}, steps=6)
    first = market.run(sc, seed=0).contracts.filter(pl.col("step") == 0)
    assert first["price_usd_per_chip_hour"].to_numpy() == pytest.approx(0.6, rel=1e-6)
    with pytest.raises(ScenarioError, match="negotiation.substitutes_dispersion"):
        market.load_scenario("baseline", {"negotiation.substitutes_dispersion": 0.002})
