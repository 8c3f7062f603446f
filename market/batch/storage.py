"""The on-disk layout of an experiment, written run by run, and read back lazily.

    DIR/
      experiment.json                       the resolved experiment (checked on --resume)
      points.parquet                        the design: one row per (scenario, point), a column per parameter
      <table>/scenario=<name>/<run_id>.parquet   one file per table per run (hive-partitioned)
      runs/scenario=<name>/<run_id>.parquet      written last: a run is complete when this says so

A finished sweep of many runs is compacted (:func:`compact`, ``market compact DIR``): the files
of its complete runs are merged into ``<table>/scenario=<name>/part-<k>.parquet``, up to
``RUNS_PER_PART`` runs each, because many small files are slow to scan. ``runs/.../part-<k>`` is
written last and commits part ``k``: before it exists the other ``part-<k>`` files are ignored
(and deleted by :func:`repair`); once it exists, the run files it covers are ignored (and then
deleted). So a compaction killed at any point loses nothing and counts nothing twice.

Every file is written to a hidden temporary name in its folder and renamed into place
(``os.replace``), so a reader never sees a half-written file; a killed writer leaves only a
hidden ``.*.tmp`` file, removed on ``--resume``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import polars as pl

from market._io import write_atomic
from market.recording import TABLES

__all__ = ["RUNS_PER_PART", "compact", "completed_runs", "remove_temporaries", "repair", "run_path", "scan",
           "write_atomic", "write_run"]

PART = "part-"
RUNS_PER_PART = 10_000  # runs per compacted file (compaction streams, so memory does not grow with it)


def run_path(out: Path, table: str, scenario_label: str, run_id: str) -> Path:
    return out / table / f"scenario={scenario_label}" / f"{run_id}.parquet"


def write_run(out: Path, scenario_label: str, run_id: str, tables: dict[str, pl.DataFrame]) -> None:
    """Write one run's tables, the ``runs`` row last (it marks the run complete)."""
    for name, df in tables.items():
        if name != "runs":
            write_atomic(df, run_path(out, name, scenario_label, run_id))
    write_atomic(tables["runs"], run_path(out, "runs", scenario_label, run_id))


def remove_temporaries(out: Path) -> int:
    """Delete temporary files a killed writer left behind; returns how many."""
    n = 0
    for tmp in out.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        n += 1
    return n


def completed_runs(out: Path) -> set[str]:
    """Run ids whose ``runs`` row says complete and whose every table file is readable."""
    runs_dir = out / "runs"
    if not runs_dir.is_dir():
        return set()
    committed = _committed(out)
    done = set()
    for (label, part), ids in committed.items():
        if all(_readable(out / t / f"scenario={label}" / part) for t in TABLES if t != "runs"):
            done |= ids
    covered = _covered(committed)
    for path in runs_dir.glob("scenario=*/*.parquet"):
        label = path.parent.name.removeprefix("scenario=")
        if path.name.startswith(PART) or (label, path.stem) in covered:
            continue
        try:
            row = pl.read_parquet(path, columns=["run_id", "status"])
        except Exception:  # noqa: BLE001 - an unreadable marker means: run it again
            continue
        if row.height != 1 or row["status"][0] != "complete":
            continue
        run_id = row["run_id"][0]
        if all(_readable(run_path(out, t, label, run_id)) for t in TABLES if t != "runs"):
            done.add(run_id)
    return done


def _committed(out: Path) -> dict[tuple[str, str], set[str]]:
    """Committed compacted parts, ``(scenario label, file name) -> run ids``, from ``runs/``."""
    parts = {}
    for path in (out / "runs").glob(f"scenario=*/{PART}*.parquet"):
        label = path.parent.name.removeprefix("scenario=")
        try:
            parts[(label, path.name)] = set(pl.read_parquet(path, columns=["run_id"])["run_id"])
        except Exception:  # noqa: BLE001 - an unreadable commit: its runs count as not done
            parts[(label, path.name)] = set()
    return parts


def _covered(committed: dict[tuple[str, str], set[str]]) -> set[tuple[str, str]]:
    return {(label, run_id) for (label, _), ids in committed.items() for run_id in ids}


def _files(out: Path, table: str, parts: set[tuple[str, str]], covered: Callable[[str], set[str]]) -> list[Path]:
    """The files that hold ``table``: committed parts, and the run files no part covers.

    ``parts`` are the committed ``(scenario label, file name)``; ``covered(label)`` the run ids
    they hold, asked for only where a scenario has both parts and run files (rare: a compaction
    was interrupted, or runs were added by --resume after it)."""
    files = []
    with_parts = {label for label, _ in parts}
    for path in sorted((out / table).glob("scenario=*/*.parquet")):
        label = path.parent.name.removeprefix("scenario=")
        if path.name.startswith(PART):
            if (label, path.name) in parts:
                files.append(path)
        elif label not in with_parts or path.stem not in covered(label):
            files.append(path)
    return files


