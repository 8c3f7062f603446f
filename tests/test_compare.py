"""Scenario comparison: bootstrap intervals that cover a known difference, and the command."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import market
from market.analysis.compare import bootstrap_mean_ci, compare, compare_runs, paired_differences
from market.cli import app


def _constructed(rng: np.random.Generator, effect: float, n: int = 20) -> pl.DataFrame:
    """Two scenarios sharing seeds: a common run effect (what seeds share) plus own noise; the
    second scenario's outcome is shifted by exactly ``effect``."""
    common = rng.normal(0.7, 0.05, n)
    rows = []
    for scenario, shift in (("base", 0.0), ("lever", effect)):
        own = rng.normal(0.0, 0.01, n)
        for r in range(n):
            rows.append({"scenario": scenario, "point": 0, "replication": r,
                         "nvidia_compute_share": common[r] + shift + own[r]})
    return pl.DataFrame(rows)


def test_paired_interval_covers_the_true_difference_at_its_level() -> None:
    rng = np.random.default_rng(42)
    effect, trials, covered, widths = -0.02, 300, 0, []
    for t in range(trials):
        table = compare_runs(_constructed(rng, effect), baseline="base", outcomes=["nvidia_compute_share"], seed=t)
        row = table.filter(pl.col("scenario") == "lever").row(0, named=True)
        covered += row["diff_low"] <= effect <= row["diff_high"]
        widths.append(row["diff_high"] - row["diff_low"])
        assert row["pairs"] == 20
    coverage = covered / trials
    assert 0.90 <= coverage <= 0.99, coverage  # nominal 95%; percentile bootstrap at n=20 runs a bit low
    # pairing removes the shared noise: intervals far narrower than the 0.05 spread of runs
    assert np.mean(widths) < 0.02


def test_unpaired_comparison_when_runs_do_not_match() -> None:
    rng = np.random.default_rng(1)
    data = _constructed(rng, 0.05).with_columns(
        pl.when(pl.col("scenario") == "lever").then(pl.col("replication") + 100).otherwise("replication")
        .alias("replication"))
    row = compare_runs(data, "base", ["nvidia_compute_share"]).filter(pl.col("scenario") == "lever").row(0, named=True)
    assert row["pairs"] == 0
    assert row["diff_low"] < 0.05 < row["diff_high"] and row["diff_low"] > 0.0


def test_intervals_are_seeded_and_every_outcome_resamples_the_same_pairs() -> None:
    rng = np.random.default_rng(7)
    data = _constructed(rng, -0.02).with_columns((pl.col("nvidia_compute_share") * 2).alias("twice"))
    outcomes = ["nvidia_compute_share", "twice"]
    first, again = (compare_runs(data, "base", outcomes, seed=3) for _ in range(2))
    assert first.equals(again)  # reproducible
    other = compare_runs(data, "base", outcomes, seed=4).filter(pl.col("scenario") == "lever")
    lever = first.filter(pl.col("scenario") == "lever")
    assert not lever["diff_low"].equals(other["diff_low"])  # another seed, other resamples
    # the same resamples of the pairs for both outcomes: an outcome twice the other has an interval twice as wide
    low, high = lever["diff_low"].to_list(), lever["diff_high"].to_list()
    assert low[1] == pytest.approx(2 * low[0], rel=1e-12) and high[1] == pytest.approx(2 * high[0], rel=1e-12)


def test_bootstrap_of_a_constant_is_the_constant() -> None:
    assert bootstrap_mean_ci(np.full(10, 3.0)) == (3.0, 3.0)


def test_unknown_baseline_names_the_allowed_ones() -> None:
    data = _constructed(np.random.default_rng(0), 0.0)
    with pytest.raises(ValueError, match="allowed: base, lever"):
        compare_runs(data, "nope", ["nvidia_compute_share"])


@pytest.fixture(scope="module")
def small_experiment(tmp_path_factory) -> object:
    folder = tmp_path_factory.mktemp("cmp")
    exp = folder / "e.toml"
    exp.write_text('name = "cmp"\nscenarios = ["baseline", "tpu_merchant"]\nreplications = 3\nsteps = 6\n'
                   "base_seed = 3\n")
    market.sweep(exp, folder / "out", workers=1, progress=False)
    return folder / "out"


def test_compare_a_finished_sweep(small_experiment) -> None:
    table = compare(small_experiment)
    assert set(table["scenario"]) == {"baseline", "tpu_merchant"}
    assert (table["runs"] == 3).all() and table["baseline"].unique().to_list() == ["baseline"]
    merchant = table.filter(pl.col("scenario") == "tpu_merchant")
    assert (merchant["pairs"] == 3).all()
    assert (merchant["diff_low"] <= merchant["diff"]).all() and (merchant["diff"] <= merchant["diff_high"]).all()


