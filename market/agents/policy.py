"""Withholding and channel rules as plain functions of a rule and a request (no Mesa)."""

from __future__ import annotations

from market.scenario import WithholdingRule

__all__ = ["split_access", "withheld_share"]


def withheld_share(rule: WithholdingRule | None, *, product: str, vendor: str, tier: str,
                   buyer: str, affiliated: bool) -> tuple[float, str]:
    """Share of the holder's free capacity of ``product`` kept from ``buyer``, and why.

    Returns ``(share, reason)`` with reason "named" (the buyer is named in the rule),
    "internal" (the rule reserves capacity for affiliates with ``buyers = ["*"]``) or "" when
    nothing is withheld. Affiliated buyers are never excluded by a "*" rule.
    """
    if rule is None or rule.share <= 0.0 or buyer in rule.except_buyers:
        return 0.0, ""
    matches_product = product in rule.products or (
        (rule.vendor is None or rule.vendor == vendor) and (rule.tier == "any" or rule.tier == tier)
        and not rule.products
    )
    if not matches_product:
        return 0.0, ""
    if buyer in rule.buyers:
        return rule.share, "named"
    if "*" in rule.buyers and not affiliated:
        return rule.share, "internal"
    return 0.0, ""


def split_access(free: float, wanted: float, share: float) -> tuple[float, float]:
    """Chips a buyer may take and chips refused, when ``share`` of ``free`` is kept from it.

    The buyer may take at most ``(1 - share) * free``; what it wanted beyond that, up to what
    was free, is the refused quantity (scarcity is not withholding).
    """
    accessible = max(0.0, (1.0 - share) * free)
    refused = max(0.0, min(wanted, free) - min(wanted, accessible))
    return accessible, refused
