"""experiments/clearing_check.py: the accounting it reads off the month's offers holds (what
docs/VALIDATION.md quotes about capacity left unrented comes from it)."""

from __future__ import annotations

import polars as pl
import pytest

from helpers import experiment_script


def _idle_share(df: pl.DataFrame) -> float:
    return df["idle"].sum() / df["installed"].sum()


def test_offers_account_for_every_free_chip() -> None:
    module = experiment_script("clearing_check")
    df = module.measure("openai_google_tpu", seeds=1, workers=1)
    assert df.height > 0 and df["month"].min() == module.FIRST
    eps = 1e-6
    assert (df["idle"] >= -eps).all() and (df["idle"] <= df["opened"] + eps).all()
    assert (df["opened"] <= df["installed"] + eps).all()
    # public clouds only: the captive data centres (Meta's, xAI's) are not priced by the market
    assert not df["cloud"].is_in(["meta_dc", "xai_dc"]).any()
    assert df.filter(pl.col("opened") > 0).height > 0


@pytest.mark.parametrize("rule", [None, "netted"])
def test_counting_substitutes_rents_out_most_of_the_idle_capacity(rule: str | None) -> None:
    """docs/VALIDATION.md, substitute products: with the default joint clearing (or the netting)
    the capacity idle at a month's end in ``baseline`` is a third or less of what it is when each
    product is cleared on its own (``negotiation.substitutes = "ignored"``, the rule before)."""
    module = experiment_script("clearing_check")
    ignored = module.measure("baseline", seeds=1, workers=1, overrides={"negotiation.substitutes": "ignored"})
    counted = module.measure("baseline", seeds=1, workers=1,
                             overrides=None if rule is None else {"negotiation.substitutes": rule})
    assert _idle_share(ignored) > 0.10
    assert _idle_share(counted) < _idle_share(ignored) / 3
