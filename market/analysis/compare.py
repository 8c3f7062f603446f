"""Scenario comparison: each key outcome per scenario, and its difference to a baseline scenario
with a bootstrap 95% confidence interval.

    >>> import market
    >>> from market.analysis.compare import compare
    >>> table = compare("outputs/seed_scenarios", baseline="baseline")    # doctest: +SKIP

Outcomes are final-month values per run (:func:`market.analysis.outcomes.run_outcomes`). Scenarios of
one experiment share seeds point by point, so runs are paired on (point, replication) when both
scenarios have them: the interval is then for the mean of the paired differences, which removes
the noise the scenarios share. Without pairs, the two means are resampled independently. The
bootstrap uses its own seeded Generator, so a table is reproducible.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

from market.analysis.headline import Headline, Outcome
from market.analysis.outcomes import outcome_columns, run_outcomes, scenario_order
from market.batch.storage import scan

__all__ = ["bootstrap_mean_ci", "compare", "compare_runs"]

RESAMPLES = 4000


def bootstrap_mean_ci(values: np.ndarray, level: float = 0.95, resamples: int = RESAMPLES,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def _unpaired_ci(a: np.ndarray, b: np.ndarray, level: float, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, a.size, size=(RESAMPLES, a.size))].mean(axis=1)
    mb = b[rng.integers(0, b.size, size=(RESAMPLES, b.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    d = ma - mb
    return float(np.quantile(d, tail)), float(np.quantile(d, 1.0 - tail))


def compare_runs(per_run: pl.DataFrame, baseline: str | None = None, outcomes: list[str] | None = None,
                 level: float = 0.95, seed: int = 0, headline: Headline | None = None) -> pl.DataFrame:
    """Compare scenarios in a per-run outcome table (columns: scenario, point, replication, outcomes).

    Returns one row per (scenario, outcome): its label and unit (from ``headline``'s outcomes, the
    one the table was made with), runs, mean, p05, p95 (90% interval across runs), and
    diff = mean - baseline mean with its bootstrap ``level`` interval (diff_low, diff_high),
    ``pairs`` (paired runs used, 0 when unpaired) — the baseline's own row has diff 0.
    """
    info = (headline or Headline()).outcomes()
    outcomes = outcomes or outcome_columns(per_run)
    scenarios = per_run["scenario"].unique(maintain_order=True).to_list()
    if not scenarios:
        raise ValueError("no complete runs to compare")
    base = baseline if baseline is not None else ("baseline" if "baseline" in scenarios else scenarios[0])
    if base not in scenarios:
        raise ValueError(f"baseline scenario {base!r} is not in the results; allowed: {', '.join(scenarios)}")
    rows = []
    keyed = per_run.select("scenario", "point", "replication", *outcomes)
    for k, outcome in enumerate(outcomes):
        ref = keyed.filter(pl.col("scenario") == base).select("point", "replication", pl.col(outcome).alias("ref"))
        for s in scenarios:
            mine = keyed.filter(pl.col("scenario") == s).select("point", "replication", outcome).drop_nulls(outcome)
            x = mine[outcome].to_numpy()
            about = info.get(outcome, Outcome(outcome, "", outcome, 1.0))
            row = {"scenario": s, "outcome": outcome, "label": about.label, "unit": about.unit,
                   "baseline": base, "runs": x.size,
                   "mean": float(x.mean()) if x.size else None,
                   "p05": float(np.quantile(x, 0.05)) if x.size else None,
                   "p95": float(np.quantile(x, 0.95)) if x.size else None}
            pairs = mine.join(ref, on=["point", "replication"], how="inner").drop_nulls("ref")
            base_x = ref.drop_nulls("ref")["ref"].to_numpy()
            if s == base:
                row |= {"diff": 0.0, "diff_low": 0.0, "diff_high": 0.0, "pairs": pairs.height}
            elif pairs.height >= 2:
                d = (pairs[outcome] - pairs["ref"]).to_numpy()
                low, high = bootstrap_mean_ci(d, level, seed=seed + k)
                row |= {"diff": float(d.mean()), "diff_low": low, "diff_high": high, "pairs": pairs.height}
            elif x.size >= 2 and base_x.size >= 2:
                low, high = _unpaired_ci(x, base_x, level, seed + k)
                row |= {"diff": float(x.mean() - base_x.mean()), "diff_low": low, "diff_high": high, "pairs": 0}
            else:
                row |= {"diff": None, "diff_low": None, "diff_high": None, "pairs": 0}
            rows.append(row)
    return pl.DataFrame(rows, schema={
        "scenario": pl.String, "outcome": pl.String, "label": pl.String, "unit": pl.String, "baseline": pl.String, "runs": pl.Int64,
        "mean": pl.Float64, "p05": pl.Float64, "p95": pl.Float64, "diff": pl.Float64, "diff_low": pl.Float64,
        "diff_high": pl.Float64, "pairs": pl.Int64})


def compare(folder: str | os.PathLike, baseline: str | None = None, level: float = 0.95,
            headline: Headline | None = None) -> pl.DataFrame:
    """:func:`compare_runs` over the finished experiment in ``folder``, the outcomes about
    ``headline``'s entities (OpenAI, Nvidia, Google by default; see :meth:`Headline.resolved`)."""
    tables = scan(Path(folder))
    if "runs" not in tables or "steps" not in tables:
        raise FileNotFoundError(f"{str(folder)!r} holds no complete runs")
    headline = (headline or Headline()).resolved(tables)
    per_run = run_outcomes(tables, headline)
    order = {name: i for i, name in enumerate(scenario_order(tables))}
    per_run = per_run.sort(pl.col("scenario").replace_strict(order, default=len(order)), "point", "replication")
    return compare_runs(per_run, baseline, level=level, headline=headline)
