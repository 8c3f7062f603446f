"""Run an experiment: every run written to disk as it finishes, resumable, on any executor.

    >>> import market
    >>> report = market.sweep("experiments/seed_scenarios.toml", workers=2)   # doctest: +SKIP
    >>> tables = market.scan(report.out)                                       # doctest: +SKIP

Executors: ``workers=1`` runs in this process; ``workers=N`` a local process pool (workers forked
from a fork server that imports Mesa once per session, see ``pool_context``; ``spawn`` where there
is none; never a plain ``fork``: children that write Parquet after a ``fork`` of a process that
used polars can hang); ``scheduler="tcp://host:port"`` a Dask distributed cluster (``get_executor(pure=False)``,
so that identical replications are not merged); or pass any ``concurrent.futures.Executor``.
Workers write their own files and return only a small status record, so a lost worker loses only
the runs it was doing and the parent's memory does not grow with the number of runs.

A large sweep hands each worker a batch of runs of one scenario at a time and the worker writes the
complete ones together (one file per table, see :mod:`market.batch.storage`): each file costs about
a millisecond to write whatever its size, and compacting fewer files is faster. Batches shrink as
the sweep nears its end (``_batches``), so that the workers finish together.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.forkserver
import os
import shutil
import sys
import time
from collections.abc import Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from market._io import write_text_atomic
from market.batch.experiment import Experiment, ExperimentError, RunSpec, check_experiment, fingerprint, load_experiment
from market.batch.storage import (
    batch_name,
    completed_runs,
    next_batch_numbers,
    remove_run,
    remove_temporaries,
    repair,
    run_path,
    write_atomic,
    write_run,
)
from market.batch.storage import compact as compact_runs
from market.recording import RUNS_SCHEMA, TABLES
from market.scenario import resolve_scenario, validate_scenario

__all__ = ["RestartingPool", "SweepReport", "Task", "execute", "execute_batch", "pool_context", "sweep",
           "sweep_lock"]


@dataclass(frozen=True)
class Task:
    """What a worker needs for one run (small and picklable)."""

    spec: RunSpec
    experiment: str
    source: str  # scenario name or absolute path
    overrides: dict[str, Any]
    out: str


@dataclass
class SweepReport:
    """What a sweep did: counts, failures (run id -> error), where the data are, how long it took."""

    out: Path
    total: int
    skipped: int = 0
    completed: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return len(self.failures)


def execute(task: Task) -> dict[str, Any]:
    """Run one task and write its tables; returns ``{run_id, status, error, wall_seconds}``.

    A run that raises inside the model is recorded as failed (its ``runs`` row only, so no
    partial tables enter the dataset) and does not raise here.
    """
    tables, result = _run(task)
    if result["status"] == "complete":
        write_run(Path(task.out), task.spec.scenario_label, task.spec.run_id, tables)
    return result


def execute_batch(tasks: list[Task], name: str | None = None) -> list[dict[str, Any]]:
    """Run several tasks of one scenario and write their complete runs together as batch ``name``
    (one file per table for all of them; one run each without a name). Returns each run's
    :func:`execute` record. A failed run writes its own ``runs`` row, as in :func:`execute`."""
    if name is None:
        return [execute(task) for task in tasks]
    out, label = Path(tasks[0].out), tasks[0].spec.scenario_label
    for task in tasks:  # an earlier try's files: a failed run's row, or a run killed mid-write
        remove_run(out, label, task.spec.run_id)
    complete, results = [], []
    for task in tasks:
        tables, result = _run(task)
        results.append(result)
        if result["status"] == "complete":
            complete.append(tables)
    if complete:
        write_run(out, label, name, {t: pl.concat([c[t] for c in complete]) for t in TABLES})
    return results


def _run(task: Task) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """One run's tables and its record; a failed run's ``runs`` row is written here."""
    import market  # noqa: PLC0415 - imported in the worker, which may be a fresh process

    spec = task.spec
    started = time.perf_counter()
    try:
        sc = validate_scenario(_resolved(task.source), task.overrides, f"scenario {task.source!r}")
        result = market.run(sc, seed=spec.seed, raise_errors=False, run_id=spec.run_id)
        tables = dict(result.tables)
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        tables = {"runs": _failed_row(task, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)}
    tables["runs"] = _with_design(tables["runs"], task)
    status = tables["runs"]["status"][0]
    if status != "complete":
        write_atomic(tables["runs"], run_path(Path(task.out), "runs", spec.scenario_label, spec.run_id))
    return tables, {"run_id": spec.run_id, "status": status, "error": tables["runs"]["error"][0],
                    "wall_seconds": time.perf_counter() - started}


def _resolved(source: str) -> dict[str, Any]:
    """A scenario's raw dict, read once per worker process (and again if its file changes)."""
    path = Path(source)
    if path.suffix == ".toml" and path.is_file():
        info = path.stat()
        key = (source, (info.st_mtime_ns, info.st_size))
    else:
        key = (source, None)
    if key not in _RESOLVED:
        _RESOLVED.clear()
        _RESOLVED[key] = resolve_scenario(source)
    return _RESOLVED[key]


