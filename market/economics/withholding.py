"""Withholding: which rule keeps chips from a buyer, and how much of a holder's chips it may take.

One decision, one place: a vendor selling chips to clouds and a cloud renting chips to labs call
the same two functions the same way (no Mesa, no model state):

* :func:`withheld` — the share of the holder's capacity of a product kept from a buyer, and why.
  A buyer is named by one or more ids, tried in order (a lab's own data centres are a cloud that a
  rule may name by the cloud's id or by its owner lab's), each with whether it is affiliated with
  the holder (same company).
* :func:`access` — chips the buyer may take and chips refused, when that share of the holder's
  free capacity is kept from it. The share bounds the buyer's whole month: what it already took
  from the same holder and product this month counts against the bound.

    >>> from types import SimpleNamespace as Rule
    >>> rule = Rule(vendor="google", tier="top", products=[], buyers=["openai"], except_buyers=[], share=1.0)
    >>> withheld(rule, product="tpu7x", vendor="google", tier="top", buyers=[("openai", False)])
    Withholding(share=1.0, reason='named')
    >>> access(free=100.0, wanted=30.0, share=0.5)
    (50.0, 0.0)

Units: chips (any consistent quantity unit). The rule is a ``market.scenario.WithholdingRule``
(read through its attributes only, so this module does not depend on the scenario module).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from market.scenario import WithholdingRule

__all__ = ["NOT_WITHHELD", "Withholding", "access", "matches_product", "withheld"]


class Withholding(NamedTuple):
    """Share of the holder's free capacity kept from a buyer, and the reason.

    ``reason`` is "named" (the rule names the buyer), "internal" (a ``buyers = ["*"]`` rule keeps
    the share for the holder's affiliates) or "" when nothing is withheld.
    """

    share: float
    reason: str


NOT_WITHHELD = Withholding(0.0, "")


def matches_product(rule: WithholdingRule, *, product: str, vendor: str, tier: str) -> bool:
    """Does the rule cover this product? Named in ``products``, or (when no product is named) of the
    rule's vendor (any, if unset) and tier ("top" = its vendor's newest released product)."""
    if product in rule.products:
        return True
    return not rule.products and (rule.vendor is None or rule.vendor == vendor) and rule.tier in ("any", tier)


def withheld(rule: WithholdingRule | None, *, product: str, vendor: str, tier: str,
             buyers: Iterable[tuple[str, bool]]) -> Withholding:
    """Share of ``product`` kept from a buyer known by ``buyers``: ``(id, affiliated)`` pairs, tried
    in order; the first id the rule matches decides.

    A named id is refused ``rule.share``; with ``buyers = ["*"]`` every id not affiliated with the
    holder is ("internal"); ``except_buyers`` are never refused.
    """
    if rule is None or rule.share <= 0.0 or not matches_product(rule, product=product, vendor=vendor, tier=tier):
        return NOT_WITHHELD
    for buyer, affiliated in buyers:
        if buyer in rule.except_buyers:
            continue
        if buyer in rule.buyers:
            return Withholding(rule.share, "named")
        if "*" in rule.buyers and not affiliated:
            return Withholding(rule.share, "internal")
    return NOT_WITHHELD


def access(free: float, wanted: float, share: float, taken: float = 0.0) -> tuple[float, float]:
    """Chips the buyer may take now and chips refused, when ``share`` of the holder's capacity is
    kept from it.

    ``free``: the holder's free chips now; ``wanted``: chips the buyer asks for now; ``taken``:
    chips it already took from the same holder and product this month. Over the month the buyer
    may take at most ``(1 - share)`` of what was free before it started (``free + taken``); what it
    wanted beyond that, up to what was free, is refused (scarcity is not withholding).
    """
    if taken > 0.0 and share > 0.0:
        accessible, refused = access(free + taken, wanted + taken, share)
        return max(0.0, accessible - taken), refused
    accessible = max(0.0, (1.0 - share) * free)
    refused = max(0.0, min(wanted, free) - min(wanted, accessible))
    return accessible, refused
