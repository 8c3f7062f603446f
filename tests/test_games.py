"""Games: the equilibrium code on games with known answers, a game through the model whose answer
follows from theory, reproducibility across executors, resume, and bad game files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import market
from market.cli import app
from market.games import load_game
from market.games.equilibrium import (
    best_response_graph,
    bootstrap_deviations,
    mixed_equilibria,
    profile_regrets,
    pure_equilibria,
    regret,
)
from market.games.estimate import analyse

GAMES = Path(__file__).parent / "games"
MONOPOLY = GAMES / "monopoly_game.toml"

# -- the equilibrium code on synthetic payoff tables ------------------------------------------------

# U[i, s_1, s_2]: player i's payoff. Strategy 0 = cooperate, 1 = defect.
PRISONERS = np.array([[[3.0, 0.0], [5.0, 1.0]], [[3.0, 5.0], [0.0, 1.0]]])
PENNIES = np.array([[[1.0, -1.0], [-1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]]])
COORDINATION = np.array([[[2.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 1.0]]])


def _as_tuples(equilibria):
    return [tuple(tuple(np.round(s, 6)) for s in sigma) for sigma in equilibria]


def test_a_dominant_strategy_is_the_only_equilibrium() -> None:
    assert pure_equilibria(PRISONERS) == [(1, 1)]
    assert _as_tuples(mixed_equilibria(PRISONERS)) == [((0.0, 1.0), (0.0, 1.0))]
    # regret of each profile: from (C, C) each gains 2 by defecting; from (C, D) the row player gains 1
    assert profile_regrets(PRISONERS) == pytest.approx(np.array([[2.0, 1.0], [1.0, 0.0]]))
    edges = {(e.source, e.target, e.player) for e in best_response_graph(PRISONERS)}
    assert edges == {((0, 0), (1, 0), 0), ((0, 0), (0, 1), 1), ((0, 1), (1, 1), 0), ((1, 0), (1, 1), 1)}


def test_matching_pennies_has_one_equilibrium_half_and_half() -> None:
    assert pure_equilibria(PENNIES) == []
    (sigma,) = mixed_equilibria(PENNIES)
    assert sigma[0] == pytest.approx([0.5, 0.5]) and sigma[1] == pytest.approx([0.5, 0.5])
    # leaning 60:40 either way lets the other player gain 0.2 by answering it
    assert regret(PENNIES, [np.array([0.6, 0.4]), np.array([0.5, 0.5])]) == pytest.approx(0.2)
    assert regret(PENNIES, [np.array([0.5, 0.5]), np.array([0.4, 0.6])]) == pytest.approx(0.2)


def test_gains_against_a_mixed_profile_are_the_expected_payoffs() -> None:
    """Coordination game, row mixing 1/2-1/2 and column 1/4-3/4: row's A earns 2/4, its B 3/4, its mix
    5/8; column's A earns 2 x 1/2 = 1, its B 1/2, its mix 5/8. So the gains are -1/8, +1/8 for row and
    +3/8, -1/8 for column, and the regret 3/8, whether or not the payoffs come per replication."""
    sigma = [np.array([0.5, 0.5]), np.array([0.25, 0.75])]
    from market.games.equilibrium import deviation_gains
    row, col = deviation_gains(COORDINATION, sigma)
    assert row == pytest.approx([-1 / 8, 1 / 8]) and col == pytest.approx([3 / 8, -1 / 8])
    assert regret(COORDINATION, sigma) == pytest.approx(3 / 8)
    (dev,) = bootstrap_deviations(np.repeat(COORDINATION[None], 5, axis=0), [sigma], resamples=200)
    assert dev.regret == pytest.approx(3 / 8) and dev.regret_low == pytest.approx(3 / 8) and not dev.holds
    # a profile not run counts only where it carries weight: with column playing A for sure, the
    # payoffs at (., B) are not needed
    partial = COORDINATION.copy()
    partial[:, :, 1] = np.nan
    pure_a = [np.array([0.5, 0.5]), np.array([1.0, 0.0])]
    assert deviation_gains(partial, pure_a)[0] == pytest.approx([1.0, -1.0])


def test_a_coordination_game_has_two_pure_and_one_mixed_equilibrium() -> None:
    found = _as_tuples(mixed_equilibria(COORDINATION))
    third = (round(1 / 3, 6), round(2 / 3, 6))  # each indifferent when the other plays A with 1/3
    assert sorted(found) == sorted([((1.0, 0.0), (1.0, 0.0)), ((0.0, 1.0), (0.0, 1.0)), (third, third)])
    assert pure_equilibria(COORDINATION) == [(0, 0), (1, 1)]


def test_a_three_player_game_with_a_known_pure_equilibrium() -> None:
    """Random payoffs plus a bonus of 2 for playing b_i make each b_i strictly dominant, so
    b = (1, 0, 1) is the unique equilibrium, pure."""
    best = (1, 0, 1)
    U = np.zeros((3, 2, 2, 2))
    rng = np.random.default_rng(3)
    for profile in np.ndindex(2, 2, 2):
        for i in range(3):
            U[(i, *profile)] = rng.uniform(0, 1) + (2.0 if profile[i] == best[i] else 0.0)
    assert pure_equilibria(U) == [best]
    found = mixed_equilibria(U)
    assert _as_tuples(found) == [tuple(tuple(float(x) for x in np.eye(2)[b]) for b in best)]
    assert regret(U, [np.eye(2)[b] for b in best]) == 0.0


def test_a_dominated_player_leaves_matching_pennies_solved_exactly() -> None:
    """Three players: the third has a strictly dominant strategy (1), and the first two play
    matching pennies whatever it does. Eliminating its dominated strategy leaves a two-player game,
    solved exactly: the unique equilibrium is 1/2-1/2, 1/2-1/2, third plays 1."""
    U = np.zeros((3, 2, 2, 2))
    for third in range(2):
        U[0, :, :, third] = PENNIES[0]
        U[1, :, :, third] = PENNIES[1]
        U[2, :, :, third] = 1.0 if third == 1 else 0.0
    from market.games.equilibrium import undominated
    assert undominated(U) == [[0, 1], [0, 1], [1]]
    (sigma,) = mixed_equilibria(U)
    assert np.concatenate(sigma) == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.0, 1.0], abs=1e-12)


def test_replicator_dynamics_find_an_interior_equilibrium_of_three_players() -> None:
    """Three players who each want to mismatch the next one (a cyclic pennies game): no pure
    equilibrium, and every player mixing half-half is the equilibrium replicator dynamics reach."""
    U = np.zeros((3, 2, 2, 2))
    for profile in np.ndindex(2, 2, 2):
        for i in range(3):
            U[(i, *profile)] = 1.0 if profile[i] != profile[(i + 1) % 3] else -1.0
    assert pure_equilibria(U) == []
    (sigma,) = mixed_equilibria(U)
    assert np.concatenate(sigma) == pytest.approx([0.5] * 6, abs=1e-3)
    assert regret(U, sigma) <= 1e-3 * 2.0


def test_bootstrap_intervals_separate_an_equilibrium_from_a_profile_that_is_not() -> None:
    """Replications of the prisoners' dilemma with noise: (D, D) holds at 95 %, (C, C) does not, and
    the intervals contain the true gains (-2 for each defector moving to cooperate... see below)."""
    rng = np.random.default_rng(11)
    per_rep = PRISONERS[None] + rng.normal(scale=0.3, size=(30, *PRISONERS.shape))
    dd, cc = bootstrap_deviations(per_rep, [[np.eye(2)[1], np.eye(2)[1]], [np.eye(2)[0], np.eye(2)[0]]],
                                  resamples=1000, seed=1)
    assert dd.holds and not cc.holds
    assert cc.regret_low > 1.0 and cc.regret_low <= 2.0 <= cc.regret_high + 0.3
    assert np.all(dd.high < 0)  # from (D, D), moving to C loses about 1 for either player
    # a deviation whose gain is within the noise is not called significant
    flat = np.zeros((20, 2, 2, 2)) + rng.normal(scale=1.0, size=(20, 2, 2, 2))
    (flat_dev,) = bootstrap_deviations(flat, [[np.eye(2)[0], np.eye(2)[0]]], resamples=1000, seed=2)
    assert flat_dev.holds


# -- through the model ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def monopoly(tmp_path_factory: pytest.TempPathFactory) -> market.games.GameResult:
    out = tmp_path_factory.mktemp("games") / "monopoly"
    return market.game(MONOPOLY, out, workers=1, progress=False)


def test_a_monopolist_choosing_its_price_finds_the_lerner_price(monopoly) -> None:
    """The tiny market's only cloud picks its posted price among 0.25, 0.3, 0.4, 0.6 and 0.8 USD per
    chip-hour; with cost 0.2 and demand 100 p^-2 the profit-maximising price is c e / (1 + e) = 0.4,
    and profit falls away from it on both sides (profit (p - c) 100 p^-2 is single-peaked)."""
    assert monopoly.equilibria.height == 1
    eq = monopoly.equilibria.row(0, named=True)
    assert eq["kind"] == "pure" and eq["profile"] == "cloud=price_040" and eq["holds_95"]
    profit = dict(monopoly.payoffs.select("cloud", "mean").iter_rows())
    order = ["price_025", "price_030", "price_040", "price_060", "price_080"]
    assert [profit[s] for s in order[:3]] == sorted(profit[s] for s in order[:3])
    assert [profit[s] for s in order[2:]] == sorted((profit[s] for s in order[2:]), reverse=True)
    # the profit differences are what the analytic margins say: (p - c) D(p) x hours x months
    hours, months, c = 730.0, 12, 0.2
    analytic = {s: (p - c) * 100 * p ** -2.0 * hours * months / 1e9
                for s, p in zip(order, (0.25, 0.3, 0.4, 0.6, 0.8), strict=True)}
    for s in order:
        assert profit[s] - profit["price_040"] == pytest.approx(analytic[s] - analytic["price_040"], rel=1e-6)
    regrets = dict(monopoly.profiles.select("cloud", "regret").iter_rows())
    assert regrets["price_040"] == 0.0 and min(v for k, v in regrets.items() if k != "price_040") > 0
    for name in ("payoffs", "profiles", "equilibria", "strategies", "deviations", "best_responses", "payoffs_by_run"):
        assert (monopoly.out / "game" / f"{name}.parquet").is_file()


def test_payoffs_sum_the_agents_flows_as_documented(monopoly) -> None:
    """From the tables of the monopoly game's runs: a lab's surplus is value less spend, its utility
    that less its diversification (0.2 by default) x its largest vendor's share (1: one vendor) x
    spend; discounting weights month t by 1.1^(-t/12); a horizon cuts the months counted."""
    from market.games.payoffs import run_payoffs
    tables = market.scan(monopoly.out)
    labs = tables["labs"].filter(pl.col("lab") == "lab").collect()
    by_run = labs.group_by("run_id").agg(surplus=(pl.col("surplus_usd")).sum() / 1e9,
                                         spend=pl.col("spend_usd").sum() / 1e9).sort("run_id")

    def payoff(name, **kw):
        args = {"horizon": 12, "discount": 0.0, "hours": 730.0, "diversification": {"lab": 0.2}} | kw
        return run_payoffs(tables, name, ["lab"], **args).sort("run_id")["payoff"].to_numpy()

    assert payoff("surplus") == pytest.approx(by_run["surplus"].to_numpy(), rel=1e-12)
    assert payoff("utility") == pytest.approx((by_run["surplus"] - 0.2 * by_run["spend"]).to_numpy(), rel=1e-12)
    discounted = (labs.group_by("run_id").agg((pl.col("surplus_usd") * 1.1 ** (-pl.col("step") / 12)).sum() / 1e9)
                  .sort("run_id")["surplus_usd"].to_numpy())
    assert payoff("surplus", discount=0.1) == pytest.approx(discounted, rel=1e-12)
    first_half = labs.filter(pl.col("step") < 6).group_by("run_id").agg(pl.col("surplus_usd").sum() / 1e9).sort("run_id")
    assert payoff("surplus", horizon=6) == pytest.approx(first_half["surplus_usd"].to_numpy(), rel=1e-12)


def test_payoffs_do_not_depend_on_the_order_rows_are_stored_in(tmp_path: Path) -> None:
    """A sweep stores runs in the order batches finish; the payoffs add each run's months in one
    order whatever it was, so they are identical to the last bit."""
    small = GAMES / "small_withholding_game.toml"
    played = market.game(small, tmp_path / "g", workers=1, progress=False)
    tables = market.scan(played.out)
    shuffled = {name: frame.collect().sample(fraction=1.0, shuffle=True, seed=9).lazy() for name, frame in tables.items()
                if name in ("runs", "vendors", "clouds", "labs")}
    from market.games.payoffs import run_payoffs
    for payoff, agents in (("profit", ["google", "gcp"]), ("utility", ["openai"]), ("compute_per_dollar", ["openai"])):
        args = {"horizon": 3, "discount": 0.1, "hours": 730.0, "diversification": {"openai": 0.5}}
        a = run_payoffs(tables, payoff, agents, **args).sort("run_id")
        b = run_payoffs(shuffled, payoff, agents, **args).sort("run_id")
        assert a.equals(b), payoff


def test_a_double_oracle_search_finds_the_answer_running_fewer_profiles(tmp_path: Path) -> None:
    """The monopoly game with a second player, the lab, whose bargaining power cannot matter (it has
    no other seller and pays the posted price): 5 x 3 profiles. The double oracle starts from
    (price_025, weak), runs every deviation from there, admits the cloud's best reply price_040,
    then runs the lab's deviations against it, finds none that gains, and stops: 9 profiles run."""
    text = MONOPOLY.read_text().replace("base_seed = 7", 'base_seed = 7\n\n[search]\nmethod = "double_oracle"')
    text = text.replace('"../scenarios/tiny_market.toml"', f'"{(GAMES.parent / "scenarios" / "tiny_market.toml").as_posix()}"')
    text += """
[players.lab]
agents = ["lab"]
payoff = "surplus"
[players.lab.strategies]
weak = { "labs.lab.bargaining_power" = 0.2 }
middle = { "labs.lab.bargaining_power" = 0.5 }
strong = { "labs.lab.bargaining_power" = 0.8 }
"""
    spec = tmp_path / "monopoly_do.toml"
    spec.write_text(text)
    result = market.game(spec, tmp_path / "do", workers=1, progress=False)
    assert result.profiles.height == 9 and result.runs == 9 * 2
    assert result.equilibria["profile"].to_list() == ["cloud=price_040, lab=weak"]
    assert result.equilibria["holds_95"].to_list() == [True]
    assert result.equilibria["all_deviations_run"].to_list() == [True]
    unexplored = result.profiles.filter(~pl.col("all_deviations_run"))
    assert not unexplored["holds_95"].any(), "a profile whose deviations were not all run is never called one"