_RESOLVED: dict[tuple[str, Any], dict[str, Any]] = {}


def _with_design(runs: pl.DataFrame, task: Task) -> pl.DataFrame:
    spec = task.spec
    return runs.with_columns(
        pl.lit(task.experiment).alias("experiment"),
        pl.lit(spec.point, dtype=pl.Int64).alias("point"),
        pl.lit(spec.replication, dtype=pl.Int64).alias("replication"),
        pl.lit(json.dumps(spec.parameters, sort_keys=True)).alias("parameters"),
    ).drop("scenario")  # the scenario comes from the partition folder


def _failed_row(task: Task, error: str, wall: float) -> pl.DataFrame:
    spec = task.spec
    return pl.DataFrame([{
        "run_id": spec.run_id, "scenario": spec.scenario_label, "seed": spec.seed, "steps": None,
        "start_date": None, "config": None, "config_hash": None, "package_version": None, "mesa_version": None,
        "polars_version": None, "python_version": None, "status": "failed", "error": error, "wall_seconds": wall,
    }], schema=RUNS_SCHEMA)


# -- the driver ----------------------------------------------------------------------------------


def _check_folder(out: Path, print_: str, resume: bool, overwrite: bool) -> None:
    """Refuse an output folder that would be overwritten or mixed up, before anything starts.

    ``print_`` is the experiment's fingerprint. Hidden files alone (a lock, temporaries of a
    killed writer) do not make a folder non-empty.
    """
    if out.exists() and not out.is_dir():
        raise ExperimentError(f"output folder {str(out)!r} is an existing file; choose a folder path.")
    marker = out / "experiment.json"
    if out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
        if overwrite:
            if not marker.is_file():
                raise ExperimentError(f"--overwrite: {str(out)!r} does not hold experiment results "
                                      "(no experiment.json); refusing to delete it. Choose another --out.")
        elif resume:
            if not marker.is_file():
                raise ExperimentError(f"--resume: {str(out)!r} holds no experiment (no experiment.json).")
            try:
                stored = json.loads(marker.read_text())
            except (OSError, ValueError):
                stored = {}
            if stored.get("fingerprint") != print_:
                raise ExperimentError(f"--resume: {str(out)!r} holds a different experiment (the experiment or a "
                                      "scenario file changed since it started); use --overwrite to start again, "
                                      "or another --out.")
        else:
            raise ExperimentError(f"output folder {str(out)!r} is not empty; add --resume to finish the runs "
                                  "not yet complete, or --overwrite to start again.")


def _prepare_folder(out: Path, exp: Experiment, print_: str, overwrite: bool) -> None:
    """Clear the folder for --overwrite; write experiment.json, then the design table."""
    marker = out / "experiment.json"
    if overwrite and marker.is_file():
        for child in out.iterdir():
            if child.name != ".sweep.lock":  # we hold it
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        payload = {"fingerprint": print_, "experiment": json.loads(exp.to_json())}
        write_text_atomic(json.dumps(payload, indent=2), marker)
    write_points(out, exp)  # derived from the experiment: rewritten, in case it was damaged


