"""The explorer's logic without a browser: levers from the schema, what-if runs, the sweep browser's
selections, the CLI's mistakes and the notebook entry point. Runs are tiny (a few months)."""

from __future__ import annotations

import inspect
import json
import re
import typing

import numpy as np
import polars as pl
import pytest
from annotated_types import Ge, Le
from typer.testing import CliRunner

import market
from market.analysis.compare import compare
from market.analysis.figures import FIGURES
from market.cli import app
from market.economics import BARGAINING, PRICE_RULES, RATIONING
from market.explorer.levers import all_levers, levers_of, parse_value, scenario_with
from market.explorer.sweeps import SweepError, open_sweep
from market.explorer.whatif import WhatIf, command_line, run_whatif
from market.model import MarketModel
from market.scenario import Negotiation, ScenarioError, WithholdingRule
from market.scenario.schema import CLEARING_RULES


def test_levers_take_their_ranges_from_the_scenario_schema() -> None:
    levers = {lever.path: lever for lever in all_levers("openai_google_tpu")}
    share = levers["clouds.gcp.withholding.share"]
    ge, le = (c for c in WithholdingRule.model_fields["share"].metadata if isinstance(c, (Ge, Le)))
    assert (share.low, share.high) == (ge.ge, le.le) == (0.0, 1.0)
    assert share.value == 1.0 and not share.integer
    assert (levers["labs.openai.switching_cost"].low, levers["labs.openai.switching_cost"].high) == (0.0, 10.0)
    demand = levers["labs.openai.demand_pflops"]  # open below: more than 0
    assert (demand.low, demand.high, demand.low_open) == (0.0, 1e12, True)
    assert levers["labs.openai.contract_months"].integer
    assert (levers["labs.openai.contract_months"].low, levers["labs.openai.contract_months"].high) == (1, 120)
    assert levers["negotiation.seller_discount"].low_open and levers["negotiation.seller_discount"].high_open
    assert not any(p.startswith("faults.") for p in levers)


def test_a_scenarios_levers_are_the_headline_ones_it_has_and_those_it_turns() -> None:
    assert [lev.path for lev in levers_of("baseline")] == ["labs.openai.switching_cost", "labs.openai.diversification",
                                                         "negotiation.substitutes"]
    shock = [lev.path for lev in levers_of("supply_shock")]
    assert shock[0] == "clouds.gcp.withholding.share"
    assert "packaging.shocks[0].factor" in shock


def test_lever_values_are_validated_by_the_whole_schema() -> None:
    sc = scenario_with("supply_shock", {"packaging.shocks[0].factor": 0.25, "clouds.gcp.withholding.share": 0.5})
    assert sc.packaging.shocks[0].factor == 0.25 and sc.clouds["gcp"].withholding.share == 0.5
    with pytest.raises(ScenarioError, match=r"clouds\.gcp\.withholding\.share: allowed: a number from 0 to 1"):
        scenario_with("openai_google_tpu", {"clouds.gcp.withholding.share": 1.5})
    with pytest.raises(ScenarioError, match="end_step must be after start_step"):  # a cross-field rule
        scenario_with("supply_shock", {"packaging.shocks[0].end_step": 3})
    lever = next(lev for lev in levers_of("baseline") if lev.path == "labs.openai.switching_cost")
    with pytest.raises(ScenarioError, match=r"switching_cost: 'abc' is not a number; allowed: 0 to 10"):
        parse_value(lever, "abc")
    assert parse_value(lever, " 2.5 ") == 2.5


def test_the_clearing_rule_is_a_choice_lever_with_the_names_and_meanings_of_the_schema() -> None:
    rule = next(lev for lev in levers_of("baseline") if lev.path == "negotiation.substitutes")  # a headline lever
    assert rule.names == typing.get_args(Negotiation.model_fields["substitutes"].annotation) == \
        ("joint", "netted", "ignored")
    assert rule.value == "joint" and rule.label != rule.path
    assert dict(rule.choices) == CLEARING_RULES and all(rule.choices[i][1] for i in range(3))
    assert rule.allowed == "'joint', 'netted' or 'ignored'"
    tier = next(lev for lev in all_levers("openai_google_tpu") if lev.path == "clouds.gcp.withholding.tier")
    assert tier.names == ("top", "previous", "any") and tier.value == "top"  # any Literal field is a choice
    from market.explorer.app import _controls, choices_markdown

    assert _controls([rule])["negotiation.substitutes"] == {"type": "Select", "label": "substitutes", "value": "joint",
                                                          "values": ["joint", "netted", "ignored"]}
    shown = choices_markdown(rule)
    assert shown.count("\n") == 2 and "- **joint** (chosen): all products cleared together" in shown


