"""Reports on the terminal, and the number formats every report, figure and page uses.

    >>> from market.analysis.report import compact, fmt
    >>> compact(1_723_456), compact(408_123), compact(9_500), compact(0.45)
    ('1.72M', '408k', '9,500', '0.45')
    >>> fmt("share", 0.123), fmt("usd", -0.0123, signed=True)
    ('12.3%', '-$0.012')

The tables ``market run``, ``market sweep``, ``market compare`` and ``market sensitivity`` print
are made here from analysis results (polars frames); the commands only print them. An outcome's
``unit`` is ``"share"`` (a fraction), ``"usd"`` or ``"chips"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from market.analysis.headline import Outcome
    from market.analysis.sensitivity import SensitivityReport
    from market.run import RunResult

__all__ = ["compact", "comparison_table", "count", "difference", "fmt", "pct", "print_run_summary",
           "sensitivity_table", "summary_table", "usd", "whole"]

NA = "n/a"


# -- numbers ------------------------------------------------------------------------------------


def compact(x: float | None, digits: int = 3) -> str:
    """A number that fits a table cell, a tick or a label, to ``digits`` significant digits:
    1.5B, 1.72M, 408k (10,000 and up), 9,500 (1,000 to 10,000, whole), 950, 2.5, 0.45; from a
    trillion up, and inf or nan, as Python writes them (1.5e+14)."""
    if x is None:
        return NA
    rounded = float(f"{x:.{digits}g}")  # first, so that 999,999 is 1M, not 1e+03k
    if not math.isfinite(rounded) or abs(rounded) >= 1e12:
        return f"{x:.{digits}g}"  # inf, nan, 1.5e+14
    for factor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(rounded) >= max(factor, 1e4):
            return f"{rounded / factor:.{digits}g}{suffix}"
    return f"{x:,.0f}" if abs(rounded) >= 1e3 else f"{rounded:.{digits}g}"


def pct(x: float | None) -> str:
    """A share as a percentage: 12.3%."""
    return NA if x is None else f"{100 * x:.1f}%"


def usd(x: float | None) -> str:
    """Dollars and cents: $1,234.56."""
    return NA if x is None else f"${x:,.2f}"


def whole(x: float | None) -> str:
    """A whole number with thousands separators: 1,234,567."""
    return NA if x is None else f"{x:,.0f}"


def difference(unit: str, x: float | None, *, signed: bool = True, pp_digits: int = 1) -> str:
    """A difference (or a spread) of an outcome in ``unit``: -$0.123, +1.72M, +1.2 pp; without
    the sign with ``signed=False``."""
    if x is None:
        return NA
    sign = ("-" if x < 0 else "+") if signed else ""
    size = abs(x) if signed else x
    if unit == "usd":
        return f"{sign}${size:,.3f}"
    if unit == "chips":
        return f"{sign}{compact(size)}"
    return f"{sign}{100 * size:.{pp_digits}f} pp"


def fmt(unit: str, x: float | None, signed: bool = False) -> str:
    """An outcome's value in ``unit`` (a share as a percentage, chips compact); ``signed``: a
    difference between two values (:func:`difference`)."""
    if signed:
        return difference(unit, x)
    return {"usd": usd, "chips": compact}.get(unit, pct)(x)


def count(n: int, word: str) -> str:
    """1 step, 2,000 steps."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


# -- tables -------------------------------------------------------------------------------------


def comparison_table(table: pl.DataFrame) -> Table:
    """:func:`market.analysis.compare.compare`'s table: each outcome's mean and 90% interval per
    scenario, and its difference to the baseline with the bootstrap 95% CI."""
    base = table["baseline"][0]
    out = Table(title=f"Final month: mean [90% of runs] and difference to {base} [95% CI, bootstrap]",
                title_justify="left")
    for col, justify in (("outcome", "left"), ("scenario", "left"), ("runs", "right"), ("mean", "right"),
                         ("90% of runs", "right"), (f"vs {base}", "right"), ("95% CI", "right")):
        out.add_column(col, justify=justify)
    for _, group in table.group_by("outcome", maintain_order=True):
        label, unit = group["label"][0], group["unit"][0] or "share"
        for i, r in enumerate(group.iter_rows(named=True)):
            is_base = r["scenario"] == base
            out.add_row(label if i == 0 else "", r["scenario"], str(r["runs"]), fmt(unit, r["mean"]),
                        f"{fmt(unit, r['p05'])} - {fmt(unit, r['p95'])}",
                        "-" if is_base else difference(unit, r["diff"]),
                        "-" if is_base else f"{difference(unit, r['diff_low'])} to {difference(unit, r['diff_high'])}",
                        end_section=i == group.height - 1)
    return out


def summary_table(summary: pl.DataFrame, outcomes: Mapping[str, Outcome]) -> Table:
    """:func:`market.analysis.outcomes.scenario_summary`: each outcome's mean per scenario, and
    its 90% interval across replications below it."""
    table = Table(title="Final month by scenario: mean, and 90% interval across replications below it",
                  title_justify="left")
    table.add_column("scenario")
    table.add_column("runs", justify="right")
    for about in outcomes.values():
        table.add_column(about.label, justify="right")
    for row in summary.iter_rows(named=True):
        cells = []
        for col, about in outcomes.items():
            unit = about.unit
            cells.append(f"{fmt(unit, row[f'{col}_mean'])}\n"
                         f"[dim]{fmt(unit, row[f'{col}_p05'])}-{fmt(unit, row[f'{col}_p95'])}[/dim]")
        table.add_row(row["scenario"], str(row["runs"]), *cells)
    return table


