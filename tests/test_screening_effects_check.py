"""experiments/screening_effects_check.py, which docs/VALIDATION.md §4 quotes on two effects of the
Morris screening: what it measures moves the way that paragraph says, seed by seed."""

from __future__ import annotations

from helpers import experiment_script


def test_diversification_moves_openai_off_nvidia_and_the_clouds_install_less_b200() -> None:
    module = experiment_script("screening_effects_check")
    low, high = module.diversification_run(0.0, 0), module.diversification_run(1.0, 0)
    assert high["OpenAI's nvidia PFLOP/s"] < low["OpenAI's nvidia PFLOP/s"]
    assert high["OpenAI's google PFLOP/s"] + high["OpenAI's amd PFLOP/s"] > low["OpenAI's google PFLOP/s"] + low["OpenAI's amd PFLOP/s"]
    assert high["B200 installed (chips)"] < low["B200 installed (chips)"]
    assert low["frontier-class posted price"] > 0


def test_without_investment_diversification_lowers_the_b200_ask() -> None:
    module = experiment_script("screening_effects_check")
    low, high = module.diversification_run(0.0, 0, invest=False), module.diversification_run(1.0, 0, invest=False)
    assert high["b200 posted ask"] < low["b200 posted ask"]


def test_an_unaffiliated_deepmind_at_its_budget_holds_the_same_whatever_its_growth() -> None:
    module = experiment_script("screening_effects_check")
    slow, fast = dict(module.deepmind_run(0.04, 0)), dict(module.deepmind_run(0.06, 0))
    assert set(slow) == set(fast) and 35 in slow
    for month in slow:
        for row in (slow[month], fast[month]):
            assert row["market power"] >= row["competitive price"] - 1e-9  # power is a reply at or above it
        assert fast[month]["notional (M PFLOP/s)"] > slow[month]["notional (M PFLOP/s)"]
    assert abs(fast[35]["held (M PFLOP/s)"] / slow[35]["held (M PFLOP/s)"] - 1.0) < 0.05
