"""Tests of market.economics: textbook limiting cases and invariants."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from market.economics import (
    BARGAINING,
    PRICE_RULES,
    RATIONING,
    BargainingParams,
    PriceRuleParams,
    PriceSignal,
    concession,
    cost_plus,
    cournot_price,
    excess_demand,
    monopoly_quantity,
    nash,
    priority,
    pro_rata,
    rubinstein,
    split_prices,
    uniform,
    withheld_by_monopolist,
)

S_RES, B_RES = 10.0, 20.0  # seller and buyer reservation prices, surplus 10


def seller_share(price: float, s: float = S_RES, b: float = B_RES) -> float:
    return (price - s) / (b - s)


# ---------------------------------------------------------------- bargaining


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.25, 0.5, 0.8, 1.0])
def test_nash_split_follows_bargaining_power(alpha: float) -> None:
    out = nash(S_RES, B_RES, BargainingParams(seller_power=alpha))
    assert out is not None
    assert out.price - S_RES == pytest.approx(alpha * (B_RES - S_RES))
    assert out.rounds == 1


@pytest.mark.parametrize("protocol", sorted(BARGAINING))
def test_no_deal_without_zone_of_agreement(protocol: str) -> None:
    assert BARGAINING[protocol](20.0, 19.99, BargainingParams()) is None


@pytest.mark.parametrize("protocol", sorted(BARGAINING))
def test_zero_surplus_trades_at_the_common_reservation(protocol: str) -> None:
    out = BARGAINING[protocol](15.0, 15.0, BargainingParams())
    assert out is not None and out.price == pytest.approx(15.0)


@pytest.mark.parametrize(("d_s", "d_b"), [(0.9, 0.9), (0.95, 0.8), (0.5, 0.99), (0.99, 0.99)])
def test_rubinstein_first_mover_share(d_s: float, d_b: float) -> None:
    surplus = B_RES - S_RES
    seller_first = rubinstein(
        S_RES, B_RES, BargainingParams(seller_discount=d_s, buyer_discount=d_b, first_mover="seller")
    )
    buyer_first = rubinstein(
        S_RES, B_RES, BargainingParams(seller_discount=d_s, buyer_discount=d_b, first_mover="buyer")
    )
    assert seller_first is not None and buyer_first is not None
    assert seller_first.price - S_RES == pytest.approx((1 - d_b) / (1 - d_s * d_b) * surplus)
    assert B_RES - buyer_first.price == pytest.approx((1 - d_s) / (1 - d_b * d_s) * surplus)
    assert seller_first.rounds == buyer_first.rounds == 1
    # Moving first is an advantage.
    assert seller_first.price > buyer_first.price


def test_rubinstein_split_tends_to_half_when_both_patient() -> None:
    gaps = []
    for delta in (0.9, 0.99, 0.999, 0.9999):
        for mover in ("seller", "buyer"):
            out = rubinstein(
                S_RES,
                B_RES,
                BargainingParams(seller_discount=delta, buyer_discount=delta, first_mover=mover),
            )
            assert out is not None
            gaps.append(abs(seller_share(out.price) - 0.5))
    assert gaps[-1] < 1e-4 and gaps[-2] < 1e-4
    assert gaps[0] > gaps[-1]


@given(hnp.arrays(np.float64, 12, elements=st.floats(0.0, 1e4)), hnp.arrays(np.float64, 12, elements=st.floats(0.0, 1e4)),
       st.floats(0.0, 1.0), st.sampled_from(["seller", "buyer"]))
@settings(max_examples=60, deadline=None)
def test_split_prices_are_the_protocols_prices_bit_for_bit(s: np.ndarray, b: np.ndarray, power: float,
                                                          mover: str) -> None:
    """The negotiation skips deals by the closed-form prices, so they must be the protocols' own."""
    params = BargainingParams(seller_power=power, seller_discount=0.9, buyer_discount=0.8, first_mover=mover)
    for protocol in (nash, rubinstein):
        prices = split_prices(protocol, s, b, params)
        for k in range(s.size):
            out = protocol(float(s[k]), float(b[k]), params)
            if out is not None:
                assert prices[k] == out.price
    assert split_prices(concession, s, b, params) is None  # no closed form