def print_run_summary(console: Console, result: RunResult) -> None:
    """One run's final month (``market run``): vendor shares, rental prices by class, and the market."""
    summary = result.summary()
    runs = result.tables["runs"].row(0, named=True)
    steps = result.tables["steps"]
    last = steps["step"].max()
    final = steps.filter(pl.col("step") == last).row(0, named=True) if last is not None else {}
    when = final.get("date")
    month = when.strftime("%Y-%m") if when is not None else NA
    console.print(Text(
        f"{runs['scenario']}, seed {runs['seed']}: {count(runs['steps'], 'monthly step')} "
        f"({runs['start_date']:%Y-%m} to {month}) in {runs['wall_seconds']:.2f} s, "
        f"config hash {runs['config_hash']}", style="bold"), soft_wrap=True)

    shares = Table(title=f"Vendor shares, {month}", title_justify="left")
    shares.add_column("vendor")
    for col in ("compute", "shipments", "revenue"):
        shares.add_column(col, justify="right")
    for row in summary["shares"].iter_rows(named=True):
        shares.add_row(row["vendor"], pct(row["compute_share"]), pct(row["shipment_share"]),
                       pct(row["revenue_share"]))

    prices = Table(title=f"Rental price per PFLOP-hour, {month}", title_justify="left")
    prices.add_column("class")
    prices.add_column("mean $/PFLOP-h", justify="right")  # weighted by installed chips
    prices.add_column("products")
    for row in summary["prices"].iter_rows(named=True):
        prices.add_row(row["performance_class"], usd(row["rental_usd_per_pflop_hour"]), row["products"])
    if summary["prices"].is_empty():
        prices.add_row("-", NA, "no chips rented")

    m = summary["market"].row(0, named=True)
    demand = final.get("demand_pflops")
    market_t = Table(title="Market", title_justify="left", show_header=False)
    market_t.add_column("measure")
    market_t.add_column("value", justify="right")
    market_t.add_row("chips withheld, summed over months", whole(m["withheld_chips_total"]))
    market_t.add_row("  of which top tier", whole(m["withheld_top_tier_chips_total"]))
    market_t.add_row(f"unmet demand, {month}",
                     f"{whole(m['unmet_pflops_final'])} of {whole(demand)} PFLOP/s "
                     f"({pct(m['unmet_share_final'])})")
    market_t.add_row(f"HHI of compute shares, {month}", whole(m["hhi_final"]))

    for table in (shares, prices, market_t):
        console.print(table)


def sensitivity_table(report: SensitivityReport, top: int | None = None) -> Table:
    """``market sensitivity``'s table: per outcome, the parameters by importance (Morris mu*, its
    CI, mu, sigma and whether it stands out of the seed noise; or Sobol' ST and S1), the ``top``
    most important only if given."""
    morris = report.method == "morris"
    d = len(report.parameters)
    how = (f"Morris screening, {report.points // (d + 1)} trajectories × {d + 1} points" if morris
           else f"Sobol' indices, {report.points} Saltelli points")
    title = (f"{how} × {count(report.replications, 'replication')} = {report.runs:,} runs. "
             + ("mu*: mean |change in the outcome| over each parameter's range; mu: signed; sigma: spread"
                if morris else "Total (ST) and first-order (S1) Sobol' indices"))
    table = Table(title=title, title_justify="left")
    columns = (["outcome", "scenario", "#", "parameter [range]", "mu*", "95% CI ±", "mu", "sigma", "vs noise"] if morris
               else ["outcome", "scenario", "#", "parameter [range]", "ST", "95% CI ±", "S1", "95% CI ±"])
    if len(report.scenarios) < 2:
        columns.remove("scenario")
    for col in columns:
        table.add_column(col, justify="left" if col in ("outcome", "scenario", "parameter [range]") else "right")
    shown = report.table if top is None else report.table.filter(pl.col("rank") <= top)
    for (scenario, outcome), group in shown.group_by("scenario", "outcome", maintain_order=True):
        label, unit = report.about(outcome)[:2]

        def size(x: float | None, signed: bool = False, unit: str = unit) -> str:
            return difference(unit, x, signed=signed, pp_digits=2)

        for i, r in enumerate(group.iter_rows(named=True)):
            noise = r.get("noise_mu_star")
            first = label + ("" if noise is None else f"\n[dim]seed noise: {size(noise)}[/dim]")
            cells = [first if i == 0 else ""] + ([scenario if i == 0 else ""] if "scenario" in columns else [])
            cells += [str(r["rank"]), f"{r['parameter']} [{compact(r['low'])}–{compact(r['high'])}]"]
            if morris:
                cells += [size(r["mu_star"]), size(r["mu_star_conf"]), size(r["mu"], signed=True), size(r["sigma"]),
                          NA if noise is None else ("above" if r["mu_star"] > noise else "[dim]within[/dim]")]
            else:
                cells += [f"{r['ST']:.2f}", f"{r['ST_conf']:.2f}", f"{r['S1']:.2f}", f"{r['S1_conf']:.2f}"]
            table.add_row(*cells, end_section=i == group.height - 1)
    return table
