"""The figure set of an experiment: shares, prices, withholding, concentration, sweeps, payoffs.

    >>> from market.analysis.figures import plot_experiment
    >>> report = plot_experiment("outputs/seed_scenarios")          # doctest: +SKIP
    >>> report.written[:2], report.skipped                           # doctest: +SKIP

Each figure has one function ``plot_<name>(tables)`` taking :func:`market.scan`'s dict of
LazyFrames and returning a matplotlib :class:`~matplotlib.figure.Figure`, or raising :class:`Skip`
when the experiment lacks what the figure needs (no design, one scenario, nothing withheld, ...).
:func:`plot_experiment` draws them all, saves each in every format and records the skips.

All numbers come from polars (lazy scans, ``group_by``/``agg``): bands are the 5th-95th
percentile across runs (replications, and design points if the experiment has a design). Figures
are plain :class:`~matplotlib.figure.Figure` objects rendered by the non-interactive Agg canvas,
never registered with pyplot, so drawing them changes no global backend or state (it is safe in a
notebook) and nothing stays open after saving.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import polars as pl
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, Locator, MaxNLocator

from market.analysis.headline import Headline, Outcome
from market.analysis.outcomes import run_outcomes, scenario_order
from market.analysis.report import compact
from market.analysis.style import (
    SCENARIO_LABELS,
    VENDOR_LABELS,
    apply_style,
    ordered_vendors,
    scenario_colours,
    shade,
    tier_colours,
    vendor_colours,
)
from market.batch.storage import scan
from market.contracts import PURPOSES
from market.economics.classes import CLASSES
from market.recording import weighted_rental_price

__all__ = ["FIGURES", "FRONTIER_LABS", "FigureReport", "Skip", "plot_chip_prices", "plot_experiment", "plot_hhi",
           "plot_lab_compute", "plot_lab_mix_over_time", "plot_lab_vendor_mix", "plot_prices",
           "plot_scenario_comparison", "plot_sweep_outcomes", "plot_vendor_shares", "plot_who_gains", "plot_withholding",
           "plot_withholding_payoff"]

FRONTIER_LABS = 5  # labs shown in the lab figures: the headline's lab and the others with the most compute
CLOUD_LABELS = {"aws": "AWS", "azure": "Azure", "gcp": "Google Cloud", "oracle": "Oracle", "coreweave": "CoreWeave",
                "neoclouds": "other neoclouds", "meta_dc": "Meta (own DCs)", "xai_dc": "xAI (own DCs)"}
LOW, HIGH = 0.05, 0.95


class Skip(Exception):
    """The experiment lacks what a figure needs; the message says what."""


@dataclass
class FigureReport:
    """What :func:`plot_experiment` did: files written, and figures skipped (name -> why)."""

    written: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# data helpers (polars)


def _need(tables: dict[str, pl.LazyFrame], *names: str) -> None:
    missing = [n for n in names if n not in tables]
    if missing:
        raise Skip(f"the experiment has no {', '.join(missing)} table{'s' if len(missing) > 1 else ''} "
                   "(no complete run wrote one)")


def _complete(tables: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    """run_id, scenario, point, replication of every complete run."""
    _need(tables, "runs")
    return tables["runs"].filter(pl.col("status") == "complete").select("run_id", "scenario", "point", "replication")


def _scenario_order(tables: dict[str, pl.LazyFrame]) -> list[str]:
    """Scenarios with complete runs, in the experiment's order."""
    _need(tables, "runs")
    order = scenario_order(tables)
    if not order:
        raise Skip("the experiment has no complete run yet")
    return order


def _runs_per_scenario(tables: dict[str, pl.LazyFrame]) -> str:
    n = _complete(tables).group_by("scenario").len().collect()["len"]
    return f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}"


def _dated(tables: dict[str, pl.LazyFrame], table: str) -> pl.LazyFrame:
    """A table's rows of complete runs, with the calendar ``date`` of their step."""
    _need(tables, "steps", table)
    dates = tables["steps"].select("run_id", "step", "date")
    return (tables[table].join(_complete(tables).select("run_id"), on="run_id", how="semi")
            .join(dates, on=["run_id", "step"], how="left"))


def _band(lf: pl.LazyFrame, by: Sequence[str], value: str | pl.Expr) -> pl.DataFrame:
    """Mean, 5th and 95th percentile and count of ``value`` per group (across runs)."""
    v = pl.col(value) if isinstance(value, str) else value
    return (lf.group_by(*by).agg(v.mean().alias("mean"), v.quantile(LOW, "linear").alias("lo"),
                                 v.quantile(HIGH, "linear").alias("hi"), v.count().alias("n"))
            .sort(*by).collect())


