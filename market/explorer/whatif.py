"""What-if runs: a scenario with some levers turned, against its baseline, over paired seeds.

    >>> from market.explorer.whatif import WhatIf, run_whatif
    >>> w = WhatIf("openai_google_tpu", {"clouds.gcp.withholding.share": 0.5}, replications=4, steps=12)
    >>> result = run_whatif(w, workers=2)                     # doctest: +SKIP
    >>> result.comparison                                     # the numbers `market compare` gives  # doctest: +SKIP

Replication ``r`` of both the what-if scenario and its baseline runs with seed
:func:`market.batch.run_seed` ``(base_seed, 0, r)``, the seed a sweep of the two scenarios gives
its replication ``r``, so the differences are paired exactly as in ``market compare``, and the
comparison is :func:`market.analysis.compare.compare_runs` over the same per-run outcomes
(:func:`market.analysis.outcomes.run_outcomes`). Runs go to worker processes (the sweep runner's
fork-server pool) in pairs, so that the first replications can be shown while the others run
(``on_update``). Each run's tables are kept in memory, keyed by its scenario's config hash and
seed, so running again after changing only the what-if side reuses the baseline's runs.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from market.analysis.compare import compare_runs
from market.analysis.headline import Headline
from market.analysis.outcomes import run_outcomes
from market.batch.experiment import run_seed, safe_label
from market.explorer.levers import scenario_with
from market.recording import TABLES
from market.scenario import Scenario, ScenarioError

__all__ = ["DEFAULT_REPLICATIONS", "WhatIf", "WhatIfResult", "command_line", "compare_tables", "run_whatif",
           "shutdown_pool", "tables_of", "warm_up"]

DEFAULT_REPLICATIONS = 20
MAX_REPLICATIONS = 1000
AS_WRITTEN = None  # WhatIf.baseline: the scenario itself, without the changes


@dataclass(frozen=True)
class WhatIf:
    """A what-if request: ``scenario`` (a built-in name or a .toml path) with lever ``changes``
    (dotted path -> value), compared with ``baseline`` (a scenario name or path; ``None``: the
    scenario as written), ``replications`` pairs of ``steps`` months (default: the scenario's)."""

    scenario: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    baseline: str | None = "baseline"
    replications: int = DEFAULT_REPLICATIONS
    steps: int | None = None
    base_seed: int = 0

    def scenarios(self) -> tuple[Scenario, Scenario]:
        """The what-if and the baseline scenario, validated (:class:`ScenarioError` if not)."""
        if not 2 <= self.replications <= MAX_REPLICATIONS:
            raise ScenarioError(f"replications: {self.replications!r} is not allowed; allowed: 2 to "
                                f"{MAX_REPLICATIONS} (a confidence interval needs at least 2 pairs).")
        what = scenario_with(self.scenario, self.changes, self.steps)
        base = scenario_with(self.scenario if self.baseline is None else self.baseline, {}, what.steps)
        return what, base

    def labels(self) -> tuple[str, str]:
        """How the two sides are named in tables and figures."""
        name = safe_label(self.scenario)
        what = f"{name} + changes" if self.changes else name
        base = f"{name} as written" if self.baseline is None else safe_label(self.baseline)
        return what, (f"{base} (baseline)" if base == what else base)


@dataclass
class WhatIfResult:
    """What a what-if run produced so far: ``tables`` (as :func:`market.scan` gives them: a dict of
    LazyFrames with ``scenario``, ``point`` and ``replication``), the ``comparison``
    (:func:`compare_runs`, ``None`` before two pairs are done), the number of ``pairs`` done of
    ``total``, failures (label -> error) and seconds since the start."""

    request: WhatIf
    tables: dict[str, pl.LazyFrame]
    comparison: pl.DataFrame | None
    pairs: int
    total: int
    seconds: float
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.pairs + len(self.failures) >= self.total


# -- worker side -----------------------------------------------------------------------------------


def _simulate(scenario: Scenario, seed: int, run_id: str) -> dict[str, pl.DataFrame]:
    """One run in a worker process: its tables (a failed run: its ``runs`` row says why)."""
    import market  # noqa: PLC0415 - in the worker

    return dict(market.run(scenario, seed=seed, raise_errors=False, run_id=run_id).tables)


# -- the pool and the cache ------------------------------------------------------------------------

_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_CACHE: OrderedDict[tuple[str, int], dict[str, pl.DataFrame]] = OrderedDict()
CACHE_RUNS = 120  # runs kept in memory (a 60-month run's tables take about 3 MB)


def _pool(workers: int) -> ProcessPoolExecutor:
    """The worker processes, started once per session (the sweep runner's fork-server context:
    workers forked from a process that has imported Mesa)."""
    global _POOL
    from market.batch.runner import pool_context  # noqa: PLC0415

    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers != workers or getattr(_POOL, "_broken", False):  # noqa: SLF001
            if _POOL is not None:
                _POOL.shutdown(wait=False, cancel_futures=True)
            _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=pool_context())
            # stopped when the session ends (a server stopped by SIGTERM, pytest, a notebook kernel):
            # left running, the workers and their fork server would outlive it
            atexit.register(shutdown_pool)
        return _POOL


