"""Benchmarks side by side with Mesa's own tools: ``market bench`` or ``python -m market.bench``.

    market bench                       # full sizes, about ten minutes on two cores
    market bench --quick               # tiny sizes: proves every benchmark works (CI), says nothing about speed
    market bench --only collector --only scaling --json bench.json
    market bench --only against --against /tmp/before   # this checkout against another, run for run

Every figure is a ratio of two things measured side by side in the same process (or the same
call), the median over ``--repeats`` repeats, so that the load of a shared machine cancels out as
far as it can. The table and the JSON carry the machine's core count and library versions.
Sizes, what each side does, and the targets are in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import market
from market.agents.cloud import CloudProvider
from market.agents.lab import AILab
from market.agents.vendor import ChipVendor
from market.batch.experiment import Experiment, run_seed
from market.model import MarketModel
from market.recording import SCHEMAS, Recorder
from market.recording import hhi as hhi_of
from market.run import package_version

__all__ = ["BENCHMARKS", "Figure", "Sizes", "bench_against", "main", "mesa_collect", "mesa_collector", "mesa_frames",
           "run_benchmarks"]

SEED_SCENARIOS = ("baseline", "openai_google_tpu", "open_tpu_access", "tpu_merchant", "supply_shock")


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is; ``FULL`` for the figures, ``QUICK`` to prove the code works."""

    steps: int  # of a seed-scenario run (collector, DataCollector)
    batch_scenarios: tuple[str, ...]
    batch_replications: int
    batch_steps: int
    parallel_replications: int  # the seed experiment: five scenarios x replications x steps
    parallel_steps: int
    labs: tuple[int, ...]
    scaling_steps: int  # timed steps after one warm-up step
    memory_runs: tuple[int, int]
    memory_steps: int
    readback_runs: int
    readback_steps: int


FULL = Sizes(steps=60, batch_scenarios=("baseline", "openai_google_tpu"), batch_replications=50, batch_steps=24,
             parallel_replications=20, parallel_steps=60, labs=(100, 1_000, 10_000), scaling_steps=3,
             memory_runs=(100, 2_000), memory_steps=2, readback_runs=10_000, readback_steps=1)
QUICK = Sizes(steps=3, batch_scenarios=("baseline",), batch_replications=2, batch_steps=2,
              parallel_replications=1, parallel_steps=2, labs=(20, 40, 80), scaling_steps=1,
              memory_runs=(4, 8), memory_steps=1, readback_runs=12, readback_steps=1)


@dataclass
class Figure:
    """One line of the table: a measured value, its target and the details behind it."""

    benchmark: str
    figure: str
    value: float | None
    unit: str = ""
    target: str = ""  # e.g. "<= 1.10"; empty for figures without a target
    met: bool | None = None
    details: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _check(value: float | None, target: str) -> bool | None:
    if value is None or not target:
        return None
    op, bound = target.split()
    return value <= float(bound) if op == "<=" else value >= float(bound)


def _fig(benchmark: str, figure: str, value: float | None, unit: str = "", target: str = "", details: str = "",
         **data: Any) -> Figure:
    return Figure(benchmark, figure, value, unit, target, _check(value, target), details, data)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


# -- 1. collector overhead ------------------------------------------------------------------------