@contextmanager
def sweep_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.sweep.lock`` so that two sweeps (or a sweep and a compaction) never write into one
    folder at once; raises :class:`ExperimentError` if another holds it."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl  # noqa: PLC0415 - POSIX only; elsewhere the folder is not locked
    except ImportError:  # pragma: no cover
        yield
        return
    with open(out / ".sweep.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ExperimentError(f"another sweep is writing to {str(out)!r}; wait for it to finish "
                                  "(or stop it) before resuming there.") from None
        try:
            yield
        finally:
            (out / ".sweep.lock").unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_points(out: Path, exp: Experiment) -> None:
    """The design as a table: scenario, point, and one column per parameter."""
    rows = [{"scenario": s.scenario_label, "point": s.point, **s.parameters}
            for s in exp.runs() if s.replication == 0]
    try:
        frame = pl.DataFrame(rows, infer_schema_length=None)
    except (TypeError, ValueError, pl.exceptions.PolarsError):  # explicit points may give a path values of several kinds
        frame = pl.DataFrame([{k: v if k in ("scenario", "point") or isinstance(v, bool | int | float | str) or v is None
                               else json.dumps(v, sort_keys=True) for k, v in row.items()} for row in rows],
                             infer_schema_length=None)
    write_atomic(frame, out / "points.parquet")