def test_choosing_the_ignored_clearing_rule_changes_the_run() -> None:
    request = WhatIf("openai_google_tpu", {"negotiation.substitutes": "ignored"}, baseline=None, replications=2,
                     steps=4)
    what, base = request.scenarios()
    assert (what.negotiation.substitutes, base.negotiation.substitutes) == ("ignored", "joint")
    assert command_line(request).endswith("--set negotiation.substitutes=ignored")
    result = run_whatif(request, workers=1)
    assert result.done and result.pairs == 2
    runs = result.tables["runs"].collect()
    rules = {r["scenario"]: json.loads(r["config"])["negotiation"]["substitutes"] for r in runs.iter_rows(named=True)}
    assert rules == {"openai_google_tpu + changes": "ignored", "openai_google_tpu as written": "joint"}
    prices = result.tables["prices"].collect()
    columns = ["replication", "step", "product", "rental_price_usd_per_chip_hour"]
    by_rule = [prices.filter(pl.col("scenario") == side).join(runs.select("run_id", "replication"), on="run_id")
               .select(columns).sort(columns[:3]) for side in rules]
    assert by_rule[0].height == by_rule[1].height > 0
    assert not by_rule[0].equals(by_rule[1])  # each product cleared on its own: other prices


def test_the_rental_price_figure_shows_every_price_of_a_dearer_scenario_drawn_after_the_baseline() -> None:
    """The panels share their y axis; prices above the baseline's (the first panel) are not cut off."""
    result = run_whatif(WhatIf("openai_google_tpu", {"negotiation.substitutes": "ignored"}, replications=2, steps=8),
                        workers=1)
    fig = FIGURES["prices"](result.tables)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["baseline", "openai_google_tpu + changes"]

    def drawn(ax) -> np.ndarray:  # every y value of its mean lines and 5-95% bands
        return np.concatenate([line.get_ydata() for line in ax.lines]
                              + [path.vertices[:, 1] for band in ax.collections for path in band.get_paths()])

    baseline, ignored = (drawn(ax) for ax in panels)
    assert ignored.max() > baseline.max() * 1.05  # dearer than the first panel, whose data once set the top
    for ax in panels:
        low, high = ax.get_ylim()
        assert low == 0 and drawn(ax).min() >= low and drawn(ax).max() <= high, ax.get_title()


def test_a_bad_clearing_rule_is_refused_with_the_field_and_its_choices() -> None:
    rule = next(lev for lev in levers_of("baseline") if lev.path == "negotiation.substitutes")
    assert parse_value(rule, " netted ") == "netted"
    for bad in ("both", "", None, 1.0):
        with pytest.raises(ScenarioError, match=r"negotiation\.substitutes: .* is not one of its choices; "
                                                r"allowed: 'joint', 'netted' or 'ignored'\.$"):
            parse_value(rule, bad)
    with pytest.raises(ScenarioError) as refused:
        run_whatif(WhatIf("openai_google_tpu", {"negotiation.substitutes": "both"}, replications=2, steps=2))
    message = str(refused.value)
    assert "negotiation.substitutes: allowed: 'joint', 'netted' or 'ignored' (got 'both')" in message
    assert "\n" not in message and "Traceback" not in message


RULE_LEVERS = {"negotiation.protocol": BARGAINING, "vendors.nvidia.rationing": RATIONING,
               "packaging.rationing": RATIONING, "vendors.nvidia.pricing.rule": PRICE_RULES}


@pytest.mark.parametrize("path", RULE_LEVERS)
def test_a_rule_picked_by_name_is_a_choice_lever_with_its_registrys_names_and_meanings(path) -> None:
    registry = RULE_LEVERS[path]
    lever = next(lev for lev in all_levers("baseline") if lev.path == path)
    assert lever.names == tuple(registry) and len(lever.names) >= 3
    assert dict(lever.choices) == registry.meanings() and all(meaning for _, meaning in lever.choices)
    for name, meaning in lever.choices:  # what each does: the start of its function's docstring
        assert " ".join(inspect.getdoc(registry[name]).split()).startswith(meaning)
    assert lever.value in registry