@pytest.mark.parametrize("mover", ["seller", "buyer"])
def test_rubinstein_impatience_hurts(mover: str) -> None:
    shares = []
    for d_s in (0.5, 0.8, 0.9, 0.95, 0.99):
        out = rubinstein(
            S_RES, B_RES, BargainingParams(seller_discount=d_s, buyer_discount=0.9, first_mover=mover)
        )
        assert out is not None
        shares.append(seller_share(out.price))
    assert np.all(np.diff(shares) > 0)


@pytest.mark.parametrize("mover", ["seller", "buyer"])
@pytest.mark.parametrize("rate", [0.05, 0.3, 0.7, 1.0])
def test_concession_terminates_inside_the_zone(mover: str, rate: float) -> None:
    out = concession(
        S_RES, B_RES, BargainingParams(first_mover=mover, concession_rate=rate, max_rounds=200)
    )
    assert out is not None
    assert out.rounds > 1
    assert S_RES <= out.price <= B_RES


@pytest.mark.parametrize("mover", ["seller", "buyer"])
@pytest.mark.parametrize("delta", [0.5, 0.9, 0.99])
def test_concession_equal_patience_splits_in_half(mover: str, delta: float) -> None:
    out = concession(
        S_RES,
        B_RES,
        BargainingParams(seller_discount=delta, buyer_discount=delta, first_mover=mover),
    )
    assert out is not None
    assert seller_share(out.price) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("mover", ["seller", "buyer"])
def test_concession_more_patient_side_gets_more(mover: str) -> None:
    patient_seller = concession(
        S_RES, B_RES, BargainingParams(seller_discount=0.99, buyer_discount=0.9, first_mover=mover)
    )
    patient_buyer = concession(
        S_RES, B_RES, BargainingParams(seller_discount=0.9, buyer_discount=0.99, first_mover=mover)
    )
    assert patient_seller is not None and patient_buyer is not None
    assert seller_share(patient_seller.price) > 0.6
    assert seller_share(patient_buyer.price) < 0.4


@settings(max_examples=200, deadline=None)
@given(
    d_s=st.floats(0.01, 0.999),
    d_b=st.floats(0.01, 0.999),
    rate=st.floats(0.05, 1.0),
    mover=st.sampled_from(["seller", "buyer"]),
)
def test_concession_patient_side_never_gets_less_than_half(
    d_s: float, d_b: float, rate: float, mover: str
) -> None:
    params = BargainingParams(
        seller_discount=d_s, buyer_discount=d_b, concession_rate=rate, first_mover=mover,
        max_rounds=400,
    )
    out = concession(S_RES, B_RES, params)
    assert out is not None
    share = seller_share(out.price)
    assert 0.0 <= share <= 1.0
    if d_s >= d_b:
        assert share >= 0.5 - 1e-9
    if d_b >= d_s:
        assert share <= 0.5 + 1e-9


def test_concession_gives_up_after_max_rounds() -> None:
    slow = BargainingParams(concession_rate=0.01, max_rounds=10)
    assert concession(S_RES, B_RES, slow) is None
    out = concession(S_RES, B_RES, BargainingParams(concession_rate=0.01, max_rounds=2000))
    assert out is not None and out.rounds <= 2000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seller_power": -0.1},
        {"seller_power": 1.1},
        {"seller_discount": 0.0},
        {"buyer_discount": 1.0},
        {"first_mover": "auctioneer"},
        {"concession_rate": 0.0},
        {"concession_rate": 1.5},
        {"max_rounds": 0},
    ],
)
def test_bargaining_params_are_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        BargainingParams(**kwargs)


def test_reservations_must_be_finite() -> None:
    with pytest.raises(ValueError):
        nash(math.nan, 1.0, BargainingParams())


# ---------------------------------------------------------------- rationing

requests_strategy = hnp.arrays(
    np.float64,
    st.integers(0, 12),
    elements=st.one_of(st.just(0.0), st.floats(0.0, 1e3, allow_subnormal=False)),
)


@settings(max_examples=200, deadline=None)
@given(
    requests=requests_strategy,
    capacity=st.one_of(st.just(0.0), st.floats(0.0, 1.5e4, allow_subnormal=False)),
    rule=st.sampled_from(sorted(RATIONING)),
    seed=st.integers(0, 2**16),
)
def test_rationing_invariants(requests: np.ndarray, capacity: float, rule: str, seed: int) -> None:
    ranks = np.random.default_rng(seed).integers(0, 3, size=requests.shape)
    alloc = RATIONING[rule](requests, capacity, ranks)
    total = requests.sum()
    assert alloc.dtype == np.float64 and alloc.shape == requests.shape
    assert np.all(alloc >= 0.0)
    assert np.all(alloc <= requests * (1 + 1e-12))
    assert alloc.sum() == pytest.approx(min(capacity, total), rel=1e-9, abs=1e-9)
    if capacity >= total:
        np.testing.assert_array_equal(alloc, requests)


