"""The sweep browser's data: a finished experiment folder, filtered by scenario and design parameters.

    >>> from market.explorer.sweeps import open_sweep
    >>> sweep = open_sweep("outputs/withholding_sweep")                               # doctest: +SKIP
    >>> tables = sweep.select(["openai_google_tpu"], {"clouds.gcp.withholding.share": [0.0, 1.0]})  # doctest: +SKIP

A selection's tables are a dict of LazyFrames like :func:`market.scan`'s, restricted to the chosen
runs, so that the figure functions of ``market plot`` and the outcomes of ``market compare`` work on
it unchanged. What a filter change needs is prepared once, when the folder is opened: every run's
outcomes (a filter then selects rows of them: the outcome table and the design figure show every
selected run), and the rows of the two largest tables that the browser's figures read (``labs`` in
the final month, ``lab_mix`` of the headline's lab). A selection reads each table once, into
memory, for all its figures. Figures draw at most :data:`DRAWN_RUNS` runs per scenario (a large
sweep would otherwise take seconds to redraw); the page says when it does.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from market.analysis.headline import Headline
from market.analysis.outcomes import run_outcomes, scenario_order, scenario_summary
from market.batch.storage import scan

__all__ = ["DRAWN_RUNS", "FIGURES", "Selection", "Sweep", "SweepError", "open_sweep"]

MAX_CHOICES = 12  # a parameter with more distinct values is filtered by a range
# The figures draw at most this many runs per scenario (every selected run enters the outcome table):
# bands of 5-95% over 400 runs are as good as over 5,000, and drawing stays under a second.
DRAWN_RUNS = 400
# The tables the sweep browser's figures and outcomes read; the others stay on disk.
BROWSED = ("runs", "steps", "shares", "prices", "labs", "lab_mix", "withholding", "points")
# The figures of ``market plot`` the browser draws, in the page's order; with a design, also
# :data:`DESIGN_FIGURE` (final-month outcomes against the design's parameters).
FIGURES = ("vendor_shares", "prices", "withholding", "lab_mix_over_time")
DESIGN_FIGURE = "sweep_outcomes"


# Outcome tables are computed here while the caller draws the figures: the bootstrap (numpy) and
# polars release the GIL, so on two cores the table costs the redraw (almost) nothing.
_TABLES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-outcomes")


class SweepError(ValueError):
    """A folder that is not a readable, finished experiment; the message says what to do."""


@dataclass
class Selection:
    """The runs a filter keeps: ``tables`` for the figures (at most ``drawn`` runs per scenario,
    see :data:`DRAWN_RUNS`), and the ``run_ids`` of every selected run (for the outcome table)."""

    tables: dict[str, pl.LazyFrame]
    run_ids: pl.Series
    drawn: int
    runs: int

    @property
    def sampled(self) -> bool:
        return self.drawn < self.runs


@dataclass
class Sweep:
    """An opened experiment: its tables (lazy scans of the folder), the complete ``runs``, the
    ``scenarios`` in the experiment's order and each design ``parameter``'s distinct values."""

    folder: Path
    tables: Mapping[str, pl.LazyFrame]
    runs: pl.DataFrame
    scenarios: list[str]
    parameters: dict[str, list[Any]] = field(default_factory=dict)
    _per_run: pl.DataFrame | None = None
    _headline: Headline | None = None
    _kept: dict[str, pl.DataFrame] = field(default_factory=dict)
    _series: dict[str, pl.DataFrame] = field(default_factory=dict)

    @property
    def figures(self) -> tuple[str, ...]:
        """The names (:data:`market.analysis.figures.FIGURES`) of the figures a selection shows."""
        return FIGURES + ((DESIGN_FIGURE,) if self.parameters else ())

    @property
    def headline(self) -> Headline:
        """The entities the outcomes and figures speak of, resolved against the whole experiment."""
        self.per_run()
        assert self._headline is not None
        return self._headline

    def ranged(self, parameter: str) -> bool:
        """Filtered by a range (numbers with many values) rather than by picking values."""
        values = self.parameters[parameter]
        return len(values) > MAX_CHOICES and all(isinstance(v, (int, float)) for v in values)

    def select(self, scenarios: Sequence[str] | None = None,
               filters: Mapping[str, Sequence[Any] | tuple[float, float]] | None = None,
               drawn: int | None = DRAWN_RUNS) -> Selection:
        """The runs of ``scenarios`` (all by default) whose design point has, for each parameter in
        ``filters``, one of the listed values (a ranged parameter: a value in ``(low, high)``).
        The figures' tables hold at most ``drawn`` runs per scenario (``None``: all), the first by
        replication then design point, so that every point is drawn before any point twice."""
        chosen = list(self.scenarios if scenarios is None else scenarios)
        runs = self.runs.filter(pl.col("scenario").is_in(chosen))
        points = self.tables["points"].collect() if "points" in self.tables else None
        if filters and points is not None:
            for p, allowed in filters.items():
                if p not in self.parameters:
                    continue
                if self.ranged(p):
                    low, high = allowed
                    points = points.filter(pl.col(p).is_between(low, high))
                else:
                    points = points.filter(pl.col(p).is_in(list(allowed)))
            runs = runs.join(points.select("scenario", "point"), on=["scenario", "point"], how="semi")
        shown = runs.sort("replication", "point")
        if drawn is not None:
            shown = shown.group_by("scenario", maintain_order=True).head(drawn)
        ids = shown["run_id"].implode()
        per_run = self.per_run()
        # each table the figures read, and their per-run series, read once, all in one parallel
        # pass (rather than once per figure that reads it); a table only a series was made of
        # stays a lazy scan of the selected runs (for other figures a caller may draw)
        later = {"prices", "lab_mix"} if self._series else set()
        names = [n for n in BROWSED if n not in ("runs", "points") and n in self.tables]
        frames = {n: (self._kept[n].lazy() if n in self._kept else self.tables[n]).filter(pl.col("run_id").is_in(ids))
                  for n in names} | {n: f.lazy().filter(pl.col("run_id").is_in(ids)) for n, f in self._series.items()}
        now = [n for n in frames if n not in later]
        read = dict(zip(now, pl.collect_all([frames[n] for n in now])))
        tables: dict[str, pl.LazyFrame] = {"runs": shown.lazy()} | {n: read[n].lazy() if n in read else frames[n]
                                                                   for n in frames}
        if points is not None:
            tables["points"] = self.tables["points"].filter(pl.col("scenario").is_in(chosen))
        # every selected run's outcomes, computed when the folder was opened (run_outcomes' columns)
        tables["outcomes"] = per_run.join(runs.select("run_id"), on="run_id", how="semi").lazy()
        return Selection(tables, runs["run_id"], shown.height, runs.height)

    def per_run(self) -> pl.DataFrame:
        """Every complete run's final-month outcomes (:func:`run_outcomes`, about the headline's
        entities resolved against the whole experiment, as ``market compare`` does), computed once."""
        if self._per_run is None:
            self._headline = Headline().resolved(self.tables)
            self._per_run = run_outcomes(self.tables, self._headline)
            kept, series = self._keep(self._headline), self._make_series(self._headline)
            frames = pl.collect_all([*kept.values(), *series.values()])  # in one pass: the scans are shared
            self._kept = dict(zip(kept, frames[:len(kept)]))
            self._series = dict(zip(series, frames[len(kept):]))
        return self._per_run

    def _keep(self, headline: Headline) -> dict[str, pl.LazyFrame]:
        """The rows the browser's figures read of the two largest tables, in memory: a large sweep's
        ``labs`` and ``lab_mix`` hold tens of millions of rows, and reading them again on every
        filter change took most of a redraw. ``labs`` in each run's final month (what the headline's
        entities are resolved by), ``lab_mix`` of the headline's lab (its vendor mix over time)."""
        complete = self.runs.select("run_id").lazy()
        kept: dict[str, pl.LazyFrame] = {}
        if "labs" in self.tables and "lab_mix" in self.tables:  # without lab_mix, the mix is read from labs
            last = self.tables["steps"].group_by("run_id").agg(pl.col("step").max())
            kept["labs"] = self.tables["labs"].join(last, on=["run_id", "step"], how="semi")
        if "lab_mix" in self.tables:
            kept["lab_mix"] = self.tables["lab_mix"].filter(pl.col("lab") == headline.lab)
        return {name: lf.join(complete, on="run_id", how="semi") for name, lf in kept.items()}

    def _make_series(self, headline: Headline) -> dict[str, pl.LazyFrame]:
        """Every complete run's series that the browser's figures over time draw bands of
        (:data:`market.analysis.figures.SERIES_OF`, as tables named ``SERIES.format(figure)``): a
        selection filters them instead of reading and reducing the largest tables again (prices
        by product, the lab's mix by purpose). A figure whose tables are missing gets none and
        says why when it draws."""
        from market.analysis.figures import SERIES, SERIES_OF, Skip  # noqa: PLC0415 - matplotlib

        wanted = {}
        for figure in FIGURES:
            if figure in SERIES_OF:
                with contextlib.suppress(Skip):
                    wanted[SERIES.format(figure)] = SERIES_OF[figure](self.tables, headline)
        return wanted

    def outcomes(self, selection: Selection, baseline: str | None = None) -> pl.DataFrame:
        """The outcome table of every selected run: with two scenarios or more, :func:`compare_runs`
        against ``baseline`` (``market compare``'s numbers for those runs); with one, the mean and
        90% interval (:func:`scenario_summary`)."""
        from market.analysis.compare import compare_runs  # noqa: PLC0415

        per_run = self.per_run().filter(pl.col("run_id").is_in(selection.run_ids.implode()))
        order = {name: i for i, name in enumerate(self.scenarios)}
        per_run = per_run.sort(pl.col("scenario").replace_strict(order, default=len(order)), "point", "replication")
        if per_run.is_empty():
            raise SweepError("no run matches the filters; widen them.")
        if per_run["scenario"].n_unique() > 1:
            present = per_run["scenario"].unique(maintain_order=True).to_list()
            base = baseline if baseline in present else ("baseline" if "baseline" in present else present[0])
            return compare_runs(per_run, base, headline=self._headline)
        return scenario_summary(per_run)


    def draw(self, selection: Selection) -> dict[str, tuple[bytes | None, str | None]]:
        """Each figure of the selection as PNG, or why it is not drawn (an error too: a message for
        the page). The design figure needs only the runs, their outcomes and the design points: it
        is drawn from those in the drawing process while this one draws the others."""
        from market.explorer.render import drawn, figure_png_elsewhere, result  # noqa: PLC0415 - matplotlib

        # the design figure's tables: the outcomes, and the final month of those the entities are named by
        small = {t: selection.tables[t] for t in ("runs", "points", "outcomes") if t in selection.tables}
        small |= {t: selection.tables[t].filter(pl.col("step") == pl.col("step").max().over("run_id"))
                  for t in ("shares", "labs") if t in selection.tables}
        pending = None
        if DESIGN_FIGURE in self.figures:
            try:
                pending = figure_png_elsewhere(DESIGN_FIGURE, small, self.headline)
            except Exception:  # noqa: BLE001 - no drawing process (e.g. it could not start): draw it here
                pending = None
        images = {name: drawn(name, selection.tables, self.headline) for name in FIGURES}
        if DESIGN_FIGURE in self.figures:
            images[DESIGN_FIGURE] = result(pending) if pending else drawn(DESIGN_FIGURE, small, self.headline)
        return images

    def outcomes_later(self, selection: Selection, baseline: str | None = None) -> Future[pl.DataFrame]:
        """:meth:`outcomes` in a background thread; its ``result()`` is the table (or raises as
        :meth:`outcomes` does)."""
        return _TABLES.submit(self.outcomes, selection, baseline)


