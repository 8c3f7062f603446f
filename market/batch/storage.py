"""The on-disk layout of an experiment, written run by run, and read back lazily.

    DIR/
      experiment.json                       the resolved experiment (checked on --resume)
      points.parquet                        the design: one row per (scenario, point), a column per parameter
      <table>/scenario=<name>/<run_id>.parquet   one file per table per run (hive-partitioned)
      runs/scenario=<name>/<run_id>.parquet      the run's row: status "complete" or "failed" and why
      checksums/scenario=<name>/<run_id>.json    SHA-256 of each of the run's files, written before its runs row
      <table>/scenario=<name>/batch-<k>.parquet  or: several complete runs of one worker, written together

Every file is written to a hidden temporary name in its folder and renamed into place
(``os.replace``), so a reader never sees a half-written file; a killed writer leaves only a
hidden ``.*.tmp`` file, removed on ``--resume``. A run is complete when its ``runs`` row says so
and every file still has the checksum recorded for it, so ``--resume`` re-runs a run whose files
were damaged or edited after it finished (and never hands a damaged file to the Parquet reader).

A worker of a large sweep writes the complete runs of a batch (see ``runner._batches``) together, as
``batch-<k>``: one file per table for all of them, its ``runs`` file (a row per run) written last
and committing them all, exactly as a run's does. Fewer, larger files are faster to write (each
file costs about a millisecond whatever its size) and to compact. A batch that was never
committed, or whose files were damaged, is deleted by :func:`repair` (its runs run again).

A finished sweep of many runs is compacted (:func:`compact`, ``market compact DIR``): the run and
batch files of its complete runs are merged into ``<table>/scenario=<name>/part-<k>.parquet``, up to
``RUNS_PER_PART`` runs each, because many small files are slow to scan; each is streamed in row
groups of bounded size (``ROW_GROUP_BYTES``, ``ROW_GROUP_FILES``), so that compaction's memory does
not grow with the number of runs. ``runs/.../part-<k>`` is written after the other tables' part
files and commits part ``k``; its checksums (``checksums/scenario=<name>/part-<k>.json``) follow,
then the run and batch files it covers are deleted. Before the commit the other ``part-<k>`` files
are ignored (and deleted by :func:`repair`); after it, the run and batch files it covers are ignored
(and then deleted). So a compaction killed at any point loses nothing and counts nothing twice, and a
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

__all__ = ["RUNS_PER_PART", "Tables", "batch_name", "checksum_path", "compact", "completed_runs", "next_batch_numbers",
           "remove_run", "remove_temporaries", "repair", "run_path", "scan", "write_atomic", "write_run"]

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


def batch_name(k: int) -> str:
    """The name of a worker's ``k``-th batch of runs of a scenario."""
    return f"batch-{k:05d}"


def next_batch_numbers(out: Path) -> dict[str, int]:
    """Per scenario label, the first batch number not used in ``out`` (after :func:`repair`, every
    batch left is committed, so its ``runs`` file is there)."""
    taken: dict[str, int] = {}
    for path in (out / "runs").glob("scenario=*/batch-*.parquet"):
        if _is_batch_name(path.stem):
            label = path.parent.name.removeprefix("scenario=")
            taken[label] = max(taken.get(label, 0), int(path.stem.removeprefix("batch-")) + 1)
    return taken


def _numbered(stem: str, prefix: str) -> bool:
    """``<prefix><k>`` with k of 5+ digits. Run ids ("<label>-p0000-r000") never are: they end in
    ``-r`` and digits."""
    k = stem.removeprefix(prefix)
    return k != stem and len(k) >= 5 and k.isascii() and k.isdigit()


def _is_part_name(stem: str) -> bool:
    """``part-<k>``: a compacted part."""
    return _numbered(stem, "part-")


def _is_batch_name(stem: str) -> bool:
    """``batch-<k>``: a batch of runs a worker wrote together."""
    return _numbered(stem, "batch-")


def _is_part_or_batch(stem: str) -> bool:
    """A file of several runs, committed by its ``runs`` file like a run's."""
    return _is_part_name(stem) or _is_batch_name(stem)


def _is_part(path: Path) -> bool:
    return _is_part_name(path.stem)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:  # in chunks: a compacted part may be larger than the memory to spare
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _write_checksums(out: Path, scenario_label: str, name: str, sums: dict[str, str]) -> None:
    text = json.dumps({"name": name, "sha256": sums}, sort_keys=True)
    write_text_atomic(text, checksum_path(out, scenario_label, name))