def bench_collector(sizes: Sizes, repeats: int) -> list[Figure]:
    """A seed-scenario run with recording on / the same run with recording off, stepped side by side.

    The two runs (same scenario, same seed) advance in turn, one step each, which of them goes
    first alternating from step to step. A shared machine's speed changes from one second to the
    next; stepping the runs in turn lets both sides meet the same speed, where timing whole runs
    one after the other does not (on a busy 2-core VM the ratio of whole runs spread from 0.96 to
    1.15 between quartiles, and these from 1.07 to 1.09). Each side's time is its model's
    construction and its steps, and for the side that records, the making of its tables: all of
    ``market.run`` but the provenance row, which is the same on both sides (leaving it out makes
    the ratio a little higher, not lower). Recording must not change the run: both runs end in
    the same state, which is checked. Whole runs one after the other are timed too, for the
    seconds per run and as a cross-check of the ratio.
    """
    ratios, same = [], True
    for r in range(repeats):
        for name in SEED_SCENARIOS:
            sc = market.load_scenario(name, steps=sizes.steps)
            spent = {True: 0.0, False: 0.0}
            models = {}
            gc.collect()
            for record in ((True, False) if r % 2 == 0 else (False, True)):
                started = time.perf_counter()
                models[record] = MarketModel(sc, seed=r, record=record)
                spent[record] += time.perf_counter() - started
            for i in range(sc.steps):
                for record in ((True, False) if i % 2 == 0 else (False, True)):
                    started = time.perf_counter()
                    models[record].step()
                    spent[record] += time.perf_counter() - started
            on = models[True]
            started = time.perf_counter()
            on.recorder.tables(on.run_id)
            spent[True] += time.perf_counter() - started
            same &= _state(on) == _state(models[False])
            for m in models.values():
                m.release()
            ratios.append(spent[True] / spent[False])
    whole, seconds = [], []
    for r in range(repeats):
        for name in SEED_SCENARIOS:
            sc = market.load_scenario(name, steps=sizes.steps)
            timed = {}
            for record in ((True, False) if r % 2 == 0 else (False, True)):
                timed[record], _ = _timed(lambda sc=sc, r=r, record=record: market.run(sc, seed=r, record=record))
            whole.append(timed[True] / timed[False])
            seconds.append(timed[True])
    return [
        _fig("collector", "collector overhead (recording on / off)", _median(ratios), "x", "<= 1.10",
             f"{len(ratios)} pairs of runs stepped side by side: the five seed scenarios x {repeats} repeats, "
             f"{sizes.steps} steps; quartiles {_quartiles(ratios)}; same end state: {'yes' if same else 'NO'}; "
             f"whole runs one after the other: {_median(whole):.3f} (quartiles {_quartiles(whole)})",
             ratios=ratios, identical=same, whole_runs=whole),
        _fig("collector", "seconds per seed-scenario run", _median(seconds), "s", "",
             f"median of {len(seconds)} runs (market.run, {sizes.steps} steps, recording on, one process)",
             seconds=seconds),
    ]


def _quartiles(xs: list[float]) -> str:
    return f"{np.percentile(xs, 25):.3f}-{np.percentile(xs, 75):.3f}"


def _state(m: MarketModel) -> tuple:
    """What a run has come to: its contracts, every lab's demand and readiness, every price."""
    return (m.t, m._contract_seq, [(lab.demand, lab.budget, list(lab.readiness.values())) for lab in m.lab_list],
            [dict(c.rental_price) for c in m.cloud_list], [dict(v.list_price) for v in m.vendor_list])


# -- 2. our collector vs Mesa's DataCollector ------------------------------------------------------


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
        return sum(chips * products[p].pflops for c in v.model.cloud_list for p, chips in c.contracted.items()
                   if products[p].vendor == v.vendor_id)

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
    """Left-to-right float addition, as the recorder's running totals over labs (the built-in
    ``sum`` compensates rounding from Python 3.12 on, which would differ in the last bits)."""
    total = 0.0
    for v in values:
        total += v
    return total


def _step_columns() -> dict[str, Callable[[MarketModel], Any]]:
    """The ``steps`` table as Mesa model reporters (lambdas, so Mesa deep-copies each value)."""

    def served(m: MarketModel) -> float:
        return _running_total(min(lab.useful_contracted(), lab.notional()) for lab in m.lab_list)

    def demand(m: MarketModel) -> float:
        return _running_total(lab.notional() for lab in m.lab_list)

    def installed(m: MarketModel) -> float:
        return sum(c.capacity_pflops() for c in m.cloud_list)

    def contracted(m: MarketModel) -> float:
        return sum(c.contracted_pflops() for c in m.cloud_list)

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
        return mesa.DataCollector(model_reporters=_step_columns(), agenttype_reporters=per_type,
                                  tables={t: list(SCHEMAS[t]) for t in ROW_TABLES})
    agent_reporters = {}
    for kind, columns in per_type.items():
        for name, fn in columns.items():
            get = (lambda a, attr=fn: getattr(a, attr)) if isinstance(fn, str) else fn
            agent_reporters[f"{kind.__name__}.{name}"] = _only(kind, get)
    model_reporters = _step_columns() | {t: _rows_of(t) for t in ROW_TABLES}
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
    return side.row_tuples(table)


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