def test_compare_command_prints_and_saves(small_experiment, tmp_path) -> None:
    target = tmp_path / "cmp.csv"
    result = CliRunner().invoke(app, ["compare", str(small_experiment), "--out", str(target)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Nvidia compute share" in result.output and "vs baseline" in result.output
    saved = pl.read_csv(target)
    assert {"scenario", "outcome", "mean", "p05", "p95", "diff", "diff_low", "diff_high", "runs"} <= set(saved.columns)


@pytest.mark.parametrize("args", [["compare", "/nonexistent/dir"], ["compare", "{dir}", "--baseline", "nope"]])
def test_compare_mistakes_exit_2(small_experiment, args) -> None:
    args = [a.replace("{dir}", str(small_experiment)) for a in args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output


def test_main_job_ends_with_figures_and_the_comparison(tmp_path) -> None:
    """README command one: a sweep writes the figure set and prints the comparison table."""
    exp = tmp_path / "e.toml"
    exp.write_text('name = "main"\nscenarios = ["baseline", "openai_google_tpu"]\nreplications = 2\nsteps = 4\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(exp), "--out", str(out), "--workers", "1"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "vs baseline" in result.output and (out / "comparison.csv").is_file()
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "vendor_shares.png" in pngs and "scenario_comparison.png" in pngs


def test_per_run_outcomes_do_not_depend_on_how_the_runs_are_stored(small_experiment) -> None:
    """The same runs read in another row order (as from files written in another order, batches
    or compacted parts) give the same outcomes to the last bit: sums over a run's rows are taken
    in a fixed order."""
    from market.analysis.outcomes import run_outcomes

    tables = market.scan(small_experiment)
    expected = run_outcomes(tables)
    for seed in range(5):
        shuffled = {name: frame.collect().sample(fraction=1.0, shuffle=True, seed=seed).lazy()
                    if name in ("steps", "shares", "labs", "prices") else frame for name, frame in tables.items()}
        assert run_outcomes(shuffled).equals(expected)


def test_compare_and_plot_speak_of_the_entities_given_on_the_command_line(small_experiment, tmp_path) -> None:
    """``--lab``/``--vendor``/``--challenger`` choose the headline entities (any scenario's); a
    name the runs do not hold exits 2 naming the option and what is allowed."""
    target = tmp_path / "cmp.csv"
    result = CliRunner().invoke(app, ["compare", str(small_experiment), "--lab", "anthropic", "--vendor", "google",
                                      "--challenger", "amazon", "--out", str(target)])
    assert result.exit_code == 0, result.output
    table = pl.read_csv(target)
    outcomes = table["outcome"].unique(maintain_order=True).to_list()
    assert outcomes[:3] == ["google_compute_share", "amazon_compute_share", "anthropic_google_dependency"]
    assert "Anthropic dependency on Google" in set(table["label"])
    for option, value in (("--lab", "nobody"), ("--vendor", "cerebras"), ("--challenger", "cerebras")):
        bad = CliRunner().invoke(app, ["compare", str(small_experiment), option, value])
        assert bad.exit_code == 2, bad.output
        assert f"{option} {value!r}" in bad.output and "allowed:" in bad.output and "Traceback" not in bad.output
    plotted = CliRunner().invoke(app, ["plot", str(small_experiment), "--out", str(tmp_path / "fig"), "--format", "png",
                                       "--lab", "anthropic"])
    assert plotted.exit_code == 0, plotted.output
    assert (tmp_path / "fig" / "scenario_comparison.png").exists()


def test_paired_differences_of_a_few_runs() -> None:
    pairs = [({"x": 1.0, "y": 5.0}, {"x": 2.0, "y": 4.0}), ({"x": 3.0, "y": 5.0}, {"x": 6.0, "y": 5.0}),
             ({"x": 2.0, "y": 5.0}, {"x": 4.0, "y": 6.0})]
    table = paired_differences(pairs, ("low", "high"))
    assert table["measure"].to_list() == ["x", "y"]
    x, y = table.row(0, named=True), table.row(1, named=True)
    assert x["low"] == pytest.approx(2.0) and x["difference"] == pytest.approx(2.0)  # differences 1, 3, 2
    assert x["standard error"] == pytest.approx(1.0 / np.sqrt(3.0))
    assert x["high higher"] == "3/3" and y["high higher"] == "1/3"  # y: -1, 0, +1
    assert y["difference"] == pytest.approx(0.0)