def test_pro_rata_scales_everyone_equally() -> None:
    alloc = pro_rata(np.array([1.0, 2.0, 3.0, 0.0]), 3.0)
    np.testing.assert_allclose(alloc, [0.5, 1.0, 1.5, 0.0])


def test_priority_serves_rank_zero_fully_before_rank_one() -> None:
    requests = np.array([4.0, 3.0, 2.0, 6.0])
    ranks = np.array([1, 0, 2, 0])
    alloc = priority(requests, 11.0, ranks)
    # Rank 0 (3 + 6) is served in full, rank 1 gets the remaining 2 of its 4, rank 2 nothing.
    np.testing.assert_allclose(alloc, [2.0, 3.0, 0.0, 6.0])
    # Not enough for rank 0 alone: it is shared pro rata inside the level.
    np.testing.assert_allclose(priority(requests, 4.5, ranks), [0.0, 1.5, 0.0, 3.0])


def test_priority_without_ranks_is_pro_rata() -> None:
    requests = np.array([1.0, 5.0, 2.5])
    np.testing.assert_allclose(priority(requests, 4.0), pro_rata(requests, 4.0))


def test_uniform_gives_equal_amounts_to_the_unsatisfied() -> None:
    requests = np.array([1.0, 10.0, 2.0, 8.0, 0.0])
    alloc = uniform(requests, 12.0)
    # Small requests (1, 2) are met; the rest share 9 equally: 4.5 each.
    np.testing.assert_allclose(alloc, [1.0, 4.5, 2.0, 4.5, 0.0])


@settings(max_examples=200, deadline=None)
@given(requests=requests_strategy, fraction=st.floats(0.0, 0.999))
def test_uniform_unsatisfied_share_one_level(requests: np.ndarray, fraction: float) -> None:
    alloc = uniform(requests, fraction * requests.sum())
    short = alloc < requests * (1 - 1e-9) - 1e-9
    if short.any():
        level = alloc[short]
        np.testing.assert_allclose(level, level[0], rtol=1e-9, atol=1e-9)
        # Whoever is satisfied asked for no more than the common level.
        assert np.all(requests[~short] <= level[0] * (1 + 1e-9) + 1e-9)


@pytest.mark.parametrize("rule", sorted(RATIONING))
def test_rationing_edge_cases(rule: str) -> None:
    fn = RATIONING[rule]
    assert fn(np.array([]), 5.0).shape == (0,)
    np.testing.assert_array_equal(fn(np.array([1.0, 2.0]), 0.0), [0.0, 0.0])
    np.testing.assert_array_equal(fn(np.zeros(3), 0.0), np.zeros(3))
    np.testing.assert_array_equal(fn(np.array([1.0, 2.0]), math.inf), [1.0, 2.0])
    with pytest.raises(ValueError):
        fn(np.array([1.0, -1.0]), 1.0)
    with pytest.raises(ValueError):
        fn(np.array([1.0, 1.0]), -1.0)


# ---------------------------------------------------------------- pricing


def signal(price: float = 10.0, **kw: float) -> PriceSignal:
    base = {"unit_cost": 1.0, "excess_demand": 0.0}
    base.update(kw)
    return PriceSignal(price=price, **base)


@pytest.mark.parametrize("z", [1e6, 5.0, 0.3, -0.3, -1.0])
def test_excess_demand_step_is_bounded(z: float) -> None:
    params = PriceRuleParams(speed=0.2, max_step=0.1)
    new = excess_demand(signal(excess_demand=z), params)
    expected = 10.0 * (1 + np.clip(0.2 * z, -0.1, 0.1))
    assert new == pytest.approx(expected)
    assert abs(new / 10.0 - 1) <= 0.1 + 1e-12


