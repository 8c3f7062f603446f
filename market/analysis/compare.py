"""Scenario comparison: each key outcome per scenario, and its difference to a baseline scenario
with a bootstrap 95% confidence interval.

    >>> import market
    >>> from market.analysis.compare import compare
    >>> table = compare("outputs/seed_scenarios", baseline="baseline")    # doctest: +SKIP

Outcomes are final-month values per run (:func:`market.analysis.outcomes.run_outcomes`). Scenarios of
one experiment share seeds point by point, so runs are paired on (point, replication) when both
scenarios have them: the interval is then for the mean of the paired differences, which removes
the noise the scenarios share; every outcome resamples the same pairs. Without pairs, the two
means are resampled independently. The intervals are :func:`scipy.stats.bootstrap`'s percentile
intervals from a Generator seeded by ``seed``, so a table is reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import bootstrap

from market.analysis.headline import Headline, Outcome
from market.analysis.outcomes import outcome_columns, run_outcomes, scenario_order
from market.batch.storage import scan

__all__ = ["bootstrap_mean_ci", "compare", "compare_runs", "paired_differences"]

RESAMPLES = 4000
BATCH = 100  # resamples held in memory at once: outcomes x BATCH x runs floats (100: a third faster
#   than 500 on 5,000 pairs, the same intervals: scipy draws the same indices batch by batch)


def _mean(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return samples[0].mean(axis=axis)


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return a.mean(axis=axis) - b.mean(axis=axis)


def _percentile_ci(samples: tuple[np.ndarray, ...], statistic, level: float, rng: np.random.Generator,
                   resamples: int = RESAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """scipy's percentile bootstrap (samples resampled independently of each other; the rows of a 2-D
    sample, one per outcome, share their resamples of its columns, the runs)."""
    # ``random_state``: the name scipy >= 1.10 takes (1.15 added ``rng`` for the same Generator)
    ci = bootstrap(samples, statistic, n_resamples=resamples, batch=BATCH, vectorized=True, axis=-1,
                   confidence_level=level, method="percentile", random_state=rng).confidence_interval
    return np.asarray(ci.low, dtype=float), np.asarray(ci.high, dtype=float)


def _paired_mean_ci(matrix: np.ndarray, level: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of each row's mean (one row per outcome, one column per pair), every
    row resampling the same pairs: scipy resamples the pairs' indices, and each resample's means
    are taken of a contiguous copy of its columns. (Handing scipy the matrix itself gives the same
    resamples, gathered into an array whose rows are strided: summing those was most of the time,
    three times that of the copy.)"""

    def means(pairs: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.take(matrix, pairs, axis=-1).mean(axis=axis)

    return _percentile_ci((np.arange(matrix.shape[1]),), means, level, rng)


def _differences(mine: pl.DataFrame, ref: pl.DataFrame, outcomes: list[str], level: float,
                 seed: int) -> dict[str, dict]:
    """Per outcome: diff (mine - ref), its interval, and the pairs used. Runs are paired on (point,
    replication): the interval is for the mean of the paired differences, all outcomes resampling
    the same pairs; an outcome with fewer than 2 pairs compares the two means unpaired."""
    pairs = mine.join(ref, on=["point", "replication"], how="inner", suffix="_ref")
    d = {o: (pairs[o] - pairs[f"{o}_ref"]) for o in outcomes}
    complete = [o for o in outcomes if d[o].null_count() == 0]  # these share one matrix of pairs
    out: dict[str, dict] = {}
    if pairs.height >= 2 and complete:
        matrix = np.vstack([d[o].to_numpy() for o in complete])
        low, high = _paired_mean_ci(matrix, level, np.random.default_rng(seed))
        for i, o in enumerate(complete):
            out[o] = {"diff": float(matrix[i].mean()), "diff_low": float(low[i]), "diff_high": float(high[i]),
                      "pairs": pairs.height}
    for k, o in enumerate(outcomes):
        if o in out:
            continue
        paired = d[o].drop_nulls().to_numpy()
        x, y = mine[o].drop_nulls().to_numpy(), ref[o].drop_nulls().to_numpy()
        rng = np.random.default_rng(seed + 1 + k)
        if paired.size >= 2:
            low, high = _percentile_ci((paired,), _mean, level, rng)
            out[o] = {"diff": float(paired.mean()), "diff_low": float(low), "diff_high": float(high),
                      "pairs": paired.size}
        elif x.size >= 2 and y.size >= 2:
            low, high = _percentile_ci((x, y), _mean_difference, level, rng)
            out[o] = {"diff": float(x.mean() - y.mean()), "diff_low": float(low), "diff_high": float(high),
                      "pairs": 0}
        else:
            out[o] = {"diff": None, "diff_low": None, "diff_high": None, "pairs": 0}
    return out


def bootstrap_mean_ci(values: np.ndarray, level: float = 0.95, resamples: int = RESAMPLES,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (:func:`scipy.stats.bootstrap`)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = _percentile_ci((values,), _mean, level, np.random.default_rng(seed), resamples)
    return float(low), float(high)


def paired_differences(pairs: Sequence[tuple[Mapping[str, float], Mapping[str, float]]],
                       labels: tuple[str, str] = ("a", "b")) -> pl.DataFrame:
    """Measures of paired runs (a and b, seed by seed, e.g. a lever's two settings), one row each, in
    a's order: the mean at a (column ``labels[0]``), the mean difference b - a, its standard error,
    and in how many pairs b is higher. For a quick check of a few runs; :func:`compare_runs`
    gives bootstrap intervals of sweeps' outcomes."""
    rows = []
    for measure in pairs[0][0]:
        a = np.array([x[measure] for x, _ in pairs], dtype=float)
        diff = np.array([y[measure] for _, y in pairs], dtype=float) - a
        rows.append({"measure": measure, labels[0]: float(a.mean()), "difference": float(diff.mean()),
                     "standard error": float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0,
                     f"{labels[1]} higher": f"{int(np.sum(diff > 0))}/{diff.size}"})
    return pl.DataFrame(rows)


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
    keyed = per_run.select("scenario", "point", "replication", *outcomes)
    ref = keyed.filter(pl.col("scenario") == base).drop("scenario")
    differences = {s: _differences(keyed.filter(pl.col("scenario") == s).drop("scenario"), ref, outcomes, level, seed)
                   for s in scenarios if s != base}
    rows = []
    for outcome in outcomes:
        base_x = ref[outcome].drop_nulls().to_numpy()
        for s in scenarios:
            x = keyed.filter(pl.col("scenario") == s)[outcome].drop_nulls().to_numpy()
            about = info.get(outcome, Outcome(outcome, "", outcome, 1.0))
            row = {"scenario": s, "outcome": outcome, "label": about.label, "unit": about.unit,
                   "baseline": base, "runs": x.size,
                   "mean": float(x.mean()) if x.size else None,
                   "p05": float(np.quantile(x, 0.05)) if x.size else None,
                   "p95": float(np.quantile(x, 0.95)) if x.size else None}
            if s == base:
                row |= {"diff": 0.0, "diff_low": 0.0, "diff_high": 0.0, "pairs": base_x.size}
            else:
                row |= differences[s][outcome]
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
