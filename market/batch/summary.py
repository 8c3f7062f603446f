"""Key outcomes of an experiment, per run and per scenario, from the tables on disk (lazy polars).

    >>> import market
    >>> from market.batch.summary import run_outcomes, scenario_summary
    >>> per_run = run_outcomes(market.scan("outputs/seed_scenarios"))          # doctest: +SKIP
    >>> scenario_summary(per_run)                                               # doctest: +SKIP
"""

from __future__ import annotations

import polars as pl

from market.recording import weighted_rental_price

__all__ = ["OUTCOMES", "run_outcomes", "scenario_order", "scenario_summary"]

# outcome column -> (label, unit) for printing
OUTCOMES: dict[str, tuple[str, str]] = {
    "nvidia_compute_share": ("Nvidia compute share", "share"),
    "google_compute_share": ("Google compute share", "share"),
    "openai_nvidia_dependency": ("OpenAI dependency on Nvidia", "share"),
    "top_tier_usd_per_pflop_hour": ("Top-tier rental, $/PFLOP-h", "usd"),
    "withheld_top_tier_chips": ("Top-tier chips withheld (sum over months)", "chips"),
    "unmet_share": ("Unmet demand share", "share"),
}


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
        "prices": ["run_id", "product"]}


def _ordered(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
    return frame.sort(KEYS[name]).collect().rechunk().lazy()


def run_outcomes(tables: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    """One row per complete run: scenario, point, replication and the final-month outcomes (the
    same to the last bit however the runs are stored)."""
    runs = tables["runs"].filter(pl.col("status") == "complete").select("run_id", "scenario", "point", "replication")
    steps = _ordered(tables["steps"].select("run_id", "step", "withheld_top_tier_chips", "unmet_pflops",
                                            "demand_pflops"), "steps")
    last = steps.group_by("run_id").agg(pl.col("step").max().alias("last"))

    def final(name: str) -> pl.LazyFrame:  # a table's rows of each run's last step
        return _ordered(tables[name].join(last, on="run_id").filter(pl.col("step") == pl.col("last")), name)

    shares = final("shares").group_by("run_id").agg(
        pl.col("compute_share").filter(pl.col("vendor") == "nvidia").sum().alias("nvidia_compute_share"),
        pl.col("compute_share").filter(pl.col("vendor") == "google").sum().alias("google_compute_share"))
    openai = final("labs").filter(pl.col("lab") == "openai").select(
        "run_id", pl.col("nvidia_dependency").alias("openai_nvidia_dependency"))
    top = (final("prices").filter(pl.col("tier") == "top", pl.col("rental_price_usd_per_pflop_hour").is_not_null())
           .group_by("run_id").agg(weighted_rental_price().alias("top_tier_usd_per_pflop_hour")))
    market = steps.join(last, on="run_id", maintain_order="left").group_by("run_id").agg(
        pl.col("withheld_top_tier_chips").sum(),
        (pl.col("unmet_pflops") / pl.col("demand_pflops")).filter(pl.col("step") == pl.col("last")).first()
        .alias("unmet_share"))
    out = runs
    for frame in (shares, openai, top, market):
        out = out.join(frame, on="run_id", how="left")
    return out.sort("scenario", "point", "replication").collect()


def scenario_summary(per_run: pl.DataFrame, by: tuple[str, ...] = ("scenario",)) -> pl.DataFrame:
    """Mean and 90% interval (5th-95th percentile across replications) of each outcome."""
    aggs = [pl.len().alias("runs")]
    for col in OUTCOMES:
        aggs += [pl.col(col).mean().alias(f"{col}_mean"), pl.col(col).quantile(0.05, "linear").alias(f"{col}_p05"),
                 pl.col(col).quantile(0.95, "linear").alias(f"{col}_p95")]
    return per_run.group_by(*by, maintain_order=True).agg(aggs)
