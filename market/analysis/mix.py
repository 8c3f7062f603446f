"""Where a lab's compute comes from, month by month: its share of contracted compute by vendor.

    >>> import market
    >>> from market.analysis.mix import lab_vendor_mix
    >>> mix = lab_vendor_mix(market.scan("outputs/seed_scenarios"), "openai")   # doctest: +SKIP

One place reads the recorded columns that hold a lab's vendor mix, so that figures and apps do not
depend on how it is stored: a long ``lab_mix`` table (step, lab, vendor, purpose, share) when the
tables have one, else the ``labs`` table's ``nvidia_dependency`` and ``tpu_share`` columns (the
rest of the lab's compute is reported as vendor ``"other"``).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

__all__ = ["OTHER", "lab_vendor_mix"]

OTHER = "other"  # the vendor of compute the labs table does not break down


def lab_vendor_mix(tables: Mapping[str, pl.LazyFrame | pl.DataFrame], lab: str) -> pl.LazyFrame:
    """run_id, step, vendor, share: each month's share of ``lab``'s contracted compute by vendor
    (every vendor the lab uses in some month of the run, 0 in the others; no rows for a month
    in which the lab holds no compute)."""
    if "lab_mix" in tables:
        # purposes in a fixed order before summing: the same last bit however the runs are stored
        rows = (tables["lab_mix"].lazy().filter(pl.col("lab") == lab).sort("run_id", "step", "vendor", "purpose")
                .group_by("run_id", "step", "vendor").agg(pl.col("share").sum()))
    else:
        labs = tables["labs"].lazy().filter(pl.col("lab") == lab)
        rows = (labs.select("run_id", "step", pl.col("nvidia_dependency").alias("nvidia"),
                            pl.col("tpu_share").alias("google"),
                            (1.0 - pl.col("nvidia_dependency") - pl.col("tpu_share")).clip(0.0).alias(OTHER))
                .filter((pl.col("nvidia") + pl.col("google")) > 0)
                .unpivot(index=["run_id", "step"], variable_name="vendor", value_name="share"))
    months = rows.select("run_id", "step").unique()
    vendors = rows.group_by("run_id", "vendor").agg(pl.col("share").max()).filter(pl.col("share") > 1e-9)
    grid = months.join(vendors.select("run_id", "vendor"), on="run_id")
    return (grid.join(rows, on=["run_id", "step", "vendor"], how="left")
            .with_columns(pl.col("share").fill_null(0.0)).sort("run_id", "step", "vendor"))
