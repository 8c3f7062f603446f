"""Key outcomes of an experiment, per run and per scenario, from the tables on disk (lazy polars).

    >>> import market
    >>> from market.analysis.outcomes import run_outcomes, scenario_summary
    >>> per_run = run_outcomes(market.scan("outputs/seed_scenarios"))          # doctest: +SKIP
    >>> scenario_summary(per_run)                                               # doctest: +SKIP

The outcomes that name entities (a vendor's compute share, a lab's dependency on a vendor) are
about the entities of a :class:`~market.analysis.headline.Headline`: OpenAI, Nvidia and Google
unless told otherwise, or those the data suggest when a scenario has no such entities.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from market.analysis.headline import Headline, Outcome
from market.analysis.mix import lab_vendor_mix
from market.economics.classes import FRONTIER
from market.recording import weighted_rental_price

__all__ = ["OUTCOMES", "RUN_KEYS", "lab_vendor_share", "outcome_columns", "run_outcomes", "scenario_order",
           "scenario_summary"]

# outcome column -> (label, unit, axis label, factor), for the default headline (OpenAI, Nvidia, Google)
OUTCOMES: dict[str, Outcome] = Headline().outcomes()
RUN_KEYS = ("run_id", "scenario", "point", "replication")  # the columns of run_outcomes that are no outcome


def outcome_columns(per_run: pl.DataFrame) -> list[str]:
    """The outcome columns of a :func:`run_outcomes` table, in order."""
    return [c for c in per_run.columns if c not in RUN_KEYS]


def lab_vendor_share(tables: Mapping[str, pl.DataFrame | pl.LazyFrame], lab: str, vendor: str) -> pl.DataFrame:
    """Each month's share of ``lab``'s contracted peak compute from ``vendor``'s chips (both
    purposes; 0 in a month without any): run_id, step, share. ``tables`` as from
    :func:`market.run` or :func:`market.scan` (labs and lab_mix)."""
    months = tables["labs"].lazy().filter(pl.col("lab") == lab).select("run_id", "step")
    mix = lab_vendor_mix(tables, lab).filter(pl.col("vendor") == vendor).select("run_id", "step", "share")
    return (months.join(mix, on=["run_id", "step"], how="left").with_columns(pl.col("share").fill_null(0.0))
            .sort("run_id", "step").collect())


def scenario_order(tables: dict[str, pl.LazyFrame]) -> list[str]:
    """Scenarios with complete runs, in the experiment's order (the points table's), others sorted."""
    present = set(tables["runs"].filter(pl.col("status") == "complete").select("scenario").unique()
                  .collect()["scenario"].to_list())
    order: list[str] = []
    if "points" in tables:
        order = tables["points"].select("scenario").unique(maintain_order=True).collect()["scenario"].to_list()
    return [s for s in order if s in present] + sorted(present - set(order))


# Rows in a fixed order, in one chunk, before summing over them: a sum's last bits depend on the
# order of its terms, and a scan returns rows in the order the runs were stored (files in the
# order workers finished, batches, compacted parts), so the same runs could give outcomes a bit apart.
KEYS = {"steps": ["run_id", "step"], "shares": ["run_id", "vendor"], "labs": ["run_id", "lab"],
        "prices": ["run_id", "product"], "lab_mix": ["run_id", "lab", "vendor", "purpose"]}


def _ordered(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
    return frame.sort(KEYS[name]).collect().rechunk().lazy()


def run_outcomes(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> pl.DataFrame:
    """One row per complete run: scenario, point, replication and the final-month outcomes (the
    same to the last bit however the runs are stored), those naming entities about ``headline``'s
    (resolved against the tables, :meth:`Headline.resolved`)."""
    h = (headline or Headline()).resolved(tables)
    runs = tables["runs"].filter(pl.col("status") == "complete").select("run_id", "scenario", "point", "replication")
    steps = _ordered(tables["steps"].select("run_id", "step", "withheld_top_tier_chips", "unmet_pflops",
                                            "demand_pflops"), "steps")
    last = steps.group_by("run_id").agg(pl.col("step").max().alias("last"))

    def final(name: str) -> pl.LazyFrame:  # a table's rows of each run's last step
        return _ordered(tables[name].join(last, on="run_id").filter(pl.col("step") == pl.col("last")), name)

    names = list(h.outcomes())
    vendors = [h.vendor] if h.challenger is None else [h.vendor, h.challenger]
    shares = final("shares").group_by("run_id").agg(
        pl.col("compute_share").filter(pl.col("vendor") == v).sum().alias(name) for v, name in zip(vendors, names))
    # the lab's share of its compute from the vendor, over both purposes; 0 with no contract there
    lab = final("labs").filter(pl.col("lab") == h.lab).select("run_id")
    if "lab_mix" in tables:
        mix = final("lab_mix").filter(pl.col("lab") == h.lab, pl.col("vendor") == h.vendor).group_by("run_id").agg(
            pl.col("share").sum().alias(h.dependency))
        lab = lab.join(mix, on="run_id", how="left").with_columns(pl.col(h.dependency).fill_null(0.0))
    else:
        lab = lab.with_columns(pl.lit(0.0).alias(h.dependency))
    top = (final("prices").filter(pl.col("performance_class") == FRONTIER,
                                  pl.col("rental_price_usd_per_pflop_hour").is_not_null())
           .group_by("run_id").agg(weighted_rental_price().alias("frontier_usd_per_pflop_hour")))
    market = steps.join(last, on="run_id", maintain_order="left").group_by("run_id").agg(
        pl.col("withheld_top_tier_chips").sum(),
        (pl.col("unmet_pflops") / pl.col("demand_pflops")).filter(pl.col("step") == pl.col("last")).first()
        .alias("unmet_share"))
    out = runs
    for frame in (shares, lab, top, market):
        out = out.join(frame, on="run_id", how="left")
    return out.select(*RUN_KEYS, *names).sort("scenario", "point", "replication").collect()


def scenario_summary(per_run: pl.DataFrame, by: tuple[str, ...] = ("scenario",)) -> pl.DataFrame:
    """Mean and 90% interval (5th-95th percentile across replications) of each outcome."""
    aggs = [pl.len().alias("runs")]
    for col in outcome_columns(per_run):
        aggs += [pl.col(col).mean().alias(f"{col}_mean"), pl.col(col).quantile(0.05, "linear").alias(f"{col}_p05"),
                 pl.col(col).quantile(0.95, "linear").alias(f"{col}_p95")]
    return per_run.group_by(*by, maintain_order=True).agg(aggs)