def open_sweep(folder: str | os.PathLike) -> Sweep:
    """Open a finished experiment folder (:func:`market.scan`) for browsing. Raises
    :class:`SweepError` for a folder that is missing, holds no complete run or cannot be read."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise SweepError(f"{str(path)!r} is not a folder; give the output folder of a finished sweep, "
                         "e.g. outputs/seed_scenarios.")
    try:
        tables = scan(path)
        if "runs" not in tables or "steps" not in tables:
            raise SweepError(f"{str(path)!r} holds no complete runs (no runs or steps tables); give the output "
                             "folder of a finished sweep, e.g. outputs/seed_scenarios.")
        runs = (tables["runs"].filter(pl.col("status") == "complete")
                .select("run_id", "scenario", "point", "replication", "status").collect())
        if runs.is_empty():
            raise SweepError(f"{str(path)!r} holds no complete run yet; finish the sweep with --resume.")
        parameters: dict[str, list[Any]] = {}
        if "points" in tables:
            points = tables["points"].collect()
            for p in points.columns:
                if p not in ("scenario", "point"):
                    parameters[p] = sorted(points[p].drop_nulls().unique().to_list())
        if parameters:  # the design figure is drawn in a process of its own: it starts while we read
            from market.explorer.render import warm_up  # noqa: PLC0415

            with contextlib.suppress(Exception):  # without it, the figure is drawn here (Sweep.draw)
                warm_up()
        sweep = Sweep(path, tables, runs, scenario_order(tables), parameters)
        sweep.per_run()  # reads every table it needs once: a damaged file shows now, not on a redraw
    except SweepError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - polars errors, or a panic (a BaseException) on a damaged file
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweepError(f"{str(path)!r} holds a result file that cannot be read ({why[:300]}). If it is a "
                         "sweep's folder, run the sweep again with --resume: it re-runs every run whose files "
                         "are damaged.") from None
    return sweep
