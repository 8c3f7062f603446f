"""Reading back: query a finished sweep as written / the same rows in one Parquet file."""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

import market
from market.batch.experiment import Experiment
from market.bench.base import Figure, Sizes, fig, median, timed

__all__ = ["bench_readback", "mean_share_query"]


def mean_share_query(lf: pl.LazyFrame) -> pl.DataFrame:
    """Each vendor's mean compute share per scenario and step."""
    return (lf.group_by("scenario", "step", "vendor").agg(pl.col("compute_share").mean())
            .sort("scenario", "step", "vendor").collect())


def bench_readback(sizes: Sizes, repeats: int) -> list[Figure]:
    """Query a finished sweep as written / the same rows in one Parquet file (the limit)."""
    from market.batch.storage import compact

    n = sizes.readback_runs
    exp = Experiment(name="readback", scenarios=["baseline", "openai_google_tpu"], replications=n // 2,
                     steps=sizes.readback_steps, base_seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep"
        sweep_s, report = timed(lambda: market.sweep(exp, out, workers=2, progress=False, compact=False))
        files_before = sum(1 for _ in (out / "shares").rglob("*.parquet"))
        single = Path(tmp) / "shares.parquet"
        market.scan(out)["shares"].collect().write_parquet(single)

        def query_times(lf_of: Callable[[], pl.LazyFrame]) -> list[float]:
            return [timed(lambda: mean_share_query(lf_of()))[0] for _ in range(repeats)]

        def ratio_now() -> tuple[float, float, float]:
            many = query_times(lambda: market.scan(out)["shares"])
            one = query_times(lambda: pl.scan_parquet(single))
            return median(many) / median(one), median(many), median(one)

        loose = ratio_now()
        compact_s, _ = timed(lambda: compact(out))
        files_after = sum(1 for _ in (out / "shares").rglob("*.parquet"))
        packed = ratio_now()
        same = _close(mean_share_query(market.scan(out)["shares"]), mean_share_query(pl.scan_parquet(single)))
    detail = (f"{report.completed:,}-run sweep ({sizes.readback_steps} step(s), written in {sweep_s:.0f} s), "
              f"compacted in {compact_s:.1f} s from {files_before:,} to {files_after} files per table; query "
              f"{packed[1] * 1000:.0f} ms vs {packed[2] * 1000:.0f} ms on one file; before compaction "
              f"{loose[0]:.1f}x ({loose[1] * 1000:.0f} ms); same result (to 1e-12): {'yes' if same else 'NO'}")
    return [fig("readback", "reading back: compacted sweep / one Parquet file", packed[0], "x", "<= 2", detail,
                uncompacted_ratio=loose[0], identical=same)]


def _close(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Equal keys, and means equal to 1e-12 (a mean's last bits depend on the order it adds rows in)."""
    from polars.testing import assert_frame_equal

    try:
        assert_frame_equal(a, b, check_exact=False, **{
            "rel_tol" if "rel_tol" in inspect.signature(assert_frame_equal).parameters else "rtol": 1e-12})
        return True
    except AssertionError:
        return False

