"""The on-disk layout of an experiment, written run by run, and read back lazily.

    DIR/
      experiment.json                       the resolved experiment (checked on --resume)
      points.parquet                        the design: one row per (scenario, point), a column per parameter
      <table>/scenario=<name>/<run_id>.parquet   one file per table per run (hive-partitioned)
      runs/scenario=<name>/<run_id>.parquet      the run's row: status "complete" or "failed" and why
      checksums/scenario=<name>/<run_id>.json    SHA-256 of each of the run's files, written last

Every file is written to a hidden temporary name in its folder and renamed into place
(``os.replace``), so a reader never sees a half-written file; a killed writer leaves only a
hidden ``.*.tmp`` file, removed on ``--resume``. A run is complete when its ``runs`` row says so
and every file still has the checksum recorded for it, so ``--resume`` re-runs a run whose files
were damaged or edited after it finished (and never hands a damaged file to the Parquet reader).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import polars as pl

from market._io import write_atomic
from market.recording import TABLES

__all__ = ["checksum_path", "completed_runs", "remove_temporaries", "run_path", "scan", "write_atomic", "write_run"]


def run_path(out: Path, table: str, scenario_label: str, run_id: str) -> Path:
    return out / table / f"scenario={scenario_label}" / f"{run_id}.parquet"


def checksum_path(out: Path, scenario_label: str, run_id: str) -> Path:
    return out / "checksums" / f"scenario={scenario_label}" / f"{run_id}.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_run(out: Path, scenario_label: str, run_id: str, tables: dict[str, pl.DataFrame]) -> None:
    """Write one run's tables, then its ``runs`` row, then the checksums of all of them (last:
    a run without them is not complete)."""
    sums = {}
    for name in [t for t in tables if t != "runs"] + ["runs"]:
        path = run_path(out, name, scenario_label, run_id)
        write_atomic(tables[name], path)
        sums[name] = _sha256(path)
    target = checksum_path(out, scenario_label, run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "sha256": sums}, sort_keys=True))
    os.replace(tmp, target)


def remove_temporaries(out: Path) -> int:
    """Delete temporary files a killed writer left behind; returns how many."""
    n = 0
    for tmp in out.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        n += 1
    return n


def completed_runs(out: Path) -> set[str]:
    """Run ids whose ``runs`` row says complete and whose every file is intact: each has the
    checksum recorded when the run finished (folders written before checksums existed: each
    file can be read in full)."""
    runs_dir = out / "runs"
    if not runs_dir.is_dir():
        return set()
    done = set()
    for path in runs_dir.glob("scenario=*/*.parquet"):
        label = path.parent.name.removeprefix("scenario=")
        run_id = path.stem
        sums = checksum_path(out, label, run_id)
        if sums.is_file():
            if not _intact(out, label, run_id, sums):
                continue
        elif not all(_readable(run_path(out, t, label, run_id)) for t in TABLES):
            continue
        row = pl.read_parquet(path, columns=["run_id", "status"])
        if row.height == 1 and row["run_id"][0] == run_id and row["status"][0] == "complete":
            done.add(run_id)
    return done


def _intact(out: Path, label: str, run_id: str, sums: Path) -> bool:
    """Every table file of the run has the checksum recorded for it."""
    try:
        recorded = json.loads(sums.read_text())["sha256"]
        return set(recorded) == set(TABLES) and all(
            _sha256(run_path(out, t, label, run_id)) == recorded[t] for t in TABLES)
    except (OSError, ValueError, KeyError, TypeError):  # missing, unreadable or damaged: run it again
        return False


def _readable(path: Path) -> bool:
    """The whole file decodes. Polars may panic on a damaged file (``PanicException`` derives
    from BaseException), so everything but an interrupt counts as damage."""
    try:
        pl.read_parquet(path)
        return True
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - missing, corrupt, or a panic in the reader
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