def shutdown_pool() -> None:
    """Stop the worker processes (they start again when needed)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True, cancel_futures=True)
            _POOL = None


def _ready() -> int:
    """Import what a run needs, and run one month (a worker's first run is otherwise slower)."""
    import market  # noqa: PLC0415

    market.run("baseline", steps=1, seed=0)
    return os.getpid()


def warm_up(workers: int | None = None) -> None:
    """Start the worker processes now, so that the first run does not wait for them."""
    pool = _pool(_workers(workers))
    for f in [pool.submit(_ready) for _ in range(pool._max_workers)]:  # noqa: SLF001
        f.result()


def _workers(workers: int | None) -> int:
    return max(1, workers if workers is not None else min(2, os.cpu_count() or 1))


# -- the driver ------------------------------------------------------------------------------------


def _labelled(tables: dict[str, pl.DataFrame], label: str, replication: int) -> dict[str, pl.DataFrame]:
    """A run's tables as a sweep stores them: ``scenario`` (the label) on every table, ``point`` and
    ``replication`` on ``runs``."""
    out = {}
    for name, df in tables.items():
        if name == "runs":
            df = df.with_columns(pl.lit(label).alias("scenario"), pl.lit(0, pl.Int64).alias("point"),
                                 pl.lit(replication, pl.Int64).alias("replication"))
        elif df.width:
            df = df.with_columns(pl.lit(label).alias("scenario"))
        out[name] = df
    return out


def tables_of(runs: list[dict[str, pl.DataFrame]], order: list[str]) -> dict[str, pl.LazyFrame]:
    """Labelled runs as :func:`market.scan` gives a sweep's tables (``points``: one row per
    scenario in ``order``, which sets the figures' order)."""
    out: dict[str, pl.LazyFrame] = {}
    for name in TABLES:
        frames = [r[name] for r in runs if name in r and r[name].width]
        if frames:
            out[name] = pl.concat(frames, how="diagonal_relaxed").lazy()
    out["points"] = pl.LazyFrame({"scenario": order, "point": [0] * len(order)})
    return out


def compare_tables(tables: dict[str, pl.LazyFrame], baseline: str, order: list[str]) -> pl.DataFrame:
    """:func:`compare_runs` of the tables, sorted as :func:`market.analysis.compare.compare` sorts a
    sweep's runs (scenario order, point, replication): the same numbers as ``market compare``."""
    headline = Headline().resolved(tables)
    per_run = run_outcomes(tables, headline)
    rank = {name: i for i, name in enumerate(order)}
    per_run = per_run.sort(pl.col("scenario").replace_strict(rank, default=len(rank)), "point", "replication")
    return compare_runs(per_run, baseline, headline=headline)


def run_whatif(request: WhatIf, *, workers: int | None = None,
               on_update: Callable[[WhatIfResult], None] | None = None, update_every: float = 1.0,
               on_progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], bool] = lambda: False) -> WhatIfResult:
    """Run the what-if and its baseline, ``request.replications`` pairs with paired seeds.

    Validates both scenarios first (:class:`ScenarioError`). ``on_update`` is called with the result
    so far once the first pair is done, then at most every ``update_every`` seconds (less often if
    it takes more than a quarter of the time), and at the end.
    ``on_progress(runs done, runs in all)`` after every run. ``cancelled`` is polled; when it turns
    true the runs not started are dropped.
    """
    started = time.perf_counter()
    what, base = request.scenarios()
    what_label, base_label = request.labels()
    order = [base_label, what_label]
    n = request.replications
    todo: list[tuple[Scenario, str, int]] = []
    done: dict[tuple[str, int], dict[str, pl.DataFrame]] = {}
    for r in range(n):  # pairs in order: replication r of both sides before r + 1
        for sc, label in ((what, what_label), (base, base_label)):
            key = (sc.config_hash, run_seed(request.base_seed, 0, r))
            if key in _CACHE:
                _CACHE.move_to_end(key)
                done[label, r] = _labelled(_CACHE[key], label, r)
            else:
                todo.append((sc, label, r))
    failures: dict[str, str] = {}
    if on_progress is not None:
        on_progress(len(done), 2 * n)  # runs found in memory count as done

    def result() -> WhatIfResult:
        pairs = sorted(r for r in range(n) if (what_label, r) in done and (base_label, r) in done)
        runs = [done[label, r] for r in pairs for label in order]
        tables = tables_of(runs, order)
        comparison = compare_tables(tables, base_label, order) if len(pairs) >= 2 else None
        return WhatIfResult(request, tables, comparison, len(pairs), n, time.perf_counter() - started,
                            dict(failures))

    def record(sc: Scenario, label: str, r: int, tables: dict[str, pl.DataFrame]) -> None:
        status = tables["runs"]["status"][0]
        if status != "complete":
            failures[f"{label}, replication {r}"] = tables["runs"]["error"][0] or status
            return
        _CACHE[sc.config_hash, run_seed(request.base_seed, 0, r)] = tables
        while len(_CACHE) > CACHE_RUNS:
            _CACHE.popitem(last=False)
        done[label, r] = _labelled(tables, label, r)

    if todo:
        pool = _pool(_workers(workers))
        pending: dict[Future, tuple[Scenario, str, int]] = {}
        queue = list(reversed(todo))
        last_update = 0.0
        shown = 0
        interval = update_every
        try:
            while queue or pending:
                while queue and len(pending) < 2 * pool._max_workers and not cancelled():  # noqa: SLF001
                    sc, label, r = queue.pop()
                    pending[pool.submit(_simulate, sc, run_seed(request.base_seed, 0, r),
                                        f"{safe_label(label)}-r{r:03d}")] = (sc, label, r)
                if cancelled():
                    queue.clear()
                if not pending:
                    break
                finished, _ = wait(list(pending), timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    sc, label, r = pending.pop(fut)
                    try:
                        tables = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker lost: report it, go on
                        failures[f"{label}, replication {r}"] = f"{type(exc).__name__}: {exc}"
                        continue
                    record(sc, label, r, tables)
                if on_progress is not None and finished:
                    on_progress(2 * n - len(queue) - len(pending), 2 * n)
                if on_update is not None and finished:
                    pairs = sum(1 for r in range(n) if (what_label, r) in done and (base_label, r) in done)
                    now = time.perf_counter()
                    if pairs > shown and (now - last_update >= interval or shown == 0) and (queue or pending):
                        on_update(result())
                        # showing a result (drawing it) takes a core from the runs: at most a quarter of the time
                        interval = max(update_every, 3 * (time.perf_counter() - now))
                        shown, last_update = pairs, time.perf_counter()
        finally:
            for fut in pending:
                fut.cancel()
    final = result()
    if on_update is not None:
        on_update(final)
    return final


def command_line(request: WhatIf) -> str | None:
    """``market run`` of the what-if side's first replication (``None`` when a lever is an item of
    a list, which ``--set`` cannot reach)."""
    if any("[" in k for k in request.changes):
        return None
    sets = "".join(f" --set {k}={v}" for k, v in request.changes.items())
    steps = f" --steps {request.steps}" if request.steps else ""
    return f"market run {request.scenario}{steps} --seed {run_seed(request.base_seed, 0, 0)}{sets}"
