"""experiments/first_month_diversification_check.py, which docs/ODD.md §7.10 quotes on month 0's
concentration penalty: the shares it swaps in reach the labs' first book, and nothing else."""

from __future__ import annotations

import market
import market.markets as markets
from helpers import experiment_script
from market.agents.lab import AILab
from market.model import MarketModel


def _openai_book(module, shares) -> dict[str, float]:
    """OpenAI's contracted PFLOP/s by vendor after month 0, under ``module.month0_shares(shares)``."""
    sc = market.load_scenario("baseline", steps=1)
    with module.month0_shares(shares):
        model = MarketModel(sc, seed=0, record=False)
        model.step()
    openai = next(lab for lab in model.lab_list if lab.lab_id == "openai")
    return openai.vendor_shares()


def test_the_swapped_shares_move_the_first_book_and_are_taken_off_again() -> None:
    module = experiment_script("first_month_diversification_check")
    opened, own = markets.ComputeMarket.open, AILab.vendor_shares
    as_is = _openai_book(module, None)
    # a penalty of 1 + 0.5 on whichever vendor OpenAI is said to hold all of: its first book leans away from it
    on_nvidia = _openai_book(module, {"openai": {"nvidia": 1.0}})
    on_amd = _openai_book(module, {"openai": {"amd": 1.0}})
    assert on_amd.get("nvidia", 0.0) > on_nvidia.get("nvidia", 0.0) + 0.05
    assert on_nvidia == as_is  # its anchors are all Nvidia: the same shares as the model reads itself
    assert markets.ComputeMarket.open is opened and AILab.vendor_shares is own


def test_months_after_the_first_read_the_labs_own_shares() -> None:
    """The swap lasts month 0's opening only; with no shares to swap, a run is the model's own."""
    module = experiment_script("first_month_diversification_check")
    own = AILab.vendor_shares
    sc = market.load_scenario("baseline", steps=2)
    with module.month0_shares({"openai": {"amd": 1.0}}):
        model = MarketModel(sc, seed=3, record=False)
        model.step()
        assert AILab.vendor_shares is own  # put back once month 0 has opened
        model.step()
        assert AILab.vendor_shares is own
    with module.month0_shares(None):
        again = market.run(sc, seed=3).contracts
    assert market.run(sc, seed=3).contracts.equals(again)