def _final_step(tables: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    return tables["steps"].group_by("run_id").agg(pl.col("step").max().alias("last"))


def _parameters(tables: dict[str, pl.LazyFrame]) -> list[str]:
    """The design's parameter columns (dotted paths) of the points table; empty without a design."""
    if "points" not in tables:
        return []
    return [c for c in tables["points"].collect_schema().names() if c not in ("scenario", "point")]


def _largest_labs(active: pl.LazyFrame, headline: Headline) -> list[str]:
    """The headline's lab, then the labs with the most compute in ``active`` (run, lab, pflops), at
    most :data:`FRONTIER_LABS` of them."""
    size = (active.group_by("lab").agg(pl.col("pflops").sum()).sort(["pflops", "lab"], descending=[True, False])
            .collect())
    present = size["lab"].to_list()
    first = [headline.lab] if headline.lab in present else []
    return (first + [lab for lab in present if lab != headline.lab])[:FRONTIER_LABS]


def _headline(tables: dict[str, pl.LazyFrame], headline: Headline | None) -> Headline:
    """The entities the figures name, resolved against the tables (:meth:`Headline.resolved`)."""
    return (headline or Headline()).resolved(tables)


def _run_outcomes(tables: dict[str, pl.LazyFrame], headline: Headline) -> pl.DataFrame:
    """:func:`run_outcomes` of the tables, or the table ``outcomes`` when the caller computed them
    already (the sweep browser computes every run's once, when it opens a folder)."""
    if "outcomes" in tables:
        return tables["outcomes"].collect()
    return run_outcomes(tables, headline)


def _outcomes_with_design(tables: dict[str, pl.LazyFrame], params: list[str], headline: Headline) -> pl.DataFrame:
    per_run = _run_outcomes(tables, headline)
    points = tables["points"].select("scenario", "point", *params).collect()
    return per_run.join(points, on=["scenario", "point"], how="left")


# ---------------------------------------------------------------------------------------------
# drawing helpers (matplotlib)


def _styled(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw under the package's style (:func:`apply_style`), leaving the caller's rcParams as they were."""

    @functools.wraps(draw)
    def wrapper(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
        with mpl.rc_context():
            apply_style()
            fig = draw(tables, headline)
        _ticks_once_per_view(fig)
        return fig

    return wrapper


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _grid(n: int, ncols: int = 3, panel: tuple[float, float] = (4.4, 3.1), sharex: bool = True,
          sharey: bool = True) -> tuple[Figure, list[Axes], list[Axes]]:
    """A figure with ``n`` panels (``ncols`` a row at most) and the grid's spare axes, hidden
    (:func:`_legend` puts the legend in the first one)."""
    ncols = max(1, min(ncols, n))
    nrows = ceil(n / ncols)
    fig = _figure(panel[0] * ncols, panel[1] * nrows + 0.9)
    axes = list(fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_axis_off()
    for i, ax in enumerate(axes[:n]):
        if i + ncols >= n:  # lowest panel of its column: it shows the shared x axis
            ax.xaxis.set_tick_params(labelbottom=True)
    return fig, axes[:n], axes[n:]


def _label_bottom(axes: list[Axes], label: str) -> None:
    """One x label for a grid of panels sharing their x axis, centred below them."""
    for ax in axes:
        ax.set_xlabel("")
    axes[0].figure.supxlabel(label, fontsize=11)


def _line_band(ax: Axes, df: pl.DataFrame, x: str, colour, label: str | None = None, ls: str = "-",
               lw: float = 2.0, alpha: float = 0.16, marker: str | None = None) -> None:
    # arrays, not lists: matplotlib converts an array of dates at once, a list date by date
    xs = df[x].to_numpy() if df.schema[x].is_temporal() else df[x].to_list()
    ax.fill_between(xs, df["lo"].to_numpy(), df["hi"].to_numpy(), color=colour, alpha=alpha, linewidth=0)
    ax.plot(xs, df["mean"].to_numpy(), color=colour, lw=lw, ls=ls, label=label, marker=marker, markersize=5)


def _lines_by_scenario(stats: pl.DataFrame, key: str, order: list[str], keys: list[str], colours: dict,
                       labels: dict[str, str], ylabel: str, title: str, legend_title: str,
                       top: float | None = None) -> Figure:
    """One panel per scenario, a line with its band per value of ``key`` over time (``stats``:
    scenario, ``key``, date, mean, lo, hi, as :func:`_band` gives), the y axis from 0 to ``top``
    (without one, as :func:`_cover` leaves it)."""
    groups = stats.partition_by("scenario", key, as_dict=True)
    fig, axes, spare = _grid(len(order))
    for ax, sc in zip(axes, order):
        for k in keys:
            if (sc, k) in groups:
                _line_band(ax, groups[sc, k], "date", colours[k])
        ax.set_title(_scenario_title(sc))
        ax.set_ylim(0, top)  # the y axis is shared: the first panel's range (its data, or up to top)
        _year_axis(ax)
    if top is None:
        _cover(axes)
    _label_left(axes, _ncols(axes), ylabel)
    fig.suptitle(title)
    _legend(_top_right(axes), [_handle(colours[k]) for k in keys], [labels.get(k, k) for k in keys], legend_title,
            spare)
    return fig


def _cover(axes: Sequence[Axes]) -> None:
    """Raise the y axis ``axes`` share, from 0 to the first panel's automatic top (set as it was
    drawn), to cover every panel's values when one reaches above it: then from 0 to the automatic
    top of all of them. (A dearer scenario's lines were cut off at the first panel's top.)"""
    first = axes[0]
    if max(ax.dataLim.y1 for ax in axes) > first.get_ylim()[1]:
        first.autoscale(axis="y")  # over the data of every axis sharing y
        first.set_ylim(bottom=0)


def _intervals(ax: Axes, groups: dict[tuple, pl.DataFrame], keys: list[tuple], x: str, colours: dict) -> None:
    """Mean lines against ``x``: one line with a band, or several with dodged 5-95% error bars
    (several bands on top of each other would hide each other)."""
    keys = [k for k in keys if k in groups]
    if len(keys) == 1:
        _line_band(ax, groups[keys[0]], x, colours[keys[0]], marker="o", alpha=0.18)
        return
    numeric = groups[keys[0]].schema[x].is_numeric()
    span = (max(g[x].max() for g in groups.values()) - min(g[x].min() for g in groups.values())) if numeric else 0
    for i, k in enumerate(keys):
        df = groups[k]
        mean, lo, hi = (df[c].to_numpy() for c in ("mean", "lo", "hi"))
        xs = df[x].to_numpy() + (i - (len(keys) - 1) / 2) * 0.015 * span if numeric else df[x].to_list()
        ax.errorbar(xs, mean, yerr=np.vstack([mean - lo, hi - mean]), color=colours[k], marker="o", markersize=5,
                    lw=2, elinewidth=1.2, capsize=3, alpha=0.9)


def _outcome_axis(axis, outcome: str) -> None:
    """Chips as 20k / 1.5M, so that long numbers do not collide."""
    if outcome == "withheld_top_tier_chips" and max(abs(v) for v in axis.get_view_interval()) >= 1e4:
        axis.set_major_formatter(_kilo)


class _SameView(Locator):
    """A locator that asks ``locator`` again only when the view interval or the room for ticks
    changes (an automatic locator picks as many ticks as the axis' length holds, and the layout
    resizes the axes while it draws).

    Matplotlib asks an axis for its ticks a dozen times per draw (layout, tight boxes, the draw
    itself), and the date locators walk a dateutil rrule each time: that was half of drawing a
    figure of dates. The ticks are the same, only computed once per view.
    """

    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self._view: tuple[float, float, int] | None = None
        self._ticks: Sequence[float] = ()

    def set_axis(self, axis) -> None:
        super().set_axis(axis)
        self.locator.set_axis(axis)

    def __call__(self) -> Sequence[float]:
        view = (*self.axis.get_view_interval(), self.axis.get_tick_space())
        if view != self._view:
            self._view, self._ticks = view, self.locator()
        return self._ticks

    def tick_values(self, vmin: float, vmax: float) -> Sequence[float]:
        return self.locator.tick_values(vmin, vmax)

    def nonsingular(self, vmin: float, vmax: float) -> tuple[float, float]:
        return self.locator.nonsingular(vmin, vmax)

    def view_limits(self, vmin: float, vmax: float) -> tuple[float, float]:
        return self.locator.view_limits(vmin, vmax)


@contextlib.contextmanager
def _seeded_jitter() -> Iterator[None]:
    """Seaborn's strip plot jitters with numpy's global generator: seed it for the call (the same
    pixels every time), and leave the caller's state as it was."""
    state = np.random.get_state()
    np.random.seed(0)  # seaborn 0.13 draws its jitter from the global generator
    try:
        yield
    finally:
        np.random.set_state(state)


def _ticks_once_per_view(fig: Figure) -> None:
    """Every axis of ``fig`` whose major ticks come from an automatic locator (numbers or dates)
    asks it once per view (:class:`_SameView`); fixed and colour-bar ticks are left alone."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            locator = axis.get_major_locator()
            if isinstance(locator, (MaxNLocator, mdates.DateLocator)) and not isinstance(locator, _SameView):
                axis.set_major_locator(_SameView(locator))


def _year_axis(ax: Axes) -> None:
    ax.xaxis.set_major_locator(_SameView(mdates.YearLocator()))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.set_xlabel("")


def _legend(anchor: Axes, handles: list, labels: list[str], title: str | None, spare: list[Axes]) -> None:
    """In the grid's first spare slot if it has one, else right of ``anchor`` (the top-right panel).

    An axes' legend, not a figure's: the constrained layout makes room for it below the suptitle.
    """
    if spare:
        spare[0].legend(handles, labels, title=title, loc="center", frameon=False, alignment="left")
    else:
        anchor.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(1.03, 1.0), frameon=False,
                      alignment="left", borderaxespad=0.0)


def _top_right(axes: list[Axes]) -> Axes:
    return axes[min(_ncols(axes), len(axes)) - 1]


def _label_left(axes: list[Axes], ncols: int, label: str) -> None:
    for i, ax in enumerate(axes):
        ax.set_ylabel(label if i % ncols == 0 else "")


def _ncols(axes: list[Axes]) -> int:
    return axes[0].get_subplotspec().get_gridspec().ncols


def _scenario_title(s: str) -> str:
    return SCENARIO_LABELS.get(s, s)


def _band_note(n: str, what: str = "runs") -> str:
    return f"line: mean; band: 5–95%\nof {n} {what}"


def _handle(colour, ls: str = "-", band: bool = True) -> tuple | Line2D:
    line = Line2D([], [], color=colour, lw=2, ls=ls, marker=None if band else "o")
    return (Patch(color=colour, alpha=0.16, linewidth=0), line) if band else line


def _scale(values: Iterable[float], unit: str) -> tuple[float, str]:
    top = max((abs(v) for v in values if v is not None), default=0.0)
    for factor, word in ((1e9, "billion"), (1e6, "million"), (1e3, "thousand")):
        if top >= factor:
            return factor, f"{word} {unit}"
    return 1.0, unit


_thousands = FuncFormatter(lambda v, _: f"{v:,.0f}")


_kilo = FuncFormatter(lambda v, _: compact(v))  # chip counts that fit a tick or a heatmap cell


# ---------------------------------------------------------------------------------------------
# 1. vendor shares


def share_series(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> pl.LazyFrame:
    """scenario, run_id, vendor, date, value: each vendor's share of compute under contract (%),
    per complete run and month (what :func:`plot_vendor_shares` draws bands of)."""
    return _dated(tables, "shares").select("scenario", "run_id", "vendor", "date",
                                           (pl.col("compute_share") * 100).alias("value"))


@_styled
def plot_vendor_shares(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """Each vendor's share of compute under contract to labs over time, one panel per scenario."""
    order = _scenario_order(tables)
    stats = _band(_series(tables, "vendor_shares", headline), ["scenario", "vendor", "date"], "value")
    if stats.is_empty():
        raise Skip("the shares table is empty")
    vendors = ordered_vendors(stats["vendor"].unique())
    return _lines_by_scenario(stats, "vendor", order, vendors, vendor_colours(vendors), VENDOR_LABELS,
                              "Share of compute under contract (%)", "Vendor shares of the compute labs rent",
                              f"Vendor\n({_band_note(_runs_per_scenario(tables), 'runs per scenario')})")


# ---------------------------------------------------------------------------------------------
# 2. prices


def price_series(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> pl.LazyFrame:
    """scenario, run_id, performance_class, date, value: the rental price per PFLOP-hour of each
    class (its chips' prices weighted by installed chips), per complete run and month (what
    :func:`plot_prices` draws bands of)."""
    priced = _dated(tables, "prices").filter(pl.col("rental_price_usd_per_pflop_hour").is_not_null(),
                                             pl.col("installed_chips") > 0)
    return priced.group_by("scenario", "run_id", "performance_class", "date").agg(
        weighted_rental_price().alias("value"))


@_styled
def plot_prices(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """Rental price per PFLOP-hour by performance class over time (installed-weighted per run), per scenario."""
    order = _scenario_order(tables)
    stats = _band(_series(tables, "prices", headline), ["scenario", "performance_class", "date"], "value")
    if stats.is_empty():
        raise Skip("no rental prices were recorded")
    classes = [t for t in CLASSES if t in set(stats["performance_class"])]
    labels = {"frontier": "frontier class (near the best chips)", "mainstream": "mainstream"}
    return _lines_by_scenario(stats, "performance_class", order, classes, tier_colours(classes), labels,
                              "USD per PFLOP-hour", "Cloud rental price of compute by performance class",
                              f"Class (chips' prices weighted by\ninstalled chips; "
                              f"{_band_note(_runs_per_scenario(tables), 'runs per scenario')})")


@_styled
def plot_chip_prices(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """Vendors' list price per chip over time, by product (baseline scenario, or the first one)."""
    order = _scenario_order(tables)
    scenario = "baseline" if "baseline" in order else order[0]
    prices = (_dated(tables, "prices").filter(pl.col("scenario") == scenario, pl.col("on_sale"))
              .group_by("product", "vendor", "date").agg(pl.col("chip_price_usd").mean().alias("price"),
                                                         pl.col("tier").mode().first().alias("tier"),
                                                         pl.col("run_id").n_unique().alias("runs"),
                                                         (pl.col("rental_price_usd_per_chip_hour")
                                                          / pl.col("rental_price_usd_per_pflop_hour")).max()
                                                         .alias("pflops"))
              .sort("vendor", "product", "date").collect())
    if prices.is_empty():
        raise Skip(f"no chip was on sale in scenario {scenario!r}")
    vendors = ordered_vendors(prices["vendor"].unique())
    colours = vendor_colours(vendors)
    # a vendor's products from oldest (lightest) to newest (full colour): by first month on sale,
    # then (products already on sale at the start) by PFLOP/s per chip, newer chips being faster
    rank = {v: i for i, v in enumerate(vendors)}
    release = (prices.group_by("vendor", "product").agg(pl.col("date").min().alias("first"), pl.col("pflops").max())
               .sort(pl.col("vendor").replace_strict(rank, return_dtype=pl.Int64), "first", "pflops",
                     nulls_last=False)
               .with_columns(pl.int_range(pl.len()).over("vendor").alias("k"), pl.len().over("vendor").alias("m"))
               .with_columns(((pl.col("m") - 1 - pl.col("k")) / (pl.col("m") - 1).clip(1) * 0.6).alias("light")))
    fig = _figure(10.5, 5.2)
    ax = fig.subplots()
    handles, labels = [], []
    groups = prices.partition_by("product", as_dict=True)
    for row in release.iter_rows(named=True):
        df = groups[(row["product"],)]
        colour = shade(colours[row["vendor"]], row["light"])
        dates, price = df["date"].to_list(), df["price"].to_list()
        ax.plot(dates, price, color=colour, lw=2, ls=(0, (4, 2)))  # whole life dashed...
        top = df.select(pl.when(pl.col("tier") == "top").then(pl.col("price")))["price"].to_list()
        ax.plot(dates, top, color=colour, lw=2.4, solid_capstyle="butt")  # ...solid while top tier
        handles.append(Line2D([], [], color=colour, lw=2.4))
        labels.append(f"{VENDOR_LABELS.get(row['vendor'], row['vendor'])}: {row['product']}")
    handles += [Line2D([], [], color="none"), Line2D([], [], color="0.3", lw=2.4),
                Line2D([], [], color="0.3", lw=2, ls=(0, (4, 2)))]
    labels += ["", "solid: top tier", "dashed: previous tier"]
    ax.set_ylim(0, None)
    ax.yaxis.set_major_formatter(_kilo)
    ax.set_ylabel("List price (USD per chip)")
    _year_axis(ax)
    runs = prices["runs"].max()
    ax.set_title(f"scenario: {_scenario_title(scenario)} · mean of {runs} run{'s' if runs > 1 else ''} · "
                 "chips on sale only", fontsize=10, fontweight="normal")
    fig.suptitle("Chip list prices by product")
    _legend(ax, handles, labels, "Product (older: lighter)", [])
    return fig


# ---------------------------------------------------------------------------------------------
# 3. withholding and labs' vendor mix


@_styled
def plot_withholding(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """Top-tier chips withheld per month over time, one panel per scenario that withholds.

    When the design sweeps a withholding setting (a few values), one mean line per value instead
    of one band over all of them.
    """
    order = _scenario_order(tables)
    _need(tables, "steps")
    if "withholding" not in tables:
        raise Skip("no run withheld any chip (no withholding rows)")
    steps = tables["steps"].join(_complete(tables).select("run_id", "point"), on="run_id", how="inner")
    stats = _band(steps, ["scenario", "date"], "withheld_top_tier_chips")
    totals = stats.group_by("scenario").agg(pl.col("hi").max(), pl.col("mean").max())
    withholding = set(totals.filter((pl.col("hi") > 0) | (pl.col("mean") > 0))["scenario"])
    if not withholding:
        raise Skip("no scenario withholds top-tier chips in these runs")
    shown = [s for s in order if s in withholding]
    colours = scenario_colours(order)
    swept = [p for p in _parameters(tables) if "withholding" in p]
    p = swept[0] if swept else None
    values: list = []
    if p is not None:
        values = sorted(tables["points"].select(pl.col(p).unique()).collect()[p].drop_nulls().to_list())
        if not 2 <= len(values) <= 6:
            p, values = None, []
    wide = len(shown) == 1
    fig, axes, _ = _grid(len(shown), ncols=2, panel=(9.0 if wide else 6.0, 4.2 if wide else 3.6))
    runs = _runs_per_scenario(tables)
    if p is None:
        groups = stats.partition_by("scenario", as_dict=True)
        for ax, sc in zip(axes, shown):
            _line_band(ax, groups[(sc,)], "date", colours[sc], alpha=0.22)
        handles, labels = [_handle("0.35")], [f"mean of {runs} runs;\nband: 5–95% of runs"]
        title = None
    else:
        by_value = _band(steps.join(tables["points"].select("scenario", "point", p), on=["scenario", "point"]),
                         ["scenario", p, "date"], "withheld_top_tier_chips")
        palette = dict(zip(values, mpl.colormaps["plasma"](np.linspace(0.0, 0.78, len(values)))))
        groups = by_value.partition_by("scenario", p, as_dict=True)
        for ax, sc in zip(axes, shown):
            for v in values:
                if (sc, v) in groups:
                    ax.plot(groups[sc, v]["date"].to_list(), groups[sc, v]["mean"].to_list(), color=palette[v], lw=2)
        n = by_value["n"].min()
        handles = [Line2D([], [], color=palette[v], lw=2) for v in values]
        labels = [_tick(v) for v in values]
        title = f"{p}\n(line: mean of {n} runs per value)"
    for ax, sc in zip(axes, shown):
        ax.set_title(_scenario_title(sc))
        ax.set_ylim(0, None)
        ax.yaxis.set_major_formatter(_kilo)
        _year_axis(ax)
    _label_left(axes, _ncols(axes), "Chips withheld per month")
    fig.suptitle("Top-tier chips withheld from labs each month")
    none = [_scenario_title(s) for s in order if s not in withholding]
    if none:
        handles.append(Line2D([], [], color="none"))
        labels.append("never withheld in:\n" + "\n".join(none))
    _legend(_top_right(axes), handles, labels, title, [])
    return fig


@_styled
def plot_lab_vendor_mix(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """The largest labs' compute under contract at the final month, by vendor, per scenario (from
    ``lab_mix``): the headline's lab first, then the others with the most compute."""
    order = _scenario_order(tables)
    _need(tables, "steps", "lab_mix")
    headline = _headline(tables, headline)
    runs = _complete(tables).select("run_id", "scenario")
    active = (tables["lab_mix"].join(runs.select("run_id"), on="run_id", how="semi")
              .join(_final_step(tables), on="run_id").filter(pl.col("step") == pl.col("last"))
              .group_by("run_id", "lab", "vendor").agg(pl.col("pflops").sum()))
    labs = _largest_labs(active, headline)
    if not labs:
        raise Skip("no lab holds a contract at the final month")
    active = active.filter(pl.col("lab").is_in(labs))
    vendors = ordered_vendors(active.select(pl.col("vendor").unique()).collect()["vendor"])
    # every (run, lab, vendor), zero where no contract, so that means across runs count the zeros
    grid = (runs.join(pl.LazyFrame({"lab": labs}), how="cross").join(pl.LazyFrame({"vendor": vendors}), how="cross"))
    full = grid.join(active, on=["run_id", "lab", "vendor"], how="left").with_columns(pl.col("pflops").fill_null(0.0))
    mix = (full.group_by("scenario", "lab", "vendor").agg(pl.col("pflops").mean())
           .with_columns(pl.col("vendor").replace_strict({v: i for i, v in enumerate(vendors)},
                                                         return_dtype=pl.Int64).alias("v"))
           .sort("scenario", "lab", "v")
           .with_columns((pl.col("pflops").cum_sum().over("scenario", "lab") - pl.col("pflops")).alias("left"),
                         (pl.col("pflops") / pl.col("pflops").sum().over("scenario", "lab")).alias("share"))
           .collect())
    factor, unit = _scale(mix.group_by("scenario", "lab").agg(pl.col("pflops").sum())["pflops"], "PFLOP/s")
    widest = mix.group_by("scenario", "lab").agg(pl.col("pflops").sum())["pflops"].max()
    colours = vendor_colours(vendors)
    y = {lab: i for i, lab in enumerate(labs)}
    fig, axes, spare = _grid(len(order), panel=(4.6, 0.42 * len(labs) + 1.3))
    groups = mix.partition_by("scenario", "vendor", as_dict=True)
    for ax, sc in zip(axes, order):
        for v in vendors:
            df = groups.get((sc, v))
            if df is None:
                continue
            ax.barh([y[lab] for lab in df["lab"]], (df["pflops"] / factor).to_list(),
                    left=(df["left"] / factor).to_list(), color=colours[v], height=0.7, edgecolor="white",
                    linewidth=0.5)
            for lab, left, width, share in df.select("lab", "left", "pflops", "share").iter_rows():
                if width >= 0.09 * widest:
                    ax.text((left + width / 2) / factor, y[lab], f"{share:.0%}", ha="center", va="center",
                            fontsize=8, color="white" if v in ("nvidia", "google", "amd") else "black")
        ax.set_yticks(range(len(labs)), [headline.name(lab) for lab in labs])
        ax.set_ylim(len(labs) - 0.5, -0.5)  # the headline's lab on top
        ax.grid(axis="y", visible=False)
        ax.set_title(_scenario_title(sc))
    _label_bottom(axes, f"Compute under contract ({unit})")
    last = tables["steps"].select(pl.col("date").max()).collect().item()
    fig.suptitle(f"The largest labs' compute by chip vendor in the final month ({last:%b %Y})")
    _legend(_top_right(axes), [Patch(color=colours[v]) for v in vendors], [VENDOR_LABELS.get(v, v) for v in vendors],
            f"Vendor (mean of {_runs_per_scenario(tables)} runs;\nlabels: share of the lab's compute)", spare)
    return fig


LAB_COMPUTE_LABS = 4  # rows of the lab-compute figure


@_styled
def plot_lab_compute(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """The largest labs' compute under contract over time, by vendor and purpose (from ``lab_mix``):
    one row per lab (the headline's lab first), one column per scenario; stacked areas of the mean
    across runs, each vendor's colour dark for training and light for inference."""
    order = _scenario_order(tables)
    _need(tables, "steps", "lab_mix")
    headline = _headline(tables, headline)
    mix = _dated(tables, "lab_mix")
    last = _final_step(tables)
    final = (mix.join(last, on="run_id").filter(pl.col("step") == pl.col("last"))
             .group_by("run_id", "lab").agg(pl.col("pflops").sum()))
    labs = _largest_labs(final, headline)[:LAB_COMPUTE_LABS]
    if not labs:
        raise Skip("no lab holds a contract")
    runs = _complete(tables).group_by("scenario").len().collect()
    n_runs = dict(runs.iter_rows())
    # mean over runs (a run without a row holds none of it): sum, then divide by the runs
    sums = (mix.filter(pl.col("lab").is_in(labs)).group_by("scenario", "lab", "vendor", "purpose", "date")
            .agg(pl.col("pflops").sum()).collect()
            .with_columns(pl.col("pflops") / pl.col("scenario").replace_strict(n_runs, return_dtype=pl.Float64)))
    vendors = ordered_vendors(sums["vendor"].unique())
    layers = [(v, u) for v in vendors for u in PURPOSES]
    dates = sorted(sums["date"].unique().to_list())
    factor, unit = _scale(sums.group_by("scenario", "lab", "date").agg(pl.col("pflops").sum())["pflops"], "PFLOP/s")
    colours = vendor_colours(vendors)
    fig = _figure(3.3 * len(order) + 2.2, 2.3 * len(labs) + 1.2)
    axes = fig.subplots(len(labs), len(order), sharex=True, sharey="row", squeeze=False)
    groups = sums.partition_by("scenario", "lab", as_dict=True)
    for i, lab in enumerate(labs):
        for j, sc in enumerate(order):
            ax = axes[i, j]
            df = groups.get((sc, lab))
            if df is not None:
                ys = []
                for v, u in layers:
                    sub = dict(df.filter(pl.col("vendor") == v, pl.col("purpose") == u).select("date", "pflops").iter_rows())
                    ys.append([sub.get(d, 0.0) / factor for d in dates])
                ax.stackplot(dates, ys, colors=[colours[v] if u == "training" else shade(colours[v], 0.55)
                                                for v, u in layers], linewidth=0)
            if i == 0:
                ax.set_title(_scenario_title(sc), fontsize=11)
            if j == 0:
                ax.set_ylabel(f"{headline.name(lab)}\n({unit})", fontsize=10)
            _year_axis(ax)
            ax.set_ylim(0, None)  # the row's y axis: the first scenario's range, raised below if need be
        _cover(axes[i])
    handles = [Patch(color=colours[v] if u == "training" else shade(colours[v], 0.55)) for v, u in layers]
    labels = [f"{VENDOR_LABELS.get(v, v)}, {u}" for v, u in layers]
    axes[0, -1].legend(handles, labels, title=f"Vendor, purpose\n(mean of {_runs_per_scenario(tables)} runs)",
                       loc="upper left", bbox_to_anchor=(1.03, 1.0), frameon=False, alignment="left",
                       borderaxespad=0.0)
    fig.suptitle("The largest labs' compute under contract by chip vendor and purpose")
    return fig


# ---------------------------------------------------------------------------------------------
# 4. concentration


@_styled
def plot_hhi(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """Herfindahl-Hirschman index of vendor compute shares over time, one line per scenario."""
    order = _scenario_order(tables)
    _need(tables, "steps")
    steps = tables["steps"].join(_complete(tables).select("run_id"), on="run_id", how="semi")
    stats = _band(steps, ["scenario", "date"], "hhi")
    colours = scenario_colours(order)
    fig = _figure(10.0, 4.8)
    ax = fig.subplots()
    groups = stats.partition_by("scenario", as_dict=True)
    for sc in order:
        if (sc,) in groups:
            _line_band(ax, groups[(sc,)], "date", colours[sc], alpha=0.09)
    ax.yaxis.set_major_formatter(_thousands)
    ax.set_ylabel("HHI (0–10,000)")
    _year_axis(ax)
    fig.suptitle("Concentration of the chip market: HHI of vendor compute shares")
    _legend(ax, [_handle(colours[s]) for s in order], [_scenario_title(s) for s in order],
            f"Scenario\n({_band_note(_runs_per_scenario(tables), 'runs each')})", [])
    return fig


# ---------------------------------------------------------------------------------------------
# 5. sweeps


def _is_numeric(df: pl.DataFrame, col: str) -> bool:
    return df.schema[col].is_numeric()


@_styled
def plot_sweep_outcomes(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """Final-month outcomes against the design's parameters.

    One parameter: mean and 90% interval per outcome. Two parameters on a full grid: a heatmap of
    the mean per outcome (x = first parameter, y = second). Otherwise (sampled designs, more
    parameters): each design point's mean outcome against each parameter.
    """
    params = _parameters(tables)
    if not params:
        raise Skip("the experiment has no design parameters (each scenario runs as it is)")
    order = _scenario_order(tables)
    headline = _headline(tables, headline)
    info = headline.outcomes()
    data = _outcomes_with_design(tables, params, headline)
    outcomes = list(info)
    scaled = data.with_columns(pl.col(c) * info[c].factor for c in outcomes)
    colours = scenario_colours(order)
    n_unique = {p: scaled[p].n_unique() for p in params}
    n_points = scaled.select("scenario", "point").unique().group_by("scenario").len()["len"].max()

    if len(params) == 1:
        return _sweep_lines(scaled, params[0], order, colours, info)
    if len(params) == 2 and n_points == n_unique[params[0]] * n_unique[params[1]] and max(n_unique.values()) <= 15:
        return _sweep_heatmaps(scaled, params, order, info)
    return _sweep_scatter(scaled, params, order, colours, info)


def _sweep_lines(data: pl.DataFrame, p: str, order: list[str], colours: dict, info: dict[str, Outcome]) -> Figure:
    outcomes = list(info)
    stats = pl.concat([_band(data.lazy(), ["scenario", p], o).with_columns(pl.lit(o).alias("outcome"))
                       for o in outcomes])
    numeric = _is_numeric(stats, p)
    if not numeric:
        stats = stats.with_columns(pl.col(p).cast(pl.String))
    fig, axes, spare = _grid(len(outcomes), sharey=False, panel=(4.4, 3.2))
    groups = stats.partition_by("outcome", as_dict=True)
    for ax, o in zip(axes, outcomes):
        by_scenario = groups[(o,)].drop("outcome").partition_by("scenario", as_dict=True)
        _intervals(ax, by_scenario, [(sc,) for sc in order], p, {(sc,): colours[sc] for sc in order})
        ax.set_title(info[o].label, fontsize=11)
        ax.set_ylabel(info[o].axis)
        _outcome_axis(ax.yaxis, o)
    _label_bottom(axes, p)
    n = data.group_by("scenario", p).len()["len"]
    if len(order) == 1:
        fig.suptitle(f"Final-month outcomes against {p} ({_scenario_title(order[0])}; "
                     f"line: mean, band: 5–95% of {n.min()} runs per value)")
    else:
        fig.suptitle(f"Final-month outcomes against {p}")
        _legend(_top_right(axes), [_handle(colours[s], band=False) for s in order],
                [_scenario_title(s) for s in order], f"Scenario\n(dot: mean; bar: 5–95%\nof {n.min()} runs per value)",
                spare)
    return fig


def _cell_text(v: float, big: bool, percent: bool) -> str:
    if np.isnan(v):
        return ""
    return compact(v) if big else f"{v:.1f}" if percent else f"{v:.2f}"


def _tick(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _sweep_heatmaps(data: pl.DataFrame, params: list[str], order: list[str], info: dict[str, Outcome]) -> Figure:
    outcomes = list(info)
    px, py = params
    rows = [(sc, o) for sc in order for o in outcomes]
    ncols = 3 if len(order) == 1 else len(outcomes)
    fig, axes, _ = _grid(len(rows), ncols=ncols, sharex=False, sharey=False, panel=(4.6, 3.6))
    means = (data.group_by("scenario", px, py).agg(pl.col(o).mean() for o in outcomes))
    runs = data.group_by("scenario", px, py).len()["len"].min()
    xs = sorted(data[px].unique().to_list())
    ys = sorted(data[py].unique().to_list(), reverse=True)  # largest on top
    means = means.with_columns(pl.col(px).replace_strict({x: i for i, x in enumerate(xs)}, return_dtype=pl.Int64)
                               .alias("_ix"),
                               pl.col(py).replace_strict({y: i for i, y in enumerate(ys)}, return_dtype=pl.Int64)
                               .alias("_iy"))
    ncols = _ncols(axes)
    for k, (ax, (sc, o)) in enumerate(zip(axes, rows)):
        sub = means.filter(pl.col("scenario") == sc)
        grid = np.full((len(ys), len(xs)), np.nan)
        grid[sub["_iy"].to_numpy(), sub["_ix"].to_numpy()] = sub[o].to_numpy()
        big = np.nanmax(np.abs(grid), initial=0) >= 1000
        text = np.vectorize(_cell_text, otypes=[str])(grid, big, info[o].factor == 100)
        sns.heatmap(grid, ax=ax, annot=text, fmt="", cmap="viridis", annot_kws={"fontsize": 9},
                    xticklabels=[_tick(x) for x in xs], yticklabels=[_tick(v) for v in ys],
                    cbar_kws={"label": info[o].axis, "format": _kilo if big else None})
        title = info[o].label if len(order) == 1 else f"{_scenario_title(sc)}: {info[o].label}"
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(px if k + ncols >= len(rows) else "")
        ax.set_ylabel(py if k % ncols == 0 else "")
        ax.tick_params(axis="y", rotation=0)
    where = f" ({_scenario_title(order[0])})" if len(order) == 1 else ""
    fig.suptitle(f"Final-month outcomes over the design{where}: mean of {runs} runs per cell")
    return fig


def _sweep_scatter(data: pl.DataFrame, params: list[str], order: list[str], colours: dict,
                   info: dict[str, Outcome]) -> Figure:
    outcomes = list(info)
    params = params[:8]
    # in a fixed order: overlapping dots are drawn the same way every time
    means = data.group_by("scenario", "point", *params).agg(pl.col(o).mean() for o in outcomes).sort("scenario", "point")
    runs = data.group_by("scenario", "point").len()["len"].min()
    fig = _figure(max(3.4 * len(params), 8.0) + 1.5, 2.3 * len(outcomes) + 1.0)
    axes = fig.subplots(len(outcomes), len(params), sharex="col", sharey="row", squeeze=False)
    columns = {c: means[c].to_list() for c in (*params, *outcomes, "scenario")}
    for i, o in enumerate(outcomes):
        for j, p in enumerate(params):
            ax = axes[i, j]
            sns.scatterplot(data=columns, x=p, y=o, hue="scenario", hue_order=order, palette=colours, ax=ax, s=22,
                            legend=False, linewidth=0, alpha=0.85)
            ax.set_ylabel("")
            ax.set_xlabel(p if i == len(outcomes) - 1 else "")
            _outcome_axis(ax.yaxis, o)
        axes[i, 0].set_title(f"{info[o].label} · {info[o].axis}", loc="left", fontsize=11)
    title = "Final-month outcomes against each design parameter"
    note = f"one dot per design point: mean of {runs} run{'s' if runs > 1 else ''}"
    if len(order) == 1:
        fig.suptitle(f"{title} ({_scenario_title(order[0])})\n{note}")
    else:
        fig.suptitle(f"{title}\n{note}")
        _legend(axes[0, -1], [Line2D([], [], marker="o", ls="", color=colours[s]) for s in order],
                [_scenario_title(s) for s in order], "Scenario", [])
    return fig


# ---------------------------------------------------------------------------------------------
# 6. scenario comparison


@_styled
def plot_scenario_comparison(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """The distribution of each final-month outcome across runs, per scenario."""
    order = _scenario_order(tables)
    if len(order) < 2:
        raise Skip(f"only one scenario ({order[0]!r}): nothing to compare")
    _need(tables, "steps", "shares", "labs", "prices")
    headline = _headline(tables, headline)
    info = headline.outcomes()
    outcomes = list(info)
    per_run = run_outcomes(tables, headline).with_columns(pl.col(c) * info[c].factor for c in outcomes)
    labels = [_scenario_title(s) for s in order]
    per_run = per_run.with_columns(pl.col("scenario").replace_strict(dict(zip(order, labels))).alias("label"))
    palette = {_scenario_title(s): c for s, c in scenario_colours(order).items()}
    fig, axes, _ = _grid(len(outcomes), sharex=False, sharey=True, panel=(4.3, 0.5 * len(order) + 1.6))
    data = {c: per_run[c].to_list() for c in ["label", *outcomes]}
    for ax, o in zip(axes, outcomes):
        with warnings.catch_warnings():  # seaborn 0.13 passes boxplot's deprecated ``vert`` (matplotlib >= 3.11)
            warnings.filterwarnings("ignore", message=".*vert.*", category=DeprecationWarning)
            sns.boxplot(data=data, x=o, y="label", hue="label", order=labels, hue_order=labels, palette=palette,
                        ax=ax, legend=False, width=0.6, fliersize=0, boxprops={"alpha": 0.35}, linewidth=1.1)
        with _seeded_jitter():
            sns.stripplot(data=data, x=o, y="label", hue="label", order=labels, hue_order=labels, palette=palette,
                          ax=ax, legend=False, size=3.5, jitter=0.18, alpha=0.85)
        ax.set_title(info[o].label, fontsize=11)
        ax.set_xlabel(info[o].axis)
        ax.set_ylabel("")
        _outcome_axis(ax.xaxis, o)
    fig.suptitle(f"Final-month outcomes by scenario (box: quartiles; dots: {_runs_per_scenario(tables)} runs each)")
    return fig


# ---------------------------------------------------------------------------------------------
# 7. who gains


def _cumulative_profit(tables: dict[str, pl.LazyFrame], table: str, key: str) -> pl.LazyFrame:
    """Per run: profit summed over months, in USD billions, per vendor or cloud."""
    return (tables[table].join(_complete(tables).select("run_id"), on="run_id", how="semi")
            .group_by("scenario", "run_id", key).agg((pl.col("profit_usd").sum() / 1e9).alias("profit")))


@_styled
def plot_who_gains(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """Each vendor's and each cloud's profit summed over the run, per scenario (mean, 90% interval)."""
    order = _scenario_order(tables)
    _need(tables, "vendors", "clouds")
    vendors = _band(_cumulative_profit(tables, "vendors", "vendor"), ["vendor", "scenario"], "profit")
    captive = tables["clouds"].filter(pl.col("kind") == "captive").select(pl.col("cloud").unique()).collect()
    clouds = _band(_cumulative_profit(tables, "clouds", "cloud").join(captive.lazy(), on="cloud", how="anti"),
                   ["cloud", "scenario"], "profit")
    vendor_names = ordered_vendors(vendors["vendor"].unique())
    # clouds: largest profit first
    cloud_names = (clouds.group_by("cloud").agg(pl.col("mean").mean()).sort("mean", descending=True)["cloud"]
                   .to_list())
    colours = scenario_colours(order)
    ncols = 4
    vrows, crows = ceil(len(vendor_names) / ncols), ceil(len(cloud_names) / ncols)
    fig = _figure(3.3 * ncols, 2.55 * (vrows + crows) + 1.8)
    top, bottom = fig.subfigures(2, 1, height_ratios=[vrows + 0.25, crows + 0.25], hspace=0.04)
    x = np.arange(len(order))
    spare: list[Axes] = []
    for sub, frame, key, names, labels, heading in (
            (top, vendors, "vendor", vendor_names, VENDOR_LABELS, "Chip vendors"),
            (bottom, clouds, "cloud", cloud_names, CLOUD_LABELS, "Clouds")):
        rows = ceil(len(names) / ncols)
        axes = sub.subplots(rows, ncols, squeeze=False).ravel()
        groups = frame.partition_by(key, as_dict=True)
        for ax, name in zip(axes, names):
            df = groups[(name,)].with_columns(pl.col("scenario").replace_strict(
                {s: i for i, s in enumerate(order)}, default=None, return_dtype=pl.Int64).alias("i")).sort("i")
            mean, lo, hi = (df[c].to_numpy() for c in ("mean", "lo", "hi"))
            ax.bar(x[: len(df)], mean, color=[colours[s] for s in df["scenario"]], width=0.75,
                   yerr=np.vstack([mean - lo, hi - mean]), error_kw={"ecolor": "0.15", "elinewidth": 1.1,
                                                                     "capsize": 3})
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_title(labels.get(name, name), fontsize=11)
            ax.set_xticks([])
            ax.grid(axis="x", visible=False)
        for ax in axes[len(names):]:
            ax.set_axis_off()
            spare.append(ax)
        for i, ax in enumerate(axes[: len(names)]):
            ax.set_ylabel("USD billions" if i % ncols == 0 else "")
        if key == "vendor":
            corner = axes[min(ncols, len(names)) - 1]
        sub.suptitle(heading, fontsize=12, fontweight="bold", x=0.01, ha="left")
    months = tables["steps"].select(pl.col("step").n_unique()).collect().item() if "steps" in tables else None
    span = f" over {months} months" if months else ""
    fig.suptitle(f"Who gains: cumulative profit{span} by scenario")
    _legend(corner, [Patch(color=colours[s]) for s in order], [_scenario_title(s) for s in order],
            f"Scenario\n(bar: mean; whisker: 5–95%\nof {_runs_per_scenario(tables)} runs each;\n"
            "each panel has its own scale;\nlabs' own data centres left out)", spare[-1:])
    return fig


@_styled
def plot_withholding_payoff(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """The challenger's profit (Google: TPU sales + Google Cloud) against a swept withholding share."""
    params = _parameters(tables)
    swept = [p for p in params if "withholding" in p]
    if not swept:
        raise Skip("no design parameter is a withholding setting (e.g. clouds.gcp.withholding.share)")
    p = swept[0]
    _need(tables, "vendors", "clouds")
    order = _scenario_order(tables)
    headline = _headline(tables, headline)
    vendor, cloud = headline.challenger, headline.challenger_cloud
    if vendor is None or cloud is None:
        raise Skip("the headline has no challenger vendor and cloud in these runs (Headline.challenger, "
                   "Headline.challenger_cloud)")
    runs = _complete(tables)
    google = (_cumulative_profit(tables, "vendors", "vendor").filter(pl.col("vendor") == vendor)
              .select("run_id", pl.col("profit").alias("google")))
    gcp = (_cumulative_profit(tables, "clouds", "cloud").filter(pl.col("cloud") == cloud)
           .select("run_id", pl.col("profit").alias("gcp")))
    others = [q for q in params if q != p]
    data = (runs.join(tables["points"].select("scenario", "point", *params), on=["scenario", "point"])
            .join(google, on="run_id", how="inner").join(gcp, on="run_id", how="inner")
            .with_columns((pl.col("google") + pl.col("gcp")).alias("total")).collect())
    if data.is_empty():
        raise Skip(f"the runs have no vendor {vendor!r} or no cloud {cloud!r}")
    if data[p].n_unique() < 2:
        raise Skip(f"{p} takes a single value in this design")
    # colour lines by a second parameter when there is exactly one with few values
    hue = others[0] if len(others) == 1 and data[others[0]].n_unique() <= 6 else None
    by = ["scenario", *([hue] if hue else [])]
    keys = data.select(by).unique().sort(by).rows()
    if hue:
        values = sorted(data[hue].unique().to_list())
        palette = dict(zip(values, mpl.colormaps["plasma"](np.linspace(0.0, 0.78, len(values)))))
        colour = {k: palette[k[-1]] for k in keys}
        label = {k: (f"{_scenario_title(k[0])}, " if len(order) > 1 else "") + _tick(k[-1]) for k in keys}
    else:
        colour = {k: scenario_colours(order)[k[0]] for k in keys}
        label = {k: _scenario_title(k[0]) for k in keys}
    who = headline.name(vendor)
    panels = [("google", f"{who} as chip vendor (chip sales)"),
              ("gcp", f"{headline.name(cloud)} (renting out compute)"), ("total", f"{who} in total")]
    fig = _figure(14.0, 4.6)
    axes = list(fig.subplots(1, 3, sharex=True))
    for ax, (col, title) in zip(axes, panels):
        stats = _band(data.lazy(), [*by, p], col)
        _intervals(ax, stats.partition_by(by, as_dict=True), keys, p, colour)
        ax.set_title(title, fontsize=11)
        ax.set_ylabel("Cumulative profit (USD billions)" if col == "google" else "")
    fig.supxlabel(f"{p}  (0 = rents out every chip, 1 = withholds the whole top tier)"
                  if p.endswith("withholding.share") else p, fontsize=11)
    n = data.group_by(*by, p).len()["len"].min()
    fig.suptitle(f"Does withholding its top-tier chips pay for {who}? Cumulative profit against the withholding "
                 "share")
    note = _band_note(str(n), "runs per value") if len(keys) == 1 else \
        f"dot: mean; bar: 5–95%\nof {n} runs per value"
    title = f"{hue}\n({note})" if hue else f"Scenario\n({note})"
    if not hue and others:
        title += "\npooled over " + "\n".join(others)
    _legend(axes[-1], [_handle(colour[k], band=len(keys) == 1) for k in keys], [label[k] for k in keys], title, [])
    return fig


# ---------------------------------------------------------------------------------------------
# 8. one lab's vendor mix over time


@_styled
def plot_lab_mix_over_time(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> Figure:
    """The headline lab's (OpenAI's) share of its compute by chip vendor over time, mean and 90%
    band across runs, one panel per scenario (from :func:`market.analysis.mix.lab_vendor_mix`)."""
    from market.analysis.mix import OTHER  # noqa: PLC0415

    order = _scenario_order(tables)
    _need(tables, "steps", "labs")
    headline = _headline(tables, headline)
    name = headline.name(headline.lab)
    stats = _band(_series(tables, "lab_mix_over_time", headline), ["scenario", "vendor", "date"], "value")
    if stats.is_empty():
        raise Skip(f"{name} holds no compute in these runs")
    vendors = ordered_vendors(set(stats["vendor"]) - {OTHER}) + ([OTHER] if OTHER in set(stats["vendor"]) else [])
    colours = vendor_colours(vendors) | {OTHER: "#9e9e9e"}
    return _lines_by_scenario(stats, "vendor", order, vendors, colours, VENDOR_LABELS | {OTHER: "other vendors"},
                              f"Share of {name}'s compute (%)", f"Where {name}'s compute comes from: share by chip vendor",
                              f"Vendor\n({_band_note(_runs_per_scenario(tables), 'runs per scenario')})", top=100)


def mix_series(tables: dict[str, pl.LazyFrame], headline: Headline | None = None) -> pl.LazyFrame:
    """scenario, run_id, vendor, date, value: the headline lab's share of its compute by chip vendor
    (%), per complete run and month it holds compute (what :func:`plot_lab_mix_over_time` draws
    bands of; :func:`market.analysis.mix.lab_vendor_mix`)."""
    from market.analysis.mix import lab_vendor_mix  # noqa: PLC0415

    lab = _headline(tables, headline).lab
    mix = lab_vendor_mix(tables, lab).join(_complete(tables).select("run_id", "scenario"), on="run_id")
    dated = mix.join(tables["steps"].select("run_id", "step", "date"), on=["run_id", "step"], how="left")
    return dated.select("scenario", "run_id", "vendor", "date", (pl.col("share") * 100).alias("value"))


# The per-run series the figures over time draw bands of, by figure. A caller that draws many
# selections of one experiment (the explorer's sweep browser) computes them once for every run
# and hands each in as the table ``SERIES.format(figure)``; the figure then starts from it.
SERIES_OF: dict[str, Callable[..., pl.LazyFrame]] = {
    "vendor_shares": share_series, "prices": price_series, "lab_mix_over_time": mix_series}
SERIES = "series:{}"


def _series(tables: dict[str, pl.LazyFrame], figure: str, headline: Headline | None) -> pl.LazyFrame:
    given = tables.get(SERIES.format(figure))
    return given.lazy() if given is not None else SERIES_OF[figure](tables, headline)


# ---------------------------------------------------------------------------------------------

FIGURES: dict[str, Callable[[dict[str, pl.LazyFrame]], Figure]] = {
    "vendor_shares": plot_vendor_shares,
    "prices": plot_prices,
    "chip_prices": plot_chip_prices,
    "withholding": plot_withholding,
    "lab_vendor_mix": plot_lab_vendor_mix,
    "lab_compute": plot_lab_compute,
    "lab_mix_over_time": plot_lab_mix_over_time,
    "hhi": plot_hhi,
    "sweep_outcomes": plot_sweep_outcomes,
    "scenario_comparison": plot_scenario_comparison,
    "who_gains": plot_who_gains,
    "withholding_payoff": plot_withholding_payoff,
}


def plot_experiment(folder: str | os.PathLike, out: str | os.PathLike | None = None,
                    formats: Sequence[str] = ("png", "svg"), headline: Headline | None = None) -> FigureReport:
    """Draw every figure the experiment in ``folder`` supports; save each as ``out/<name>.<format>``.

    ``out`` defaults to ``folder/figures``. PNGs are 150 dpi. A figure whose data are missing (no
    design, a single scenario, nothing withheld, ...) is not drawn: the report's ``skipped`` says
    why. Other errors propagate.
    """
    tables = scan(folder)
    headline = (headline or Headline()).resolved(tables) if "runs" in tables else headline
    target = Path(out) if out is not None else Path(folder) / "figures"
    report = FigureReport()
    with mpl.rc_context():
        apply_style()
        for name, draw in FIGURES.items():
            try:
                fig = draw(tables, headline)
            except Skip as why:
                report.skipped[name] = str(why)
                continue
            target.mkdir(parents=True, exist_ok=True)
            try:
                for fmt in formats:
                    path = target / f"{name}.{fmt}"
                    fig.savefig(path, format=fmt, bbox_inches="tight", dpi=150 if fmt == "png" else "figure")
                    report.written.append(path)
            finally:
                fig.clear()  # never registered with pyplot: dropping it frees it
    return report