def test_floor_and_ceiling_are_respected() -> None:
    params = PriceRuleParams(min_margin=0.5, max_margin=2.0, max_step=0.5, speed=10.0)
    # Downward pressure near the floor stops at unit_cost * 1.5, upward near the ceiling at 3.
    assert excess_demand(signal(price=1.6, excess_demand=-1.0), params) == pytest.approx(1.5)
    assert excess_demand(signal(price=2.9, excess_demand=10.0), params) == pytest.approx(3.0)
    # A price outside the band is moved into it even without pressure.
    assert excess_demand(signal(price=100.0), params) == pytest.approx(3.0)
    assert excess_demand(signal(price=0.1), params) == pytest.approx(1.5)


def test_a_short_order_book_drives_the_list_price_down_to_the_floor() -> None:
    params = PriceRuleParams(min_margin=0.05)
    floor = 2.0 * 1.05
    price = 50.0
    path = []
    for _ in range(200):
        price = excess_demand(signal(price=price, unit_cost=2.0, excess_demand=-0.7), params)
        path.append(price)
    assert np.all(np.diff(path) <= 0)
    assert path[-50:] == pytest.approx([floor] * 50)


def test_cost_plus() -> None:
    assert cost_plus(signal(unit_cost=3.0), PriceRuleParams(min_margin=0.2)) == pytest.approx(3.6)


def test_zero_cost_seller_without_ceiling() -> None:
    out = excess_demand(signal(price=1.0, unit_cost=0.0, excess_demand=0.25), PriceRuleParams())
    assert out == pytest.approx(1.0 + min(0.2 * 0.25, 0.1))


def test_cournot_price_falls_to_marginal_cost() -> None:
    a, b, c = 100.0, 1.0, 20.0
    prices = [cournot_price(n, a, b, c) for n in (1, 10, 100, 1000)]
    assert prices[0] == pytest.approx(60.0)  # monopoly: (a + c) / 2
    assert np.all(np.diff(prices) < 0)
    assert prices[-1] == pytest.approx(c, rel=0.01)
    assert all(p > c for p in prices)


def test_cournot_with_binding_capacity() -> None:
    a, b, c = 100.0, 1.0, 20.0
    # Unconstrained q_i = 80 / 5 = 16; capacity 10 binds: P = 100 - 4 * 10.
    assert cournot_price(4, a, b, c, capacity_per_seller=10.0) == pytest.approx(60.0)
    assert cournot_price(4, a, b, c, capacity_per_seller=50.0) == pytest.approx(36.0)
    # Demand never covers cost: nothing is sold.
    assert cournot_price(3, 10.0, 1.0, 20.0) == 10.0


def test_monopolist_withholds_capacity() -> None:
    a, b, c = 100.0, 2.0, 20.0  # q* = 80 / 4 = 20
    assert monopoly_quantity(a, b, c, 1000.0) == pytest.approx(20.0)
    assert withheld_by_monopolist(a, b, c, 1000.0) == pytest.approx(980.0)
    assert monopoly_quantity(a, b, c, 15.0) == pytest.approx(15.0)
    assert withheld_by_monopolist(a, b, c, 15.0) == 0.0
    assert monopoly_quantity(10.0, b, c, 5.0) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"speed": -1.0},
        {"max_step": 1.5},
        {"min_margin": -1.0},
        {"min_margin": 0.5, "max_margin": 0.1},
    ],
)
def test_price_params_are_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        PriceRuleParams(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"price": -1.0}, {"unit_cost": math.nan}, {"excess_demand": -1.5}, {"excess_demand": math.nan}],
)
def test_price_signal_is_validated(kwargs: dict) -> None:
    base = {"price": 1.0, "unit_cost": 1.0, "excess_demand": 0.0}
    with pytest.raises(ValueError):
        PriceSignal(**{**base, **kwargs})


# ---------------------------------------------------------------- registries


@pytest.mark.parametrize("registry", [BARGAINING, RATIONING, PRICE_RULES])
def test_registries(registry) -> None:
    for name, fn in registry.items():
        assert registry[name] is fn
    with pytest.raises(KeyError) as err:
        registry["no_such_rule"]
    for name in registry:
        assert name in str(err.value)


def test_registry_names() -> None:
    assert set(BARGAINING) == {"nash", "rubinstein", "concession"}
    assert set(RATIONING) == {"pro_rata", "priority", "uniform"}
    assert set(PRICE_RULES) == {"excess_demand", "cost_plus", "monopoly"}