def test_a_registered_rule_chosen_in_the_explorer_reaches_the_run() -> None:
    changes = {"negotiation.protocol": "concession", "vendors.nvidia.rationing": "uniform"}
    request = WhatIf("openai_google_tpu", changes, baseline=None, replications=2, steps=3)
    what, base = request.scenarios()
    model = MarketModel(what, seed=0)
    assert model.compute_market.protocol is BARGAINING["concession"]
    assert model.vendors["nvidia"]._ration is RATIONING["uniform"]
    assert MarketModel(base, seed=0).compute_market.protocol is BARGAINING["nash"]
    result = run_whatif(request, workers=1)
    assert result.done and result.pairs == 2
    configs = {r["scenario"]: json.loads(r["config"]) for r in result.tables["runs"].collect().iter_rows(named=True)}
    chosen = {side: (c["negotiation"]["protocol"], c["vendors"]["nvidia"]["rationing"]) for side, c in configs.items()}
    assert chosen == {"openai_google_tpu + changes": ("concession", "uniform"),
                      "openai_google_tpu as written": ("nash", "priority")}
    # the prices barely move (outside options bound the split), but conceding takes offers where a Nash split takes one
    rounds = dict(result.tables["contracts"].group_by("scenario").agg(pl.col("rounds").mean()).collect().iter_rows())
    assert rounds["openai_google_tpu + changes"] > 2 > rounds["openai_google_tpu as written"]


@pytest.mark.parametrize(("path", "bad", "allowed"), [
    ("negotiation.protocol", "haggle", "'nash', 'rubinstein' or 'concession'"),
    ("vendors.nvidia.rationing", "lottery", "'pro_rata', 'priority' or 'uniform'"),
])
def test_a_rule_name_no_registry_has_is_refused_with_the_field_and_the_names_allowed(path, bad, allowed) -> None:
    lever = next(lev for lev in all_levers("baseline") if lev.path == path)
    assert lever.allowed == allowed
    with pytest.raises(ScenarioError, match=rf"^{re.escape(path)}: '{bad}' is not one of its choices; "
                                            rf"allowed: {re.escape(allowed)}\.$"):
        parse_value(lever, bad)
    with pytest.raises(ScenarioError) as refused:
        run_whatif(WhatIf("baseline", {path: bad}, replications=2, steps=2))
    message = str(refused.value)
    assert f"{path}: allowed: {allowed} (got '{bad}')" in message and "\n" not in message


def test_a_whatif_gives_the_numbers_market_compare_gives_for_the_same_runs(tmp_path) -> None:
    updates = []
    result = run_whatif(WhatIf("openai_google_tpu", {}, replications=3, steps=4, base_seed=9), workers=2,
                        on_update=updates.append)
    exp = tmp_path / "e.toml"
    exp.write_text('name = "x"\nscenarios = ["baseline", "openai_google_tpu"]\nreplications = 3\nsteps = 4\n'
                   "base_seed = 9\n")
    assert market.sweep(exp, tmp_path / "out", workers=1, progress=False).failed == 0
    assert result.comparison.equals(compare(tmp_path / "out"))
    assert result.done and updates[-1] is not None and updates[-1].pairs == 3


def test_a_lever_change_changes_the_whatif_and_its_difference_to_the_baseline() -> None:
    request = WhatIf("openai_google_tpu", {"clouds.gcp.withholding.share": 0.0}, replications=2, steps=6)
    result = run_whatif(request, workers=1)
    withheld = result.comparison.filter(pl.col("outcome") == "withheld_top_tier_chips")
    assert withheld["scenario"].to_list() == ["baseline", "openai_google_tpu + changes"]
    full = run_whatif(WhatIf("openai_google_tpu", {}, replications=2, steps=6), workers=1)
    full_withheld = full.comparison.filter(pl.col("outcome") == "withheld_top_tier_chips")["mean"][1]
    assert withheld["mean"][1] < full_withheld  # withholding nothing withholds fewer chips
    for name in ("vendor_shares", "prices", "lab_mix_over_time"):
        FIGURES[name](result.tables).clear()  # market plot's figures draw from a what-if's tables


def test_a_whatif_with_a_bad_value_fails_before_any_run() -> None:
    with pytest.raises(ScenarioError, match="switching_cost"):
        run_whatif(WhatIf("openai_google_tpu", {"labs.openai.switching_cost": -1.0}, replications=2, steps=2))
    with pytest.raises(ScenarioError, match="replications"):
        run_whatif(WhatIf("openai_google_tpu", {}, replications=1, steps=2))


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "e.toml").write_text(
        'name = "s"\nscenarios = ["baseline", "tpu_merchant"]\nreplications = 2\nsteps = 3\nbase_seed = 1\n'
        '[design]\nkind = "grid"\n[design.parameters."labs.openai.switching_cost"]\nvalues = [0.5, 1.0, 2.0]\n')
    assert market.sweep(tmp / "e.toml", tmp / "out", workers=1, progress=False).failed == 0
    return tmp / "out"


