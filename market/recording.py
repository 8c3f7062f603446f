"""The collector: reads the model after each step into tidy polars tables.

Every table is long: one row per (run, step, entity), keyed by ``run_id`` and ``step``; the same
schema (:data:`SCHEMAS`) serves single runs, sweeps and notebooks. While the model runs, each
table's values are appended to one flat list (no object per row, so the garbage collector has
nothing more to track); they become polars DataFrames once, at the end, so recording costs little
next to the model; nothing goes through pandas. The labs and readiness tables keep only the values
that change (labs and ecosystems are the same every step): their key and derived columns are made
at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from market.contracts import PURPOSES

if TYPE_CHECKING:
    from market.agents.lab import AILab
    from market.model import MarketModel

__all__ = ["SCHEMAS", "TABLES", "Recorder", "hhi", "weighted_rental_price"]

_F = pl.Float64
_I = pl.Int64
_S = pl.String

RUNS_SCHEMA: dict[str, pl.DataType] = {
    "run_id": _S, "scenario": _S, "seed": _I, "steps": _I, "start_date": pl.Date, "config": _S,
    "config_hash": _S, "package_version": _S, "mesa_version": _S, "polars_version": _S,
    "python_version": _S, "status": _S, "error": _S, "wall_seconds": _F,
}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "runs": RUNS_SCHEMA,
    "steps": {
        "step": _I, "date": pl.Date, "packaging_wafers": _F, "demand_pflops": _F, "served_pflops": _F,
        "unmet_pflops": _F, "contracted_pflops": _F, "installed_pflops": _F, "utilisation": _F,
        "chips_shipped": _F, "contracts_signed": _I, "withheld_chips": _F, "withheld_top_tier_chips": _F,
        "hhi": _F, "clearing_iterations": _I, "clearing_residual": _F,
    },
    "shares": {
        "step": _I, "vendor": _S, "compute_pflops": _F, "compute_share": _F, "shipped_chips": _F,
        "shipped_pflops": _F, "shipment_share": _F, "revenue_usd": _F, "revenue_share": _F,
    },
    "prices": {
        "step": _I, "product": _S, "vendor": _S, "tier": _S, "performance_class": _S, "on_sale": pl.Boolean, "chip_price_usd": _F,
        "rental_price_usd_per_chip_hour": _F, "rental_price_usd_per_pflop_hour": _F,
        "contract_price_usd_per_chip_hour": _F, "installed_chips": _F,
    },
    "contracts": {
        "step": _I, "contract_id": _I, "lab": _S, "lessee": _S, "cloud": _S, "vendor": _S, "product": _S, "tier": _S,
        "performance_class": _S, "purpose": _S, "kind": _S, "chips": _F, "pflops": _F, "price_usd_per_chip_hour": _F,
        "list_price_usd_per_chip_hour": _F, "months": _I, "rounds": _I,
    },
    "withholding": {
        "step": _I, "holder": _S, "level": _S, "buyer": _S, "lab": _S, "product": _S, "vendor": _S, "tier": _S,
        "chips_withheld": _F, "reason": _S,
    },
    "fleet": {
        "step": _I, "cloud": _S, "product": _S, "vendor": _S, "tier": _S, "performance_class": _S, "installed_chips": _F, "contracted_chips": _F,
        "in_transit_chips": _F, "rental_price_usd_per_chip_hour": _F, "leased_in_chips": _F, "leased_out_chips": _F,
    },
    "vendors": {
        "step": _I, "vendor": _S, "wafers_requested": _F, "wafers": _F, "capacity_chips": _F, "orders_chips": _F,
        "shipped_chips": _F, "utilisation": _F, "mean_list_price_usd": _F, "revenue_usd": _F, "profit_usd": _F,
    },
    "clouds": {
        "step": _I, "cloud": _S, "kind": _S, "capex_budget_usd": _F, "capex_spent_usd": _F, "installed_chips": _F,
        "capacity_pflops": _F, "contracted_pflops": _F, "utilisation": _F, "revenue_usd": _F, "affiliate_revenue_usd": _F, "cost_usd": _F,
        "profit_usd": _F, "leased_in_pflops": _F, "leased_out_pflops": _F,
    },
    "labs": {
        "step": _I, "lab": _S, "budget_usd": _F, "spend_usd": _F, "demand_pflops": _F, "contracted_pflops": _F,
        "served_pflops": _F, "unmet_pflops": _F, "utilisation": _F, "value_usd": _F, "surplus_usd": _F,
        "largest_vendor": _S, "largest_vendor_share": _F, "active_contracts": _I, "on_demand_pflops": _F,
        "anchor_pflops": _F,
    },
    "lab_mix": {"step": _I, "lab": _S, "vendor": _S, "purpose": _S, "pflops": _F, "share": _F},
    "readiness": {"step": _I, "lab": _S, "purpose": _S, "ecosystem": _S, "readiness": _F},
}
TABLES = tuple(SCHEMAS)


def weighted_rental_price() -> pl.Expr:
    """Rental price per PFLOP-hour of a group of ``prices`` rows, weighted by installed chips."""
    return ((pl.col("rental_price_usd_per_pflop_hour") * pl.col("installed_chips")).sum()
            / pl.col("installed_chips").sum())


def hhi(shares: list[float]) -> float:
    """Herfindahl-Hirschman index on the 0-10,000 scale (shares as fractions)."""
    return 10_000.0 * sum(s * s for s in shares)


def _share(x: float, total: float) -> float:
    return x / total if total > 0 else 0.0


class Recorder:
    """Collects one model's tables; call :meth:`collect` after each step, :meth:`tables` at the end."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        # Each table's rows one after another in one flat list of values (a row's values side by side):
        # values alone are not tracked by the garbage collector, where a tuple per row would make
        # it run several times as often while the model runs.
        self.rows: dict[str, list] = {t: [] for t in TABLES if t != "runs"}
        self.ecosystems = model.ecosystems
        products = model.config.products
        self._pflops = {p: cfg.pflops for p, cfg in products.items()}  # static: looked up once
        self._vendor_of = {p: cfg.vendor for p, cfg in products.items()}
        self._lab_steps: list[int] = []  # the steps of the labs' and readiness rows

    def collect(self) -> None:
        """Append this step's rows to every table (one method per table, so that other collectors
        can reuse the same rows; see ``market.bench.mesa_side``).

        Values the agents' own methods give (``AILab.useful_contracted()``,
        ``CloudProvider.capacity_pflops()`` ...) are computed here without the calls, by the same
        floating-point operations in the same order: the benchmark's Mesa side records them
        through those methods and checks that they agree."""
        m = self.model
        t = m.t
        compute, shipped, tc = self._vendors(t)
        self._prices(t)
        self._fleet(t)
        installed_pf, contracted_pf = self._clouds(t)
        demand, served = self._labs(t)
        self._lab_mix(t)
        self._contracts(t)
        withheld, top = self._withholding(t)
        self.rows["steps"].extend((t, m.config.date_of(t), m.packaging_capacity, demand, served,
                                   max(0.0, demand - served), contracted_pf, installed_pf,
                                   _share(contracted_pf, installed_pf), sum(shipped.values()), len(m.signed), withheld,
                                   top, hhi([_share(x, tc) for x in compute.values()]), *m.compute_market.solve))

    def _vendors(self, t: int) -> tuple[dict[str, float], dict[str, float], float]:
        """Rows of ``shares`` and ``vendors``; returns compute and shipped chips by vendor, and total compute."""
        m = self.model
        rows = self.rows
        pflops, vendor_of = self._pflops, self._vendor_of
        compute = dict.fromkeys(m.vendors, 0.0)
        for cloud in m.cloud_list:
            for p, chips in cloud.contracted.items():
                compute[vendor_of[p]] += chips * pflops[p]
        shipped = {v.vendor_id: sum(v.shipped.values()) for v in m.vendor_list}
        shipped_pf = {v.vendor_id: sum([c * pflops[p] for p, c in v.shipped.items()]) for v in m.vendor_list}
        revenue = {v.vendor_id: v.revenue for v in m.vendor_list}
        tc, ts, tr = sum(compute.values()), sum(shipped.values()), sum(revenue.values())
        for v in m.vendor_list:
            vid = v.vendor_id
            rows["shares"].extend((t, vid, compute[vid], _share(compute[vid], tc), shipped[vid], shipped_pf[vid],
                                   _share(shipped[vid], ts), revenue[vid], _share(revenue[vid], tr)))
            # notional capacity from its reserved packaging, or more if it got spare wafers
            capacity = max(sum(v.potential.values()), shipped[vid])
            live = v.on_sale()
            mean_price = sum(v.list_price[p] for p in live) / len(live) if live else None
            rows["vendors"].extend((t, vid, v.wafers_requested, v.wafers, capacity, sum(sum(o.values()) for o in v.orders.values()),
                                    shipped[vid], _share(shipped[vid], capacity), mean_price, v.revenue, v.profit))
        return compute, shipped, tc

    def _prices(self, t: int) -> None:
        """Rows of ``prices``: posted rental prices averaged over the public clouds that hold the product."""
        m = self.model
        products = m.config.products
        signed: dict[str, list[float]] = {}
        for c in m.signed:
            s = signed.setdefault(c.product, [0.0, 0.0])
            s[0] += c.chips * c.price_usd_per_chip_hour
            s[1] += c.chips
        out = self.rows["prices"]
        for p, state in m.products.items():
            cfg = products[p]
            if cfg.release_step > t:
                continue
            weight = price_sum = installed = 0.0
            for cloud in m.cloud_list:
                chips = cloud.installed.get(p, 0.0)
                installed += chips
                if chips >= 1.0 and cloud.owner_lab is None:  # ignore float dust of retired fleets
                    weight += chips
                    price_sum += chips * cloud.rental_price[p]
            rental = price_sum / weight if weight > 0 else None
            s = signed.get(p)
            out.extend((t, p, state.vendor, state.tier, state.performance_class, state.on_sale, m.vendors[state.vendor].list_price[p],
                        rental, rental / cfg.pflops if rental is not None else None,
                        s[0] / s[1] if s and s[1] > 0 else None, installed))

    def _fleet(self, t: int) -> None:
        """Rows of ``fleet``: each cloud's chips and posted price by product."""
        m = self.model
        out = self.rows["fleet"]
        for cloud in m.cloud_list:
            transit: dict[str, float] = {}
            for _, p, chips, _ in cloud.pipeline:
                transit[p] = transit.get(p, 0.0) + chips
            leased_in, leased_out = cloud.leased_in, cloud.leased_out
            for p in sorted(cloud.installed.keys() | transit.keys() | leased_in.keys()):
                installed = cloud.installed.get(p, 0.0)
                if installed < 1.0 and transit.get(p, 0.0) < 1.0 and leased_in.get(p, 0.0) < 1.0:
                    continue  # a fleet retired down to float dust
                state = m.products[p]
                out.extend((t, cloud.cloud_id, p, state.vendor, state.tier, state.performance_class, installed,
                            cloud.contracted.get(p, 0.0), transit.get(p, 0.0), cloud.rental_price.get(p),
                            leased_in.get(p, 0.0), leased_out.get(p, 0.0)))

    def _clouds(self, t: int) -> tuple[float, float]:
        """Rows of ``clouds``; returns installed and contracted PFLOP/s of all clouds."""
        installed_pf = contracted_pf = 0.0
        out = self.rows["clouds"]
        pflops = self._pflops
        for cloud in self.model.cloud_list:
            # cloud.capacity_pflops() and cloud.contracted_pflops(), without their per-product config lookups
            cap = sum([c * pflops[p] for p, c in cloud.installed.items()])
            con = sum([c * pflops[p] for p, c in cloud.contracted.items()])
            # leases: a chip leased out is the lessor's, in use; leased in, the lessee's to rent out
            lin = sum([c * pflops[p] for p, c in cloud.leased_in.items()])
            lout = sum([c * pflops[p] for p, c in cloud.leased_out.items()])
            installed_pf += cap
            contracted_pf += con
            out.extend((t, cloud.cloud_id, cloud.cfg.kind, cloud.capex_budget, cloud.capex_spent,
                        sum(cloud.installed.values()), cap, con, _share(con + lout, cap + lin), cloud.revenue,
                        cloud.affiliate_revenue, cloud.cost, cloud.profit, lin, lout))
        return installed_pf, contracted_pf

    def _labs(self, t: int) -> tuple[float, float]:
        """Rows of ``labs`` and ``readiness``; returns total demand and served PFLOP/s.

        Only the values that change are read each month, lab after lab in ``lab_list`` order (which
        a run never changes); ``step``, ``lab`` and the derived columns are made at the end
        (:meth:`_labs_table`). The lab's running totals of its contracts (kept by ``AILab._book``)
        are read directly: the same arithmetic as ``useful_contracted()``, ``peak_contracted()``,
        ``committed_spend()`` and ``vendor_shares()``, in one pass, without the calls."""
        labs, readiness = self.rows["labs"], self.rows["readiness"]  # readiness: lab, purpose, ecosystem
        self._lab_steps.append(t)
        demand = served = 0.0
        # ``x if x > 0.0 else 0.0`` is ``max(0.0, x)`` (NaN and -0.0 included), without the call
        for lab in self.model.lab_list:
            by_vendor = lab._peak_vendor
            peak = sum([pf if pf > 0.0 else 0.0 for pf in by_vendor.values()])  # noqa: FURB136
            r = lab.readiness
            useful = sum([(pf if pf > 0.0 else 0.0) * r[key] for key, pf in lab._peak.items()])  # noqa: FURB136
            spend = lab._spend
            largest, most = None, 0.0  # AILab.largest_vendor(): ties to the first in name order
            if peak > 0:
                for v, pf in by_vendor.items():
                    if pf > 1e-9 and (pf > most or (pf == most and v < largest)):
                        largest, most = v, pf
                most = most / peak if largest is not None else 0.0
            d = lab.notional()  # what it wants at the prices it is used to: the priced-out part is unmet
            demand += d
            served += d if d < useful else useful  # noqa: FURB136 - min(useful, d), without the call
            kinds = lab._peak_kind  # AILab.kind_pflops()
            od, anchor = kinds.get("on_demand", 0.0), kinds.get("anchor", 0.0)
            labs += (lab.budget, spend if spend > 0.0 else 0.0, d, peak, useful, largest, most,  # noqa: FURB136
                     lab.n_contracts, od if od > 0.0 else 0.0, anchor if anchor > 0.0 else 0.0)  # noqa: FURB136
            readiness += r.values()  # keyed by PURPOSES x model.ecosystems, in that order (AILab.__init__)
        return demand, served

    def _lab_mix(self, t: int) -> None:
        """Rows of ``lab_mix``: each lab's peak PFLOP/s under contract by vendor and purpose, and
        its share of all the lab's contracted peak compute (:meth:`AILab.compute_mix`)."""
        out = self.rows["lab_mix"]
        for lab in self.model.lab_list:
            mix = lab.compute_mix()
            if not mix:
                continue
            peak = sum([pf if pf > 0.0 else 0.0 for pf in lab._peak_vendor.values()])  # noqa: FURB136
            for (vendor, purpose), pf in mix.items():
                out.extend((t, lab.lab_id, vendor, purpose, pf, pf / peak))

    def _contracts(self, t: int) -> None:
        """Rows of ``contracts``: those signed this step; a :class:`~market.contracts.Contract`'s
        fields are the row (``step`` is its ``start_step``)."""
        self.rows["contracts"].extend(chain.from_iterable(self.model.signed))

    def _withholding(self, t: int) -> tuple[float, float]:
        """Rows of ``withholding``: refusals this step; returns chips withheld, and of the top tier."""
        out = self.rows["withholding"]
        withheld = top = 0.0
        for r in self.model.refusals:
            out.append(t)
            out.extend(r)  # a Refusal's fields are the row after ``step``
            withheld += r.chips_withheld
            top += r.chips_withheld if r.tier == "top" else 0.0
        return withheld, top

    def tables(self, run_id: str) -> dict[str, pl.DataFrame]:
        """The recorded tables, each led by ``run_id`` and sorted by step then entity."""
        out = {}
        for table in self.rows:
            if table == "readiness":
                df = self._readiness_table()
            elif table == "labs":
                df = self._labs_table()
            else:
                df = _frame(self.rows[table], SCHEMAS[table])
            out[table] = df.insert_column(0, pl.Series("run_id", [run_id], dtype=_S).new_from_index(0, df.height))
        return out

    def _labs_table(self) -> pl.DataFrame:
        """The ``labs`` table from the values read each month (the same arithmetic as per row, IEEE
        doubles either way)."""
        df = _frame(self.rows["labs"], _LAB_VALUES)
        step, lab, value_rate = self._lab_keys(1, lambda lab: lab.cfg.value_usd_per_pflop_hour)
        useful, demand = pl.col("useful"), pl.col("demand_pflops")
        served = pl.when(demand < useful).then(demand).otherwise(useful)  # min(useful, demand)
        unmet = demand - useful
        value = served * value_rate * self.model.hours
        return df.select(
            step, lab,
            *[pl.col(c) for c in ("budget_usd", "spend_usd", "demand_pflops", "contracted_pflops")],
            served.alias("served_pflops"),
            pl.when(unmet > 0.0).then(unmet).otherwise(0.0).alias("unmet_pflops"),  # max(0.0, unmet)
            # utilisation: share of the useful compute it rents that meets demand
            pl.when(useful > 0).then(served / useful).otherwise(0.0).alias("utilisation"),
            value.alias("value_usd"),
            (value - pl.col("spend_usd")).alias("surplus_usd"),
            "largest_vendor", "largest_vendor_share", "active_contracts", "on_demand_pflops", "anchor_pflops",
        )

    def _lab_keys(self, per_lab: int, attr: Callable[[AILab], float] | None = None) -> list[pl.Series]:
        """``step`` and ``lab`` columns of rows recorded step-major, lab-minor, ``per_lab`` rows per
        lab (in ``lab_list`` order, which a run never changes); and ``attr`` of each row's lab."""
        lab_list = self.model.lab_list
        n_lab, n_step = len(lab_list), len(self._lab_steps)
        of_lab = np.tile(np.repeat(np.arange(n_lab), per_lab), n_step)
        out = [pl.Series("step", np.repeat(np.array(self._lab_steps, dtype=np.int64), n_lab * per_lab), dtype=_I),
               pl.Series("lab", [lab.lab_id for lab in lab_list], dtype=_S).gather(of_lab)]
        if attr is not None:
            out.append(pl.Series(np.array([attr(lab) for lab in lab_list], dtype=np.float64)[of_lab], dtype=_F))
        return out

    def _readiness_table(self) -> pl.DataFrame:
        n_eco = len(self.ecosystems)
        per_lab = len(PURPOSES) * n_eco
        step, lab = self._lab_keys(per_lab)
        values = self.rows["readiness"]
        repeats = len(values) // per_lab if per_lab else 0
        return pl.DataFrame({
            "step": step, "lab": lab,
            "purpose": pl.Series(np.repeat(PURPOSES, n_eco), dtype=_S).gather(np.tile(np.arange(per_lab), repeats)),
            "ecosystem": pl.Series(self.ecosystems * len(PURPOSES), dtype=_S).gather(
                np.tile(np.arange(per_lab), repeats)),
            "readiness": pl.Series(values, dtype=_F),
        }, schema=SCHEMAS["readiness"])


def _frame(values: list, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """A frame from rows stored one after another in a flat list, column by column."""
    n = len(schema)
    return pl.DataFrame([pl.Series(name, values[i::n], dtype=dtype) for i, (name, dtype) in enumerate(schema.items())])


# What is read of each lab every month; the labs table's other columns are made from these.
_LAB_VALUES: dict[str, pl.DataType] = {
    "budget_usd": _F, "spend_usd": _F, "demand_pflops": _F, "contracted_pflops": _F, "useful": _F,
    "largest_vendor": _S, "largest_vendor_share": _F, "active_contracts": _I, "on_demand_pflops": _F,
    "anchor_pflops": _F}