def test_monopoly_rule_moves_to_the_lerner_price() -> None:
    """p* = c e / (1 + e): twice marginal cost at e = -2; by bounded steps; up on inelastic demand."""
    from market.economics import monopoly

    params = PriceRuleParams(max_step=0.1, min_margin=0.0, max_margin=math.inf)
    price = 1.0
    for _ in range(60):
        price = monopoly(PriceSignal(price=price, unit_cost=1.0, excess_demand=0.0,
                                     elasticity=-2.0), params)
    assert price == pytest.approx(2.0)
    step = monopoly(PriceSignal(price=1.0, unit_cost=1.0, excess_demand=0.0, elasticity=-2.0), params)
    assert step == pytest.approx(1.1)  # bounded by max_step on the way
    inelastic = monopoly(PriceSignal(price=3.0, unit_cost=1.0, excess_demand=0.0,
                                     elasticity=-0.5), params)
    assert inelastic == pytest.approx(3.3)
    probe = monopoly(PriceSignal(price=3.0, unit_cost=1.0, excess_demand=0.0), params)
    assert probe == pytest.approx(3.3)  # no estimate yet: try a higher price


def test_packaging_for_tiny_requests_is_exact_and_warns_of_nothing() -> None:
    """Reservations asked for in float dust are granted as asked (capacity / total would overflow)."""
    import warnings

    from market.markets import allocate_packaging

    requests = np.array([1e-310, 2e-310])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wafers = allocate_packaging(requests, np.array([5.0, 5.0]), 10.0, "pro_rata")
    np.testing.assert_array_equal(wafers, requests)
    np.testing.assert_allclose(allocate_packaging(np.array([8.0, 8.0]), np.array([6.0, 6.0]), 10.0, "pro_rata"),
                               [5.0, 5.0])


# -- performance classes --------------------------------------------------------------------------


def test_performance_classes_are_market_wide_not_a_vendors_newest() -> None:
    """Issue 15's quirk: Trainium2 (0.67 PFLOP/s) is Amazon's newest chip and H100 (0.99) is not
    Nvidia's, yet neither is frontier class next to B200 (2.25); a chip's vendor plays no part."""
    from market.economics.classes import Chip, performance_classes

    chips = [Chip("h100", 0.989, 80, -30), Chip("b200", 2.25, 192, -6), Chip("trn2", 0.667, 96, -8),
             Chip("mi355x", 2.5, 288, 0), Chip("tpu_v6e", 0.918, 32, -6)]
    got = performance_classes(chips, step=0)
    assert got == {"h100": "mainstream", "b200": "frontier", "trn2": "mainstream", "mi355x": "frontier",
                   "tpu_v6e": "mainstream"}
    # renaming the chips changes nothing but the names
    renamed = [c._replace(name=c.name.upper()) for c in chips]
    assert performance_classes(renamed, step=0) == {k.upper(): v for k, v in got.items()}
    # a new generation moves the frontier; chips not yet released have no class
    rubin = Chip("rubin", 5.0, 288, 16)
    assert "rubin" not in performance_classes([*chips, rubin], step=15)
    later = performance_classes([*chips, rubin], step=16)
    assert later["rubin"] == later["b200"] == later["mi355x"] == "frontier"  # 2.25 >= 0.4 x 5.0
    assert performance_classes([*chips, rubin], step=16, pflops_share=0.5)["b200"] == "mainstream"
    # too little memory, or too old, is not frontier however fast
    assert performance_classes([Chip("fast", 3.0, 10, 0), Chip("big", 2.0, 300, 0)], step=0)["fast"] == "mainstream"
    assert performance_classes([Chip("old", 2.25, 192, -40), Chip("new", 2.5, 192, 0)], step=0)["old"] == "mainstream"
    # age counts from the newest chip's release: with no newer chip, the best stays frontier for good
    assert performance_classes([*chips, rubin], step=100)["rubin"] == "frontier"
    assert performance_classes([*chips, rubin], step=100)["b200"] == "frontier"  # 22 months before Rubin
    assert performance_classes([*chips, rubin], step=100)["h100"] == "mainstream"
    assert performance_classes([], step=0) == {}


