"""The withholding module as pure functions: which rule matches a buyer, the split, the monthly bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.economics.withholding import NOT_WITHHELD, Withholding, access, withheld
from market.scenario import WithholdingRule

TOP_FROM_OPENAI = WithholdingRule(vendor="google", tier="top", buyers=["openai"], share=1.0)


def test_a_named_buyer_is_refused_the_share_of_the_matching_product_only() -> None:
    hit = withheld(TOP_FROM_OPENAI, product="tpu7x", vendor="google", tier="top", buyers=[("openai", False)])
    assert hit == Withholding(1.0, "named")
    assert withheld(TOP_FROM_OPENAI, product="tpu_v6e", vendor="google", tier="previous",
                    buyers=[("openai", False)]) == NOT_WITHHELD
    assert withheld(TOP_FROM_OPENAI, product="rubin", vendor="nvidia", tier="top",
                    buyers=[("openai", False)]) == NOT_WITHHELD
    assert withheld(TOP_FROM_OPENAI, product="tpu7x", vendor="google", tier="top",
                    buyers=[("anthropic", False)]) == NOT_WITHHELD


def test_a_star_rule_keeps_the_share_for_affiliates_and_spares_the_excepted() -> None:
    internal = WithholdingRule(tier="any", buyers=["*"], except_buyers=["anthropic"], share=0.4)
    args = dict(product="p", vendor="v", tier="previous")
    assert withheld(internal, **args, buyers=[("openai", False)]) == Withholding(0.4, "internal")
    assert withheld(internal, **args, buyers=[("deepmind", True)]) == NOT_WITHHELD
    assert withheld(internal, **args, buyers=[("anthropic", False)]) == NOT_WITHHELD
    assert withheld(None, **args, buyers=[("openai", False)]) == NOT_WITHHELD
    named_products = WithholdingRule(products=["p"], tier="top", buyers=["*"], share=0.4)
    assert withheld(named_products, **args, buyers=[("openai", False)]).share == 0.4  # named: tier ignored


def test_a_buyer_known_by_two_ids_is_matched_by_either_in_order() -> None:
    """A lab's own data centres are a cloud: a vendor's rule may name the cloud or the lab."""
    ids = [("meta_dc", False), ("meta", False)]
    by_lab = WithholdingRule(tier="any", buyers=["meta"], share=0.5)
    assert withheld(by_lab, product="p", vendor="v", tier="top", buyers=ids) == Withholding(0.5, "named")
    excepted_cloud = WithholdingRule(tier="any", buyers=["*"], except_buyers=["meta_dc"], share=0.5)
    assert withheld(excepted_cloud, product="p", vendor="v", tier="top", buyers=ids) == Withholding(0.5, "internal")


def test_access_splits_free_chips_and_counts_scarcity_apart_from_withholding() -> None:
    assert access(100.0, 30.0, 0.5) == (50.0, 0.0)  # wants less than it may take: nothing refused
    assert access(100.0, 80.0, 0.5) == (50.0, 30.0)
    assert access(100.0, 300.0, 0.5) == (50.0, 50.0)  # beyond what was free is scarcity, not refusal
    assert access(100.0, 300.0, 1.0) == (0.0, 100.0)


def test_the_share_bounds_the_buyers_month_not_each_request() -> None:
    # 1000 free, a quarter withheld: 750 for training, then nothing more for inference
    first, _ = access(1000.0, 750.0, 0.25)
    second, refused = access(1000.0 - first, 500.0, 0.25, taken=first)
    assert (first, second) == (750.0, 0.0)
    assert refused == pytest.approx(250.0)


@given(free=st.floats(0, 1e9), wanted=st.floats(0, 1e9), share=st.floats(0, 1),
       first=st.floats(0, 1))
def test_whatever_the_requests_a_month_never_takes_more_than_the_unwithheld_share(
        free: float, wanted: float, share: float, first: float) -> None:
    a1, r1 = access(free, wanted * first, share)
    took = min(a1, wanted * first)
    a2, r2 = access(free - took, wanted, share, taken=took)
    assert took + min(a2, wanted) <= (1.0 - share) * free * (1 + 1e-12) + 1e-9
    assert r1 >= 0.0 and r2 >= 0.0