def repair(out: Path) -> None:
    """Finish or undo a compaction that was killed: delete parts never committed, and parts of which
    a file is unreadable (their runs will be run again); delete run files a committed part covers."""
    committed = _committed(out)
    for (label, part), ids in list(committed.items()):
        paths = [out / t / f"scenario={label}" / part for t in TABLES]
        if not ids or not all(_readable(p) for p in paths):
            for path in paths[::-1]:  # runs first: uncommit, then the data
                path.unlink(missing_ok=True)
            del committed[(label, part)]
    for table in TABLES:
        for path in (out / table).glob(f"scenario=*/{PART}*.parquet"):
            if (path.parent.name.removeprefix("scenario="), path.name) not in committed:
                path.unlink()
    covered = _covered(committed)
    for table in [t for t in TABLES if t != "runs"] + ["runs"]:
        for path in (out / table).glob("scenario=*/*.parquet"):
            if not path.name.startswith(PART) and (path.parent.name.removeprefix("scenario="), path.stem) in covered:
                path.unlink()


def _sink_atomic(lf: pl.LazyFrame, path: Path) -> None:
    """Stream ``lf`` into ``path`` (bounded memory) via a hidden temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.stem}.compact.tmp")
    try:
        lf.sink_parquet(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def compact(folder: str | os.PathLike, runs_per_part: int = RUNS_PER_PART) -> int:
    """Merge the run files of complete runs into ``part-<k>.parquet`` files; returns how many runs.

    Failed runs keep their own ``runs`` file, so that ``--resume`` runs them again. Call it only
    while no sweep writes to the folder (a sweep calls it at its end, holding the lock).
    """
    out = Path(folder)
    repair(out)
    done = completed_runs(out)
    covered = _covered(_committed(out))
    n = 0
    for runs_dir in sorted((out / "runs").glob("scenario=*")):
        label = runs_dir.name.removeprefix("scenario=")
        ids = sorted(p.stem for p in runs_dir.glob("*.parquet")
                     if not p.name.startswith(PART) and p.stem in done and (label, p.stem) not in covered)
        taken = [int(p.stem.removeprefix(PART)) for t in TABLES
                 for p in (out / t / runs_dir.name).glob(f"{PART}*.parquet")]
        k = max(taken, default=-1) + 1
        for start in range(0, len(ids), runs_per_part):
            chunk = ids[start:start + runs_per_part]
            part = f"{PART}{k:05d}.parquet"
            for table in [t for t in TABLES if t != "runs"] + ["runs"]:  # runs last: it commits the part
                files = [run_path(out, table, label, run_id) for run_id in chunk]
                _sink_atomic(pl.scan_parquet(files, hive_partitioning=False), out / table / runs_dir.name / part)
            for table in [t for t in TABLES if t != "runs"] + ["runs"]:
                for run_id in chunk:
                    run_path(out, table, label, run_id).unlink(missing_ok=True)
            n += len(chunk)
            k += 1
    return n


def _readable(path: Path) -> bool:
    try:
        pl.read_parquet_schema(path)
        return True
    except Exception:  # noqa: BLE001 - missing or corrupt
        return False


def scan(folder: str | os.PathLike) -> dict[str, pl.LazyFrame]:
    """Every table of a finished (or running) experiment as a polars LazyFrame over all its runs.

    Tables carry ``run_id`` and, from the folder layout, ``scenario``; ``points`` is the design.
    """
    out = Path(folder)
    if not out.is_dir():
        raise FileNotFoundError(f"{str(out)!r} is not a folder of experiment results")
    frames = {}
    parts = {(p.parent.name.removeprefix("scenario="), p.name) for p in (out / "runs").glob(f"scenario=*/{PART}*.parquet")}
    covered: dict[str, set[str]] = {}

    def covered_in(label: str) -> set[str]:
        if label not in covered:
            committed = _committed(out)
            covered[label] = {run_id for (lab, _), ids in committed.items() if lab == label for run_id in ids}
        return covered[label]

    for table in TABLES:
        files = _files(out, table, parts, covered_in)
        if files:
            frames[table] = pl.scan_parquet(files, hive_partitioning=True)
    if (out / "points.parquet").is_file():
        frames["points"] = pl.scan_parquet(out / "points.parquet")
    return frames