def bench_datacollector(sizes: Sizes, repeats: int) -> list[Figure]:
    """The same values from the same model, by Mesa's DataCollector (then to polars) / by ours."""
    ratios, same = [], True
    for r in range(repeats):
        sc = market.load_scenario(SEED_SCENARIOS[r % len(SEED_SCENARIOS)], steps=sizes.steps)
        model = MarketModel(sc, seed=r, record=False)
        ours, dc = Recorder(model), mesa_collector(model)
        t_ours = t_mesa = 0.0
        for i in range(sizes.steps):
            model.step()
            for side in ((0, 1) if i % 2 == 0 else (1, 0)):
                if side == 0:
                    dt, _ = _timed(ours.collect)
                    t_ours += dt
                else:
                    dt, _ = _timed(lambda m=model, dc=dc: mesa_collect(m, dc))
                    t_mesa += dt
        dt, ours_tables = _timed(lambda o=ours, m=model: o.tables(m.run_id))
        t_ours += dt
        dt, theirs = _timed(lambda dc=dc: mesa_frames(dc))
        t_mesa += dt
        same &= _same_values(ours_tables, theirs)
        model.release()
        ratios.append(t_mesa / t_ours)
    return [_fig("datacollector", "Mesa DataCollector / ours (collect + to polars)", _median(ratios), "x", ">= 3",
                 f"{repeats} runs of {sizes.steps} steps, seed scenarios in turn; values identical: "
                 f"{'yes' if same else 'NO'}", ratios=ratios, identical=same)]


KEYS = {"labs": ["lab"], "steps": [], "prices": ["product"], "vendors": ["vendor"], "shares": ["vendor"],
        "clouds": ["cloud"], "readiness": ["lab", "purpose", "ecosystem"], "fleet": ["cloud", "product"],
        "contracts": ["contract_id"], "withholding": ["holder", "buyer", "product"],
        "lab_mix": ["lab", "vendor", "purpose"]}


def _same_values(ours: dict[str, pl.DataFrame], theirs: dict[str, pl.DataFrame]) -> bool:
    """Both sides recorded the same values, exactly, in every table (Mesa keys agent records by
    ``model.steps``, one more than our ``step``; pandas turns a missing float into NaN)."""
    try:
        for table, keys in KEYS.items():
            a = ours[table].drop("run_id", "date", strict=False)
            b = theirs[table]
            if "Step" in b.columns:
                b = b.with_columns(step=pl.col("Step") - 1)
            b = b.select(a.columns).cast(a.schema).fill_nan(None)
            if not a.sort("step", *keys).equals(b.sort("step", *keys)):
                return False
        return True
    except Exception:  # noqa: BLE001 - reported as "not identical"
        return False


# -- 3. sweep overhead vs mesa.batch_run -----------------------------------------------------------


class MesaMarket(MarketModel):
    """MarketModel for ``mesa.batch_run``: keyword parameters, a DataCollector collecting every step."""

    def __init__(self, scenario: str = "baseline", steps: int = 2, seed: int = 0) -> None:
        super().__init__(market.load_scenario(scenario, steps=steps), seed=seed, record=False)
        self.datacollector = mesa_collector(self, for_batch_run=True)

    def step(self) -> None:
        super().step()
        self.datacollector.collect(self)


def batch_run_frames(results: list[dict[str, Any]]) -> dict[str, pl.DataFrame]:
    """``mesa.batch_run``'s list of dicts as polars frames, one per table of ours."""
    firsts: dict[tuple[int, int], dict[str, Any]] = {}
    for d in results:
        firsts.setdefault((d["RunId"], d["Step"]), d)
    rows = pl.DataFrame([{k: v for k, v in d.items() if k not in ROW_TABLES} for d in results], strict=False,
                        infer_schema_length=None)
    model_cols = [c for c in _step_columns() if c in rows.columns]
    out = {"steps": rows.select("RunId", *model_cols).unique(["RunId", "step"], keep="first", maintain_order=True)}
    for kind in (AILab, CloudProvider, ChipVendor):
        cols = [c for c in rows.columns if c.startswith(f"{kind.__name__}.")]
        if cols:
            out[kind.__name__] = rows.filter(pl.col(cols[0]).is_not_null()).select("RunId", "step", *cols)
    for table in ROW_TABLES:
        flat = [(d["RunId"], *row) for d in firsts.values() for row in d.get(table) or []]
        out[table] = pl.DataFrame(flat, schema={"RunId": pl.Int64, **SCHEMAS[table]}, orient="row")
    return out


