"""The on-disk layout of an experiment, written run by run, and read back lazily.

    DIR/
      experiment.json                       the resolved experiment (checked on --resume)
      points.parquet                        the design: one row per (scenario, point), a column per parameter
      <table>/scenario=<name>/<run_id>.parquet   one file per table per run (hive-partitioned)
      runs/scenario=<name>/<run_id>.parquet      the run's row: status "complete" or "failed" and why
      checksums/scenario=<name>/<run_id>.json    SHA-256 of each of the run's files, written before its runs row

Every file is written to a hidden temporary name in its folder and renamed into place
(``os.replace``), so a reader never sees a half-written file; a killed writer leaves only a
hidden ``.*.tmp`` file, removed on ``--resume``. A run is complete when its ``runs`` row says so
and every file still has the checksum recorded for it, so ``--resume`` re-runs a run whose files
were damaged or edited after it finished (and never hands a damaged file to the Parquet reader).

A finished sweep of many runs is compacted (:func:`compact`, ``market compact DIR``): the files
of its complete runs are merged into ``<table>/scenario=<name>/part-<k>.parquet``, up to
``RUNS_PER_PART`` runs each, because many small files are slow to scan; each is streamed in row
groups of bounded size (``ROW_GROUP_BYTES``, ``ROW_GROUP_FILES``), so that compaction's memory does
not grow with the number of runs. ``runs/.../part-<k>`` is written after the other tables' part
files and commits part ``k``; its checksums (``checksums/scenario=<name>/part-<k>.json``) follow,
then the run files it covers are deleted. Before the commit the other ``part-<k>`` files are
ignored (and deleted by :func:`repair`); after it, the run files it covers are ignored (and then
deleted). So a compaction killed at any point loses nothing and counts nothing twice, and a
damaged part is detected like a damaged run: its files are deleted and its runs run again on
``--resume``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import polars as pl

from market._io import replace_atomically, write_atomic, write_text_atomic
from market.recording import TABLES

__all__ = ["RUNS_PER_PART", "Tables", "checksum_path", "compact", "completed_runs", "remove_temporaries", "repair",
           "run_path", "scan", "write_atomic", "write_run"]

RUNS_PER_PART = 10_000  # runs per compacted file (compaction streams, so memory does not grow with it)
# The Parquet writer holds a whole row group, and its encoded copy, before writing it, so the row
# group, not the file, sets compaction's peak memory: at most about ROW_GROUP_BYTES in memory (a
# `runs` row holds the resolved configuration, about 14 kB; a `shares` row about 90 bytes), and rows
# from at most about ROW_GROUP_FILES run files (each costs some 16 kB while it waits, however small).
ROW_GROUP_BYTES = 2 << 20
ROW_GROUP_FILES = 500
_WRITE_ORDER = [t for t in TABLES if t != "runs"] + ["runs"]  # the runs file commits what came before it


def run_path(out: Path, table: str, scenario_label: str, run_id: str) -> Path:
    return out / table / f"scenario={scenario_label}" / f"{run_id}.parquet"


def checksum_path(out: Path, scenario_label: str, name: str) -> Path:
    """The checksums of a run (``name`` = its run id) or of a compacted part (``part-<k>``)."""
    return out / "checksums" / f"scenario={scenario_label}" / f"{name}.json"


def _is_part_name(stem: str) -> bool:
    """``part-<k>`` with k of 5+ digits: a compacted part; run ids ("<label>-p0000-r000") never are."""
    k = stem.removeprefix("part-")
    return k != stem and len(k) >= 5 and k.isascii() and k.isdigit()


def _is_part(path: Path) -> bool:
    return _is_part_name(path.stem)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:  # in chunks: a compacted part may be larger than the memory to spare
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _write_checksums(out: Path, scenario_label: str, name: str, sums: dict[str, str]) -> None:
    text = json.dumps({"name": name, "sha256": sums}, sort_keys=True)
    write_text_atomic(text, checksum_path(out, scenario_label, name))


def write_run(out: Path, scenario_label: str, run_id: str, tables: dict[str, pl.DataFrame]) -> None:
    """Write one run's tables, then the checksums of all its files, then its ``runs`` row, which
    commits the run. Killed at any point, a run either has every file and its checksums, or no
    ``runs`` file (not complete: run again on ``--resume``). (With the checksums written after the
    ``runs`` row, a kill between the two left a complete run without checksums.)"""
    sums = {}
    for name in _WRITE_ORDER[:-1]:
        path = run_path(out, name, scenario_label, run_id)
        write_atomic(tables[name], path)
        sums[name] = _sha256(path)

    def commit(tmp: str) -> None:  # the runs row is hashed in its temporary file, renamed into place last
        tables["runs"].write_parquet(tmp)
        sums["runs"] = _sha256(Path(tmp))
        _write_checksums(out, scenario_label, run_id, sums)

    replace_atomically(run_path(out, "runs", scenario_label, run_id), commit)


def remove_temporaries(out: Path) -> int:
    """Delete temporary files a killed writer left behind; returns how many."""
    n = 0
    for tmp in out.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        n += 1
    return n


def _intact(out: Path, label: str, name: str) -> bool:
    """Every table file of a run or part ``name`` has the checksum recorded for it (written
    before checksums existed, or a compaction killed before writing them: every file decodes)."""
    sums = checksum_path(out, label, name)
    if not sums.is_file():
        return all(_readable(run_path(out, t, label, name)) for t in TABLES)
    try:
        recorded = json.loads(sums.read_text())["sha256"]
        return set(recorded) == set(TABLES) and all(
            _sha256(run_path(out, t, label, name)) == recorded[t] for t in TABLES)
    except (OSError, ValueError, KeyError, TypeError):  # missing, unreadable or damaged: run it again
        return False


def completed_runs(out: Path, repaired: Mapping[tuple[str, str], set[str]] | None = None) -> set[str]:
    """Run ids whose ``runs`` row says complete and whose every file is intact: each has the
    checksum recorded when the run (or the part holding it) was written (folders written before
    checksums existed: each file can be read in full).

    ``repaired``: what :func:`repair` just returned (its parts are intact: not read again)."""
    if not (out / "runs").is_dir():
        return set()
    committed = _committed(out) if repaired is None else repaired
    done = {run_id for (label, part), ids in committed.items()
            if repaired is not None or _intact(out, label, part) for run_id in ids}
    return done | {run_id for _, run_id in _complete_run_files(out, _covered(committed))}


def _complete_run_files(out: Path, covered: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """``(scenario label, run id)`` of the runs that have their own files, not ``covered`` by a
    committed part, intact, and whose ``runs`` row says complete."""
    files = [(path.parent.name.removeprefix("scenario="), path)
             for path in sorted((out / "runs").glob("scenario=*/*.parquet")) if not _is_part(path)]
    intact = [(label, path) for label, path in files if (label, path.stem) not in covered and _intact(out, label, path.stem)]
    if not intact:
        return set()
    try:  # one read for all (intact files decode, but one written by another version may not match the rest)
        rows = (pl.scan_parquet([path for _, path in intact], hive_partitioning=False, include_file_paths="path",
                                extra_columns="ignore", missing_columns="insert")
                .group_by("path").agg(pl.len(), pl.col("run_id").first(), pl.col("status").first())
                .filter((pl.col("len") == 1) & (pl.col("status") == "complete")
                        & (pl.col("path").str.extract(r"([^/\\]+)\.parquet$") == pl.col("run_id")))
                .collect())
        complete = set(rows["run_id"])
        return {(label, path.stem) for label, path in intact if path.stem in complete}
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - read them one by one (polars may panic)
        return {(label, path.stem) for label, path in intact if _says_complete(path)}


def _says_complete(path: Path) -> bool:
    """The run file ``path`` of table ``runs`` holds one row, of its run, marked complete."""
    row = pl.read_parquet(path, columns=["run_id", "status"])
    return row.height == 1 and row["run_id"][0] == path.stem and row["status"][0] == "complete"


def _committed(out: Path) -> dict[tuple[str, str], set[str]]:
    """Committed compacted parts, ``(scenario label, part stem) -> run ids``, from ``runs/``.

    Only run ids marked complete count (a part holds complete runs only); an unreadable
    commit holds none."""
    parts = {}
    for path in (out / "runs").glob("scenario=*/part-*.parquet"):
        if not _is_part(path):
            continue
        label = path.parent.name.removeprefix("scenario=")
        try:
            rows = pl.read_parquet(path, columns=["run_id", "status"])
            parts[(label, path.stem)] = set(rows.filter(pl.col("status") == "complete")["run_id"])
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - a damaged commit (polars may panic): its runs count as not done
            parts[(label, path.stem)] = set()
    return parts


def _covered(committed: dict[tuple[str, str], set[str]]) -> set[tuple[str, str]]:
    return {(label, run_id) for (label, _), ids in committed.items() for run_id in ids}


def _files(out: Path, table: str, parts: set[tuple[str, str]], covered: Callable[[str], set[str]]) -> list[Path]:
    """The files that hold ``table``: committed parts, and the run files no part covers.

    ``parts`` are the committed ``(scenario label, part stem)``; ``covered(label)`` the run ids
    they hold, asked for only where a scenario has both parts and run files (rare: a compaction
    was interrupted, or runs were added by --resume after it)."""
    files = []
    with_parts = {label for label, _ in parts}
    for path in sorted((out / table).glob("scenario=*/*.parquet")):
        label = path.parent.name.removeprefix("scenario=")
        if _is_part(path):
            if (label, path.stem) in parts:
                files.append(path)
        elif label not in with_parts or path.stem not in covered(label):
            files.append(path)
    return files


def _remove(out: Path, label: str, name: str) -> None:
    """Delete a run's or a part's files: its ``runs`` file first (uncommit), then the data, then
    its checksums."""
    for table in ["runs", *_WRITE_ORDER[:-1]]:
        run_path(out, table, label, name).unlink(missing_ok=True)
    checksum_path(out, label, name).unlink(missing_ok=True)


def repair(out: Path) -> dict[tuple[str, str], set[str]]:
    """Finish or undo a compaction that was killed: delete parts never committed, and parts with a
    damaged file (their runs will be run again); write the checksums a committed part lacks;
    delete the run files a committed part covers. Returns the committed parts, all intact now,
    ``(scenario label, part stem) -> run ids``."""
    committed = _committed(out)
    for (label, part), ids in list(committed.items()):
        if not ids or not _intact(out, label, part):
            _remove(out, label, part)
            del committed[(label, part)]
        elif not checksum_path(out, label, part).is_file():  # killed between the commit and its checksums
            _write_checksums(out, label, part, {t: _sha256(run_path(out, t, label, part)) for t in TABLES})
    for folder in [*(out / t for t in TABLES), out / "checksums"]:
        for path in folder.glob("scenario=*/part-*"):
            label = path.parent.name.removeprefix("scenario=")
            stem = path.name.split(".")[0]
            if _is_part_name(stem) and (label, stem) not in committed:
                path.unlink()
    for label, run_id in _covered(committed):
        _remove(out, label, run_id)
    return committed


def _sink_atomic(lf: pl.LazyFrame, path: Path, row_group_size: int | None = None) -> None:
    """Stream ``lf`` into ``path`` (bounded memory), whole or not at all."""
    # zstd level 1, not polars' default 3: parts within 2 % of the size, written some 10 % faster
    replace_atomically(path, lambda tmp: lf.sink_parquet(tmp, compression="zstd", compression_level=1,
                                                         row_group_size=row_group_size))


def _rows_per_group(files: list[Path]) -> int | None:
    """Rows of about ``ROW_GROUP_BYTES`` in memory and ``ROW_GROUP_FILES`` files, estimated from the
    largest of ``files`` (``None``, polars' default, if it has no rows)."""
    sample = pl.read_parquet(max(files, key=lambda f: f.stat().st_size), hive_partitioning=False)
    if sample.height == 0:
        return None
    by_bytes = ROW_GROUP_BYTES * sample.height // max(sample.estimated_size(), 1)
    return max(1, min(by_bytes, ROW_GROUP_FILES * sample.height))


def compact(folder: str | os.PathLike, runs_per_part: int = RUNS_PER_PART) -> int:
    """Merge the run files of complete runs into ``part-<k>.parquet`` files; returns how many runs.

    Failed runs keep their own files, so that ``--resume`` runs them again. Call it only while no
    sweep writes to the folder (a sweep calls it at its end, holding the lock).
    """
    out = Path(folder)
    committed = repair(out)  # after it, every committed part is intact and no run file is covered by one
    done = _complete_run_files(out, _covered(committed))
    n = 0
    for runs_dir in sorted((out / "runs").glob("scenario=*")):
        label = runs_dir.name.removeprefix("scenario=")
        ids = sorted(run_id for lab, run_id in done if lab == label)
        taken = [int(p.stem.removeprefix("part-")) for t in TABLES
                 for p in (out / t / runs_dir.name).glob("part-*.parquet") if _is_part(p)]
        k = max(taken, default=-1) + 1
        for start in range(0, len(ids), runs_per_part):
            chunk = ids[start:start + runs_per_part]
            part = f"part-{k:05d}"
            sums = {}
            for table in _WRITE_ORDER:  # runs last: it commits the part
                files = [run_path(out, table, label, run_id) for run_id in chunk]
                target = run_path(out, table, label, part)
                _sink_atomic(pl.scan_parquet(files, hive_partitioning=False), target, _rows_per_group(files))
                sums[table] = _sha256(target)
            _write_checksums(out, label, part, sums)
            for run_id in chunk:
                _remove(out, label, run_id)
            n += len(chunk)
            k += 1
    return n


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


class Tables(Mapping[str, pl.LazyFrame]):
    """The tables of an experiment folder by name, each a polars LazyFrame over all its runs.

    A read-only mapping (``tables["shares"]``, ``"withholding" in tables``, ``.items()``). Nothing
    is listed up front: a table's files are listed and its frame built when it is first asked
    for, and the folder's list of tables when it is first iterated, so opening a folder to query
    one table costs only that table."""

    def __init__(self, out: Path, names: Callable[[], list[str]], build: Callable[[str], pl.LazyFrame | None]) -> None:
        self._out, self._list, self._build = out, names, build
        self._names: list[str] | None = None
        self._frames: dict[str, pl.LazyFrame] = {}

    def __getitem__(self, name: str) -> pl.LazyFrame:
        if name not in self._frames:
            frame = self._build(name)
            if frame is None:  # not a table, or none of its files in this folder
                raise KeyError(name)
            self._frames[name] = frame
        return self._frames[name]

    def _all(self) -> list[str]:
        if self._names is None:
            self._names = self._list()
        return self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"market.scan({str(self._out)!r}): {', '.join(self._all())}"


def scan(folder: str | os.PathLike) -> Tables:
    """Every table of a finished (or running) experiment as a polars LazyFrame over all its runs.

    Tables carry ``run_id`` and, from the folder layout, ``scenario``; ``points`` is the design.
    Returns a read-only mapping of table name to LazyFrame (see :class:`Tables`).
    """
    out = Path(folder)
    if not out.is_dir():
        raise FileNotFoundError(f"{str(out)!r} is not a folder of experiment results")
    covered: dict[str, set[str]] | None = None
    parts: set[tuple[str, str]] | None = None

    def covered_in(label: str) -> set[str]:
        nonlocal covered
        if covered is None:  # the committed parts' runs files, read once
            covered = {}
            for (lab, _), ids in _committed(out).items():
                covered.setdefault(lab, set()).update(ids)
        return covered.get(label, set())

    def build(table: str) -> pl.LazyFrame | None:
        nonlocal parts
        if table == "points":
            return pl.scan_parquet(out / "points.parquet") if (out / "points.parquet").is_file() else None
        if table not in TABLES:
            return None
        if parts is None:
            parts = {(p.parent.name.removeprefix("scenario="), p.stem)
                     for p in (out / "runs").glob("scenario=*/part-*.parquet") if _is_part(p)}
        files = _files(out, table, parts, covered_in)
        return pl.scan_parquet(files, hive_partitioning=True) if files else None

    def names() -> list[str]:
        found = [t for t in TABLES if next((out / t).glob("scenario=*/*.parquet"), None) is not None]
        return [*found, "points"] if (out / "points.parquet").is_file() else found

    return Tables(out, names, build)