def write_run(out: Path, scenario_label: str, run_id: str, tables: dict[str, pl.DataFrame]) -> None:
    """Write one run's tables (or a batch's: ``run_id`` a :func:`batch_name`), then the checksums of
    all its files, then its ``runs`` row, which commits the run. Killed at any point, a run either
    has every file and its checksums, or no ``runs`` file (not complete: run again on
    ``--resume``). (With the checksums written after the ``runs`` row, a kill between the two left
    a complete run without checksums.)"""
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
    checksum recorded when the run (or the batch or part holding it) was written (folders written
    before checksums existed: each file can be read in full).

    ``repaired``: what :func:`repair` just returned (its parts and batches are intact: not read again)."""
    if not (out / "runs").is_dir():
        return set()
    committed = _committed(out) if repaired is None else repaired
    done = {run_id for (label, name), ids in committed.items()
            if repaired is not None or _intact(out, label, name) for run_id in ids}
    return done | {run_id for _, run_id in _complete_run_files(out, _covered(committed))}


def _runs_rows(paths: list[Path]) -> dict[Path, tuple[int, set[str]]]:
    """For each ``runs`` file: how many rows it holds, and the run ids it marks complete (a file
    that cannot be read holds none). One read for all of them; one by one if that fails."""
    if not paths:
        return {}
    try:  # intact files decode, but one written by another version may not match the rest
        rows = (pl.scan_parquet(paths, hive_partitioning=False, include_file_paths="path",
                                extra_columns="ignore", missing_columns="insert")
                .group_by("path").agg(pl.len(), pl.col("run_id").filter(pl.col("status") == "complete"))
                .collect())
        found = {path: (n, set(ids)) for path, n, ids in rows.iter_rows()}
        return {p: found.get(str(p), (0, set())) for p in paths}
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - read them one by one (polars may panic)
        return {p: _rows_of(p) for p in paths}


def _rows_of(path: Path) -> tuple[int, set[str]]:
    """:func:`_runs_rows` of one file."""
    try:
        rows = pl.read_parquet(path, columns=["run_id", "status"])
        return rows.height, set(rows.filter(pl.col("status") == "complete")["run_id"])
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - damaged (polars may panic): it holds no complete run
        return 0, set()


def _complete_run_files(out: Path, covered: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """``(scenario label, run id)`` of the runs that have their own files, not ``covered`` by a
    committed part, intact, and whose ``runs`` row says complete."""
    files = [(path.parent.name.removeprefix("scenario="), path)
             for path in sorted((out / "runs").glob("scenario=*/*.parquet")) if not _is_part_or_batch(path.stem)]
    intact = [(label, path) for label, path in files
              if (label, path.stem) not in covered and _intact(out, label, path.stem)]
    rows = _runs_rows([path for _, path in intact])
    return {(label, path.stem) for label, path in intact if rows[path] == (1, {path.stem})}


def _committed(out: Path) -> dict[tuple[str, str], set[str]]:
    """Committed compacted parts and batches, ``(scenario label, name) -> run ids``, from their
    ``runs`` files. Only run ids marked complete count (both hold complete runs only); an
    unreadable commit holds none."""
    paths = [path for path in (out / "runs").glob("scenario=*/*-*.parquet") if _is_part_or_batch(path.stem)]
    return {(path.parent.name.removeprefix("scenario="), path.stem): ids
            for path, (_, ids) in _runs_rows(paths).items()}


def _covered(committed: Mapping[tuple[str, str], set[str]]) -> set[tuple[str, str]]:
    """``(scenario label, name)`` of the runs and batches whose runs a committed part holds: their
    own files are ignored, then deleted."""
    runs = {(label, run_id) for (label, name), ids in committed.items() if _is_part_name(name) for run_id in ids}
    batches = {(label, name) for (label, name), ids in committed.items()
               if _is_batch_name(name) and any((label, run_id) in runs for run_id in ids)}
    return runs | batches


def _files(out: Path, table: str, parts: set[tuple[str, str]], covered: Callable[[str], set[str]]) -> list[Path]:
    """The files that hold ``table``: committed parts, and the run and batch files no part covers.

    ``parts`` are the committed ``(scenario label, part stem)``; ``covered(label)`` the names of
    the runs and batches they hold, asked for only where a scenario has both parts and other files
    (rare: a compaction was interrupted, or runs were added by --resume after it)."""
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


def remove_run(out: Path, label: str, name: str) -> None:
    """Delete a run's, a batch's or a part's files: its ``runs`` file first (uncommit), then the
    data, then its checksums."""
    for table in ["runs", *_WRITE_ORDER[:-1]]:
        run_path(out, table, label, name).unlink(missing_ok=True)
    checksum_path(out, label, name).unlink(missing_ok=True)


def repair(out: Path) -> dict[tuple[str, str], set[str]]:
    """Finish or undo what a kill interrupted: delete parts and batches never committed, and those
    with a damaged file (their runs will be run again); write the checksums a committed part lacks;
    delete the run and batch files a committed part covers. Returns the committed parts and
    batches, all intact now, ``(scenario label, name) -> run ids``."""
    committed = _committed(out)
    for (label, name), ids in list(committed.items()):
        if not ids or not _intact(out, label, name):
            remove_run(out, label, name)
            del committed[(label, name)]
        elif not checksum_path(out, label, name).is_file():  # killed between a part's commit and its checksums
            _write_checksums(out, label, name, {t: _sha256(run_path(out, t, label, name)) for t in TABLES})
    for folder in [*(out / t for t in TABLES), out / "checksums"]:
        for path in [*folder.glob("scenario=*/part-*"), *folder.glob("scenario=*/batch-*")]:
            label = path.parent.name.removeprefix("scenario=")
            stem = path.name.split(".")[0]
            if _is_part_or_batch(stem) and (label, stem) not in committed:
                path.unlink()
    for label, name in _covered(committed):
        remove_run(out, label, name)
        committed.pop((label, name), None)
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


def _chunks(units: list[tuple[str, int]], runs_per_part: int) -> Iterator[list[str]]:
    """Consecutive ``(name, runs)`` units grouped into chunks of at most ``runs_per_part`` runs (a
    unit is never split: one larger than that is a chunk of its own)."""
    chunk, runs = [], 0
    for name, n in units:
        if chunk and runs + n > runs_per_part:
            yield chunk
            chunk, runs = [], 0
        chunk.append(name)
        runs += n
    if chunk:
        yield chunk


def compact(folder: str | os.PathLike, runs_per_part: int = RUNS_PER_PART) -> int:
    """Merge the run and batch files of complete runs into ``part-<k>.parquet`` files; returns how
    many runs.

    Failed runs keep their own files, so that ``--resume`` runs them again. Call it only while no
    sweep writes to the folder (a sweep calls it at its end, holding the lock).
    """
    out = Path(folder)
    committed = repair(out)  # after it, every committed part and batch is intact and none is covered by a part
    loose = {key: {key[1]} for key in _complete_run_files(out, _covered(committed))}
    loose |= {key: ids for key, ids in committed.items() if _is_batch_name(key[1])}
    n = 0
    for runs_dir in sorted((out / "runs").glob("scenario=*")):
        label = runs_dir.name.removeprefix("scenario=")
        units = sorted((min(ids), name, len(ids)) for (lab, name), ids in loose.items() if lab == label)  # in run order
        taken = [int(p.stem.removeprefix("part-")) for t in TABLES
                 for p in (out / t / runs_dir.name).glob("part-*.parquet") if _is_part(p)]
        k = max(taken, default=-1) + 1
        for chunk in _chunks([(name, size) for _, name, size in units], runs_per_part):
            part = f"part-{k:05d}"
            sums = {}
            for table in _WRITE_ORDER:  # runs last: it commits the part
                files = [run_path(out, table, label, name) for name in chunk]
                target = run_path(out, table, label, part)
                _sink_atomic(pl.scan_parquet(files, hive_partitioning=False), target, _rows_per_group(files))
                sums[table] = _sha256(target)
            _write_checksums(out, label, part, sums)
            for name in chunk:
                remove_run(out, label, name)
            n += sum(len(loose[(label, name)]) for name in chunk)
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
        if covered is None:  # the committed parts' and batches' runs files, read once
            covered = {}
            for lab, name in _covered(_committed(out)):
                covered.setdefault(lab, set()).add(name)
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