def test_recorded_classes_follow_the_market_and_contracts_carry_them() -> None:
    import market

    r = market.run(market.load_scenario("baseline", steps=20), seed=0)
    prices = r.tables["prices"]
    at0 = dict(prices.filter(pl.col("step") == 0).select("product", "performance_class").iter_rows())
    assert at0["trn2"] == at0["h100"] == "mainstream" and at0["b200"] == at0["tpu7x"] == "frontier"
    tier0 = dict(prices.filter(pl.col("step") == 0).select("product", "tier").iter_rows())
    assert tier0["trn2"] == "top" and tier0["h100"] == "previous"  # the vendor tier keeps its own meaning
    signed = r.tables["contracts"].join(prices.select("step", "product", pl.col("performance_class").alias("now")),
                                        on=["step", "product"])
    assert signed.height and (signed["performance_class"] == signed["now"]).all()


@pytest.mark.parametrize("seed", range(3))
def test_training_prefers_the_frontier_class_through_its_penalty(seed: int) -> None:
    """The below-frontier penalty is what steers training to frontier-class chips: with it large
    (3.0 for every lab) more of the training compute signed is frontier class than with it off (0),
    seed for seed; inference, which it does not touch, is no more frontier with the penalty."""
    import market

    def frontier_share(penalty: float) -> tuple[float, float]:
        labs = market.load_scenario("baseline").labs
        sc = market.load_scenario("baseline", {**{f"labs.{lab}.below_frontier_penalty": penalty for lab in labs},
                                               "long_tail.below_frontier_penalty": penalty}, steps=18)
        c = market.run(sc, seed=seed).tables["contracts"]
        out = []
        for purpose in ("training", "inference"):
            mine = c.filter(pl.col("purpose") == purpose)
            out.append(mine.filter(pl.col("performance_class") == "frontier")["pflops"].sum() / mine["pflops"].sum())
        return out[0], out[1]

    train_on, infer_on = frontier_share(3.0)
    train_off, infer_off = frontier_share(0.0)
    assert train_on > train_off + 0.02
    assert infer_on <= infer_off + 0.02


@pytest.mark.parametrize("in_use", [None, {}])
def test_the_first_month_waives_the_switching_penalty_only_on_ecosystems_in_use(in_use) -> None:
    """The book the first month's contracts stand for (ODD 7.10): a lab pays no switching penalty
    in month 0 on the ecosystems it already runs each purpose on (``in_use``), and the full
    ``switching_cost x (1 - readiness)`` elsewhere. From month 1 on only its contracts count.
    Meta runs Llama inference on MI300X (``in_use.inference`` includes ``rocm``), not training;
    with ``in_use`` emptied it pays the penalty for both."""
    import market
    from market.model import MarketModel

    overrides = {"labs.meta.diversification": 0.0, **({} if in_use is None else {"labs.meta.in_use": in_use})}
    sc = market.load_scenario("baseline", overrides, steps=3)
    meta = sc.labs["meta"]
    model = MarketModel(sc, seed=0, record=False)
    model.step()
    cm = model.compute_market
    i = cm.lab_index["meta"]
    o = next(o for o in cm.offers if o.product == "mi300x" and o.cloud.owner_lab is None)
    training, inference = cm.penalty[o.key, i]
    rho = meta.readiness["rocm"]
    full = 1.0 + meta.switching_cost * (1.0 - rho)
    below = 1.0 + meta.below_frontier_penalty if o.performance_class != "frontier" else 1.0
    assert training == pytest.approx(full * below)
    if in_use is None:
        assert "rocm" in meta.in_use["inference"] and "rocm" not in meta.in_use["training"]
        assert inference == 1.0
    else:
        assert inference == pytest.approx(1.0 + meta.switching_cost * meta.inference_switching_share * (1.0 - rho))
    model.step()  # month 1: in use is what it holds under contract
    holds = ("inference", "rocm") in model.labs["meta"].holdings()
    rho_now = model.labs["meta"].readiness["inference", "rocm"]
    expected = 1.0 if holds else 1.0 + meta.switching_cost * meta.inference_switching_share * (1.0 - rho_now)
    assert cm.penalty[o.key, i, 1] == pytest.approx(expected)


def test_an_unknown_ecosystem_in_use_is_refused() -> None:
    """``in_use`` names ecosystems of the scenario's vendors; anything else is a user error naming
    the field and the allowed names."""
    import market
    from market.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=r"labs\.meta\.in_use\.inference\[0\].*cuda"):
        market.load_scenario("baseline", {"labs.meta.in_use": {"inference": ["rocmm"]}})
    with pytest.raises(ScenarioError, match=r"in_use"):
        market.load_scenario("baseline", {"labs.meta.in_use": {"serving": ["rocm"]}})
