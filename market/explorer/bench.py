"""``market bench --only explore``: how fast the explorer answers.

Two figures (issue 18's targets; docs/PERFORMANCE.md):

- **what-if, first result**: seconds from "run" to the first result shown (two pairs done, drawn)
  and to the full result, for 20 + 20 runs of 60 months on 2 worker processes (started
  beforehand, as the app starts them when it opens); the runs are real, no cache.
- **sweep browser, redraw**: seconds to filter a 10,000-run sweep and draw its figures and
  outcome table again. The sweep is built from real runs (each table of a few 60-month runs,
  copied under new run ids and design points to 10,000 runs, written as compacted parts in a
  sweep's layout): the browser reads the same number of rows a real one would, without
  simulating 10,000 runs for the benchmark. Only the tables the browser reads are written.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from market.batch.experiment import Experiment
from market.explorer.render import figure_png
from market.explorer.sweeps import BROWSED, DRAWN_RUNS, FIGURES

__all__ = ["bench_explore", "make_sweep", "redraw", "whatif_times"]

def redraw(sweep: Any, scenarios: list[str] | None, filters: dict[str, Any] | None) -> dict[str, Any]:
    """What the sweep browser does on a change of filter: select, draw each of its figures to PNG
    bytes (as the page shows them) while the outcome table is computed. Returns the figures (or why
    one is not drawn) and the table."""
    selection = sweep.select(scenarios, filters)
    table = sweep.outcomes_later(selection)  # as the page does: the table computes while the figures draw
    out: dict[str, Any] = {name: image if image is not None else why
                           for name, (image, why) in sweep.draw(selection).items()}
    out["outcomes"] = table.result()
    return out


def make_sweep(out: Path, runs: int, steps: int = 60, source_runs: int = 4, workers: int = 2) -> Path:
    """A ``runs``-run sweep in ``out`` (two scenarios; a design over the withholding share) built by
    copying the tables of ``source_runs`` real runs per scenario."""
    import market  # noqa: PLC0415

    scenarios = ["openai_google_tpu", "open_tpu_access"]
    src = out.parent / f"{out.name}-source"
    exp = Experiment(name="source", scenarios=scenarios, replications=source_runs, steps=steps, base_seed=11)
    market.sweep(exp, src, workers=workers, progress=False)
    tables = market.scan(src)
    per_scenario = runs // len(scenarios)
    points = 50
    reps = max(1, per_scenario // points)
    shares = [round(i / (points - 1), 4) for i in range(points)]
    param = "clouds.gcp.withholding.share"
    point_rows = []
    for s in scenarios:
        copies = pl.DataFrame({"copy": range(points * reps)}).with_columns(
            (pl.col("copy") // reps).alias("point"), (pl.col("copy") % reps).alias("replication"),
            (pl.col("copy") % source_runs).alias("source"))
        src_runs = (tables["runs"].filter(pl.col("scenario") == s).sort("run_id").collect()
                    .with_row_index("source").with_columns(pl.col("source").cast(pl.Int64)))
        ids = copies.join(src_runs.select("source", pl.col("run_id").alias("src_id")), on="source").with_columns(
            pl.format("{}-p{}-r{}", pl.lit(s), pl.col("point"), pl.col("replication")).alias("run_id"))
        for name in BROWSED:
            if name in ("points",) or name not in tables:
                continue
            frame = tables[name].filter(pl.col("scenario") == s).drop("scenario").collect()
            if name == "runs":
                frame = frame.drop("point", "replication")
            tiled = (ids.select("src_id", "run_id", "point", "replication")
                     .join(frame.rename({"run_id": "src_id"}), on="src_id").drop("src_id"))
            if name != "runs":
                tiled = tiled.drop("point", "replication")
            target = out / name / f"scenario={s}" / "part-00000.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            tiled.write_parquet(target)
        point_rows += [{"scenario": s, "point": p, param: shares[p]} for p in range(points)]
    pl.DataFrame(point_rows).write_parquet(out / "points.parquet")
    (out / "experiment.json").write_text(json.dumps({"synthetic": True, "runs": points * reps * len(scenarios)}))
    return out


def whatif_times(replications: int, steps: int, workers: int = 2) -> dict[str, float]:
    """Seconds to the first result drawn and to the full result of a what-if (cold: no cache)."""
    from market.explorer import whatif  # noqa: PLC0415

    whatif._CACHE.clear()  # noqa: SLF001 - measure real runs
    whatif.warm_up(workers)
    seen: dict[str, float] = {}
    started = time.perf_counter()

    def on_update(result: whatif.WhatIfResult) -> None:
        if "first" not in seen:  # drawn as the page draws it: its four figures as PNG
            for name in FIGURES:  # a figure that cannot be drawn yet (e.g. nothing withheld) says why
                figure_png(name, result.tables)
            seen["first"] = time.perf_counter() - started
            seen["first_pairs"] = result.pairs

    request = whatif.WhatIf("openai_google_tpu", {"clouds.gcp.withholding.share": 0.5},
                            replications=replications, steps=steps)
    whatif.run_whatif(request, workers=workers, on_update=on_update)
    seen["full"] = time.perf_counter() - started
    whatif._CACHE.clear()  # noqa: SLF001
    return seen


def bench_explore(sizes: Any, repeats: int, fig: Callable[..., Any]) -> list[Any]:
    """The explorer's two figures (``fig`` makes a line of ``market bench``'s table)."""
    quick = sizes.steps < 10
    reps, steps, runs = (3, 4, 40) if quick else (20, 60, 10_000)
    times = [whatif_times(reps, steps) for _ in range(max(1, repeats // 5))]
    first = min(t["first"] for t in times)
    full = min(t["full"] for t in times)
    figures = [fig("explore", f"what-if, first result ({reps} + {reps} runs of {steps} months, 2 workers)",
                   first, "s", "<= 10", f"first result after {times[0]['first_pairs']} pairs; all {reps} pairs "
                   f"in {full:.1f} s (best of {len(times)})", full_seconds=full)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_sweep(Path(tmp) / "sweep", runs, steps=steps if quick else 60)
        from market.explorer.sweeps import open_sweep  # noqa: PLC0415

        opened_s = time.perf_counter()
        sweep = open_sweep(folder)
        opened_s = time.perf_counter() - opened_s
        n = sweep.runs.height
        param = next(iter(sweep.parameters))
        values = sweep.parameters[param]
        choices = [values[: len(values) // 2], values[len(values) // 2:], values]
        redraws: dict[int, list[float]] = {1: [], 2: []}  # by the number of scenarios selected
        for k in range(max(3, repeats)):
            ranged = (values[0], values[-1] / (1 + k % 3))
            filters = {param: ranged if sweep.ranged(param) else choices[k % 3]}
            t0 = time.perf_counter()
            redraw(sweep, sweep.scenarios[: 1 + k % 2], filters)
            redraws[1 + k % 2].append(time.perf_counter() - t0)
        shown = len(sweep.figures)
    every = sorted(redraws[1] + redraws[2])
    median = every[len(every) // 2]
    one, two = (statistics.median(redraws[c]) for c in (1, 2))
    figures.append(fig("explore", f"sweep browser, redraw ({n:,}-run sweep)", median, "s", "<= 1",
                       f"median of {len(every)} filter changes ({shown} figures, at most {DRAWN_RUNS} runs per "
                       f"scenario, + outcome table over every selected run): one scenario {one:.2f} s, two "
                       f"{two:.2f} s; opening the folder took {opened_s:.1f} s", open_seconds=opened_s,
                       one_scenario_seconds=one, two_scenarios_seconds=two))
    return figures