def bench_batch_run(sizes: Sizes, repeats: int) -> list[Figure]:
    """The same runs through ``mesa.batch_run`` and through our sweep, both on 2 processes."""
    import mesa

    scenarios, reps, steps = sizes.batch_scenarios, sizes.batch_replications, sizes.batch_steps
    n_runs = len(scenarios) * reps
    mesa_over, ours_over, mesa_rps, ours_rps, bares = [], [], [], [], []

    def bare_runs(seeds: list[int]) -> float:
        """Seconds for these seeds' runs of every scenario, one after another, without recording."""
        seconds, _ = _timed(lambda: [market.run(s, steps=steps, seed=k, record=False) for s in scenarios for k in seeds])
        return seconds

    for r in range(repeats):
        # the seeds our sweep gives its runs, so that both sides (and the bare runs) run the same models
        seeds = [run_seed(r, 0, k) for k in range(reps)]
        # the bare runs, half before the two sweeps and half after: the machine's changing speed
        # falls on the bare time as on the sweeps'
        bare = bare_runs(seeds[::2])
        with tempfile.TemporaryDirectory() as tmp:
            exp = Experiment(name="bench", scenarios=list(scenarios), replications=reps, steps=steps, base_seed=r)

            def ours(exp: Experiment = exp, tmp: str = tmp) -> dict[str, pl.DataFrame]:
                market.sweep(exp, Path(tmp) / "out", workers=2, progress=False)
                return {t: lf.collect() for t, lf in market.scan(Path(tmp) / "out").items()}

            def theirs(seeds: list[int] = seeds) -> dict[str, pl.DataFrame]:
                # batch_run runs while model.steps <= max_steps: max_steps = steps - 1 makes `steps` steps
                results = mesa.batch_run(MesaMarket, {"scenario": list(scenarios), "steps": steps, "seed": seeds},
                                         number_processes=2, data_collection_period=1, max_steps=steps - 1,
                                         display_progress=False)
                return batch_run_frames(results)

            order = (ours, theirs) if r % 2 == 0 else (theirs, ours)
            walls = {}
            for fn in order:
                walls[fn.__name__], _ = _timed(fn)
        bare += bare_runs(seeds[1::2])
        bares.append(bare)
        mesa_over.append(walls["theirs"] - bare / 2)
        ours_over.append(walls["ours"] - bare / 2)
        mesa_rps.append(n_runs / walls["theirs"])
        ours_rps.append(n_runs / walls["ours"])
    ratio = [m / max(o, 1e-3) for m, o in zip(mesa_over, ours_over, strict=True)]
    detail = (f"{n_runs} runs ({len(scenarios)} scenarios x {reps} seeds x {steps} steps), 2 processes, every step "
              f"recorded, polars frames at the end (ours also Parquet); overhead = wall - bare/2, bare (the same "
              f"runs without recording, one process, half before the sweeps and half after) "
              f"{_median(bares):.2f} s; overhead Mesa {_median(mesa_over):.2f} s, ours {_median(ours_over):.2f} s; "
              f"first repeat {ratio[0]:.2f}x (ours {ours_over[0]:.2f} s: the session's first sweep starts the fork "
              f"server our workers are forked from, Mesa forks its own process)")
    return [
        _fig("batch_run", "mesa.batch_run overhead / our sweep's", _median(ratio), "x", ">= 3", detail,
             mesa_overhead_s=mesa_over, ours_overhead_s=ours_over, bare_s=bares, ratios=ratio),
        _fig("batch_run", "runs per second, mesa.batch_run", _median(mesa_rps), "runs/s", "", "2 processes"),
        _fig("batch_run", "runs per second, our sweep", _median(ours_rps), "runs/s", "", "2 processes, Parquet"),
    ]


# -- 4. parallel efficiency ------------------------------------------------------------------------


