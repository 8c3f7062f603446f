"""Our sweep / ``mesa.batch_run``: the same runs, every step recorded, on two processes each."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import polars as pl

import market
from market.agents.cloud import CloudProvider
from market.agents.lab import AILab
from market.agents.vendor import ChipVendor
from market.batch.experiment import Experiment, run_seed
from market.bench.base import Figure, Sizes, fig, median, timed
from market.bench.mesa_side import ROW_TABLES, mesa_collector, step_columns
from market.model import MarketModel
from market.recording import SCHEMAS

__all__ = ["MesaMarket", "bench_batch_run"]


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
    model_cols = [c for c in step_columns() if c in rows.columns]
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
        seconds, _ = timed(lambda: [market.run(s, steps=steps, seed=k, record=False) for s in scenarios for k in seeds])
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
                walls[fn.__name__], _ = timed(fn)
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
              f"{median(bares):.2f} s; overhead Mesa {median(mesa_over):.2f} s, ours {median(ours_over):.2f} s; "
              f"first repeat {ratio[0]:.2f}x (ours {ours_over[0]:.2f} s: the session's first sweep starts the fork "
              f"server our workers are forked from, Mesa forks its own process)")
    return [
        fig("batch_run", "mesa.batch_run overhead / our sweep's", median(ratio), "x", ">= 3", detail,
            mesa_overhead_s=mesa_over, ours_overhead_s=ours_over, bare_s=bares, ratios=ratio),
        fig("batch_run", "runs per second, mesa.batch_run", median(mesa_rps), "runs/s", "", "2 processes"),
        fig("batch_run", "runs per second, our sweep", median(ours_rps), "runs/s", "", "2 processes, Parquet"),
    ]