def test_the_sweep_browser_filters_by_scenario_and_design_parameter(small_sweep) -> None:
    sweep = open_sweep(small_sweep)
    assert sweep.scenarios == ["baseline", "tpu_merchant"]
    assert sweep.parameters == {"labs.openai.switching_cost": [0.5, 1.0, 2.0]}
    every = sweep.select()
    assert every.runs == 12 and not every.sampled
    one = sweep.select(["tpu_merchant"], {"labs.openai.switching_cost": [2.0]})
    assert one.runs == 2
    assert one.tables["shares"].select(pl.col("run_id").unique()).collect().height == 2
    assert set(sweep.outcomes(one)["scenario"]) == {"tpu_merchant"}
    from market.explorer.app import comparison_markdown, summary_markdown

    summary = summary_markdown(sweep.outcomes(one))
    assert summary.count("| tpu_merchant | 2 |") == 6 and "Nvidia compute share" in summary
    both = sweep.select(None, {"labs.openai.switching_cost": [0.5]})
    table = sweep.outcomes(both)
    assert table["runs"].to_list()[:2] == [2, 2] and table["baseline"][0] == "baseline"
    shown = comparison_markdown(table)
    assert "| vs baseline | 95% CI |" in shown and shown.count("\n") == 1 + table.height
    capped = sweep.select(None, None, drawn=3)
    assert capped.drawn == 6 and capped.runs == 12 and capped.sampled  # figures draw 3 per scenario
    assert capped.tables["runs"].collect()["replication"].max() == 0  # every point once before any twice


def test_the_sweep_browser_draws_market_plots_figures_of_the_selected_runs(small_sweep) -> None:
    """The browser keeps only the rows its figures read of the largest tables, and reads each table
    once per selection: its figures are still, pixel for pixel, those of the selected runs' tables."""
    from market.explorer.render import figure_png

    sweep = open_sweep(small_sweep)
    assert sweep.figures[-1] == "sweep_outcomes"
    selection = sweep.select(["baseline", "tpu_merchant"], {"labs.openai.switching_cost": [0.5, 2.0]})
    ids = selection.run_ids.implode()
    direct = {name: lf.filter(pl.col("run_id").is_in(ids)) for name, lf in market.scan(small_sweep).items()
              if "run_id" in lf.collect_schema().names()}
    direct["points"] = market.scan(small_sweep)["points"]
    images = sweep.draw(selection)  # as the page draws them: the design figure in a process of its own
    assert list(images) == list(sweep.figures)
    for name, (image, why) in images.items():
        assert (image, why) == figure_png(name, direct, sweep.headline), name
    assert sum(image is not None for image, _ in images.values()) >= 4


def test_an_unreadable_folder_is_a_message(tmp_path, small_sweep) -> None:
    with pytest.raises(SweepError, match="is not a folder"):
        open_sweep(tmp_path / "missing")
    with pytest.raises(SweepError, match="holds no complete runs"):
        open_sweep(tmp_path)
    damaged = tmp_path / "damaged"
    import shutil

    shutil.copytree(small_sweep, damaged)
    for f in (damaged / "labs").rglob("*.parquet"):
        f.write_bytes(b"not parquet")
    with pytest.raises(SweepError, match="cannot be read"):
        open_sweep(damaged)


def test_market_explore_refuses_bad_input_with_exit_2(tmp_path) -> None:
    runner = CliRunner()
    for args, words in ((["explore", "nosuch"], "unknown scenario 'nosuch'"),
                        (["explore", str(tmp_path)], "holds no complete runs"),
                        (["explore", "--port", "0"], "--port"),
                        (["explore", "--port", "70000"], "--port")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output and "Traceback" not in result.output


def test_market_explore_in_a_notebook_is_a_solara_element() -> None:
    import reacton.core

    element = market.explore("openai_google_tpu")
    assert isinstance(element, reacton.core.Element)
    assert element.kwargs == {} and element.args[0] == "openai_google_tpu"


def test_a_failed_run_is_reported_and_the_others_go_on() -> None:
    request = WhatIf("openai_google_tpu", {"faults.raise_at_step": 1}, replications=2, steps=3)
    result = run_whatif(request, workers=1)
    assert result.done and result.pairs == 0 and result.comparison is None
    assert len(result.failures) == 2 and all("RuntimeError" in e for e in result.failures.values())


def test_a_scenario_file_is_opened_with_its_levers_and_compared_as_written() -> None:
    from pathlib import Path

    path = str(Path(__file__).parent.parent / "experiments" / "half_withholding.toml")
    share = next(lev for lev in levers_of(path) if lev.path == "clouds.gcp.withholding.share")
    assert share.value == 0.5
    request = WhatIf(path, {"clouds.gcp.withholding.share": 0.0}, baseline=None, replications=2, steps=2)
    assert request.labels() == ("half_withholding + changes", "half_withholding as written")
    what, base = request.scenarios()
    assert what.clouds["gcp"].withholding.share == 0.0 and base.clouds["gcp"].withholding.share == 0.5
    result = run_whatif(request, workers=1)
    assert set(result.comparison["scenario"]) == {"half_withholding + changes", "half_withholding as written"}
