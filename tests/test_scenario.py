"""Scenario files: loading, inheritance, dotted overrides, and messages for every kind of mistake."""

from __future__ import annotations

import json

import pytest
from helpers import overflowing_scenario

import market
from market.scenario import ScenarioError, load_scenario, parse_override

BUILTINS = ["baseline", "openai_google_tpu", "open_tpu_access", "tpu_merchant", "supply_shock"]


@pytest.mark.parametrize("name", BUILTINS)
def test_builtins_load_and_describe_themselves(name: str) -> None:
    sc = load_scenario(name)
    assert sc.name == name and sc.description
    assert {"nvidia", "google", "amd", "amazon"} <= set(sc.vendors)
    assert {"openai", "anthropic", "deepmind", "meta", "xai"} <= set(sc.labs)
    assert market.builtin_scenarios()[name] == sc.description


def test_scenarios_differ_only_where_they_say() -> None:
    base, deal, open_, merchant, shock = (load_scenario(n) for n in BUILTINS)
    assert base.clouds["gcp"].withholding is None and "openai" not in base.clouds["gcp"].vendor_access["google"]
    rule = deal.clouds["gcp"].withholding
    assert rule is not None and rule.tier == "top" and rule.buyers == ["openai"] and rule.share == 1.0
    assert open_.clouds["gcp"].withholding is None and "openai" in open_.clouds["gcp"].vendor_access["google"]
    assert merchant.vendors["google"].channel == "anyone" and "google" in merchant.clouds["azure"].buys
    assert shock.packaging.shocks and shock.clouds["gcp"].withholding == rule
    # everything else is inherited unchanged
    assert deal.products == base.products and deal.labs == base.labs


def test_dotted_overrides_and_hash() -> None:
    sc = load_scenario("openai_google_tpu", {"clouds.gcp.withholding.share": 0.5}, steps=24)
    assert sc.clouds["gcp"].withholding.share == 0.5 and sc.steps == 24
    assert sc.config_hash != load_scenario("openai_google_tpu").config_hash
    assert json.loads(sc.to_json())["clouds"]["gcp"]["withholding"]["share"] == 0.5
    # an optional table is created by an override
    created = load_scenario("baseline", **{"clouds.azure.withholding.share": 0.25})
    assert created.clouds["azure"].withholding.share == 0.25 and created.clouds["azure"].withholding.tier == "top"


def test_file_extends_builtin_and_relative_file(tmp_path) -> None:
    (tmp_path / "half.toml").write_text('extends = "openai_google_tpu"\n[clouds.gcp.withholding]\nshare = 0.5\n')
    (tmp_path / "short.toml").write_text('extends = "half.toml"\nsteps = 12\n')
    sc = load_scenario(tmp_path / "short.toml")
    assert sc.name == "short" and sc.steps == 12 and sc.clouds["gcp"].withholding.share == 0.5
    assert sc.clouds["gcp"].withholding.buyers == ["openai"]


@pytest.mark.parametrize(("text", "overrides", "mentions"), [
    ('extends = "baseline"\n[labs.openai]\nfoo = 1\n', {}, ["labs.openai.foo", "unknown key"]),
    ('extends = "baseline"\nsteps = "many"\n', {}, ["steps", "allowed: a whole number from 1 to 1200", "got 'many'"]),
    ('extends = "baseline"\n', {"clouds.gcp.withholding.share": 1.5},
     ["clouds.gcp.withholding.share", "allowed: a number from 0 to 1"]),
    ('extends = "baseline"\n', {"labs.openai.demand_pflops": -5},
     ["labs.openai.demand_pflops", "allowed: a number more than 0 and at most 1e12 PFLOP/s"]),
    ('extends = "baseline"\n', {"labs.opnai.budget_usd_per_month": 1}, ["no lab 'opnai'", "openai"]),
    ('extends = "baseline"\n', {"clouds.azure.fleet.h300": 10}, ["clouds.azure.fleet.h300", "unknown product"]),
    ('extends = "baseline"\n', {"vendors.nvidia.packaging_share": 0.9}, ["packaging_share", "at most 1"]),
    ('extends = "baseline"\n', {"negotiation.protocol": "haggle"}, ["negotiation.protocol", "nash", "rubinstein"]),
    ('extends = "baseline"\n', {"labs.openai.readiness.cuda": float("nan")}, ["labs.openai.readiness.cuda"]),
    ('extends = "baseline"\n[clouds.aws.fleet]\nh100 = 1e308\n', {},
     ["clouds.aws.fleet.h100", "allowed: a number from 0 to 1e9 chips", "got 1e+308"]),
    ('extends = "baseline"\n', {"products.h100.pflops": 5e-324}, ["products.h100.pflops", "from 1e-6 to 1e6"]),
    ('extends = "baseline"\n', {"steps": 2**70}, ["steps", "a whole number from 1 to 1200"]),
    ('extends = "baseline"\n', {"start_date": "June"}, ["start_date", "YYYY-MM"]),
    ('extends = "nowhere"\n', {}, ["unknown scenario 'nowhere'", "baseline"]),
    ("steps = [", {}, ["not valid TOML", "line"]),
    ("", {}, ["is empty", "extends"]),
])
def test_mistakes_name_the_field_and_what_is_allowed(tmp_path, text: str, overrides: dict, mentions: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path, overrides)
    message = str(err.value)
    assert "\n" not in message.strip()
    for m in mentions:
        assert m in message, (m, message)


