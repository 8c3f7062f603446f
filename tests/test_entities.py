"""The recorded schema names no entity, and the model does not care what its entities are called."""

from __future__ import annotations

import json

import polars as pl
import pytest

import market
from market.analysis.headline import Headline
from market.analysis.outcomes import lab_vendor_share
from market.recording import SCHEMAS
from market.scenario import resolve_scenario, validate_scenario

STEPS = 24
RENAMED = {"nvidia": "vendor_n", "google": "vendor_g"}  # keeps the vendors' order by name


def _renamed(name: str) -> market.Scenario:
    """A built-in scenario with vendors renamed everywhere they are referred to (ids are JSON
    strings: keys and values alike)."""
    text = json.dumps(resolve_scenario(name))
    for old, new in RENAMED.items():
        text = text.replace(json.dumps(old), json.dumps(new))
    data = json.loads(text)
    data["steps"] = STEPS
    return validate_scenario(data, {}, f"{name} with renamed vendors")


def _entities() -> set[str]:
    ids: set[str] = set()
    for name in market.builtin_scenarios():
        sc = market.load_scenario(name)
        ids |= set(sc.vendors) | set(sc.labs) | set(sc.clouds) | set(sc.products)
        ids |= {v.ecosystem for v in sc.vendors.values()}
    return ids


def test_no_recorded_column_is_named_after_an_entity() -> None:
    entities = _entities()
    assert {"nvidia", "openai", "gcp", "tpu", "h100"} <= entities  # the check knows what to look for
    for table, schema in SCHEMAS.items():
        for column in schema:
            named = entities & set(column.split("_"))
            assert not named, f"{table}.{column} is named after {named}"


@pytest.mark.parametrize("name", ["openai_google_tpu"])
def test_renamed_vendors_record_the_same_numbers_under_their_new_names(name: str) -> None:
    original = market.run(market.load_scenario(name, steps=STEPS), seed=3).tables
    renamed = market.run(_renamed(name), seed=3).tables
    back = {new: old for old, new in RENAMED.items()}
    for table in SCHEMAS:
        if table == "runs":
            continue
        a, b = original[table].drop("run_id"), renamed[table].drop("run_id")
        named = [c for c in ("vendor", "largest_vendor") if c in b.columns]
        assert all(set(b[c].drop_nulls()) & set(RENAMED.values()) for c in named if b[c].drop_nulls().len()), table
        b = b.with_columns(pl.col(c).replace(back) for c in named)
        assert a.equals(b), f"{table} differs once the vendors are renamed"
    # the analysis follows: the headline falls back to what the data show, the shares are the same
    headline = Headline().resolved({t: df.lazy() for t, df in renamed.items()})
    assert (headline.vendor, headline.challenger, headline.lab) == ("vendor_n", "vendor_g", "openai")
    assert lab_vendor_share(renamed, "openai", "vendor_g").drop("run_id").equals(
        lab_vendor_share(original, "openai", "google").drop("run_id"))


def test_lab_mix_adds_up_to_each_labs_contracted_compute() -> None:
    r = market.run(market.load_scenario("openai_google_tpu", steps=STEPS), seed=1)
    mix = r.tables["lab_mix"]
    assert mix.height and set(mix["purpose"]) == {"training", "inference"}
    assert mix["pflops"].min() > 0 and mix["share"].max() <= 1.0 + 1e-12
    per_lab = mix.group_by("step", "lab").agg(pl.col("pflops").sum(), pl.col("share").sum(),
                                              pl.col("pflops").max().alias("most"))
    joined = r.labs.join(per_lab, on=["step", "lab"], how="left")
    holding = joined.filter(pl.col("contracted_pflops") > 0)
    assert holding["pflops"].null_count() == 0
    assert ((holding["pflops"] / holding["contracted_pflops"] - 1).abs().max()) < 1e-12
    assert ((holding["share"] - 1).abs().max()) < 1e-12
    assert joined.filter(pl.col("contracted_pflops") == 0)["pflops"].null_count() == joined.filter(
        pl.col("contracted_pflops") == 0).height
    # the largest vendor's share is the largest of the lab's vendor shares (purposes added up)
    by_vendor = mix.group_by("step", "lab", "vendor").agg(pl.col("share").sum())
    top = by_vendor.group_by("step", "lab").agg(pl.col("share").max().alias("top"))
    check = r.labs.join(top, on=["step", "lab"], how="inner")
    assert ((check["largest_vendor_share"] - check["top"]).abs().max()) < 1e-12
    assert r.labs.filter(pl.col("contracted_pflops") == 0)["largest_vendor"].null_count() == r.labs.filter(
        pl.col("contracted_pflops") == 0).height


def test_headline_keeps_entities_the_runs_have_and_replaces_the_others() -> None:
    tables = {t: df.lazy() for t, df in market.run(market.load_scenario("baseline", steps=6), seed=0).tables.items()}
    assert Headline().resolved(tables) == Headline()
    odd = Headline(lab="nobody", vendor="cerebras", challenger="nvidia", challenger_cloud="nowhere").resolved(tables)
    assert odd.vendor == "nvidia"  # the largest vendor by compute
    assert odd.challenger not in (None, "nvidia")
    assert odd.lab in {"openai", "anthropic", "deepmind", "meta", "xai"} and odd.challenger_cloud is None
    names = list(Headline(lab="lab_x", vendor="vendor_a", challenger="vendor_b").outcomes())
    assert names[:3] == ["vendor_a_compute_share", "vendor_b_compute_share", "lab_x_vendor_a_dependency"]
