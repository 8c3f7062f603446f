"""Adaptive strategies inside a run: levers equal their scenario fields, rewards equal the payoffs,
learning rules find a known best reply, runs are reproducible, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import market
from market.games.adaptive import LEVERS, RULES, Learner, run_adaptive
from market.games.payoffs import run_payoffs

TINY = Path(__file__).parent / "scenarios" / "tiny_market.toml"
MARKUPS = [0.25, 0.5, 1.0, 2.0, 3.0]  # posted prices 0.25, 0.3, 0.4, 0.6, 0.8 USD per chip-hour at cost 0.2


def tiny(steps: int = 60) -> market.Scenario:
    return market.load_scenario(TINY, {"clouds.a.pricing.rule": "cost_plus", "steps": steps})


def _model_tables(result: market.RunResult) -> dict[str, pl.DataFrame]:
    return {k: v.drop("run_id") for k, v in result.tables.items() if k not in ("runs", "levers")}


@pytest.mark.parametrize("rule", ["ucb1", "epsilon_greedy", "hill_climb"])
def test_a_learning_monopolist_finds_the_lerner_price(rule: str) -> None:
    """The tiny market's only cloud learns its markup month by month: profit (p - c) 100 p^-2 peaks
    at p = 2c (markup 1.0), and the rule ends up playing it most. (A month's reward carries a little
    of the previous month's price, since the lab sizes its order on last month's price, so the
    averages per value are not exactly the static profits; within the 60 months of depreciation
    the static best is the learned one.)"""
    result = run_adaptive(tiny(), [Learner("cloud", ["a"], "markup", "a", MARKUPS, rule)], seed=3, period=1)
    levers = result.tables["levers"]
    assert levers.height == 60
    if rule != "hill_climb":  # the bandits try every value; compass search only climbs to the peak and probes round it
        assert set(levers["value"]) == set(MARKUPS), "every value was tried"
    played = levers.group_by("value").agg(n=pl.len(), reward=pl.col("reward").mean()).sort("n", descending=True)
    assert played["value"][0] == 1.0
    assert levers["value"].tail(10).to_list().count(1.0) >= 5


def test_a_lever_set_before_the_first_month_is_its_scenario_field() -> None:
    """Holding a lever at one value from month 0 gives the run of the scenario with that field set:
    Google Cloud's withholding share and OpenAI's diversification."""
    fixed = [Learner("google", ["gcp"], "withholding_share", "gcp", [0.3], "ucb1"),
             Learner("openai", ["openai"], "diversification", "openai", [1.5], "ucb1")]
    adaptive = run_adaptive("openai_google_tpu", fixed, seed=4, steps=8)
    plain = market.run(market.load_scenario("openai_google_tpu", {
        "clouds.gcp.withholding.share": 0.3, "labs.openai.diversification": 1.5, "steps": 8}), seed=4)
    a, b = _model_tables(adaptive), _model_tables(plain)
    for name in a:
        assert a[name].equals(b[name]), name
    other = market.run(market.load_scenario("openai_google_tpu", {"steps": 8}), seed=4)
    assert not _model_tables(other)["contracts"].equals(a["contracts"]), "the levers do change the run"


def test_rewards_are_the_payoffs_month_by_month() -> None:
    """A learner's rewards over the run add up to its payoff computed from the tables (undiscounted)."""
    learners = [Learner("google", ["google", "gcp", "deepmind"], "withholding_share", "gcp", [1.0, 0.0], "ucb1"),
                Learner("openai", ["openai"], "diversification", "openai", [1.5], "ucb1", payoff="utility")]
    result = run_adaptive("openai_google_tpu", learners, seed=2, steps=9, period=3)
    tables = {k: v.lazy() for k, v in result.tables.items()}
    levers = result.tables["levers"]
    for learner in learners:
        payoff = run_payoffs(tables, learner.payoff, learner.agents, horizon=9, discount=0.0,
                             hours=result.scenario.hours_per_month,
                             diversification={"openai": 0.5})["payoff"].item()
        assert levers.filter(pl.col("player") == learner.player)["reward"].sum() == pytest.approx(payoff, rel=1e-9)
    # UCB1 tries each value once first; the third quarter plays the better of the two
    google = levers.filter(pl.col("player") == "google")
    assert google["value"].to_list()[:2] == [1.0, 0.0] and google["months"].to_list() == [3, 3, 3]
    assert google["value"][2] == google["value"][int(google["reward"][1] > google["reward"][0])]