def test_payoffs_do_not_depend_on_workers_or_executor(tmp_path: Path, dask_scheduler: str) -> None:
    """A stochastic game (the seed event, two replications with different seeds) gives the same
    payoffs run by run in this process, on two workers and on a Dask cluster."""
    small = GAMES / "small_withholding_game.toml"
    one = market.game(small, tmp_path / "one", workers=1, progress=False)
    two = market.game(small, tmp_path / "two", workers=2, progress=False)
    dask = market.game(small, tmp_path / "dask", scheduler=dask_scheduler, progress=False)
    base = pl.read_parquet(one.out / "game" / "payoffs_by_run.parquet")
    assert base.filter(pl.col("point") == 0)["google"].n_unique() == 2, "the replications differ"
    for other in (two, dask):
        assert pl.read_parquet(other.out / "game" / "payoffs_by_run.parquet").equals(base)
        assert other.payoffs.equals(one.payoffs) and other.profiles.equals(one.profiles)
        assert other.equilibria.equals(one.equilibria)


def test_an_interrupted_game_resumes(monopoly, tmp_path: Path) -> None:
    """A game stopped after two of its five profiles finishes the other three with --resume and
    gives the same tables as one never stopped."""
    spec = load_game(MONOPOLY)
    out = tmp_path / "resumed"
    first = market.sweep(spec.experiment(), out, workers=1, points=[0, 1], progress=False)
    assert first.completed == 4
    partial = analyse(spec, out)  # the sub-game run so far: its equilibrium is not checked against the rest
    assert partial.equilibria["profile"].to_list() == ["cloud=price_030"]
    assert partial.equilibria["all_deviations_run"].to_list() == [False]
    assert partial.equilibria["holds_95"].to_list() == [False]
    result = market.game(MONOPOLY, out, workers=1, resume=True, progress=False)
    assert result.completed == 6 and result.skipped == 4
    assert result.payoffs.equals(monopoly.payoffs)
    assert result.equilibria.equals(monopoly.equilibria)


