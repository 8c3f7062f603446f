"""The entities the analysis speaks of by name, and the outcomes named after them.

The recorded tables name no entity in their columns (``lab_mix`` holds every lab's compute by
vendor and purpose, long). The analysis layer picks the few entities a headline is about — the
question's lab, the incumbent vendor it depends on, the challenger vendor and its cloud — from a
:class:`Headline`, so that ``market compare``, the figures and the per-run outcomes speak of
OpenAI, Nvidia and Google for the built-in scenarios and still work for a scenario whose
entities have other names::

    >>> from market.analysis.headline import Headline
    >>> list(Headline().outcomes())[:3]
    ['nvidia_compute_share', 'google_compute_share', 'openai_nvidia_dependency']
    >>> list(Headline(lab="lab_x", vendor="vendor_a", challenger="vendor_b").outcomes())[:3]
    ['vendor_a_compute_share', 'vendor_b_compute_share', 'lab_x_vendor_a_dependency']

:meth:`Headline.resolved` replaces an entity the tables do not hold by the one the data suggest
(the vendor with the largest compute share, the runner-up, the lab with the most compute).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import polars as pl

__all__ = ["DISPLAY_NAMES", "Headline", "Outcome"]

# How the built-in entities are written in labels; any other id is written as it is.
DISPLAY_NAMES: dict[str, str] = {
    "openai": "OpenAI", "anthropic": "Anthropic", "deepmind": "Google DeepMind", "meta": "Meta", "xai": "xAI",
    "ssi": "Safe Superintelligence", "apple": "Apple",
    "nvidia": "Nvidia", "google": "Google", "amd": "AMD", "amazon": "Amazon",
    "aws": "AWS", "azure": "Azure", "gcp": "Google Cloud", "oracle": "Oracle", "coreweave": "CoreWeave",
    "neoclouds": "other neoclouds",
}


class Outcome(NamedTuple):
    """A per-run outcome: its label, unit ("share", "usd" or "chips"), axis label and the factor a
    figure applies to the stored value (100 for a share shown in per cent)."""

    label: str
    unit: str
    axis: str
    factor: float


@dataclass(frozen=True)
class Headline:
    """The entities named in outcomes and figures (ids as in the scenario).

    Attributes:
        lab: the lab whose dependency is reported (OpenAI, the question's buyer).
        vendor: the vendor it depends on (the incumbent, Nvidia).
        challenger: the vendor whose chips it may turn to (Google's TPUs).
        challenger_cloud: the cloud through which the challenger rents (Google Cloud), whose profit
            the withholding figures add to the challenger's.
        names: display names for ids, on top of :data:`DISPLAY_NAMES`.
    """

    lab: str = "openai"
    vendor: str = "nvidia"
    challenger: str | None = "google"
    challenger_cloud: str | None = "gcp"
    names: Mapping[str, str] = field(default_factory=dict)

    def name(self, entity: str) -> str:
        """How an id is written in labels."""
        return self.names.get(entity) or DISPLAY_NAMES.get(entity, entity)

    def outcomes(self) -> dict[str, Outcome]:
        """Outcome column -> :class:`Outcome`, in the order tables and figures show them."""
        lab, vendor = self.name(self.lab), self.name(self.vendor)
        out = {f"{self.vendor}_compute_share": Outcome(f"{vendor} compute share", "share",
                                                       "Share of compute under contract (%)", 100.0)}
        if self.challenger is not None:
            out[f"{self.challenger}_compute_share"] = Outcome(f"{self.name(self.challenger)} compute share", "share",
                                                              "Share of compute under contract (%)", 100.0)
        out[f"{self.lab}_{self.vendor}_dependency"] = Outcome(f"{lab} dependency on {vendor}", "share",
                                                              f"Share of {lab}'s compute (%)", 100.0)
        return out | {
            "frontier_usd_per_pflop_hour": Outcome("Frontier-class rental, $/PFLOP-h", "usd", "USD per PFLOP-hour",
                                                   1.0),
            "withheld_top_tier_chips": Outcome("Top-tier chips withheld (sum over months)", "chips", "Chips", 1.0),
            "unmet_share": Outcome("Unmet demand share", "share", "Share of demand (%)", 100.0),
        }

    @property
    def dependency(self) -> str:
        """The name of the lab's dependency outcome."""
        return f"{self.lab}_{self.vendor}_dependency"

    def resolved(self, tables: Mapping[str, pl.LazyFrame]) -> Headline:
        """This headline with every entity the tables do not hold replaced by the one the data
        suggest: vendors by compute share in the final month (the largest, then the runner-up),
        the lab with the most compute under contract then; a challenger cloud that is absent is
        dropped (figures that need it skip)."""
        vendors = _ranked(tables, "shares", "vendor", "compute_pflops")
        labs = _ranked(tables, "labs", "lab", "contracted_pflops")
        clouds = _ranked(tables, "clouds", "cloud", "capacity_pflops")
        vendor = self.vendor if self.vendor in vendors or not vendors else vendors[0]
        challenger = self.challenger
        if challenger not in vendors or challenger == vendor:
            challenger = next((v for v in vendors if v != vendor), None)
        lab = self.lab if self.lab in labs or not labs else labs[0]
        cloud = self.challenger_cloud if self.challenger_cloud in clouds else None
        return replace(self, lab=lab, vendor=vendor, challenger=challenger, challenger_cloud=cloud)


def _ranked(tables: Mapping[str, pl.LazyFrame], table: str, key: str, size: str) -> list[str]:
    """The ids in a table, largest ``size`` in the final month (summed over runs) first."""
    if table not in tables:
        return []
    frame = tables[table]
    last = frame.select(pl.col("step").max()).collect().item()
    return (frame.filter(pl.col("step") == last).group_by(key).agg(pl.col(size).sum())
            .sort([size, key], descending=[True, False]).collect()[key].to_list())