def test_unknown_name_missing_file_and_unreadable_file(tmp_path) -> None:
    with pytest.raises(ScenarioError, match="unknown scenario 'basline'.*baseline"):
        load_scenario("basline")
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "missing.toml")
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_scenario(garbage)


@pytest.mark.parametrize(("text", "expected"), [
    ("steps=12", ("steps", 12)),
    ("clouds.gcp.withholding.share=0.5", ("clouds.gcp.withholding.share", 0.5)),
    ('clouds.gcp.withholding.buyers=["openai", "meta"]', ("clouds.gcp.withholding.buyers", ["openai", "meta"])),
    ("negotiation.protocol=rubinstein", ("negotiation.protocol", "rubinstein")),
    ("vendors.google.channel = anyone", ("vendors.google.channel", "anyone")),
])
def test_parse_override(text: str, expected: tuple) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["steps", "=3", "clouds.gcp.withholding.buyers=[openai]"])
def test_parse_override_rejects(text: str) -> None:
    with pytest.raises(ScenarioError):
        parse_override(text)


def test_long_tail_is_generated_from_the_seed() -> None:
    sc = load_scenario("baseline", {"long_tail.count": 50, "steps": 1})
    a, b, c = (market.run(sc, seed=s) for s in (1, 1, 2))
    tail = [r.labs.filter(r.labs["lab"].str.starts_with("tail_")) for r in (a, b, c)]
    assert tail[0].height == 50
    generated = market.MarketModel(sc, seed=1, record=False).labs  # demand at the reference price
    assert sum(lab.demand for lab_id, lab in generated.items() if lab_id.startswith("tail_")) == pytest.approx(
        sc.long_tail.total_demand_pflops, rel=1e-9)
    assert tail[0].equals(tail[1]) and not tail[0].equals(tail[2])


def test_files_in_experiments_validate() -> None:
    import tomllib
    from pathlib import Path

    files = sorted((Path(__file__).parent.parent / "experiments").glob("*.toml"))
    assert files
    for f in files:
        data = tomllib.loads(f.read_text())
        if "scenarios" in data:  # an experiment file
            assert market.load_experiment(f).name == f.stem
        elif "players" in data:  # a game file
            from market.games import load_game
            assert load_game(f).name == f.stem
        else:
            assert load_scenario(f).name == f.stem


def test_a_run_whose_numbers_overflow_stops_with_a_model_error_naming_step_and_quantity(tmp_path) -> None:
    """Valid but extreme: demand multiplied by 100 every month overflows a float in month 154."""
    sc = load_scenario(overflowing_scenario(tmp_path))
    with pytest.raises(market.ModelError, match=r"^step 154, at the start of the month: the demand \(PFLOP/s\) of "
                                                r"lab is inf, not a finite number"):
        market.run(sc, record=False)
    failed = market.run(sc, raise_errors=False).tables["runs"]
    assert failed["status"][0] == "failed" and failed["error"][0].startswith("market.model.ModelError: step ")
