"""Global sensitivity analysis of a finished sweep: Morris screening or Sobol' indices (SALib).

    >>> from market.analysis.sensitivity import sensitivity
    >>> report = sensitivity("outputs/sensitivity")                 # doctest: +SKIP
    >>> report.table.filter(pl.col("rank") <= 3)                     # doctest: +SKIP

The sweep's design must be ``morris`` (elementary effects, :class:`market.batch.designs.Morris`) or
``saltelli`` (Sobol' indices, :class:`market.batch.designs.Saltelli`); kind, parameters and seed
are read from ``DIR/experiment.json``. Each final-month outcome
(:data:`market.analysis.outcomes.OUTCOMES`) is averaged over the replications of each design point, in
point order, and analysed per scenario with the design's own ``problem`` (names = dotted parameter
paths, bounds = [low, high]):

* **morris** — ``mu_star`` (mean absolute elementary effect), its bootstrap 95% interval
  ``mu_star_conf`` (half-width), ``mu`` (signed mean: the direction) and ``sigma`` (spread:
  non-linearity or interactions). An elementary effect is the change in the outcome when one
  parameter moves by ``delta`` (2/3 of its range with 4 levels) divided by ``delta``, so
  ``mu_star`` is in the outcome's units *per full range of the parameter*. With two or more
  replications, ``noise_mu_star`` is the ``mu_star`` a parameter without any effect would get from
  the seed noise alone (2 s / (delta sqrt(pi R)), s the pooled within-point standard deviation, R
  replications): parameters below it are not distinguishable from noise.
* **saltelli** — first-order ``S1`` and total ``ST`` Sobol' indices with 95% half-widths.

The table is written to ``DIR/sensitivity.csv`` and a bar chart (one panel per outcome,
parameters ordered by importance) to ``DIR/figures/sensitivity.png`` and ``.svg``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from market.analysis.headline import Headline, Outcome
from market.analysis.outcomes import OUTCOMES, run_outcomes
from market.analysis.report import compact
from market.analysis.style import SCENARIO_LABELS, apply_style, scenario_colours, shade
from market.batch.designs import DESIGNS
from market.batch.experiment import DesignSpec, Experiment
from market.batch.storage import scan
from market.scenario import validate_model

__all__ = ["METHODS", "SensitivityReport", "analyse", "plot_sensitivity", "point_means", "sensitivity"]

METHODS: dict[str, str] = {kind: d.analysis for kind, d in DESIGNS.items() if d.analysis}  # design kind -> SALib analysis
LEVEL = 0.95  # confidence level of the bootstrap intervals
RESAMPLES = 1000
MORRIS_COLUMNS = ("mu_star", "mu_star_conf", "mu", "sigma")
SOBOL_COLUMNS = ("S1", "S1_conf", "ST", "ST_conf")
NOISE, NOISE_LS = "#333333", (0, (4, 3))  # the seed-noise line of the figure


@dataclass
class SensitivityReport:
    """What :func:`sensitivity` found and wrote.

    ``table``: one row per (scenario, outcome, parameter), sorted by scenario, outcome and ``rank``
    (1 = most important). ``skipped``: outcomes not analysed (outcome -> why).
    """

    method: str  # "morris" or "sobol"
    table: pl.DataFrame
    scenarios: list[str]
    parameters: list[str]
    points: int  # design points per scenario
    replications: int
    runs: int
    steps: int | None
    csv: Path | None = None
    figures: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=lambda: dict(OUTCOMES))  # name -> label, unit, ...

    def about(self, outcome: str) -> Outcome:
        """An outcome's label and unit."""
        return self.outcomes.get(outcome, Outcome(outcome, "share", outcome, 100.0))


# ---------------------------------------------------------------------------------------------
# reading a sweep