def _seed_experiment(sizes: Sizes) -> Experiment:
    """experiments/seed_scenarios.toml (at full size), built here so the benchmark needs no checkout."""
    return Experiment(name="seed_scenarios", scenarios=list(SEED_SCENARIOS),
                      replications=sizes.parallel_replications, steps=sizes.parallel_steps, base_seed=20250601)


def bench_parallel(sizes: Sizes, repeats: int) -> list[Figure]:
    """Serial time / (2 x time on 2 workers) for the seed experiment: local pool and Dask."""
    from distributed import LocalCluster

    exp = _seed_experiment(sizes)
    n_runs = len(exp.runs())
    local, dask, rps = [], [], []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, tempfile.TemporaryDirectory() as tmp:
        def sweep(tag: str, **kw: Any) -> float:
            seconds, report = _timed(lambda: market.sweep(exp, Path(tmp) / tag, overwrite=True, progress=False, **kw))
            assert report.completed == n_runs, (tag, report.failures)
            return seconds

        sweep("warm", workers=2)  # first start of worker processes, imports and caches
        for r in range(repeats):
            order = ("serial", "local", "dask") if r % 2 == 0 else ("dask", "local", "serial")
            s = {}
            for tag in order:
                kw = {"workers": 1} if tag == "serial" else {"workers": 2} if tag == "local" else {
                    "scheduler": cluster.scheduler_address}
                s[tag] = sweep(tag, **kw)
            local.append(s["serial"] / (2 * s["local"]))
            dask.append(s["serial"] / (2 * s["dask"]))
            rps.append(n_runs / s["local"] / 2)
    detail = (f"the seed experiment: {n_runs} runs ({len(exp.scenarios)} scenarios x {exp.replications} x "
              f"{exp.steps} steps), {repeats} repeat(s); workers started beforehand")
    return [
        _fig("parallel", "parallel efficiency, local pool (2 workers)", _median(local), "", ">= 0.85", detail,
             values=local),
        _fig("parallel", "parallel efficiency, Dask cluster (2 workers)", _median(dask), "", ">= 0.8",
             "LocalCluster of 2 worker processes on 127.0.0.1", values=dask),
        _fig("parallel", "runs per second per core (local pool)", _median(rps), "runs/s", "",
             f"seed-scenario runs of {exp.steps} steps, recorded and written to Parquet", values=rps),
    ]


# -- 5. scaling ------------------------------------------------------------------------------------


def bench_scaling(sizes: Sizes, repeats: int) -> list[Figure]:
    """Time per step against the number of labs (the generated long tail), and the log-log slope."""
    named = len(market.load_scenario("baseline").labs)
    per_step: dict[int, list[float]] = {}
    for r in range(repeats):
        for n in sizes.labs:
            sc = market.load_scenario("baseline", {"long_tail.count": n - named}, steps=1 + sizes.scaling_steps)
            model = MarketModel(sc, seed=r)
            model.step()  # warm-up: the first month signs the standing book of contracts
            seconds, _ = _timed(lambda model=model: model.run(sizes.scaling_steps))
            per_step.setdefault(len(model.labs), []).append(seconds / sizes.scaling_steps)
            model.release()
    labs = sorted(per_step)
    med = [_median(per_step[n]) for n in labs]
    slope = float(np.polyfit(np.log(labs), np.log(med), 1)[0])
    steps = ", ".join(f"{n:,} labs {t * 1000:.1f} ms" for n, t in zip(labs, med, strict=True))
    return [_fig("scaling", f"log-log slope of time per step, {labs[0]:,}-{labs[-1]:,} labs", slope, "", "<= 1.15",
                 f"per step (recording on, median of {repeats}): {steps}",
                 labs=labs, seconds_per_step=med)]


# -- 6. memory -------------------------------------------------------------------------------------