@contextmanager
def _executor(workers: int, scheduler: str | None, executor: Executor | None) -> Iterator[tuple[Executor | None, int]]:
    """The executor, and how many runs it runs at once (``None``, 1: in this process)."""
    if executor is not None:
        yield executor, getattr(executor, "_max_workers", workers)
    elif scheduler is not None:
        from distributed import Client  # noqa: PLC0415 - imported only when used

        try:
            client = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ExperimentError(f"--scheduler {scheduler!r}: cannot connect to a Dask scheduler there ({exc}); "
                                  "start one with `dask scheduler --host 127.0.0.1` and give its tcp:// address.") from None
        with client:
            yield client.get_executor(pure=False), max(1, sum(client.nthreads().values()))  # the cluster's, not ours
    elif workers <= 1:
        yield None, 1
    else:
        pool = RestartingPool(workers)
        try:
            yield pool, workers
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def pool_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` where the platform has it, else ``spawn``.

    The fork server is a process started once per Python session that imports Mesa (with numpy,
    pandas and scipy: most of a worker's start-up) and nothing else, and forks each pool worker
    from itself. A worker then imports only polars and this package (a fifth of a second) instead
    of everything (about a second, for each worker of every sweep). The server never imports
    polars: polars starts threads when imported, and a child forked from a process with polars
    threads can hang, which is why plain ``fork`` is not used. Python 3.14 makes ``forkserver`` the
    default on Linux.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # takes effect when the server starts (the first pool)
    return ctx


PRELOAD = ["mesa", "pydantic"]  # none of them imports polars (tests/test_batch.py checks it)


class RestartingPool(Executor):
    """A local process pool (see :func:`pool_context`) that replaces itself when a worker process dies.

    A dead worker breaks a ``ProcessPoolExecutor`` for good: every run in flight fails with
    ``BrokenProcessPool``. The driver re-submits those runs, and this pool starts afresh.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._context = pool_context()
        if self._context.get_start_method() == "forkserver":  # start it now: it imports while we prepare the folder
            multiprocessing.forkserver.ensure_running()
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context)

    def submit(self, fn, /, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201 - Executor's signature
        try:
            return self._pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new()
            return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def sweep(experiment: Experiment | str | os.PathLike, out: str | os.PathLike | None = None, *,
          workers: int | None = None, scheduler: str | None = None, executor: Executor | None = None,
          resume: bool = False, overwrite: bool = False, progress: bool | None = None,
          compact: bool | None = None, batch: int | None = None,
          points: Collection[int] | None = None) -> SweepReport:
    """Run every run of an experiment not yet complete in ``out`` (default ``outputs/<name>``).

    When every run has been tried, the run files are compacted into a few larger files per table
    (see :func:`market.batch.storage.compact`): always with ``compact=True``, never with ``False``,
    and by default when the experiment has at least ``COMPACT_MIN_RUNS`` runs.

    ``batch``: at most how many runs a worker writes together, as one file per table (default
    ``MAX_BATCH`` in an experiment of at least ``COMPACT_MIN_RUNS`` runs, else 1: small sweeps keep
    a file per table per run, easy to inspect). Results do not depend on it.

    ``points``: run only the runs of these design points (all by default); the folder still holds
    the whole experiment, so later calls (with ``resume=True``) can add other points. A game's
    double-oracle search runs its profiles this way.

    Raises :class:`ExperimentError` for a bad file or output folder, before any run starts.
    """
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment, check=False)
    print_ = fingerprint(exp, check_experiment(exp))
    folder = Path(out) if out is not None else Path("outputs") / exp.name
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ExperimentError(f"batch: {batch!r} is not allowed; give a whole number of runs, 1 or more "
                              "(1 writes a file per table per run).")
    _check_folder(folder, print_, resume, overwrite)  # before connecting or starting anything
    report = SweepReport(folder, total=0)
    started = time.perf_counter()
    try:
        with _executor(n_workers, scheduler, executor) as (ex, slots), sweep_lock(folder):
            _prepare_folder(folder, exp, print_, overwrite)
            remove_temporaries(folder)
            repaired = repair(folder)  # a compaction killed mid-way; returns the committed parts, intact
            done = completed_runs(folder, repaired) if resume else set()
            fixed = dict(exp.overrides) | ({"steps": exp.steps} if exp.steps is not None else {})
            chosen = None if points is None else set(points)
            specs = exp.runs() if chosen is None else [s for s in exp.runs() if s.point in chosen]
            tasks = [Task(s, exp.name, _source(exp, s.scenario), {**fixed, **s.parameters}, str(folder.resolve()))
                     for s in specs if s.run_id not in done]
            report.total, report.skipped = len(specs), len(specs) - len(tasks)
            limit = batch if batch is not None else MAX_BATCH if len(specs) >= COMPACT_MIN_RUNS else 1
            batches = _batches(tasks, limit, slots, next_batch_numbers(folder))
            with _Progress(report, enabled=progress) as bar:
                if ex is None:
                    for chunk, name in batches:
                        for task, result in zip(chunk, execute_batch(chunk, name), strict=True):
                            bar.record(task, result)
                else:
                    _drive(ex, batches, bar, in_flight=max(4, 4 * slots))
            remove_temporaries(folder)  # left by a worker lost mid-write (its run was done again)
            if compact or (compact is None and report.total >= COMPACT_MIN_RUNS):
                compact_runs(folder)
    except KeyboardInterrupt:
        report.interrupted = True
    except OSError as exc:  # a full disk, a read-only or vanished folder: keep what is done, say how to go on
        kept = (f"{report.completed + report.skipped} of {report.total} runs are complete and kept" if report.total
                else "the runs complete in it are kept")
        raise ExperimentError(
            f"cannot write the results to {str(folder)!r}: {exc.strerror or exc}. {kept}; free some "
            "space (or make the folder writable) and run the same command with --resume to finish.") from None
    report.wall_seconds = time.perf_counter() - started
    return report


def _source(exp: Experiment, scenario: str) -> str:
    src = exp.scenario_source(scenario)
    return str(Path(src).resolve()) if isinstance(src, Path) else src


COMPACT_MIN_RUNS = 100  # smaller sweeps keep one file per table per run (quick to scan, easy to inspect)
MAX_BATCH = 10  # runs a worker writes together by default (larger batches save little more)
MAX_ATTEMPTS = 3  # a run whose worker process dies is tried again, up to this many times in all

Batch = tuple[list[Task], str | None]  # runs of one scenario, and the name they are written under (None: each its own)


def _batches(tasks: list[Task], limit: int, workers: int, numbers: dict[str, int]) -> Iterator[Batch]:
    """Consecutive runs of one scenario, at most ``limit`` together, fewer as the sweep nears its
    end (guided self-scheduling: a batch is at most the runs left / (2 x workers), so the last
    batches are single runs and the workers finish together). The sizes depend only on the task
    list, never on timing. ``numbers``: the next batch number per label (updated)."""
    i = 0
    while i < len(tasks):
        size = max(1, min(limit, (len(tasks) - i) // (2 * workers)))
        label = tasks[i].spec.scenario_label
        j = i + 1
        while j < len(tasks) and j - i < size and tasks[j].spec.scenario_label == label:
            j += 1
        name = None
        if j - i > 1:
            name = batch_name(numbers.get(label, 0))
            numbers[label] = numbers.get(label, 0) + 1
        yield tasks[i:j], name
        i = j


def _drive(ex: Executor, batches: Iterator[Batch], bar: _Progress, in_flight: int) -> None:
    """Keep at most ``in_flight`` batches submitted, so memory stays flat however many runs there are.

    A batch whose worker process died (``BrokenProcessPool``) is submitted again, whole and under
    the same name, up to ``MAX_ATTEMPTS`` times; any other error of the executor is recorded as the
    failure of each of its runs.
    """
    retry: list[Batch] = []
    attempts: dict[str, int] = {}
    pending: dict[Future, Batch] = {}
    try:
        while True:
            while len(pending) < in_flight and (item := retry.pop() if retry else next(batches, None)):
                key = item[0][0].spec.run_id
                attempts[key] = attempts.get(key, 0) + 1
                pending[ex.submit(execute_batch, *item)] = item
            if not pending:
                return
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                item = pending.pop(fut)
                chunk = item[0]
                try:
                    results = fut.result()
                except BrokenProcessPool as exc:
                    if attempts[chunk[0].spec.run_id] < MAX_ATTEMPTS:
                        retry.append(item)  # its worker died: run it again
                        continue
                    results = _record_crash(item, exc)
                except Exception as exc:  # noqa: BLE001 - e.g. a worker lost for good: record and go on
                    results = _record_crash(item, exc)
                for task, result in zip(chunk, results, strict=True):
                    bar.record(task, result)
    finally:
        for fut in pending:
            fut.cancel()


def _record_crash(item: Batch, exc: BaseException) -> list[dict[str, Any]]:
    """Write the ``runs`` rows of runs that did not come back from their worker, after deleting
    their batch (its worker may have died after committing it): they are failed, to be run again."""
    chunk, name = item
    if name is not None:
        remove_run(Path(chunk[0].out), chunk[0].spec.scenario_label, name)
    error = f"{type(exc).__name__}: {exc}"
    for task in chunk:
        runs = _with_design(_failed_row(task, error, 0.0), task)
        write_atomic(runs, run_path(Path(task.out), "runs", task.spec.scenario_label, task.spec.run_id))
    return [{"run_id": task.spec.run_id, "status": "failed", "error": error, "wall_seconds": 0.0} for task in chunk]


class _Progress:
    """A rich progress bar on a terminal; plain log lines otherwise."""

    def __init__(self, report: SweepReport, enabled: bool | None) -> None:
        self.report = report
        self.todo = report.total - report.skipped
        self.done = 0
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.quiet = enabled is False
        self.started = time.perf_counter()
        self._bar = None

    def __enter__(self) -> _Progress:
        r = self.report
        if self.quiet:
            return self
        if self.tty:
            from rich.progress import (  # noqa: PLC0415
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(),
                                 TextColumn("eta"), TimeRemainingColumn(), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(r.out.name, total=self.todo, failed=0)
        else:
            print(f"{r.out.name}: {self.todo} runs to do ({r.skipped} already complete) -> {r.out}",
                  file=sys.stderr, flush=True)
        return self

    def record(self, task: Task, result: dict[str, Any]) -> None:
        r = self.report
        self.done += 1
        if result["status"] == "complete":
            r.completed += 1
        else:
            r.failures[result["run_id"]] = result["error"] or "failed"
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=1, failed=r.failed)
            return
        step = max(1, self.todo // 20)
        if self.done % step == 0 or self.done == self.todo or result["status"] != "complete":
            elapsed = time.perf_counter() - self.started
            eta = elapsed / self.done * (self.todo - self.done)
            line = f"[{self.done}/{self.todo}] {result['run_id']} {result['status']}; failed {r.failed}; eta {eta:.0f} s"
            if result["status"] != "complete":
                line += f"; {result['error']}"
            print(line, file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