def test_same_seed_same_levers_and_different_seeds_explore_differently() -> None:
    learners = [Learner("cloud", ["a"], "markup", "a", MARKUPS, "exp3")]
    one = run_adaptive(tiny(24), learners, seed=5, period=1).tables["levers"]
    again = run_adaptive(tiny(24), learners, seed=5, period=1).tables["levers"]
    other = run_adaptive(tiny(24), learners, seed=6, period=1).tables["levers"]
    assert one.equals(again)
    assert not one["value"].equals(other["value"])


@pytest.mark.parametrize(("learner", "mention"), [
    (Learner("x", ["a"], "markup", "a", [1.0], "thompson"), "unknown learning rule 'thompson'"),
    (Learner("x", ["a"], "price", "a", [1.0]), "unknown lever 'price'"),
    (Learner("x", ["a"], "markup", "a", [11.0]), "from 0.0 to 10.0"),
    (Learner("x", ["a"], "markup", "zz", [1.0]), "'zz' is not a cloud"),
    (Learner("x", ["zz"], "markup", "a", [1.0]), "'zz' is not an agent"),
    (Learner("x", ["a"], "markup", "a", []), "at least one value"),
    (Learner("x", ["a"], "markup", "a", [1.0], params={"tau": 1.0}), "unknown parameter"),
    (Learner("x", ["a"], "withholding_share", "a", [0.5]), "has no withholding rule"),
])
def test_mistakes_are_named(learner: Learner, mention: str) -> None:
    with pytest.raises((ValueError, KeyError)) as err:
        run_adaptive(tiny(3), [learner], seed=0, period=1)
    assert mention in str(err.value)


def test_a_lever_needs_a_rule_that_does_not_reprice_by_itself() -> None:
    with pytest.raises(ValueError, match="cost_plus"):
        run_adaptive(market.load_scenario(TINY, {"steps": 3}), [Learner("x", ["a"], "markup", "a", [1.0])], seed=0)


def test_registries_are_documented() -> None:
    from market.games import adaptive
    for name in (*LEVERS, *RULES):
        assert f"``{name}``" in adaptive.__doc__


def test_a_lever_moved_mid_run_acts_from_that_month() -> None:
    """Google Cloud stops withholding at month 12: OpenAI is refused top-tier TPUs before (seed 2:
    from month 10, once it rents TPUs at scale), never after."""
    from market.model import MarketModel
    from market.run import run_model

    sc = market.load_scenario("openai_google_tpu", {"steps": 20})

    def open_at_twelve(model: MarketModel, month: int) -> None:
        if month == 12:
            LEVERS["withholding_share"].apply(model, "gcp", 0.0)

    result = run_model(MarketModel(sc, seed=2), sc, 2, before=open_at_twelve)
    refused = result.tables["withholding"].filter((pl.col("holder") == "gcp") & (pl.col("lab") == "openai"))
    assert refused.filter(pl.col("step") < 12).height > 0
    assert refused.filter(pl.col("step") >= 12).height == 0
    unchanged = market.run(sc, seed=2).tables["withholding"].filter((pl.col("holder") == "gcp") & (pl.col("lab") == "openai"))
    assert unchanged.filter(pl.col("step") >= 12).height > 0  # without the lever it goes on


def test_a_lab_that_diversifies_harder_depends_less_on_its_largest_vendor() -> None:
    def largest_share(penalty: float) -> float:
        run = run_adaptive("openai_google_tpu", [Learner("openai", ["openai"], "diversification", "openai",
                                                         [penalty])], seed=2, steps=24)
        labs = run.tables["labs"].filter((pl.col("lab") == "openai") & (pl.col("step") >= 12))
        return labs["largest_vendor_share"].mean()

    assert largest_share(2.0) < largest_share(0.0)
