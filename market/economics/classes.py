"""Performance classes: what "frontier" means market-wide, the same for every vendor.

A chip's class is set by how it compares with the best chips on the market this month, not by
its place in its own vendor's line-up (a vendor's newest product is a separate notion, its
``tier``, which withholding rules use)::

    >>> from market.economics.classes import Chip, performance_classes
    >>> chips = [Chip("h100", 0.989, 80, -30), Chip("b200", 2.25, 192, -6), Chip("trn2", 0.667, 96, -8)]
    >>> performance_classes(chips, step=0)
    {'h100': 'mainstream', 'b200': 'frontier', 'trn2': 'mainstream'}

A released chip is **frontier** when its dense PFLOP/s are at least ``pflops_share`` of the most
any released chip has, its memory at least ``memory_share`` of the most any has, and it was
released at most ``max_age_months`` before the newest released chip (so the frontier moves with
new generations and is never empty while chips are on the market); every other released chip is
**mainstream**. Chips not yet released have no class. Pure function: no Mesa, no model state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["CLASSES", "FRONTIER", "MAINSTREAM", "Chip", "performance_classes"]

FRONTIER = "frontier"
MAINSTREAM = "mainstream"
CLASSES = (FRONTIER, MAINSTREAM)


class Chip(NamedTuple):
    """What a chip's class is judged on: dense bf16 PFLOP/s, memory (GB) and release step."""

    name: str
    pflops: float
    memory_gb: float
    release_step: int


def performance_classes(chips: Iterable[Chip], step: int, pflops_share: float = 0.4, memory_share: float = 0.4,
                        max_age_months: int = 36) -> dict[str, str]:
    """Each chip released by ``step``: "frontier" or "mainstream" (see the module docstring)."""
    released = [c for c in chips if c.release_step <= step]
    if not released:
        return {}
    best_pflops = max(c.pflops for c in released)
    best_memory = max(c.memory_gb for c in released)
    newest = max(c.release_step for c in released)
    return {c.name: FRONTIER if (c.pflops >= pflops_share * best_pflops and c.memory_gb >= memory_share * best_memory
                                 and newest - c.release_step <= max_age_months) else MAINSTREAM
            for c in released}