def _experiment(folder: Path) -> Experiment:
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder; give the output folder of a finished morris or "
                         "saltelli sweep")
    marker = folder / "experiment.json"
    try:
        stored = json.loads(marker.read_text(encoding="utf-8"))
        exp = validate_model(Experiment, stored["experiment"], "the record")  # one line naming the field
    except FileNotFoundError:
        raise ValueError(f"{str(folder)!r} holds no experiment.json, so it is not the output folder of a sweep"
                         ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{str(marker)!r} cannot be read as a sweep's experiment record ({exc})") from None
    if exp.design is None:
        raise ValueError(f"the sweep in {str(folder)!r} has no design (it runs each scenario as it is); "
                         "sensitivity needs a design of kind morris or saltelli")
    if exp.design.kind not in METHODS:
        raise ValueError(f"the sweep in {str(folder)!r} has a {exp.design.kind!r} design; sensitivity needs "
                         "a design of kind morris (screening) or saltelli (Sobol' indices)")
    return exp


def point_means(tables: dict[str, pl.LazyFrame], replications: int, outcomes: Sequence[str],
                where: str = "the sweep", headline: Headline | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each outcome averaged over the replications of each (scenario, design point), in point order,
    with the design's parameter columns; and the per-run outcomes. Raises ValueError when a run of
    the design is missing or failed."""
    if "points" not in tables or "runs" not in tables:
        raise ValueError(f"{where} has no design table or no runs yet; run it with `market sweep FILE` first")
    points = tables["points"].collect().sort("scenario", "point", maintain_order=True)
    runs = tables["runs"].select("run_id", "scenario", "point", "replication", "status").collect()
    expected = points.select("scenario", "point").join(
        pl.DataFrame({"replication": list(range(replications))}, schema={"replication": pl.Int64}), how="cross")
    done = runs.filter(pl.col("status") == "complete").select("scenario", "point", "replication").unique()
    missing = expected.join(done, on=["scenario", "point", "replication"], how="anti")
    if missing.height:
        failed = runs.filter(pl.col("status") != "complete").height
        first = missing.row(0, named=True)
        raise ValueError(
            f"{where} is not finished: {missing.height} of {expected.height} runs are missing or failed "
            f"({failed} failed; first missing: {first['scenario']}-p{first['point']:04d}-r{first['replication']:03d}); "
            "every design point needs all its replications. Finish it with `market sweep FILE --resume`")
    per_run = run_outcomes(tables, headline).join(expected, on=["scenario", "point", "replication"], how="semi")
    means = (per_run.group_by("scenario", "point")
             .agg(*[pl.col(o).mean() for o in outcomes],
                  *[pl.col(o).null_count().alias(f"{o}__nulls") for o in outcomes]))
    means = points.join(means, on=["scenario", "point"], how="left", maintain_order="left")
    return means, per_run


def _noise(per_run: pl.DataFrame, outcomes: Sequence[str], replications: int, levels: int) -> pl.DataFrame:
    """Per (scenario, outcome): the mu_star of a parameter without effect, from seed noise alone."""
    delta = levels / (2 * (levels - 1))
    rows = []
    for (scenario,), g in per_run.group_by("scenario", maintain_order=True):
        for o in outcomes:
            var = g.group_by("point").agg(pl.col(o).var(ddof=1))[o].drop_nulls()
            noise = (2 * math.sqrt(float(var.mean())) / (delta * math.sqrt(math.pi * replications))
                     if replications >= 2 and var.len() else None)
            rows.append({"scenario": scenario, "outcome": o, "noise_mu_star": noise})
    return pl.DataFrame(rows, schema={"scenario": pl.String, "outcome": pl.String, "noise_mu_star": pl.Float64})


# ---------------------------------------------------------------------------------------------
# the analysis (SALib)


def analyse(means: pl.DataFrame, design: DesignSpec | Mapping[str, Any], outcomes: Sequence[str], seed: int = 0
            ) -> tuple[pl.DataFrame, dict[str, str]]:
    """Sensitivity indices of each outcome column of ``means`` (one row per design point, in point
    order; a ``scenario`` column, if any, is analysed scenario by scenario) to the design's
    parameters. ``design`` is the experiment's design (or its record: kind, samples, levels, parameters).

    Returns the tidy table (scenario, outcome, parameter, low, high, the indices, rank) and the
    outcomes skipped, with why. The points of ``means`` must be the design's, re-created with
    ``seed`` (the experiment's base seed), in order.
    """
    spec = design if isinstance(design, DesignSpec) else DesignSpec.model_validate(design)
    kind = spec.kind
    # the points table keeps the parameters in the experiment file's order, which the samplers' columns follow
    names = [c for c in means.columns if c in spec.parameters]
    if sorted(names) != sorted(spec.parameters):
        raise ValueError(f"the design table's parameters ({', '.join(names) or 'none'}) are not those of "
                         f"experiment.json ({', '.join(spec.parameters)})")
    built = spec.build(names)
    params = built.parameters
    problem = {"num_vars": len(names), "names": names, "bounds": [[params[n].low, params[n].high] for n in names]}
    if "scenario" not in means.columns:
        means = means.with_columns(pl.lit("").alias("scenario"))
    expected = np.array([[pt[n] for n in names] for pt in built.points(seed)], dtype=float)
    levels = spec.levels or 4
    frames, skipped = [], {}
    for (scenario,), g in means.group_by("scenario", maintain_order=True):
        g = g.sort("point")
        x = g.select(names).to_numpy().astype(float)
        if x.shape != expected.shape or not np.allclose(x, expected, rtol=1e-9, atol=1e-12):
            raise ValueError(f"scenario {scenario!r}: the design points ({x.shape[0]}) are not the {kind} design of "
                             f"experiment.json ({expected.shape[0]} points, seed {seed}) in order")
        if kind == "morris":
            bounds = np.array(problem["bounds"], dtype=float)
            unit = (x - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0])  # SALib reads only the step directions
            _check_trajectories(unit, names)
        for o in outcomes:
            y = g[o].to_numpy().astype(float)
            nulls = int(g[f"{o}__nulls"].sum()) if f"{o}__nulls" in g.columns else int(np.isnan(y).sum())
            if nulls or np.isnan(y).any():
                skipped[o] = (f"undefined (empty) in {nulls} runs"
                              f"{'' if not scenario else f' of {scenario}'}, so the design is incomplete for it")
                continue
            if kind == "morris":
                from SALib.analyze import morris as salib_morris

                si = salib_morris.analyze(problem, unit, y, num_resamples=RESAMPLES, conf_level=LEVEL,
                                          num_levels=levels, seed=seed)
                cols = {c: np.asarray(si[c], dtype=float) for c in MORRIS_COLUMNS}
                key = "mu_star"
            else:
                if np.ptp(y) == 0:
                    skipped[o] = f"the same ({y[0]:g}) at every design point: there is no variance to attribute"
                    continue
                from SALib.analyze import sobol as salib_sobol

                si = salib_sobol.analyze(problem, y, calc_second_order=True, num_resamples=RESAMPLES,
                                         conf_level=LEVEL, seed=seed)
                cols = {c: np.asarray(si[c], dtype=float) for c in SOBOL_COLUMNS}
                key = "ST"
            order = np.argsort(-np.nan_to_num(cols[key], nan=-np.inf), kind="stable")
            rank = np.empty(len(names), dtype=np.int64)
            rank[order] = np.arange(1, len(names) + 1)
            frames.append(pl.DataFrame({
                "scenario": [scenario] * len(names), "outcome": [o] * len(names), "parameter": names,
                "low": [float(params[n].low) for n in names], "high": [float(params[n].high) for n in names],
                **{c: v.tolist() for c, v in cols.items()}, "rank": rank.tolist()}))
    columns = MORRIS_COLUMNS if kind == "morris" else SOBOL_COLUMNS
    schema = {"scenario": pl.String, "outcome": pl.String, "parameter": pl.String, "low": pl.Float64,
              "high": pl.Float64, **dict.fromkeys(columns, pl.Float64), "rank": pl.Int64}
    table = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    order = {o: i for i, o in enumerate(outcomes)}
    scen = {s: i for i, s in enumerate(means["scenario"].unique(maintain_order=True).to_list())}
    table = (table.with_columns(pl.col("scenario").replace_strict(scen, return_dtype=pl.Int64).alias("_s"),
                                pl.col("outcome").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
             .sort("_s", "_o", "rank").drop("_s", "_o"))
    return table, skipped


def _check_trajectories(unit: np.ndarray, names: list[str]) -> None:
    """Consecutive points of a Morris trajectory must differ in exactly one parameter (an integer
    parameter whose range is too narrow for the levels can round two levels to one value)."""
    d = len(names)
    if unit.shape[0] % (d + 1):
        raise ValueError(f"{unit.shape[0]} design points are not whole Morris trajectories of {d + 1} points")
    steps = np.diff(unit.reshape(-1, d + 1, d), axis=1)  # trajectories x d steps x d parameters
    moved = (np.abs(steps) > 1e-12).sum(axis=2)
    if (moved != 1).any():
        t, s = map(int, np.argwhere(moved != 1)[0])
        flat = [names[j] for j in range(d) if abs(steps[t, s, j]) > 1e-12]
        why = ("no parameter changes (an integer parameter rounds two levels to one value: widen its range)"
               if not flat else f"{', '.join(flat)} change together")
        raise ValueError(f"Morris trajectory {t}, step {s}: {why}")


# ---------------------------------------------------------------------------------------------
# the figure


def _axis_unit(unit: str, method: str) -> tuple[float, str]:
    """Factor applied to an index of an outcome in ``unit``, and the x-axis label."""
    if method == "sobol":
        return 1.0, "share of the outcome's variance"
    return {"share": (100.0, "μ*, percentage points"), "usd": (1.0, "μ*, $ per PFLOP-hour"),
            "chips": (1.0, "μ*, chips")}[unit]


def plot_sensitivity(report: SensitivityReport) -> Figure:
    """Bars of the indices, one panel per outcome, parameters ordered by importance (top first)."""
    with mpl.rc_context():
        apply_style()
        return _draw(report)


def _draw(report: SensitivityReport) -> Figure:
    table, method = report.table, report.method
    outcomes = table["outcome"].unique(maintain_order=True).to_list()
    scenarios = [s for s in report.scenarios if s in set(table["scenario"].to_list())]
    colours = scenario_colours(scenarios)
    d = len(report.parameters)
    ncols = 2 if len(outcomes) > 1 else 1
    nrows = max(1, ceil(len(outcomes) / ncols))
    panel_h = 0.55 + 0.27 * d * max(1, len(scenarios))
    fig = Figure(figsize=(7.2 * ncols, panel_h * nrows + 1.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel()) if outcomes else []
    for ax in axes[len(outcomes):]:
        ax.set_axis_off()
    labels = {p: f"{p}  [{compact(lo)}–{compact(hi)}]"
              for p, lo, hi in table.select("parameter", "low", "high").unique("parameter").iter_rows()}
    key = "mu_star" if method == "morris" else "ST"
    below_noise = False
    for ax, outcome in zip(axes, outcomes, strict=False):
        sub = table.filter(pl.col("outcome") == outcome)
        factor, xlabel = _axis_unit(report.about(outcome).unit, method)
        importance = sub.group_by("parameter").agg(pl.col(key).max()).sort(key, descending=True, nulls_last=True)
        order = importance["parameter"].to_list()
        ypos = {p: i for i, p in enumerate(order)}
        width = 0.8 / len(scenarios)
        for k, scenario in enumerate(scenarios):
            rows = sub.filter(pl.col("scenario") == scenario)
            y = np.array([ypos[p] for p in rows["parameter"]]) + (k - (len(scenarios) - 1) / 2) * width
            colour = colours[scenario]
            if method == "morris":
                v = rows["mu_star"].to_numpy() * factor
                err = rows["mu_star_conf"].to_numpy() * factor
                noise = rows["noise_mu_star"][0] if "noise_mu_star" in rows.columns else None
                faint = (v <= noise * factor) if noise is not None else np.zeros(len(v), dtype=bool)
                below_noise |= bool(faint.any())
                ax.barh(y, v, height=width * 0.9, color=[shade(colour, 0.65) if f else colour for f in faint])
                ax.errorbar(v, y, xerr=err, fmt="none", ecolor="#333333", elinewidth=1.0, capsize=2.5)
                if noise is not None:  # one line per scenario, in its colour when there are several
                    ax.axvline(noise * factor, color=NOISE if len(scenarios) == 1 else colour, ls=NOISE_LS, lw=1.1,
                               zorder=3)
                    if k == 0:
                        ax.annotate("seed noise", (noise * factor, d - 0.1), xytext=(3, 0),
                                    textcoords="offset points", fontsize=8.5, color=NOISE, va="center")
            else:
                st, s1 = rows["ST"].to_numpy(), rows["S1"].to_numpy()
                ax.barh(y, st, height=width * 0.9, color=shade(colour, 0.6))
                ax.barh(y, np.clip(s1, 0, None), height=width * 0.45, color=colour)
                ax.errorbar(st, y, xerr=rows["ST_conf"].to_numpy(), fmt="none", ecolor="#333333", elinewidth=1.0,
                            capsize=2.5)
        ax.set_yticks(range(len(order)), [labels[p] for p in order], fontsize=9)
        ax.set_ylim(len(order) - 0.5 + (0.6 if method == "morris" else 0.0), -0.5)  # most important at the top;
        # a spare row at the bottom for the noise line's label
        ax.set_xlim(left=0)
        ax.set_xlabel(xlabel, fontsize=10)
        ax.set_title(report.about(outcome).label, loc="left")
        ax.grid(axis="y", visible=False)
        ax.tick_params(axis="y", length=0)
        if method == "morris" and outcome == "withheld_top_tier_chips":
            ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: compact(v)))
        if method == "morris" and not (sub["mu_star"].fill_nan(0.0).fill_null(0.0) > 0).any():
            ax.set_xlim(0, 1)
            ax.text(0.5, 0.5, "the same at every design point:\nno parameter moves it", transform=ax.transAxes,
                    ha="center", va="center", fontsize=10, color=NOISE)
    _legend_and_title(fig, report, scenarios, colours, below_noise)
    return fig


def _legend_and_title(fig: Figure, report: SensitivityReport, scenarios: list[str], colours: dict[str, str],
                      below_noise: bool) -> None:
    d, n, r = len(report.parameters), report.points, report.replications
    months = f", {report.steps} months" if report.steps else ""
    where = (SCENARIO_LABELS.get(scenarios[0], scenarios[0]) if len(scenarios) == 1
             else f"{len(scenarios)} scenarios" if scenarios else "")
    where = f", {where}" if where else ""
    if report.method == "morris":
        trajectories = n // (d + 1)
        title = f"Which parameters move the final-month outcomes? Morris screening{where}"
        note = (f"μ*: mean absolute change in the outcome when a parameter moves across its whole range [low–high] "
                f"(bars; whiskers: 95% CI).\n{trajectories} trajectories × {d + 1} points × {r} replication"
                f"{'s' if r != 1 else ''} = {report.runs} runs{months}; outcomes averaged over replications.")
        handles: list[Any] = []
        labels: list[str] = []
        if len(scenarios) > 1:
            handles += [Patch(color=colours[s]) for s in scenarios]
            labels += [SCENARIO_LABELS.get(s, s) for s in scenarios]
        if r >= 2:
            handles.append(Line2D([], [], color=NOISE, ls=NOISE_LS, lw=1.1))
            labels.append(f"seed noise: μ* of a parameter with no effect ({r} replications)")
            if below_noise:
                base = colours[scenarios[0]] if scenarios else "#555555"
                handles.append(Patch(color=shade(base, 0.65)))
                labels.append("pale bar: within seed noise")
    else:
        title = f"Which parameters drive the variance of the final-month outcomes? Sobol' indices{where}"
        note = (f"Pale bar: total index ST (whiskers: 95% CI); dark bar: first-order S1. ST − S1: interactions.\n"
                f"Saltelli design, {n} points × {r} replication{'s' if r != 1 else ''} = {report.runs} runs{months}; "
                "outcomes averaged over replications.")
        handles = [Patch(color=colours[s]) for s in scenarios] if len(scenarios) > 1 else []
        labels = [SCENARIO_LABELS.get(s, s) for s in scenarios] if len(scenarios) > 1 else []
    fig.suptitle(title + "\n ", x=0.01, ha="left", linespacing=0.9)  # a blank line below: room above the panels
    fig.supxlabel(note, fontsize=9.5, x=0.01, ha="left", color="#333333")
    if handles:
        fig.legend(handles, labels, loc="outside lower right", ncols=1, frameon=False, fontsize=9.5)


def _save(fig: Figure, target: Path, formats: Sequence[str]) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for fmt in formats:
            path = target / f"sensitivity.{fmt}"
            fig.savefig(path, format=fmt, bbox_inches="tight", dpi=150 if fmt == "png" else "figure")
            written.append(path)
    finally:
        fig.clear()
    return written


# ---------------------------------------------------------------------------------------------
# the entry point


def sensitivity(folder: str | os.PathLike, outcomes: Sequence[str] | None = None, *,
                formats: Sequence[str] = ("png", "svg"), write: bool = True) -> SensitivityReport:
    """Sensitivity indices of the final-month outcomes of the finished morris or saltelli sweep in
    ``folder``; writes ``folder/sensitivity.csv`` and ``folder/figures/sensitivity.<format>``
    (unless ``write`` is false). Raises ValueError naming the problem for a folder that is not a
    finished morris or saltelli sweep, or an unknown outcome."""
    folder = Path(folder)
    exp = _experiment(folder)
    tables = scan(folder)
    headline = Headline().resolved(tables)
    known = headline.outcomes()
    outcomes = list(outcomes) if outcomes else list(known)
    if unknown := [o for o in outcomes if o not in known]:
        raise ValueError(f"unknown outcome {', '.join(map(repr, unknown))}; allowed: {', '.join(known)}")
    design = exp.design
    replications = exp.replications
    means, per_run = point_means(tables, replications, outcomes, where=f"the sweep in {str(folder)!r}",
                                 headline=headline)
    table, skipped = analyse(means, design, outcomes, seed=exp.base_seed)
    method = METHODS[design.kind]
    if method == "morris":
        noise = _noise(per_run, outcomes, replications, design.levels or 4)
        table = table.join(noise, on=["scenario", "outcome"], how="left", maintain_order="left")
    scenarios = means["scenario"].unique(maintain_order=True).to_list()
    n_points = means.height // max(1, len(scenarios))
    parameters = [c for c in means.columns if c in design.parameters]
    report = SensitivityReport(method=method, table=table, scenarios=scenarios, parameters=parameters,
                               points=n_points, replications=replications, runs=per_run.height,
                               steps=exp.steps, skipped=skipped, outcomes=known)
    if write:
        report.csv = folder / "sensitivity.csv"
        table.write_csv(report.csv)
        if table.height:
            report.figures = _save(plot_sensitivity(report), folder / "figures", formats)
    return report