def test_common_random_numbers_give_every_profile_the_same_seeds() -> None:
    runs = load_game(GAMES.parent.parent / "experiments" / "withholding_game.toml").experiment().runs()
    seeds = {}
    for r in runs:
        seeds.setdefault(r.replication, set()).add(r.seed)
    assert all(len(s) == 1 for s in seeds.values())
    assert len({next(iter(s)) for s in seeds.values()}) == len(seeds)


# -- bad game files -------------------------------------------------------------------------------


runner = CliRunner()

GOOD = """
name = "g"
scenario = "tiny_market.toml"
replications = 2
steps = 3
[players.cloud]
agents = ["a"]
[players.cloud.strategies]
low = { "clouds.a.pricing.min_margin" = 0.1 }
high = { "clouds.a.pricing.min_margin" = 0.5 }
"""


@pytest.mark.parametrize(("edit", "mentions"), [
    (lambda t: t.replace('agents = ["a"]', 'agents = ["zz"]'), ["players.cloud.agents", "'zz'", "allowed"]),
    (lambda t: t.replace('[players.cloud]', '[players.cloud]\npayoff = "happiness"'), ["payoff", "happiness", "allowed"]),
    (lambda t: t.replace('[players.cloud]', '[players.cloud]\npayoff = "surplus"'), ["surplus", "'a' is a cloud"]),
    (lambda t: t.replace('0.5 }', '0.5 }\nbad = { "clouds.a.nonsense" = 1 }'), ["nonsense"]),
    (lambda t: t.replace('0.5 }', '0.5 }\nneg = { "clouds.a.pricing.min_margin" = -1 }'), ["min_margin"]),
    (lambda t: t + '[players.lab]\nagents = ["a"]\n[players.lab.strategies]\nx = {}\n', ["'a'", "cloud", "lab"]),
    (lambda t: t + '[players.lab]\nagents = ["lab"]\npayoff = "surplus"\n[players.lab.strategies]\n'
                   'x = { "clouds.a.pricing.min_margin" = 0.2 }\n', ["both set", "clouds.a.pricing.min_margin"]),
    (lambda t: t.replace('[players.cloud]', '[players.cloud]\nhorizon = 10'), ["horizon", "at most 3"]),
    (lambda t: t.replace("replications = 2", "replications = 1"), ["replications"]),
    (lambda t: t.replace("low = {", "low = ["), ["not valid TOML"]),
    (lambda t: t.replace('high = { "clouds.a.pricing.min_margin" = 0.5 }', ""), ["two strategies"]),
    (lambda t: t.replace("replications = 2", "replications = 2\nmax_runs = 3"), ["max_runs = 3", "4 runs"]),
])
def test_a_bad_game_file_exits_2_with_one_line_naming_the_problem(tmp_path: Path, edit, mentions) -> None:
    shutil.copy(GAMES.parent / "scenarios" / "tiny_market.toml", tmp_path / "tiny_market.toml")
    path = tmp_path / "g.toml"
    path.write_text(edit(GOOD))
    out = tmp_path / "out"
    result = runner.invoke(app, ["game", str(path), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 2, (result.output, result.exception)
    err = result.stderr.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output
    for m in mentions:
        assert m in err, (m, err)
    assert not out.exists(), "nothing runs (or is written) before the file is checked"


def test_market_game_prints_the_payoffs_and_equilibria_and_draws_the_figure(tmp_path: Path) -> None:
    shutil.copy(GAMES.parent / "scenarios" / "tiny_market.toml", tmp_path / "tiny_market.toml")
    path = tmp_path / "g.toml"
    path.write_text(GOOD)
    result = runner.invoke(app, ["game", str(path), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "pure equilibrium cloud=" in result.stdout and "regret" in result.stdout
    assert (tmp_path / "out" / "game" / "figures" / "game.png").stat().st_size > 10_000
