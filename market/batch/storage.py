"""The on-disk layout of an experiment, written run by run, and read back lazily.

    DIR/
      experiment.json                       the resolved experiment (checked on --resume)
      points.parquet                        the design: one row per (scenario, point), a column per parameter
      <table>/scenario=<name>/<run_id>.parquet   one file per table per run (hive-partitioned)
      runs/scenario=<name>/<run_id>.parquet      written last: a run is complete when this says so

Every file is written to a hidden temporary name in its folder and renamed into place
(``os.replace``), so a reader never sees a half-written file; a killed writer leaves only a
hidden ``.*.tmp`` file, removed on ``--resume``.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from market._io import write_atomic
from market.recording import TABLES

__all__ = ["completed_runs", "remove_temporaries", "run_path", "scan", "write_atomic", "write_run"]


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
    done = set()
    for path in runs_dir.glob("scenario=*/*.parquet"):
        try:
            row = pl.read_parquet(path, columns=["run_id", "status"])
        except Exception:  # noqa: BLE001 - an unreadable marker means: run it again
            continue
        if row.height != 1 or row["status"][0] != "complete":
            continue
        run_id = row["run_id"][0]
        label = path.parent.name.removeprefix("scenario=")
        if all(_readable(run_path(out, t, label, run_id)) for t in TABLES if t != "runs"):
            done.add(run_id)
    return done


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
    for table in TABLES:
        if any((out / table).glob("scenario=*/*.parquet")):
            frames[table] = pl.scan_parquet(out / table / "scenario=*" / "*.parquet", hive_partitioning=True)
    if (out / "points.parquet").is_file():
        frames["points"] = pl.scan_parquet(out / "points.parquet")
    return frames