_MEMORY_CHILD = r"""
import json, os, resource, sys, threading, time
import market
from market.batch.experiment import Experiment


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


def descendants(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(c) for c in fh.read().split()]
    except OSError:
        return []
    return kids + [d for k in kids for d in descendants(k)]


class WorkerPeak(threading.Thread):
    # The pool's workers are forked by a fork server, so they are not this process's children
    # and getrusage(RUSAGE_CHILDREN) does not see them: read each descendant's own peak (VmHWM,
    # which only grows) every 20 ms while the sweep runs.
    def __init__(self):
        super().__init__(daemon=True)
        self.peak_kb, self.stop = 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            for pid in descendants(os.getpid()):
                try:
                    self.peak_kb = max(self.peak_kb, vm_hwm_kb(pid))
                except (OSError, StopIteration):
                    pass  # ended meanwhile
            time.sleep(0.02)


if __name__ == "__main__":
    exp = Experiment(name="memory", scenarios=["baseline"], replications=int(sys.argv[1]), steps=int(sys.argv[2]),
                     base_seed=1)
    watch = WorkerPeak()
    watch.start()
    report = market.sweep(exp, sys.argv[3], workers=2, progress=False)
    watch.stop.set()
    watch.join()
    try:  # ru_maxrss survives exec on Linux: it would report the benchmark process's own peak
        parent_kb = vm_hwm_kb("self")
    except OSError:
        parent_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker_kb = max(watch.peak_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"runs": report.completed, "wall_seconds": report.wall_seconds,
                      "parent_mb": parent_kb / 1024, "worker_mb": worker_kb / 1024}))
"""


