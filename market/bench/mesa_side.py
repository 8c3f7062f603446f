"""Our tables recorded by Mesa's own ``DataCollector``: what the ``datacollector`` and ``batch_run``
benchmarks compare with.

Per-agent tables are Mesa agent reporters, one function per column (Mesa's idiom), computed through
the agents' own methods; the rows that belong to no agent (prices, fleet, contracts ...) are made
by our Recorder's code for that table (one method per table), so both sides record the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import polars as pl

from market.agents.cloud import CloudProvider
from market.agents.lab import AILab
from market.agents.vendor import ChipVendor
from market.model import MarketModel
from market.recording import SCHEMAS, Recorder
from market.recording import hhi as hhi_of

__all__ = ["ROW_TABLES", "mesa_collect", "mesa_collector", "mesa_frames", "step_columns"]


def _lab_columns() -> dict[str, Callable[[AILab], Any]]:
    """The ``labs`` table as Mesa agent reporters: one function per column (Mesa's idiom)."""
    def useful(a: AILab) -> float:
        return a.useful_contracted()

    return {
        "lab": lambda a: a.lab_id,
        "budget_usd": lambda a: a.budget,
        "spend_usd": lambda a: a.committed_spend(),
        "demand_pflops": lambda a: a.notional(),
        "contracted_pflops": lambda a: a.peak_contracted(),
        "served_pflops": lambda a: min(useful(a), a.notional()),
        "unmet_pflops": lambda a: max(0.0, a.notional() - useful(a)),
        "utilisation": lambda a: min(useful(a), a.notional()) / useful(a) if useful(a) > 0 else 0.0,
        "value_usd": lambda a: min(useful(a), a.notional()) * a.cfg.value_usd_per_pflop_hour * a.model.hours,
        "surplus_usd": lambda a: (min(useful(a), a.notional()) * a.cfg.value_usd_per_pflop_hour * a.model.hours
                                  - a.committed_spend()),
        "largest_vendor": lambda a: a.largest_vendor()[0],
        "largest_vendor_share": lambda a: a.largest_vendor()[1],
        "active_contracts": lambda a: len(a.contracts),
        "on_demand_pflops": lambda a: a.kind_pflops("on_demand"),
        "anchor_pflops": lambda a: a.kind_pflops("anchor"),
        "readiness": lambda a: {f"{u}/{e}": r for (u, e), r in a.readiness.items()},
    }


def _cloud_columns() -> dict[str, Callable[[CloudProvider], Any]]:
    return {
        "cloud": lambda c: c.cloud_id,
        "kind": lambda c: c.cfg.kind,
        "capex_budget_usd": "capex_budget",
        "capex_spent_usd": "capex_spent",
        "installed_chips": lambda c: sum(c.installed.values()),
        "capacity_pflops": lambda c: c.capacity_pflops(),
        "contracted_pflops": lambda c: c.contracted_pflops(),
        "utilisation": lambda c: ((c.contracted_pflops() + c.leased_pflops(out=True))
                                  / (c.capacity_pflops() + c.leased_pflops())
                                  if c.capacity_pflops() + c.leased_pflops() > 0 else 0.0),
        "revenue_usd": "revenue",
        "affiliate_revenue_usd": "affiliate_revenue",
        "cost_usd": "cost",
        "profit_usd": lambda c: c.profit,
        "leased_in_pflops": lambda c: c.leased_pflops(),
        "leased_out_pflops": lambda c: c.leased_pflops(out=True),
    }


def _vendor_columns() -> dict[str, Callable[[ChipVendor], Any]]:
    def compute(v: ChipVendor) -> float:
        products = v.model.config.products
        return _running_total(chips * products[p].pflops for c in v.model.cloud_list
                              for p, chips in c.contracted.items() if products[p].vendor == v.vendor_id)

    def total(fn: Callable[[ChipVendor], float]) -> Callable[[ChipVendor], float]:
        def share(v: ChipVendor) -> float:
            tot = sum(fn(w) for w in v.model.vendor_list)
            return fn(v) / tot if tot > 0 else 0.0
        return share

    def shipped(v: ChipVendor) -> float:
        return sum(v.shipped.values())

    def capacity(v: ChipVendor) -> float:
        return max(sum(v.potential.values()), shipped(v))

    def mean_price(v: ChipVendor) -> float | None:
        live = v.on_sale()
        return sum(v.list_price[p] for p in live) / len(live) if live else None

    return {
        "vendor": lambda v: v.vendor_id,
        "compute_pflops": compute,
        "compute_share": total(compute),
        "shipped_chips": shipped,
        "shipped_pflops": lambda v: sum(c * v.model.config.products[p].pflops for p, c in v.shipped.items()),
        "shipment_share": total(shipped),
        "revenue_usd": "revenue",
        "revenue_share": total(lambda v: v.revenue),
        "wafers_requested": "wafers_requested",
        "wafers": "wafers",
        "capacity_chips": capacity,
        "orders_chips": lambda v: sum(sum(o.values()) for o in v.orders.values()),
        "utilisation": lambda v: shipped(v) / capacity(v) if capacity(v) > 0 else 0.0,
        "mean_list_price_usd": mean_price,
        "profit_usd": lambda v: v.profit,
    }


def _running_total(values: Iterable[float]) -> float:
    """Left-to-right float addition, as the recorder's running totals (over labs, clouds and
    contracts; the built-in ``sum`` compensates rounding from Python 3.12 on, which would differ
    in the last bits)."""
    total = 0.0
    for v in values:
        total += v
    return total


def step_columns() -> dict[str, Callable[[MarketModel], Any]]:
    """The ``steps`` table as Mesa model reporters (lambdas, so Mesa deep-copies each value)."""

    def served(m: MarketModel) -> float:
        return _running_total(min(lab.useful_contracted(), lab.notional()) for lab in m.lab_list)

    def demand(m: MarketModel) -> float:
        return _running_total(lab.notional() for lab in m.lab_list)

    def installed(m: MarketModel) -> float:
        return _running_total(c.capacity_pflops() for c in m.cloud_list)

    def contracted(m: MarketModel) -> float:
        return _running_total(c.contracted_pflops() for c in m.cloud_list)

    def hhi(m: MarketModel) -> float:
        products = m.config.products
        compute = dict.fromkeys(m.vendors, 0.0)
        for c in m.cloud_list:
            for p, chips in c.contracted.items():
                compute[products[p].vendor] += chips * products[p].pflops
        tot = sum(compute.values())
        return hhi_of([x / tot if tot > 0 else 0.0 for x in compute.values()])

    return {
        "step": lambda m: m.t,
        "date": lambda m: m.config.date_of(m.t),
        "packaging_wafers": lambda m: m.packaging_capacity,
        "demand_pflops": lambda m: demand(m),
        "served_pflops": lambda m: served(m),
        "unmet_pflops": lambda m: max(0.0, demand(m) - served(m)),
        "contracted_pflops": lambda m: contracted(m),
        "installed_pflops": lambda m: installed(m),
        "utilisation": lambda m: contracted(m) / installed(m) if installed(m) > 0 else 0.0,
        "chips_shipped": lambda m: sum(sum(v.shipped.values()) for v in m.vendor_list),
        "contracts_signed": lambda m: len(m.signed),
        "withheld_chips": lambda m: sum(r.chips_withheld for r in m.refusals),
        "withheld_top_tier_chips": lambda m: sum(r.chips_withheld for r in m.refusals if r.tier == "top"),
        "hhi": lambda m: hhi(m),
        "clearing_iterations": lambda m: m.compute_market.solve[0],
        "clearing_residual": lambda m: m.compute_market.solve[1],
    }


ROW_TABLES = ("prices", "fleet", "lab_mix", "contracts", "withholding")  # not one row per agent: Mesa's tables


def mesa_collector(model: MarketModel, *, for_batch_run: bool = False):
    """A ``mesa.DataCollector`` recording what our Recorder records.

    Per-agent tables (labs and readiness, clouds, vendors and shares) are agent-type reporters, one
    function per column; ``steps`` are model reporters; the rows that belong to no agent (prices,
    fleet, contracts, withholding) are Mesa tables filled with ``add_table_row``, from the same code
    that makes ours. ``batch_run`` reads only model and agent reporters, so ``for_batch_run`` makes
    them agent reporters (``None`` for other agent types) and the row tables model reporters.
    """
    import mesa

    per_type = {AILab: _lab_columns(), CloudProvider: _cloud_columns(), ChipVendor: _vendor_columns()}
    if not for_batch_run:
        return mesa.DataCollector(model_reporters=step_columns(), agenttype_reporters=per_type,
                                  tables={t: list(SCHEMAS[t]) for t in ROW_TABLES})
    agent_reporters = {}
    for kind, columns in per_type.items():
        for name, fn in columns.items():
            get = (lambda a, attr=fn: getattr(a, attr)) if isinstance(fn, str) else fn
            agent_reporters[f"{kind.__name__}.{name}"] = _only(kind, get)
    model_reporters = step_columns() | {t: _rows_of(t) for t in ROW_TABLES}
    return mesa.DataCollector(model_reporters=model_reporters, agent_reporters=agent_reporters)


def _only(kind: type, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda a: fn(a) if isinstance(a, kind) else None


def _rows_of(table: str) -> Callable[[MarketModel], list[tuple]]:
    def rows(m: MarketModel) -> list[tuple]:
        return _table_rows(_side_recorder(m), table)
    return rows


def _table_rows(side: Recorder, table: str) -> list[tuple]:
    """This step's rows of one of Mesa's tables, made by our Recorder's code for that table."""
    side.rows[table].clear()
    getattr(side, f"_{table}")(side.model.t)
    values = side.rows[table]  # the table's rows one after another, a row's values side by side
    return list(zip(*[iter(values)] * len(SCHEMAS[table]), strict=True))


def _side_recorder(m: MarketModel) -> Recorder:
    side = getattr(m, "_bench_rows", None)
    if side is None:
        side = m._bench_rows = Recorder(m)
    return side


def mesa_collect(model: MarketModel, dc: Any) -> None:
    """One step's collection on the Mesa side: the reporters, then the rows of Mesa's tables."""
    dc.collect(model)
    side = _side_recorder(model)
    for table in ROW_TABLES:
        columns = list(SCHEMAS[table])
        for row in _table_rows(side, table):
            dc.add_table_row(table, dict(zip(columns, row, strict=True)))


def _to_polars(df: Any) -> pl.DataFrame:
    """A pandas frame to polars column by column (no pyarrow needed); pandas' NaN for a missing
    text value back to None."""
    def values(column: Any) -> list:
        out = column.tolist()
        return [None if v != v else v for v in out] if column.dtype.kind not in "fiub" else out  # noqa: PLR0124

    return pl.DataFrame({c: values(df[c]) for c in df.columns}, strict=False)


def mesa_frames(dc: Any) -> dict[str, pl.DataFrame]:
    """Mesa's records as polars frames, one per table of ours."""
    out = {"steps": _to_polars(dc.get_model_vars_dataframe())}
    labs = _to_polars(dc.get_agenttype_vars_dataframe(AILab).reset_index())
    out["readiness"] = (labs.select("Step", "lab", pl.col("readiness").struct.unnest())
                        .unpivot(index=["Step", "lab"], variable_name="key", value_name="readiness")
                        .with_columns(pl.col("key").str.split_exact("/", 1).struct.rename_fields(["purpose", "ecosystem"])
                                      .struct.unnest()))
    out["labs"] = labs.drop("readiness")
    out["clouds"] = _to_polars(dc.get_agenttype_vars_dataframe(CloudProvider).reset_index())
    vendors = _to_polars(dc.get_agenttype_vars_dataframe(ChipVendor).reset_index())
    out["shares"] = vendors.select("Step", *[c for c in SCHEMAS["shares"] if c not in ("step",)])
    out["vendors"] = vendors.select("Step", *[c for c in SCHEMAS["vendors"] if c not in ("step",)])
    for table in ROW_TABLES:
        out[table] = _to_polars(dc.get_table_dataframe(table))
    return out
