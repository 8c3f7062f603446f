"""experiments/screening_effects_check.py, which docs/VALIDATION.md §4 quotes on two effects of the
Morris screening: the replay holds the clouds' investment where the recorded run had it, and what
the script measures moves the way that paragraph says."""

from __future__ import annotations

import market.agents.cloud as cloud
import market.agents.vendor as vendor
from helpers import experiment_script
from market.markets import ComputeMarket


def test_replaying_a_runs_own_orders_reproduces_it_and_is_taken_off_again() -> None:
    module = experiment_script("screening_effects_check")
    place, order = cloud.CloudProvider.place_orders, vendor.ChipVendor.order
    orders: dict = {}
    plain = module.diversification_run(0.0, 1, record=orders)
    assert orders  # the clouds did order chips
    assert module.diversification_run(0.0, 1, replay=orders) == plain
    assert cloud.CloudProvider.place_orders is place and vendor.ChipVendor.order is order


def test_a_pricing_blind_to_a_diversification_of_zero_changes_nothing_and_is_taken_off_again() -> None:
    module = experiment_script("screening_effects_check")
    joint = ComputeMarket._joint
    assert module.diversification_run(0.0, 1, blind=True) == module.diversification_run(0.0, 1)
    assert ComputeMarket._joint is joint


def test_diversification_moves_openai_off_b200_and_the_replay_holds_the_b200_installed() -> None:
    module = experiment_script("screening_effects_check")
    orders: dict = {}
    book = "OpenAI's B200 (chips), month 35"
    low = module.diversification_run(0.0, 0, record=orders)
    high, held = module.diversification_run(1.0, 0), module.diversification_run(1.0, 0, replay=orders)
    assert high[book] < low[book]
    assert high["B200 installed (chips), month 35"] < low["B200 installed (chips), month 35"]
    assert held["B200 installed (chips), month 35"] == low["B200 installed (chips), month 35"]
    # the B200 ask rises through the pricing's netting of OpenAI's other rentals, not its own B200
    # book: blind to its diversification, the pricing asks less while OpenAI holds as few B200
    blind = module.diversification_run(1.0, 0, replay=orders, blind=True)
    assert blind["B200 posted ask, month 35"] < held["B200 posted ask, month 35"]
    assert abs(blind[book] - held[book]) < 0.5 * (low[book] - held[book])


def test_an_unaffiliated_deepmind_at_its_budget_holds_about_the_same_whatever_its_growth() -> None:
    module = experiment_script("screening_effects_check")
    slow, fast = module.deepmind_run(0.04, 0), module.deepmind_run(0.06, 0)
    for row in (slow, fast):
        assert row["spend / budget"] > 0.98
        assert row["market power"] >= row["competitive price"] - 1e-9  # a reply is never below it
    assert abs(fast["held (M PFLOP/s)"] / slow["held (M PFLOP/s)"] - 1.0) < 0.05