def bench_memory(sizes: Sizes, repeats: int) -> list[Figure]:
    """Peak RSS of a large sweep / of a small one, each in a fresh process (parent and workers)."""
    ratios, seen = [], []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "child.py"
        script.write_text(_MEMORY_CHILD)
        for r in range(repeats):
            peak = {}
            for n in sizes.memory_runs:
                out = Path(tmp) / f"sweep{n}-{r}"
                line = subprocess.run([sys.executable, str(script), str(n), str(sizes.memory_steps), str(out)],
                                      check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
                peak[n] = json.loads(line)
                seen.append(peak[n])
            small, large = (peak[n] for n in sizes.memory_runs)
            ratios.append(max(large["parent_mb"] / small["parent_mb"], large["worker_mb"] / small["worker_mb"]))
    small, large = sizes.memory_runs
    last = {n: next(p for p in reversed(seen) if p["runs"] == n) for n in sizes.memory_runs}
    detail = (f"{large:,}-run / {small:,}-run sweep ({sizes.memory_steps} steps, 2 workers), larger of the parent's "
              f"and the workers' ratio; parent {last[small]['parent_mb']:.0f} -> {last[large]['parent_mb']:.0f} MB, "
              f"worker {last[small]['worker_mb']:.0f} -> {last[large]['worker_mb']:.0f} MB")
    return [_fig("memory", f"peak RSS, {large:,}-run / {small:,}-run sweep", _median(ratios), "x", "<= 1.2", detail,
                 runs=seen)]


# -- 7. reading back -------------------------------------------------------------------------------


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
        sweep_s, report = _timed(lambda: market.sweep(exp, out, workers=2, progress=False, compact=False))
        files_before = sum(1 for _ in (out / "shares").rglob("*.parquet"))
        single = Path(tmp) / "shares.parquet"
        market.scan(out)["shares"].collect().write_parquet(single)

        def query_times(lf_of: Callable[[], pl.LazyFrame]) -> list[float]:
            return [_timed(lambda: mean_share_query(lf_of()))[0] for _ in range(repeats)]

        def ratio_now() -> tuple[float, float, float]:
            many = query_times(lambda: market.scan(out)["shares"])
            one = query_times(lambda: pl.scan_parquet(single))
            return _median(many) / _median(one), _median(many), _median(one)

        loose = ratio_now()
        compact_s, _ = _timed(lambda: compact(out))
        files_after = sum(1 for _ in (out / "shares").rglob("*.parquet"))
        packed = ratio_now()
        same = _close(mean_share_query(market.scan(out)["shares"]), mean_share_query(pl.scan_parquet(single)))
    detail = (f"{report.completed:,}-run sweep ({sizes.readback_steps} step(s), written in {sweep_s:.0f} s), "
              f"compacted in {compact_s:.1f} s from {files_before:,} to {files_after} files per table; query "
              f"{packed[1] * 1000:.0f} ms vs {packed[2] * 1000:.0f} ms on one file; before compaction "
              f"{loose[0]:.1f}x ({loose[1] * 1000:.0f} ms); same result (to 1e-12): {'yes' if same else 'NO'}")
    return [_fig("readback", "reading back: compacted sweep / one Parquet file", packed[0], "x", "<= 2", detail,
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


_AGAINST_RUNS = r"""
import sys, time, market
market.run("baseline", seed=0, steps=2)  # warm up: imports and first calls
print("ready", flush=True)
for line in sys.stdin:
    scenario, seed, steps = line.split()
    t = time.perf_counter()
    market.run(scenario, seed=int(seed), steps=int(steps))
    print(time.perf_counter() - t, flush=True)
"""

_AGAINST_STEP = r"""
import sys, time, market
from market.model import MarketModel
named = len(market.load_scenario("baseline").labs)
print("ready", flush=True)
for line in sys.stdin:
    seed, labs, steps = (int(x) for x in line.split())
    sc = market.load_scenario("baseline", {"long_tail.count": labs - named}, steps=1 + steps)
    model = MarketModel(sc, seed=seed)
    model.step()  # warm-up month: the standing book of contracts is signed
    t = time.perf_counter()
    for _ in range(steps):
        model.step()
    print((time.perf_counter() - t) / steps, flush=True)
"""


class _Timer:
    """A Python process importing ``market`` from ``root``, timing what it is sent line by line."""

    def __init__(self, root: Path, code: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(root))
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=root)
        self._read()

    def _read(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the benchmark process importing {self.proc.args} stopped (see its error above)")
        return line.strip()

    def time(self, request: str) -> float:
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return float(self._read())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _in_turn(other: Path, code: str, requests: list[str]) -> tuple[list[float], list[float]]:
    """Each request timed by a process importing ``other`` and one importing this checkout, in
    turn, the first of the two alternating."""
    here = Path(market.__file__).resolve().parent.parent
    a, b = _Timer(other, code), _Timer(here, code)
    times_a: list[float] = []
    times_b: list[float] = []
    try:
        for n, request in enumerate(requests):
            for timer, times in ([(a, times_a), (b, times_b)] if n % 2 == 0 else [(b, times_b), (a, times_a)]):
                times.append(timer.time(request))
    finally:
        a.close()
        b.close()
    return times_a, times_b


def bench_against(sizes: Sizes, repeats: int, other: Path) -> list[Figure]:
    """This checkout's speed against another's (e.g. a git worktree of an earlier commit), run for
    run: two long-lived processes, one importing each, take turns on the same run, so a machine
    whose speed drifts (by tens of per cent within minutes on a shared one) affects both alike and
    the ratio is taken pair by pair. Seed-scenario runs (the five scenarios x ``repeats`` seeds)
    and steps of the largest scaling size (``repeats`` models)."""
    out = []
    runs = [f"{s} {seed} {sizes.steps}" for seed in range(repeats) for s in SEED_SCENARIOS]
    steps = [f"{seed} {sizes.labs[-1]} {sizes.scaling_steps}" for seed in range(repeats)]
    for name, code, requests, unit, scale in (
            ("seed-scenario run", _AGAINST_RUNS, runs, "s", 1.0),
            (f"step with {sizes.labs[-1]:,} labs", _AGAINST_STEP, steps, "ms", 1000.0)):
        theirs, ours = _in_turn(other, code, requests)
        ratios = [b / a for a, b in zip(theirs, ours, strict=True)]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        digits = 3 if unit == "s" else 0
        out.append(_fig("against", f"{name}, this / {other.name}", _median(ratios), "x", "<= 1.2",
                        f"{len(ratios)} pairs in turn; medians {_median(theirs) * scale:.{digits}f} {unit} "
                        f"({other}) and {_median(ours) * scale:.{digits}f} {unit} (this); pair quartiles "
                        f"{q[0]:.2f}-{q[2]:.2f}", other=str(other), theirs=theirs, ours=ours))
    return out


def bench_explore(sizes: Sizes, repeats: int) -> list[Figure]:
    """The explorer (issue 18): first what-if result, sweep-browser redraw (market/explorer/bench.py)."""
    from market.explorer.bench import bench_explore as explorer_figures  # noqa: PLC0415

    return explorer_figures(sizes, repeats, _fig)


BENCHMARKS: dict[str, Callable[[Sizes, int], list[Figure]]] = {
    "collector": bench_collector,
    "datacollector": bench_datacollector,
    "batch_run": bench_batch_run,
    "parallel": bench_parallel,
    "scaling": bench_scaling,
    "memory": bench_memory,
    "readback": bench_readback,
    "explore": bench_explore,
}
HEAVY = {"parallel": 3, "memory": 3, "readback": 1}  # repeats divided by this (at least one)


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on every platform
        return None


def machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            **{pkg: package_version(pkg) for pkg in ("market", "mesa", "polars", "numpy", "pandas", "dask", "distributed")}}


def check_request(only: list[str] | None, against: str | os.PathLike | None) -> list[str]:
    """The benchmarks ``only`` asks for (all by default; ``against`` is run apart), or a
    ValueError naming the option and what it allows, before anything is run."""
    names = [n for n in only if n != "against"] if only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"--only {unknown[0]!r}: no such benchmark; choose from {', '.join([*BENCHMARKS, 'against'])}.")
    if only and "against" in only and against is None:
        raise ValueError("--only against: give the checkout to time against with --against DIR.")
    if against is not None and not (Path(against) / "market" / "__init__.py").is_file():
        raise ValueError(f"--against {against}: no market/ package there; give another checkout of this repository "
                         "(e.g. git worktree add /tmp/before <commit>).")
    return names


def run_benchmarks(*, quick: bool = False, only: list[str] | None = None, repeats: int | None = None,
                   progress: Callable[[str], None] | None = None,
                   against: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run the benchmarks; returns ``{"machine", "mode", "repeats", "figures": [Figure as dict]}``.
    With ``against`` (another checkout of this repository) also :func:`bench_against` it
    (``only=["against"]``: only that)."""
    names = check_request(only, against)
    sizes = QUICK if quick else FULL
    n = repeats if repeats is not None else (1 if quick else 5)
    figures: list[Figure] = []
    started = time.perf_counter()
    for name in names:
        if progress:
            progress(name)
        load = _load()
        got = BENCHMARKS[name](sizes, max(1, n // HEAVY.get(name, 1)))
        for f in got:  # a shared machine's load shows in the figures: say how loaded it was
            f.data["load_average"] = [load, _load()]
        figures += got
    if against is not None:
        other = Path(against).resolve()
        if progress:
            progress("against")
        load = _load()
        got = bench_against(sizes, n, other)
        for f in got:
            f.data["load_average"] = [load, _load()]
        figures += got
    return {"machine": machine(), "mode": "quick" if quick else "full", "repeats": n,
            "seconds": time.perf_counter() - started, "figures": [asdict(f) for f in figures]}


def table(result: dict[str, Any]):
    from rich.table import Table

    m = result["machine"]
    title = (f"market bench ({result['mode']}, repeats {result['repeats']}): {m['cores']} cores, Python {m['python']}, "
             f"mesa {m['mesa']}, polars {m['polars']}, numpy {m['numpy']}, dask {m['dask']}")
    t = Table(title=title, title_justify="left")
    for col in ("benchmark", "figure", "value", "target", "met", "details"):
        t.add_column(col, overflow="fold", justify="right" if col == "value" else "left")
    for f in result["figures"]:
        value = "-" if f["value"] is None or (isinstance(f["value"], float) and math.isnan(f["value"])) else (
            f"{f['value']:.3g} {f['unit']}".strip())
        met = "" if f["met"] is None else ("yes" if f["met"] else "NO")
        load = f["data"].get("load_average")
        details = f["details"] + (f"; load average {load[0]} -> {load[1]}" if load and None not in load else "")
        t.add_row(f["benchmark"], f["figure"], value, f["target"], met, details)
    return t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m market.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: proves the benchmarks work, no figures")
    ap.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    ap.add_argument("--only", action="append", choices=[*BENCHMARKS, "against"],
                    help="run only this benchmark (repeatable)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats of each measurement (default 5; 1 quick)")
    ap.add_argument("--against", metavar="DIR", help="also time this checkout against another, run for run")
    args = ap.parse_args(argv)
    emit(run_benchmarks(quick=args.quick, only=args.only, repeats=args.repeats, against=args.against,
                        progress=lambda n: print(f"running {n} ...", file=sys.stderr, flush=True)), args.json)


def emit(result: dict[str, Any], json_path: str | os.PathLike | None) -> None:
    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 200).print(table(result))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
