"""Payoffs: a player's outcome of one run, from the run's tables, over a horizon with discounting.

Each payoff is registered once in :data:`PAYOFFS` (name -> :class:`Payoff`), like the other rule
families. A payoff sums monthly flows of the player's agents over the first ``horizon`` months,
month t weighted by ``(1 + discount) ** (-t / 12)`` (``discount`` a year):

* ``profit`` (billion USD): vendors' and clouds' profit (revenue less cost: a vendor's cost of the
  chips it ships, a cloud's operating cost and depreciation), plus the surplus of any lab in the
  player (the value of the compute it uses less what it pays). Internal transfers cancel: what
  Google Cloud pays the TPU vendor, or DeepMind pays Google Cloud, is one agent's revenue and
  another's cost.
* ``revenue`` (billion USD): vendors' and clouds' revenue.
* ``surplus`` (billion USD, labs only): value of the compute used (``value_usd_per_pflop_hour`` per
  useful PFLOP-hour that meets demand) less spend.
* ``compute`` (million PFLOP-hours, labs only): useful compute used to meet demand.
* ``compute_per_dollar`` (PFLOP-hours per USD, labs only): discounted compute used over discounted
  spend.
* ``utility`` (billion USD, labs only): surplus less the lab's stated cost of depending on one
  vendor: its ``diversification`` in the base scenario (the penalty per unit of a vendor's share
  that its own choices weigh; fixed, so a strategy that changes the lab's diversification does not
  change the yardstick) times its largest vendor's share, charged on its spend. A lab that
  diversifies at a price says lower dependence is worth that much to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from market.registry import Registry

__all__ = ["PAYOFFS", "Payoff", "run_payoffs"]


@dataclass(frozen=True)
class Payoff:
    """A named outcome: which kinds of agent it reads, its unit, and its monthly terms
    (``terms(tables, agents, hours)`` -> LazyFrame of ``run_id, x``, one row per agent and month, or
    ``run_id, x, y`` for a ratio of sums). A run's payoff is the exact sum of its terms
    (``math.fsum``): the same to the last bit whatever order a sweep stored the rows in."""

    name: str
    unit: str
    kinds: frozenset[str]
    description: str
    terms: Callable[[Mapping[str, pl.LazyFrame], list[str], float], pl.LazyFrame]
    ratio: bool = False  # the payoff is sum(x) / sum(y)


def _terms(tables: Mapping[str, pl.LazyFrame], table: str, key: str, agents: list[str], value: pl.Expr) -> pl.LazyFrame:
    """The weighted monthly terms ``value * w`` of ``agents`` (``w`` is the weight column)."""
    return tables[table].filter(pl.col(key).is_in(agents)).select("run_id", (value * pl.col("w")).alias("x"))


def _profit(tables: Mapping[str, pl.LazyFrame], agents: list[str], hours: float) -> pl.LazyFrame:
    return pl.concat([
        _terms(tables, "vendors", "vendor", agents, pl.col("profit_usd") / 1e9),
        _terms(tables, "clouds", "cloud", agents, pl.col("profit_usd") / 1e9),
        _terms(tables, "labs", "lab", agents, pl.col("surplus_usd") / 1e9),
    ])


def _revenue(tables: Mapping[str, pl.LazyFrame], agents: list[str], hours: float) -> pl.LazyFrame:
    return pl.concat([
        _terms(tables, "vendors", "vendor", agents, pl.col("revenue_usd") / 1e9),
        _terms(tables, "clouds", "cloud", agents, pl.col("revenue_usd") / 1e9),
    ])


def _surplus(tables: Mapping[str, pl.LazyFrame], agents: list[str], hours: float) -> pl.LazyFrame:
    return _terms(tables, "labs", "lab", agents, pl.col("surplus_usd") / 1e9)


def _compute(tables: Mapping[str, pl.LazyFrame], agents: list[str], hours: float) -> pl.LazyFrame:
    return _terms(tables, "labs", "lab", agents, pl.col("served_pflops") * hours / 1e6)


def _utility(tables: Mapping[str, pl.LazyFrame], agents: list[str], hours: float) -> pl.LazyFrame:
    penalty = pl.col("diversification") * pl.col("largest_vendor_share") * pl.col("spend_usd")
    return _terms(tables, "labs", "lab", agents, (pl.col("surplus_usd") - penalty) / 1e9)


def _compute_per_dollar(tables: Mapping[str, pl.LazyFrame], agents: list[str], hours: float) -> pl.LazyFrame:
    return (tables["labs"].filter(pl.col("lab").is_in(agents))
            .select("run_id", (pl.col("served_pflops") * hours * pl.col("w")).alias("x"),
                    (pl.col("spend_usd") * pl.col("w")).alias("y")))


_ANY = frozenset({"vendor", "cloud", "lab"})
_SELLERS = frozenset({"vendor", "cloud"})
_LABS = frozenset({"lab"})

PAYOFFS: Registry[Payoff] = Registry("payoff", {p.name: p for p in (
    Payoff("profit", "billion USD", _ANY, "vendors' and clouds' profit plus labs' surplus", _profit),
    Payoff("revenue", "billion USD", _SELLERS, "vendors' and clouds' revenue", _revenue),
    Payoff("surplus", "billion USD", _LABS, "labs' value of compute used less spend", _surplus),
    Payoff("compute", "million PFLOP-hours", _LABS, "useful compute used to meet demand", _compute),
    Payoff("compute_per_dollar", "PFLOP-hours per USD", _LABS, "compute used per dollar spent", _compute_per_dollar,
           ratio=True),
    Payoff("utility", "billion USD", _LABS, "surplus less the lab's stated cost of depending on one vendor", _utility),
)})


def run_payoffs(tables: Mapping[str, pl.LazyFrame], payoff: str, agents: list[str], *, horizon: int,
                discount: float, hours: float, diversification: Mapping[str, float] | None = None) -> pl.DataFrame:
    """Per run (``run_id``): the payoff of a player made of ``agents`` over the first ``horizon``
    months, month t weighted by ``(1 + discount) ** (-t / 12)``. ``diversification``: the labs'
    stated diversification (for ``utility``; from the base scenario)."""
    weight = (pl.lit(1.0 + discount) ** (-pl.col("step").cast(pl.Float64) / 12.0)).alias("w")
    weighted = {t: tables[t].filter(pl.col("step") < horizon).with_columns(weight)
                for t in ("vendors", "clouds", "labs")}
    runs = tables["runs"].filter(pl.col("status") == "complete").select("run_id")
    if payoff == "utility":
        if diversification is None or any(lab not in diversification for lab in agents):
            raise ValueError("payoff 'utility' needs each lab's stated diversification (from the base scenario)")
        stated = pl.LazyFrame({"lab": list(agents), "diversification": [float(diversification[a]) for a in agents]})
        weighted["labs"] = weighted["labs"].join(stated, on="lab", how="inner")
    spec = PAYOFFS[payoff]
    terms = spec.terms(weighted, agents, hours).collect()
    columns = ["x", "y"] if spec.ratio else ["x"]
    grouped = terms.group_by("run_id").agg(*columns)
    sums = {c: [math.fsum(v) for v in grouped[c].to_list()] for c in columns}
    value = ([x / y if y else math.nan for x, y in zip(sums["x"], sums["y"], strict=True)] if spec.ratio
             else sums["x"])
    per_run = pl.DataFrame({"run_id": grouped["run_id"], "payoff": pl.Series(value, dtype=pl.Float64)})
    return (runs.collect().join(per_run, on="run_id", how="left")  # a run where the agents had no rows earns 0
            .with_columns(pl.col("payoff").fill_null(0.0)))
