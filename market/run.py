"""Single runs: ``market.run(scenario, steps=None, seed=0)`` and its result.

    >>> import market
    >>> result = market.run("openai_google_tpu", steps=12, seed=3)
    >>> result.shares.filter(step=11).select("vendor", "compute_share")   # doctest: +SKIP
    >>> result.write_parquet("outputs/single")                            # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import polars as pl

from market._io import write_atomic
from market.model import MarketModel
from market.recording import RUNS_SCHEMA, TABLES, weighted_rental_price
from market.scenario import Scenario, load_scenario

__all__ = ["RunResult", "run", "run_model"]

Seed = int
MAX_SEED = 2**63 - 1  # the runs table stores a seed as a 64-bit integer


@dataclass
class RunResult:
    """The tables of one run (see :data:`market.recording.SCHEMAS`), by name.

    Tables are also attributes: ``result.shares``, ``result.prices`` ... ``result.runs`` holds one
    row of provenance (scenario, seed, resolved config, versions, status, wall time).
    """

    run_id: str
    scenario: Scenario
    seed: Seed
    tables: dict[str, pl.DataFrame] = field(repr=False)

    def __getattr__(self, name: str) -> pl.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    @property
    def status(self) -> str:
        return self.tables["runs"]["status"][0]

    def write_parquet(self, folder: str | os.PathLike) -> dict[str, Path]:
        """Write each table as ``folder/<table>.parquet``; each file appears whole or not at all."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, df in self.tables.items():
            paths[name] = out / f"{name}.parquet"
            write_atomic(df, paths[name])
        return paths

    def summary(self) -> dict[str, pl.DataFrame]:
        """Final-step outcomes: vendor shares, price per PFLOP-hour by performance class, withheld
        chips, unmet demand."""
        last = self.tables["steps"]["step"].max()
        shares = (self.tables["shares"].filter(pl.col("step") == last)
                  .select("vendor", "compute_share", "shipment_share", "revenue_share")
                  .sort("compute_share", descending=True))
        prices = (self.tables["prices"].filter((pl.col("step") == last) & pl.col("rental_price_usd_per_pflop_hour").is_not_null())
                  .group_by("performance_class").agg(
                      weighted_rental_price().alias("rental_usd_per_pflop_hour"),
                      pl.col("product").sort().str.join(", ").alias("products"))
                  .sort("performance_class"))
        steps = self.tables["steps"]
        market = steps.select(
            pl.col("withheld_chips").sum().alias("withheld_chips_total"),
            pl.col("withheld_top_tier_chips").sum().alias("withheld_top_tier_chips_total"),
            pl.col("unmet_pflops").filter(pl.col("step") == last).first().alias("unmet_pflops_final"),
            (pl.col("unmet_pflops") / pl.col("demand_pflops")).filter(pl.col("step") == last).first().alias("unmet_share_final"),
            pl.col("hhi").filter(pl.col("step") == last).first().alias("hhi_final"),
        )
        return {"shares": shares, "prices": prices, "market": market}


@functools.cache
def package_version(name: str) -> str:
    """An installed package's version, or "unknown"; read once per process (reading a
    distribution's metadata costs about 0.4 ms, and every run's provenance row needs three)."""
    try:
        return version(name)
    except Exception:  # noqa: BLE001 - not installed, or broken metadata: provenance says so
        return "unknown"


def _versions() -> dict[str, str]:
    return {"package_version": package_version("market"), "mesa_version": package_version("mesa"),
            "polars_version": package_version("polars"), "python_version": platform.python_version()}


def run(scenario: Scenario | str | os.PathLike, steps: int | None = None, seed: Seed = 0, *,
        record: bool = True, raise_errors: bool = True, run_id: str | None = None) -> RunResult:
    """Run one simulation and return its tables.

    ``scenario`` is a :class:`Scenario`, a built-in name or a path to a TOML file; ``steps``
    defaults to the scenario's. With ``raise_errors=False`` an exception inside the model is
    recorded in ``runs`` (status "failed", error text) and the tables hold the steps completed.
    """
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed} is out of range; allowed: 0 to 2**63 - 1")
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    n = sc.steps if steps is None else steps
    if n != sc.steps:
        sc = Scenario.model_validate({**sc.model_dump(), "steps": n})
    return run_model(MarketModel(sc, seed=seed, record=record, run_id=run_id), sc, seed, raise_errors=raise_errors)


def run_model(model: MarketModel, sc: Scenario, seed: Seed, *, raise_errors: bool = True,
              before: Callable[[MarketModel, int], None] | None = None,
              after: Callable[[MarketModel, int], None] | None = None) -> RunResult:
    """Step a model built from ``sc`` through ``sc.steps`` months and return its tables, as
    :func:`run` does; ``before(model, month)`` and ``after(model, month)`` are called around each
    month's step (adaptive strategies move their levers there: :mod:`market.games.adaptive`)."""
    n = sc.steps
    started = time.perf_counter()
    status, error = "complete", None
    try:
        if before is None and after is None:
            model.run(n)
        else:
            for month in range(n):
                if before is not None:
                    before(model, month)
                model.step()
                if after is not None:
                    after(model, month)
    except Exception as exc:
        if raise_errors:
            raise
        status, error = "failed", "".join(traceback.format_exception_only(exc)).strip()
    wall = time.perf_counter() - started
    tables = model.recorder.tables(model.run_id) if model.recorder else {t: pl.DataFrame() for t in TABLES if t != "runs"}
    model.release()
    runs = pl.DataFrame([{
        "run_id": model.run_id, "scenario": sc.name, "seed": seed, "steps": n, "start_date": sc.date_of(0),
        "config": sc.to_json(), "config_hash": sc.config_hash, **_versions(), "status": status, "error": error,
        "wall_seconds": wall,
    }], schema=RUNS_SCHEMA)
    return RunResult(model.run_id, sc, seed, {"runs": runs, **tables})
